//! The SQL of one measure's rows and aggregate, and of metrics combined,
//! written as MetricFlow writes it for PostgreSQL: each model read in a
//! subquery that names its columns, joined `LEFT OUTER` along entities,
//! filtered, then aggregated; metrics from different rows combined with a
//! `FULL OUTER JOIN` on the group-by columns, grouped again on their
//! `COALESCE` so that rows whose keys are NULL meet.

use super::resolve::{Element, Hop, Target};
use crate::semantic::definition::{
    Aggregation, Entity, Grain, Measure, NonAdditiveDimension, SemanticModel, TimeWindow,
};

/// The value of element `e` in its own model's columns.
fn element_expr(e: &Element) -> String {
    let raw = match e.target {
        Target::MetricTime(d) | Target::Dimension(d) => d.sql(),
        Target::Entity(x) => x.sql(),
    };
    match e.grain {
        Some(g) => date_trunc(g, raw),
        None => raw.to_string(),
    }
}

pub fn date_trunc(g: Grain, expr: &str) -> String {
    format!("DATE_TRUNC('{}', {expr})", g.as_str())
}

/// A measure's value per row, as its aggregate reads it.
pub(super) fn measure_value(m: &Measure) -> String {
    match m.agg {
        Aggregation::SumBoolean => format!("CASE WHEN {} THEN 1 ELSE 0 END", m.sql()),
        Aggregation::Count => format!("CASE WHEN {} IS NOT NULL THEN 1 ELSE 0 END", m.sql()),
        _ => m.sql().to_string(),
    }
}

/// The aggregate of a measure's value column `col`.
pub(super) fn aggregate(m: &Measure, col: &str) -> String {
    let percentile = |p: f64, discrete: bool| {
        let f = if discrete {
            "PERCENTILE_DISC"
        } else {
            "PERCENTILE_CONT"
        };
        format!("{f}({p}) WITHIN GROUP (ORDER BY ({col}))")
    };
    match m.agg {
        Aggregation::Sum | Aggregation::SumBoolean | Aggregation::Count => format!("SUM({col})"),
        Aggregation::Min => format!("MIN({col})"),
        Aggregation::Max => format!("MAX({col})"),
        Aggregation::CountDistinct => format!("COUNT(DISTINCT {col})"),
        Aggregation::Average => format!("AVG({col})"),
        Aggregation::Median => percentile(0.5, false),
        Aggregation::Percentile => {
            let p = m.agg_params.as_ref();
            percentile(
                p.and_then(|p| p.percentile).unwrap_or(0.5),
                p.is_some_and(|p| p.use_discrete_percentile),
            )
        }
    }
}

pub(super) fn indent(sql: &str) -> String {
    sql.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("  {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One measure's aggregate: its model's rows with the elements it needs
/// joined in, filtered by `filters` (over element names), grouped by
/// `group_by` (element names), as column `name`.
pub struct MeasureQuery<'q, 'a> {
    pub model: &'a SemanticModel,
    pub measure: &'a Measure,
    /// Every element the query reads (group-bys and filters), deduplicated.
    pub elements: &'q [Element<'a>],
    pub group_by: &'q [String],
    pub filters: &'q [String],
    pub name: &'q str,
    /// A cumulative metric's rows: each row once for every day of the
    /// time spine whose window holds it, `metric_time` being that day.
    pub spine_join: Option<SpineJoin<'q>>,
    /// `Metric()` filters: each metric per entity, joined by the entity.
    pub metric_joins: &'q [MetricJoin],
}

/// A metric per entity that a filter reads (`{{ Metric('orders',
/// group_by=['customer']) }} > 2`), joined to the rows on the entity.
#[derive(Debug, Clone)]
pub struct MetricJoin {
    /// The metric's select, grouped by the entity.
    pub sql: String,
    /// Its entity column, and its value column.
    pub key: String,
    pub value: String,
    /// The column the filter reads (`customer__orders`).
    pub alias: String,
    /// The rows' element the entity is.
    pub on_rows: String,
}

/// The time spine a cumulative metric's rows are joined to.
pub struct SpineJoin<'q> {
    /// The spine's relation and its day column.
    pub relation: &'q str,
    pub column: &'q str,
    pub window: Window,
}

/// Which rows a day of a cumulative metric adds up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Window {
    /// The `count` `granularity`s ending on the day.
    Trailing(TimeWindow),
    /// From the start of the day's `grain` (month to date).
    ToDate(Grain),
    /// Every row up to the day.
    AllTime,
    /// The rows of the day this long before (an input offset by less than
    /// the query's grain: `offset_window: 7 days` read by month).
    Shifted(TimeWindow),
}

/// `MAKE_INTERVAL(days => 7)`: PostgreSQL's interval of a window.
pub fn interval(w: TimeWindow) -> String {
    let (unit, n) = match w.granularity {
        Grain::Microsecond => ("secs", f64::from(w.count) / 1e6),
        Grain::Millisecond => ("secs", f64::from(w.count) / 1e3),
        Grain::Second => ("secs", f64::from(w.count)),
        Grain::Minute => ("mins", f64::from(w.count)),
        Grain::Hour => ("hours", f64::from(w.count)),
        Grain::Day => ("days", f64::from(w.count)),
        Grain::Week => ("weeks", f64::from(w.count)),
        Grain::Month => ("months", f64::from(w.count)),
        Grain::Quarter => ("months", f64::from(w.count) * 3.0),
        Grain::Year => ("years", f64::from(w.count)),
    };
    format!("MAKE_INTERVAL({unit} => {n})")
}

impl<'a> MeasureQuery<'_, 'a> {
    pub fn sql(&self, relation_of: &dyn Fn(&SemanticModel) -> String) -> String {
        let rows = self.rows(relation_of);
        let mut out = String::from("SELECT\n");
        let mut select: Vec<String> = self.group_by.iter().map(|g| format!("  {g}")).collect();
        select.push(format!(
            "  {} AS {}",
            aggregate(self.measure, "__value"),
            self.name
        ));
        out.push_str(&select.join("\n  , ").replace("\n  ,   ", "\n  , "));
        out.push_str(&format!("\nFROM (\n{}\n) rows", indent(&rows)));
        if !self.filters.is_empty() {
            let conds: Vec<String> = self.filters.iter().map(|f| format!("({f})")).collect();
            out.push_str(&format!("\nWHERE {}", conds.join("\n  AND ")));
        }
        if !self.group_by.is_empty() {
            out.push_str(&format!("\nGROUP BY\n  {}", self.group_by.join("\n  , ")));
        }
        out
    }

    /// The measure's rows with every element it needs, filtered: its value
    /// is `__value`, each element a column by its name.
    pub fn filtered_rows(&self, relation_of: &dyn Fn(&SemanticModel) -> String) -> String {
        let rows = self.rows(relation_of);
        let mut out = format!("SELECT\n  *\nFROM (\n{}\n) rows", indent(&rows));
        if !self.filters.is_empty() {
            let conds: Vec<String> = self.filters.iter().map(|f| format!("({f})")).collect();
            out.push_str(&format!("\nWHERE {}", conds.join("\n  AND ")));
        }
        out
    }

    /// The joins the elements need, parents first: one per distinct join path.
    fn joins(&self) -> Vec<Join<'a>> {
        let mut joins: Vec<Join<'a>> = Vec::new();
        for e in self.elements {
            for k in 1..=e.path.len() {
                let prefix = prefix_of(&e.path[..k]);
                if !joins.iter().any(|j| j.prefix == prefix) {
                    joins.push(Join {
                        parent: prefix_of(&e.path[..k - 1]),
                        hop: e.path[k - 1],
                        prefix,
                    });
                }
            }
        }
        joins.sort_by_key(|j| j.prefix.matches("__").count());
        joins
    }

    /// The measure's rows with every element it needs, by name.
    fn rows(&self, relation_of: &dyn Fn(&SemanticModel) -> String) -> String {
        let joins = self.joins();
        let alias_of = |prefix: &str| -> String {
            match joins.iter().position(|j| j.prefix == prefix) {
                Some(i) => format!("j{}", i + 1),
                None => "m0".into(),
            }
        };
        let mut select = vec!["m0.__value AS __value".to_string()];
        for e in self.elements {
            select.push(format!(
                "{}.{} AS {}",
                alias_of(&prefix_of(&e.path)),
                e.name,
                e.name
            ));
        }
        for (k, j) in self.metric_joins.iter().enumerate() {
            select.push(format!("mf{k}.{} AS {}", j.value, j.alias));
        }
        let own = self.relation_select("", self.model, None, &joins, relation_of);
        let own = match &self.spine_join {
            Some(spine) => self.over_spine(&own, spine),
            None => own,
        };
        let own = match &self.measure.non_additive_dimension {
            Some(n) => self.at_window_end(&own, n, relation_of),
            None => own,
        };
        let mut from = format!("FROM (\n{}\n) m0", indent(&own));
        for j in &joins {
            let joined =
                self.relation_select(&j.prefix, j.hop.model, Some(j.hop.to), &joins, relation_of);
            from.push_str(&format!(
                "\nLEFT OUTER JOIN (\n{}\n) {}\nON\n  {}.__next_{} = {}.__key",
                indent(&joined),
                alias_of(&j.prefix),
                alias_of(&j.parent),
                j.hop.from.name,
                alias_of(&j.prefix),
            ));
        }
        for (k, j) in self.metric_joins.iter().enumerate() {
            let entity = self
                .elements
                .iter()
                .find(|e| e.name == j.on_rows)
                .map(|e| format!("{}.{}", alias_of(&prefix_of(&e.path)), e.name))
                .unwrap_or_else(|| j.on_rows.clone());
            from.push_str(&format!(
                "\nLEFT OUTER JOIN (\n{}\n) mf{k}\nON\n  {entity} = mf{k}.{}",
                indent(&j.sql),
                j.key
            ));
        }
        format!("SELECT\n  {}\n{from}", select.join("\n  , "))
    }

    /// A cumulative measure's own rows joined to the spine's days whose
    /// window holds them: `metric_time` is the spine's day.
    fn over_spine(&self, own: &str, spine: &SpineJoin) -> String {
        let day = format!("__spine.{}", spine.column);
        let mut select = vec!["base.*".to_string()];
        for e in self
            .elements
            .iter()
            .filter(|e| matches!(e.target, Target::MetricTime(_)))
        {
            select.push(format!(
                "{} AS {}",
                date_trunc(e.grain.unwrap_or(Grain::Day), &day),
                e.name
            ));
        }
        let mut on = vec![format!("base.__agg_day <= {day}")];
        match spine.window {
            Window::Trailing(w) => on.push(format!("base.__agg_day > {day} - {}", interval(w))),
            Window::ToDate(g) => on.push(format!("base.__agg_day >= {}", date_trunc(g, &day))),
            Window::AllTime => {}
            Window::Shifted(w) => on = vec![format!("base.__agg_day = {day} - {}", interval(w))],
        }
        format!(
            "SELECT\n  {}\nFROM (\n{}\n) base\nINNER JOIN {} __spine\nON\n  {}",
            select.join("\n  , "),
            indent(own),
            spine.relation,
            on.join("\n  AND ")
        )
    }

    /// A non-additive measure's rows on the last (or first) day of each
    /// period the query groups by, per window grouping: a balance is read
    /// where it stands, not added up over days.
    fn at_window_end(
        &self,
        own: &str,
        n: &NonAdditiveDimension,
        relation_of: &dyn Fn(&SemanticModel) -> String,
    ) -> String {
        let day = self
            .model
            .dimension(&n.name)
            .map(|d| date_trunc(d.grain().unwrap_or(Grain::Day), d.sql()))
            .unwrap_or_else(|| n.name.clone());
        let mut keys: Vec<(String, String)> = Vec::new();
        for e in self
            .elements
            .iter()
            .filter(|e| matches!(e.target, Target::MetricTime(_)))
        {
            keys.push((element_expr(e), e.name.clone()));
        }
        let mut on = vec!["m.__window_day = c.__window_day".to_string()];
        for g in &n.window_groupings {
            if let Some(e) = self.model.entity(g) {
                keys.push((e.sql().to_string(), format!("__window_{}", e.name)));
                on.push(format!("m.__window_{0} = c.__window_{0}", e.name));
            }
        }
        let choice = if n.window_choice == Aggregation::Min {
            "MIN"
        } else {
            "MAX"
        };
        let mut cols: Vec<String> = keys
            .iter()
            .map(|(x, name)| format!("{x} AS {name}"))
            .collect();
        cols.push(format!("{choice}({day}) AS __window_day"));
        let group = if keys.is_empty() {
            String::new()
        } else {
            let exprs: Vec<&str> = keys.iter().map(|(x, _)| x.as_str()).collect();
            format!("\nGROUP BY\n  {}", exprs.join("\n  , "))
        };
        let complete = format!(
            "SELECT\n  {}\nFROM {}{group}",
            cols.join("\n  , "),
            relation_of(self.model)
        );
        format!(
            "SELECT\n  m.*\nFROM (\n{}\n) m\nINNER JOIN (\n{}\n) c\nON\n  {}",
            indent(own),
            indent(&complete),
            on.join("\n  AND ")
        )
    }

    /// The columns one relation of the join gives: the measure's value
    /// (its own relation) or the key it is joined on (`key`), the elements
    /// at `prefix`, and the keys of the joins that go on from it.
    fn relation_select(
        &self,
        prefix: &str,
        model: &SemanticModel,
        key: Option<&Entity>,
        joins: &[Join],
        relation_of: &dyn Fn(&SemanticModel) -> String,
    ) -> String {
        let mut cols: Vec<String> = Vec::new();
        match key {
            Some(k) => cols.push(format!("{} AS __key", k.sql())),
            None => {
                cols.push(format!("{} AS __value", measure_value(self.measure)));
                if let Some(n) = &self.measure.non_additive_dimension {
                    let day = model
                        .dimension(&n.name)
                        .map(|d| date_trunc(d.grain().unwrap_or(Grain::Day), d.sql()))
                        .unwrap_or_else(|| n.name.clone());
                    cols.push(format!("{day} AS __window_day"));
                    for e in n.window_groupings.iter().filter_map(|g| model.entity(g)) {
                        cols.push(format!("{} AS __window_{}", e.sql(), e.name));
                    }
                }
            }
        }
        for e in self
            .elements
            .iter()
            .filter(|e| prefix_of(&e.path) == prefix)
        {
            match e.target {
                // A cumulative measure's metric_time is the spine's day.
                Target::MetricTime(d) if self.spine_join.is_some() => {
                    let col = format!("{} AS __agg_day", date_trunc(Grain::Day, d.sql()));
                    if !cols.contains(&col) {
                        cols.push(col);
                    }
                }
                _ => cols.push(format!("{} AS {}", element_expr(e), e.name)),
            }
        }
        for j in joins.iter().filter(|j| j.parent == prefix) {
            let col = format!("{} AS __next_{}", j.hop.from.sql(), j.hop.from.name);
            if !cols.contains(&col) {
                cols.push(col);
            }
        }
        format!(
            "SELECT\n  {}\nFROM {}",
            cols.join("\n  , "),
            relation_of(model)
        )
    }
}

/// One join of a measure's rows: the path it reaches (`customer__region`),
/// the path it joins from, and the hop.
struct Join<'a> {
    prefix: String,
    parent: String,
    hop: Hop<'a>,
}

fn prefix_of(path: &[Hop]) -> String {
    path.iter()
        .map(|h| h.to.name.as_str())
        .collect::<Vec<_>>()
        .join("__")
}

/// Several metrics' selects, each giving `group_by` and its own columns,
/// joined into one row per group: `columns` are each select's value
/// columns (in order).
pub fn combine(parts: &[(String, Vec<String>)], group_by: &[String]) -> String {
    if parts.len() == 1 {
        return parts[0].0.clone();
    }
    let alias = |k: usize| format!("s{k}");
    let mut from = format!("FROM (\n{}\n) s0", indent(&parts[0].0));
    for (k, (sql, _)) in parts.iter().enumerate().skip(1) {
        if group_by.is_empty() {
            from.push_str(&format!("\nCROSS JOIN (\n{}\n) {}", indent(sql), alias(k)));
            continue;
        }
        let on: Vec<String> = group_by
            .iter()
            .map(|g| {
                let left: Vec<String> = (0..k).map(|i| format!("{}.{g}", alias(i))).collect();
                let left = if left.len() == 1 {
                    left[0].clone()
                } else {
                    format!("COALESCE({})", left.join(", "))
                };
                format!("{left} = {}.{g}", alias(k))
            })
            .collect();
        from.push_str(&format!(
            "\nFULL OUTER JOIN (\n{}\n) {}\nON\n  {}",
            indent(sql),
            alias(k),
            on.join("\n  AND ")
        ));
    }
    let keys: Vec<String> = group_by
        .iter()
        .map(|g| {
            let all: Vec<String> = (0..parts.len())
                .map(|i| format!("{}.{g}", alias(i)))
                .collect();
            format!("COALESCE({})", all.join(", "))
        })
        .collect();
    let mut select: Vec<String> = keys
        .iter()
        .zip(group_by)
        .map(|(k, g)| format!("{k} AS {g}"))
        .collect();
    for (k, (_, cols)) in parts.iter().enumerate() {
        for c in cols {
            if group_by.is_empty() {
                select.push(format!("{}.{c} AS {c}", alias(k)));
            } else {
                select.push(format!("MAX({}.{c}) AS {c}", alias(k)));
            }
        }
    }
    let mut out = format!("SELECT\n  {}\n{from}", select.join("\n  , "));
    if !group_by.is_empty() {
        out.push_str(&format!("\nGROUP BY\n  {}", keys.join("\n  , ")));
    }
    out
}
