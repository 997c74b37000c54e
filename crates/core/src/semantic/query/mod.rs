//! The query planner: metrics, group-bys, filters, order, limit and a time
//! range in, one SQL statement for PostgreSQL out, with the answers
//! MetricFlow gives. Pure: the statement is run by whoever asked.
//!
//! Supported: simple metrics (every aggregation, with metric and measure
//! filters, `fill_nulls_with` and `join_to_timespine`), ratio and derived
//! metrics (with input filters, aliases and offsets at the query's grain or
//! coarser), cumulative metrics (a trailing window, grain to date, all
//! time), grouping by `metric_time` and time dimensions at any grain, by
//! dimensions and entities up to two joins away, `where` filters over them,
//! `start_time`/`end_time`, `order_by` and `limit`; non-additive measures
//! (a balance read on the last or first day of each period); conversion
//! metrics (each conversion event counted at the latest base event of its
//! entity within the window); `Metric()` filters (the metric per entity,
//! joined to the rows); offsets finer than the query's grain (the rows of
//! the earlier day, read through the spine), conversions' constant
//! properties and conversion-measure filters.

mod conversion;
mod resolve;
mod sql;
pub mod template;
mod time;

use crate::semantic::definition::{
    Grain, Metric, MetricInput, MetricType, SavedQuery, SemanticModel, WhereFilters,
};
use crate::semantic::Layer;
use resolve::{Element, Reachable, Target};
use template::{Reference, Template};

/// What `pm query` (or a saved query) asks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    pub metrics: Vec<String>,
    /// Group-by items as written (`metric_time__month`, `customer__region`,
    /// `TimeDimension('metric_time', 'month')`).
    pub group_by: Vec<String>,
    /// Filter templates, all of which must hold.
    pub filters: Vec<String>,
    /// Filters already read and checked, all of which must hold too:
    /// `pm serve`'s, whose values are `$n` parameters bound when the
    /// statement runs.
    pub checked_filters: Vec<Template>,
    /// Output columns to order by; `-name` descends.
    pub order_by: Vec<String>,
    pub limit: Option<u64>,
    /// Bounds of `metric_time` (inclusive), as ISO dates or timestamps.
    pub start_time: Option<String>,
    pub end_time: Option<String>,
}

impl Query {
    /// What a saved query asks.
    pub fn of_saved(saved: &SavedQuery) -> Query {
        let p = &saved.query_params;
        Query {
            metrics: p.metrics.clone(),
            group_by: p.group_by.clone(),
            filters: p
                .where_filter
                .iter()
                .flat_map(|w| w.templates().map(String::from))
                .collect(),
            checked_filters: Vec::new(),
            order_by: p.order_by.clone(),
            limit: p.limit,
            start_time: None,
            end_time: None,
        }
    }
}

/// The statement and the columns it gives, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub sql: String,
    pub columns: Vec<String>,
}

/// Plans `query` against `layer`; the error says what is wrong with it.
pub fn plan(layer: &Layer, query: &Query) -> Result<Plan, String> {
    if query.metrics.is_empty() {
        return Err("name at least one metric".into());
    }
    let group_by: Vec<Reference> = query
        .group_by
        .iter()
        .map(|g| template::parse_group_by(g))
        .collect::<Result<_, _>>()?;
    let mut filters: Vec<Template> = Vec::new();
    for f in &query.filters {
        filters.push(template::parse_filter(f)?);
    }
    filters.extend(query.checked_filters.iter().cloned());
    let bounds = time_bounds(query)?;
    let planner = Planner {
        layer,
        group_by: &group_by,
        bounds: bounds.as_ref(),
    };
    let mut parts = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut columns: Option<Vec<String>> = None;
    for name in &query.metrics {
        let metric = layer
            .metric(name)
            .ok_or_else(|| unknown_metric(layer, name))?;
        if names.contains(name) {
            return Err(format!("metric `{name}` is asked for twice"));
        }
        let (sql, cols) = planner.metric(metric, name, &filters)?;
        match &columns {
            None => columns = Some(cols.clone()),
            Some(c) if *c != cols => {
                return Err(format!(
                    "metric `{name}` groups by {} where the others group by {}",
                    cols.join(", "),
                    c.join(", ")
                ))
            }
            Some(_) => {}
        }
        names.push(name.clone());
        parts.push((sql, vec![name.clone()]));
    }
    let group_cols = columns.unwrap_or_default();
    let mut sql = sql::combine(&parts, &group_cols);
    let mut out_columns = group_cols.clone();
    out_columns.extend(names);
    sql.push_str(&order_and_limit(query, &out_columns, &group_cols)?);
    Ok(Plan {
        sql,
        columns: out_columns,
    })
}

/// What metric `name` can be grouped and filtered by: the names every
/// measure it reads reaches (time elements by their plain name; a grain
/// suffix picks another grain), sorted. None when there is no such metric.
pub fn group_by_names(layer: &Layer, name: &str) -> Option<Vec<String>> {
    let metric = layer.metric(name)?;
    let mut common: Option<Vec<String>> = None;
    for input in &metric.type_params.input_measures {
        let Some((model, measure)) = layer.measure(&input.name) else {
            continue;
        };
        let reachable = Reachable::of(layer, model, measure);
        let names: Vec<String> = reachable
            .elements
            .iter()
            .filter(|(_, e)| e.is_some())
            .map(|(k, _)| k.clone())
            .filter(|k| {
                k.rsplit_once("__")
                    .is_none_or(|(_, last)| Grain::parse_exact(last).is_none())
            })
            .collect();
        common = Some(match common {
            None => names,
            Some(c) => c.into_iter().filter(|n| names.contains(n)).collect(),
        });
    }
    Some(common.unwrap_or_default())
}

fn unknown_metric(layer: &Layer, name: &str) -> String {
    let close = crate::error::closest(name, layer.metrics.iter().map(|m| m.def.name.as_str()));
    format!(
        "there is no metric `{name}`; {}",
        crate::error::did_you_mean(&close, "`pm ls --resource-type metric` lists them")
    )
}

/// `start_time`/`end_time` checked to be dates or timestamps.
fn time_bounds(query: &Query) -> Result<Option<time::Bounds>, String> {
    let check = |v: &Option<String>, what: &str| -> Result<Option<String>, String> {
        let Some(t) = v else { return Ok(None) };
        let t = t.trim();
        let ok = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok()
            || chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S").is_ok()
            || chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").is_ok();
        if !ok {
            return Err(format!(
                "{what} `{t}` is not a date (2024-01-31) or a timestamp (2024-01-31T12:00:00)"
            ));
        }
        Ok(Some(t.replace('T', " ")))
    };
    let start = check(&query.start_time, "start time")?;
    let end = check(&query.end_time, "end time")?;
    Ok((start.is_some() || end.is_some()).then_some((start, end)))
}

fn order_and_limit(
    query: &Query,
    columns: &[String],
    group_cols: &[String],
) -> Result<String, String> {
    let mut order: Vec<String> = Vec::new();
    for o in &query.order_by {
        let (name, desc) = match o.trim().strip_prefix('-') {
            Some(n) => (n.trim(), true),
            None => (o.trim(), false),
        };
        // `metric_time` names the grain the query groups it by.
        let found = columns
            .iter()
            .find(|c| *c == name)
            .or_else(|| {
                columns.iter().find(|c| {
                    c.starts_with(&format!("{name}__"))
                        && Grain::parse_exact(&c[name.len() + 2..]).is_some()
                })
            })
            .ok_or_else(|| {
                format!(
                    "cannot order by `{name}`: the answer's columns are {}",
                    columns.join(", ")
                )
            })?;
        order.push(format!("{found}{}", if desc { " DESC" } else { "" }));
    }
    if order.is_empty() {
        order = group_cols.to_vec();
    }
    let mut out = String::new();
    if !order.is_empty() {
        out.push_str(&format!("\nORDER BY {}", order.join(", ")));
    }
    if let Some(n) = query.limit {
        out.push_str(&format!("\nLIMIT {n}"));
    }
    Ok(out)
}

struct Planner<'p, 'a> {
    layer: &'p Layer<'a>,
    group_by: &'p [Reference],
    bounds: Option<&'p time::Bounds>,
}

impl<'a> Planner<'_, 'a> {
    /// A metric's select: the group-by columns, then its value as `column`.
    /// `filters` are the query's and the enclosing metrics' filters.
    fn metric(
        &self,
        metric: &'a Metric,
        column: &str,
        filters: &[Template],
    ) -> Result<(String, Vec<String>), String> {
        let mut filters = filters.to_vec();
        filters.extend(templates(metric.filter.as_ref())?);
        let p = &metric.type_params;
        match metric.metric_type {
            MetricType::Simple => {
                let input = p
                    .measure
                    .as_ref()
                    .ok_or("a simple metric without a measure")?;
                filters.extend(templates(input.filter.as_ref())?);
                let (mut sql, cols) =
                    self.measure(&input.name, column, &filters, self.group_by, None)?;
                if input.join_to_timespine && time::metric_time_column(&cols).is_some() {
                    let spine = time::spine_of(
                        self.layer,
                        &format!("metric `{}` (join_to_timespine)", metric.name),
                    )?;
                    sql = time::join_to_spine(&sql, &cols, column, &spine, self.bounds);
                }
                Ok(match input.fill_nulls_with {
                    Some(v) => (fill_nulls(&sql, &cols, column, v), cols),
                    None => (sql, cols),
                })
            }
            MetricType::Cumulative => self.cumulative(metric, column, &filters),
            MetricType::Ratio => {
                let num = p
                    .numerator
                    .as_ref()
                    .ok_or("a ratio metric without a numerator")?;
                let den = p
                    .denominator
                    .as_ref()
                    .ok_or("a ratio metric without a denominator")?;
                let (n, cols) = self.input(num, "__numerator", &filters)?;
                let (d, _) = self.input(den, "__denominator", &filters)?;
                let combined = sql::combine(
                    &[
                        (n, vec!["__numerator".into()]),
                        (d, vec!["__denominator".into()]),
                    ],
                    &cols,
                );
                let value = format!("CAST(__numerator AS DOUBLE PRECISION) / CAST(NULLIF(__denominator, 0) AS DOUBLE PRECISION) AS {column}");
                Ok((wrap(&combined, &cols, &value), cols))
            }
            MetricType::Derived => {
                let mut parts = Vec::new();
                let mut cols = Vec::new();
                for input in &p.metrics {
                    let name = input.alias_or_name().to_string();
                    let (s, c) = self.input(input, &name, &filters)?;
                    cols = c;
                    parts.push((s, vec![name]));
                }
                let combined = sql::combine(&parts, &cols);
                let expr = p.expr.as_deref().unwrap_or("NULL");
                Ok((wrap(&combined, &cols, &format!("{expr} AS {column}")), cols))
            }
            MetricType::Conversion => self.conversion(metric, column, &filters),
        }
    }

    /// A cumulative metric: each day of the spine adds up the rows of its
    /// window; a coarser grain reads one day of each period.
    fn cumulative(
        &self,
        metric: &'a Metric,
        column: &str,
        filters: &[Template],
    ) -> Result<(String, Vec<String>), String> {
        let p = &metric.type_params;
        let input = p
            .measure
            .as_ref()
            .ok_or("a cumulative metric without a measure")?;
        let mut filters = filters.to_vec();
        filters.extend(templates(input.filter.as_ref())?);
        let params = p.cumulative_type_params.as_ref();
        let window = match (
            params.and_then(|c| c.window).or(p.window),
            params.and_then(|c| c.grain_to_date).or(p.grain_to_date),
        ) {
            (Some(w), _) => sql::Window::Trailing(w),
            (None, Some(g)) => sql::Window::ToDate(g),
            (None, None) => sql::Window::AllTime,
        };
        let Some(grain) = self.metric_time_grain() else {
            if window == sql::Window::AllTime {
                return self.measure(&input.name, column, &filters, self.group_by, None);
            }
            return Err(format!(
                "cumulative metric `{}` accumulates over a window, so the group-by must include metric_time (MetricFlow refuses it too)",
                metric.name
            ));
        };
        let spine = time::spine_of(self.layer, &format!("cumulative metric `{}`", metric.name))?;
        let spine_join = sql::SpineJoin {
            relation: &spine.relation,
            column: &spine.column,
            window,
        };
        if grain <= Grain::Day {
            return self.measure(
                &input.name,
                column,
                &filters,
                self.group_by,
                Some(spine_join),
            );
        }
        let day = Reference::Element {
            path: vec!["metric_time".into()],
            grain: Some(Grain::Day),
            kind: template::Kind::TimeDimension,
        };
        let mut by_day = self.group_by.to_vec();
        by_day.push(day);
        let (day_sql, cols) =
            self.measure(&input.name, column, &filters, &by_day, Some(spine_join))?;
        let period_cols: Vec<String> = cols
            .iter()
            .filter(|c| *c != "metric_time__day")
            .cloned()
            .collect();
        let period_agg = params
            .map_or(crate::semantic::definition::PeriodAggregation::First, |c| {
                c.period_agg
            });
        Ok((
            time::per_period(
                &day_sql,
                "metric_time__day",
                &period_cols,
                column,
                period_agg,
            ),
            period_cols,
        ))
    }

    /// The grain the query groups `metric_time` by, if it does.
    fn metric_time_grain(&self) -> Option<Grain> {
        self.group_by.iter().find_map(|r| match r {
            Reference::Element { path, grain, .. }
                if path.len() == 1 && path[0] == "metric_time" =>
            {
                Some(grain.unwrap_or(Grain::Day))
            }
            _ => None,
        })
    }

    /// An input offset by less than the query's grain: each day of the
    /// spine reads the rows of the day `w` before, then the days add up to
    /// the query's periods, as MetricFlow does.
    fn shifted_rows(
        &self,
        metric: &'a Metric,
        input: &MetricInput,
        w: crate::semantic::definition::TimeWindow,
        column: &str,
        filters: &[Template],
    ) -> Result<(String, Vec<String>), String> {
        let measure = match (metric.metric_type, &metric.type_params.measure) {
            (MetricType::Simple, Some(m)) if !m.join_to_timespine && m.fill_nulls_with.is_none() => m,
            _ => {
                return Err(format!(
                    "input `{}` is offset by less than the query's grain, which pm query does only for a simple metric without fill_nulls_with or join_to_timespine",
                    input.alias_or_name()
                ))
            }
        };
        let mut filters = filters.to_vec();
        filters.extend(templates(metric.filter.as_ref())?);
        filters.extend(templates(measure.filter.as_ref())?);
        let spine = time::spine_of(
            self.layer,
            &format!("input `{}` offset in time", input.alias_or_name()),
        )?;
        let shift = sql::SpineJoin {
            relation: &spine.relation,
            column: &spine.column,
            window: sql::Window::Shifted(w),
        };
        self.measure(&measure.name, column, &filters, self.group_by, Some(shift))
    }

    /// A ratio's or derived metric's input, as column `column`.
    fn input(
        &self,
        input: &'a MetricInput,
        column: &str,
        filters: &[Template],
    ) -> Result<(String, Vec<String>), String> {
        let metric = self
            .layer
            .metric(&input.name)
            .ok_or_else(|| unknown_metric(self.layer, &input.name))?;
        let mut filters = filters.to_vec();
        filters.extend(templates(input.filter.as_ref())?);
        let by = match (input.offset_window, input.offset_to_grain) {
            (Some(w), _) => time::Offset::Window(w),
            (None, Some(g)) => time::Offset::ToGrain(g),
            (None, None) => return self.metric(metric, column, &filters),
        };
        if let (time::Offset::Window(w), Some(grain)) = (by, self.metric_time_grain()) {
            if w.granularity < grain {
                return self.shifted_rows(metric, input, w, column, &filters);
            }
        }
        // The earlier periods are read whole; the bounds apply to the periods shown.
        let unbounded = Planner {
            layer: self.layer,
            group_by: self.group_by,
            bounds: None,
        };
        let (sql, cols) = unbounded.metric(metric, column, &filters)?;
        let spine = time::spine_of(
            self.layer,
            &format!("input `{}` offset in time", input.alias_or_name()),
        )?;
        let shifted = time::offset(&sql, &cols, column, by, &spine, self.bounds)
            .map_err(|e| format!("input `{}`: {e}", input.alias_or_name()))?;
        Ok((shifted, cols))
    }

    /// A measure's aggregate grouped by `group_by`, as `column`; with
    /// `spine_join`, a cumulative one.
    fn measure(
        &self,
        name: &str,
        column: &str,
        filters: &[Template],
        group_by: &[Reference],
        spine_join: Option<sql::SpineJoin>,
    ) -> Result<(String, Vec<String>), String> {
        self.measure_as(
            name,
            column,
            filters,
            group_by,
            spine_join,
            Shape::Aggregate,
        )
    }

    /// A measure's aggregate (`Shape::Aggregate`), or its filtered rows
    /// with the group-by columns and the extra elements (`Shape::Rows`).
    fn measure_as(
        &self,
        name: &str,
        column: &str,
        filters: &[Template],
        group_by: &[Reference],
        spine_join: Option<sql::SpineJoin>,
        shape: Shape,
    ) -> Result<(String, Vec<String>), String> {
        let (model, measure) = self
            .layer
            .measure(name)
            .ok_or_else(|| format!("no semantic model defines measure `{name}`"))?;
        if measure.non_additive_dimension.is_some() && spine_join.is_some() {
            return Err(format!(
                "measure `{name}` is non-additive over time, so it cannot be accumulated (a cumulative metric)"
            ));
        }
        let reachable = Reachable::of(self.layer, model, measure);
        let mut elements: Vec<Element> = Vec::new();
        let add = |e: Element<'a>, elements: &mut Vec<Element<'a>>| {
            if !elements.iter().any(|x| x.name == e.name) {
                elements.push(e);
            }
        };
        let mut group_cols = Vec::new();
        for r in group_by {
            let e = reachable
                .resolve(r)
                .map_err(|e| format!("metric reading measure `{name}`: {e}"))?;
            group_cols.push(e.name.clone());
            add(e, &mut elements);
        }
        if let Shape::Rows(extra) = shape {
            for r in extra {
                let e = reachable
                    .resolve(r)
                    .map_err(|e| format!("measure `{name}`: {e}"))?;
                add(e, &mut elements);
            }
        }
        let mut conditions = Vec::new();
        let mut metric_joins: Vec<sql::MetricJoin> = Vec::new();
        for f in filters {
            let mut resolved = Vec::new();
            for r in &f.references {
                if let Reference::Metric {
                    name: metric,
                    group_by,
                } = r
                {
                    let (join, entity) = self.metric_filter(metric, group_by, &reachable)?;
                    resolved.push(join.alias.clone());
                    add(entity, &mut elements);
                    if !metric_joins.iter().any(|j| j.alias == join.alias) {
                        metric_joins.push(join);
                    }
                    continue;
                }
                let e = reachable
                    .resolve(r)
                    .map_err(|e| format!("filter on measure `{name}`: {e}"))?;
                resolved.push(e.name.clone());
                add(e, &mut elements);
            }
            let mut k = 0;
            conditions.push(f.render(|_| {
                k += 1;
                resolved[k - 1].clone()
            }));
        }
        if let Some((start, end)) = self.bounds {
            let grain = elements
                .iter()
                .find(|e| matches!(e.target, Target::MetricTime(_)))
                .and_then(|e| e.grain)
                .unwrap_or(Grain::Day);
            let time = Reference::Element {
                path: vec!["metric_time".into()],
                grain: Some(grain),
                kind: template::Kind::TimeDimension,
            };
            let e = reachable
                .resolve(&time)
                .map_err(|e| format!("measure `{name}` has no time to bound: {e}"))?;
            let col = e.name.clone();
            add(e, &mut elements);
            if let Some(s) = start {
                conditions.push(format!(
                    "{col} >= {}",
                    sql::date_trunc(grain, &format!("CAST('{s}' AS TIMESTAMP)"))
                ));
            }
            if let Some(t) = end {
                conditions.push(format!(
                    "{col} <= {}",
                    sql::date_trunc(grain, &format!("CAST('{t}' AS TIMESTAMP)"))
                ));
            }
        }
        let q = sql::MeasureQuery {
            model,
            measure,
            elements: &elements,
            group_by: &group_cols,
            filters: &conditions,
            name: column,
            spine_join,
            metric_joins: &metric_joins,
        };
        Ok(match shape {
            Shape::Aggregate => (q.sql(&relation_of), group_cols),
            Shape::Rows(_) => (q.filtered_rows(&relation_of), group_cols),
        })
    }
}

impl<'a> Planner<'_, 'a> {
    /// `{{ Metric('orders', group_by=['customer']) }}` in a filter: the
    /// metric per entity, joined to the rows by their entity; the element
    /// the rows need for the join.
    fn metric_filter(
        &self,
        metric: &str,
        group_by: &[String],
        reachable: &Reachable<'a>,
    ) -> Result<(sql::MetricJoin, Element<'a>), String> {
        let [entity] = group_by else {
            return Err(format!(
                "Metric('{metric}', group_by=[...]) in a filter needs exactly one entity to group by"
            ));
        };
        let by = [Reference::Element {
            path: entity.split("__").map(String::from).collect(),
            grain: None,
            kind: template::Kind::Entity,
        }];
        let on_rows = reachable
            .resolve(&by[0])
            .map_err(|e| format!("Metric('{metric}') in a filter: {e}"))?;
        let found = self
            .layer
            .metric(metric)
            .ok_or_else(|| unknown_metric(self.layer, metric))?;
        let per_entity = Planner {
            layer: self.layer,
            group_by: &by,
            bounds: None,
        };
        let (sql, cols) = per_entity.metric(found, metric, &[])?;
        let join = sql::MetricJoin {
            sql,
            key: cols.first().cloned().unwrap_or_default(),
            value: metric.to_string(),
            // The column the filter reads, as the reference names it.
            alias: Reference::Metric {
                name: metric.to_string(),
                group_by: group_by.to_vec(),
            }
            .column_name(),
            on_rows: on_rows.name.clone(),
        };
        Ok((join, on_rows))
    }
}

/// What a measure's select gives.
#[derive(Clone, Copy)]
enum Shape<'r> {
    /// One row per group, the measure aggregated.
    Aggregate,
    /// The measure's rows (its value as `__value`), with these elements too.
    Rows(&'r [Reference]),
}

fn relation_of(model: &SemanticModel) -> String {
    let r = &model.node_relation;
    if r.relation_name.is_empty() {
        format!("\"{}\".\"{}\"", r.schema_name, r.alias)
    } else {
        r.relation_name.clone()
    }
}

fn templates(filters: Option<&WhereFilters>) -> Result<Vec<Template>, String> {
    filters
        .map(|f| f.templates().map(template::parse_filter).collect())
        .unwrap_or_else(|| Ok(Vec::new()))
}

/// `sql`'s value column `column` with NULL read as `value`.
fn fill_nulls(sql: &str, group_cols: &[String], column: &str, value: i64) -> String {
    wrap(
        sql,
        group_cols,
        &format!("COALESCE({column}, {value}) AS {column}"),
    )
}

/// `SELECT <group cols>, <value> FROM (<sql>) r`.
fn wrap(sql: &str, group_cols: &[String], value: &str) -> String {
    let mut select: Vec<String> = group_cols.to_vec();
    select.push(value.to_string());
    let inner: String = sql.lines().map(|l| format!("  {l}\n")).collect();
    format!("SELECT\n  {}\nFROM (\n{inner}) r", select.join("\n  , "))
}

#[cfg(test)]
mod tests;
