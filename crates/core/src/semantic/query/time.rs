//! What the time spine does to a metric, as MetricFlow does it: gaps filled
//! (`join_to_timespine`), an input read some time before (`offset_window`,
//! `offset_to_grain`), and a cumulative metric's days read at a coarser
//! grain (its first, last or average day of each period).

use super::sql::{date_trunc, interval};
use crate::semantic::definition::{Grain, PeriodAggregation, TimeWindow};
use crate::semantic::Layer;

/// The first and last time of `metric_time` asked for (inclusive).
pub type Bounds = (Option<String>, Option<String>);

/// The spine's relation and its day column.
#[derive(Debug, Clone)]
pub struct Spine {
    pub relation: String,
    pub column: String,
}

/// The project's time spine at a day or finer, or why there is none.
pub fn spine_of(layer: &Layer, why: &str) -> Result<Spine, String> {
    let spine = layer
        .time_spines
        .iter()
        .filter(|s| s.primary_column.time_granularity <= Grain::Day)
        .max_by_key(|s| s.primary_column.time_granularity)
        .ok_or_else(|| {
            format!(
                "{why} needs a time spine: a model with a row per day, declared with `time_spine: {{standard_granularity_column: <its date column>}}` in its YAML (or named metricflow_time_spine with a date_day column)"
            )
        })?;
    let r = &spine.node_relation;
    Ok(Spine {
        relation: if r.relation_name.is_empty() {
            format!("\"{}\".\"{}\"", r.schema_name, r.alias)
        } else {
            r.relation_name.clone()
        },
        column: spine.primary_column.name.clone(),
    })
}

/// The `metric_time__<grain>` column among `cols`, with its grain.
pub fn metric_time_column(cols: &[String]) -> Option<(&String, Grain)> {
    cols.iter().find_map(|c| {
        let g = c.strip_prefix("metric_time__")?;
        Grain::parse_exact(g).map(|g| (c, g))
    })
}

fn indent(sql: &str) -> String {
    sql.lines().map(|l| format!("  {l}\n")).collect()
}

/// The spine's periods at `grain`, within `bounds`, as column `name`.
fn periods(spine: &Spine, grain: Grain, name: &str, bounds: Option<&Bounds>) -> String {
    let period = date_trunc(grain, &spine.column);
    let mut conds = Vec::new();
    if let Some((start, end)) = bounds {
        if let Some(s) = start {
            conds.push(format!(
                "{period} >= {}",
                date_trunc(grain, &format!("CAST('{s}' AS TIMESTAMP)"))
            ));
        }
        if let Some(e) = end {
            conds.push(format!(
                "{period} <= {}",
                date_trunc(grain, &format!("CAST('{e}' AS TIMESTAMP)"))
            ));
        }
    }
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!("\nWHERE {}", conds.join(" AND "))
    };
    format!(
        "SELECT\n  {period} AS {name}\nFROM {}{filter}\nGROUP BY\n  {period}",
        spine.relation
    )
}

/// The metric's rows with every period of the spine present, the metric
/// NULL where it had none (`join_to_timespine`).
pub fn join_to_spine(
    sql: &str,
    cols: &[String],
    column: &str,
    spine: &Spine,
    bounds: Option<&Bounds>,
) -> String {
    let Some((time, grain)) = metric_time_column(cols) else {
        return sql.to_string();
    };
    let select = spine_select(cols, time, column);
    format!(
        "SELECT\n  {}\nFROM (\n{}) ts\nLEFT OUTER JOIN (\n{}) a\nON\n  ts.{time} = a.{time}",
        select.join("\n  , "),
        indent(&periods(spine, grain, time, bounds)),
        indent(sql),
    )
}

/// The columns of a metric joined to the spine's periods (`ts`): the
/// period from the spine, the rest from the metric's rows (`a`).
fn spine_select(cols: &[String], time: &str, column: &str) -> Vec<String> {
    cols.iter()
        .map(|c| {
            let from = if c == time { "ts" } else { "a" };
            format!("{from}.{c} AS {c}")
        })
        .chain([format!("a.{column} AS {column}")])
        .collect()
}

/// How an input is shifted in time.
#[derive(Debug, Clone, Copy)]
pub enum Offset {
    Window(TimeWindow),
    ToGrain(Grain),
}

/// Each period's row of the input as it was `offset` before: the spine's
/// periods joined to the input's at the earlier time.
pub fn offset(
    sql: &str,
    cols: &[String],
    column: &str,
    by: Offset,
    spine: &Spine,
    bounds: Option<&Bounds>,
) -> Result<String, String> {
    let (time, grain) = metric_time_column(cols)
        .ok_or("an input offset in time needs metric_time in the group-by")?;
    let earlier = match by {
        Offset::Window(w) => {
            if w.granularity < grain {
                return Err(format!(
                    "an offset of {} {}(s) at the grain {} is finer than the grain, which pm query does not do yet",
                    w.count,
                    w.granularity.as_str(),
                    grain.as_str()
                ));
            }
            format!("ts.{time} - {}", interval(w))
        }
        Offset::ToGrain(g) => {
            if g < grain {
                return Err(format!(
                    "offset_to_grain {} is finer than the query's grain {}",
                    g.as_str(),
                    grain.as_str()
                ));
            }
            date_trunc(g, &format!("ts.{time}"))
        }
    };
    let select = spine_select(cols, time, column);
    Ok(format!(
        "SELECT\n  {}\nFROM (\n{}) ts\nINNER JOIN (\n{}) a\nON\n  {earlier} = a.{time}",
        select.join("\n  , "),
        indent(&periods(spine, grain, time, bounds)),
        indent(sql),
    ))
}

/// A cumulative metric computed per day (`day_sql`, grouped by
/// `day_column` and `cols`) read once per period of `cols`' metric time:
/// its first, last or average day.
pub fn per_period(
    day_sql: &str,
    day_column: &str,
    cols: &[String],
    column: &str,
    agg: PeriodAggregation,
) -> String {
    let partition = cols.join(", ");
    let window = match agg {
        PeriodAggregation::First => format!(
            "FIRST_VALUE({column}) OVER (\n      PARTITION BY {partition}\n      ORDER BY {day_column}\n      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING\n    )"
        ),
        PeriodAggregation::Last => format!(
            "LAST_VALUE({column}) OVER (\n      PARTITION BY {partition}\n      ORDER BY {day_column}\n      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING\n    )"
        ),
        PeriodAggregation::Average => format!("AVG({column}) OVER (PARTITION BY {partition})"),
    };
    let mut group: Vec<String> = cols.to_vec();
    group.push(column.to_string());
    format!(
        "SELECT\n  {}\n  , {column}\nFROM (\n  SELECT\n    {}\n    , {window} AS {column}\n  FROM (\n{}  ) d\n) w\nGROUP BY\n  {}",
        cols.join("\n  , "),
        cols.join("\n    , "),
        indent(&indent(day_sql)),
        group.join("\n  , ")
    )
}
