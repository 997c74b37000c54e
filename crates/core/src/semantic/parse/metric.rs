//! A metric's entry: its type and what it reads.

use super::{Entry, Reader};
use crate::error::{closest, did_you_mean, Problem};
use crate::semantic::definition::{
    ConstantProperty, ConversionCalculation, ConversionParams, CumulativeParams, MeasureInput,
    Metric, MetricInput, MetricType, MetricTypeParams, PeriodAggregation,
};
use serde_json::Value as Json;

/// A metric's entry.
pub fn metric(r: &Reader, m: &Entry, line: usize) -> Result<Metric, Problem> {
    let name = r.required(m, "name", "a metric", line)?;
    let what = format!("metric `{name}`");
    r.only_keys(
        m,
        &[
            "name",
            "description",
            "label",
            "type",
            "type_params",
            "filter",
            "config",
            "meta",
            "time_granularity",
        ],
        &what,
        line,
    )?;
    let kind = r.required(m, "type", &what, line)?;
    let metric_type = MetricType::parse(&kind).ok_or_else(|| {
        r.problem(
            r.key_line(line, "type"),
            format!("{what} has type `{kind}`"),
            did_you_mean(
                &closest(&kind, MetricType::NAMES.into_iter()),
                &format!("a metric's type is one of {}", MetricType::NAMES.join(", ")),
            ),
        )
    })?;
    let label = r.required(m, "label", &what, line)?;
    let params = r.object(m, "type_params", &what, line)?.ok_or_else(|| {
        r.problem(
            line,
            format!("{what} has no `type_params:`"),
            "add `type_params:` with what the metric reads (its measure, metrics or numerator and denominator)".into(),
        )
    })?;
    let time_granularity = match r.text_of(m, "time_granularity", &what, line)? {
        Some(g) => Some(r.grain(&g, "time_granularity", &what, line)?),
        None => None,
    };
    Ok(Metric {
        description: r
            .text_of(m, "description", &what, line)?
            .unwrap_or_default(),
        filter: r.filters(m.get("filter"), &what, r.key_line(line, "filter"))?,
        type_params: type_params(r, params, metric_type, &what, line)?,
        metadata: None,
        config: r.element_config(m),
        metric_type,
        label,
        time_granularity,
        line,
        name,
    })
}

fn type_params(
    r: &Reader,
    p: &Entry,
    metric_type: MetricType,
    what: &str,
    line: usize,
) -> Result<MetricTypeParams, Problem> {
    let at = r.key_line(line, "type_params");
    let known: &[&str] = match metric_type {
        MetricType::Simple => &[
            "measure",
            "metric_aggregation_params",
            "expr",
            "join_to_timespine",
            "fill_nulls_with",
        ],
        MetricType::Ratio => &["numerator", "denominator"],
        MetricType::Derived => &["expr", "metrics"],
        MetricType::Cumulative => &[
            "measure",
            "window",
            "grain_to_date",
            "cumulative_type_params",
        ],
        MetricType::Conversion => &["conversion_type_params"],
    };
    r.only_keys(
        p,
        known,
        &format!("`type_params` of {} {what}", metric_type.as_str()),
        at,
    )?;
    let needs = |key: &str| {
        r.problem(
            at,
            format!("{} {what} has no `type_params.{key}`", metric_type.as_str()),
            format!("add `{key}:` under `type_params:`"),
        )
    };
    let mut out = MetricTypeParams::default();
    match metric_type {
        MetricType::Simple => {
            let m = p.get("measure").ok_or_else(|| needs("measure"))?;
            out.measure = Some(measure_input(r, m, what, at)?);
        }
        MetricType::Ratio => {
            out.numerator = Some(metric_input(
                r,
                p.get("numerator").ok_or_else(|| needs("numerator"))?,
                what,
                at,
            )?);
            out.denominator = Some(metric_input(
                r,
                p.get("denominator").ok_or_else(|| needs("denominator"))?,
                what,
                at,
            )?);
        }
        MetricType::Derived => {
            out.expr = Some(
                r.text_of(p, "expr", what, at)?
                    .ok_or_else(|| needs("expr"))?,
            );
            let Some(Json::Array(items)) = p.get("metrics") else {
                return Err(needs("metrics"));
            };
            for item in items {
                out.metrics.push(metric_input(r, item, what, at)?);
            }
        }
        MetricType::Cumulative => {
            let m = p.get("measure").ok_or_else(|| needs("measure"))?;
            out.measure = Some(measure_input(r, m, what, at)?);
            out.cumulative_type_params = Some(cumulative(r, p, what, at)?);
        }
        MetricType::Conversion => {
            let c = r
                .object(p, "conversion_type_params", what, at)?
                .ok_or_else(|| needs("conversion_type_params"))?;
            out.conversion_type_params = Some(conversion(r, c, what, at)?);
        }
    }
    Ok(out)
}

/// A cumulative metric's window or grain to date: under
/// `cumulative_type_params` (dbt 1.9) or, as before, beside the measure.
fn cumulative(r: &Reader, p: &Entry, what: &str, at: usize) -> Result<CumulativeParams, Problem> {
    let nested = r.object(p, "cumulative_type_params", what, at)?;
    let source = nested.unwrap_or(p);
    if let Some(n) = nested {
        r.only_keys(
            n,
            &["window", "grain_to_date", "period_agg"],
            &format!("`cumulative_type_params` of {what}"),
            at,
        )?;
    }
    let window = r.window(source, "window", what, at)?;
    let grain_to_date = match r.text_of(source, "grain_to_date", what, at)? {
        Some(g) => Some(r.grain(&g, "grain_to_date", what, at)?),
        None => None,
    };
    if window.is_some() && grain_to_date.is_some() {
        return Err(r.problem(
            r.key_line(at, "grain_to_date"),
            format!("cumulative {what} has both a window and a grain_to_date"),
            "keep one: a trailing window (`window: 7 days`) or a running total from the start of a period (`grain_to_date: month`)".into(),
        ));
    }
    let period_agg = match r.text_of(source, "period_agg", what, at)?.as_deref() {
        None | Some("first") => PeriodAggregation::First,
        Some("last") => PeriodAggregation::Last,
        Some("average") => PeriodAggregation::Average,
        Some(other) => {
            return Err(r.problem(
                r.key_line(at, "period_agg"),
                format!("cumulative {what} has period_agg `{other}`"),
                "period_agg is first, last or average".into(),
            ))
        }
    };
    Ok(CumulativeParams {
        window,
        grain_to_date,
        period_agg,
    })
}

fn conversion(r: &Reader, c: &Entry, what: &str, at: usize) -> Result<ConversionParams, Problem> {
    let inner = format!("`conversion_type_params` of {what}");
    r.only_keys(
        c,
        &[
            "base_measure",
            "conversion_measure",
            "entity",
            "calculation",
            "window",
            "constant_properties",
        ],
        &inner,
        at,
    )?;
    let needs = |key: &str| {
        r.problem(
            at,
            format!("conversion {what} has no `conversion_type_params.{key}`"),
            format!("add `{key}:` under `conversion_type_params:`"),
        )
    };
    let calculation = match r.text_of(c, "calculation", what, at)?.as_deref() {
        None | Some("conversion_rate") => ConversionCalculation::ConversionRate,
        Some("conversions") => ConversionCalculation::Conversions,
        Some(other) => {
            return Err(r.problem(
                r.key_line(at, "calculation"),
                format!("conversion {what} has calculation `{other}`"),
                "calculation is conversion_rate or conversions".into(),
            ))
        }
    };
    let constant_properties = match c.get("constant_properties") {
        None | Some(Json::Null) => None,
        Some(Json::Array(items)) => {
            let mut out = Vec::new();
            for item in items {
                let o = item.as_object().cloned().unwrap_or_default();
                out.push(ConstantProperty {
                    base_property: r.required(&o, "base_property", &inner, at)?,
                    conversion_property: r.required(&o, "conversion_property", &inner, at)?,
                });
            }
            Some(out)
        }
        Some(_) => {
            return Err(r.problem(
                r.key_line(at, "constant_properties"),
                format!("`constant_properties` of {what} must be a list"),
                "write each as `- base_property: ...` with `conversion_property: ...`".into(),
            ))
        }
    };
    Ok(ConversionParams {
        base_measure: measure_input(
            r,
            c.get("base_measure").ok_or_else(|| needs("base_measure"))?,
            what,
            at,
        )?,
        conversion_measure: measure_input(
            r,
            c.get("conversion_measure")
                .ok_or_else(|| needs("conversion_measure"))?,
            what,
            at,
        )?,
        entity: r
            .text_of(c, "entity", what, at)?
            .ok_or_else(|| needs("entity"))?,
        window: r.window(c, "window", what, at)?,
        calculation,
        constant_properties,
    })
}

fn measure_input(r: &Reader, v: &Json, what: &str, at: usize) -> Result<MeasureInput, Problem> {
    match v {
        Json::String(name) => Ok(MeasureInput {
            name: name.clone(),
            filter: None,
            alias: None,
            join_to_timespine: false,
            fill_nulls_with: None,
        }),
        Json::Object(o) => {
            let inner = format!("a measure input of {what}");
            r.only_keys(
                o,
                &[
                    "name",
                    "filter",
                    "alias",
                    "join_to_timespine",
                    "fill_nulls_with",
                ],
                &inner,
                at,
            )?;
            let fill_nulls_with = match o.get("fill_nulls_with") {
                None | Some(Json::Null) => None,
                Some(v) => Some(v.as_i64().ok_or_else(|| {
                    r.problem(
                        r.key_line(at, "fill_nulls_with"),
                        format!("`fill_nulls_with` of {what} is `{v}`, not a whole number"),
                        "write a whole number, e.g. `fill_nulls_with: 0`".into(),
                    )
                })?),
            };
            Ok(MeasureInput {
                name: r.required(o, "name", &inner, at)?,
                filter: r.filters(o.get("filter"), what, at)?,
                alias: r.text_of(o, "alias", &inner, at)?,
                join_to_timespine: r.flag(o, "join_to_timespine", &inner, at)?,
                fill_nulls_with,
            })
        }
        other => Err(r.problem(
            at,
            format!("the measure of {what} is `{other}`"),
            "name the measure, `measure: <name>`, or give `measure: {name: ..., filter: ...}`"
                .into(),
        )),
    }
}

fn metric_input(r: &Reader, v: &Json, what: &str, at: usize) -> Result<MetricInput, Problem> {
    match v {
        Json::String(name) => Ok(MetricInput {
            name: name.clone(),
            filter: None,
            alias: None,
            offset_window: None,
            offset_to_grain: None,
        }),
        Json::Object(o) => {
            let inner = format!("a metric input of {what}");
            r.only_keys(
                o,
                &[
                    "name",
                    "filter",
                    "alias",
                    "offset_window",
                    "offset_to_grain",
                ],
                &inner,
                at,
            )?;
            let offset_to_grain = match r.text_of(o, "offset_to_grain", &inner, at)? {
                Some(g) => Some(r.grain(&g, "offset_to_grain", &inner, at)?),
                None => None,
            };
            let offset_window = r.window(o, "offset_window", &inner, at)?;
            if offset_window.is_some() && offset_to_grain.is_some() {
                return Err(r.problem(
                    r.key_line(at, "offset_to_grain"),
                    format!("{inner} has both offset_window and offset_to_grain"),
                    "keep one of them".into(),
                ));
            }
            Ok(MetricInput {
                name: r.required(o, "name", &inner, at)?,
                filter: r.filters(o.get("filter"), what, at)?,
                alias: r.text_of(o, "alias", &inner, at)?,
                offset_window,
                offset_to_grain,
            })
        }
        other => Err(r.problem(
            at,
            format!("an input of {what} is `{other}`"),
            "name the metric, or give `{name: ..., filter: ..., alias: ...}`".into(),
        )),
    }
}
