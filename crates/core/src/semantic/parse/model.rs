//! A semantic model's entry: its entities, dimensions and measures.

use super::{Entry, Reader};
use crate::error::{closest, did_you_mean, Problem};
use crate::semantic::definition::{
    Aggregation, AggregationParams, Dimension, DimensionType, DimensionTypeParams, Entity,
    EntityType, Measure, NodeRelation, NonAdditiveDimension, SemanticModel, SemanticModelDefaults,
    ValidityParams,
};
use serde_json::Value as Json;

/// A semantic model's entry.
pub fn semantic_model(r: &Reader, m: &Entry, line: usize) -> Result<SemanticModel, Problem> {
    let name = r.required(m, "name", "a semantic model", line)?;
    let what = format!("semantic model `{name}`");
    r.only_keys(
        m,
        &[
            "name",
            "description",
            "label",
            "model",
            "defaults",
            "entities",
            "dimensions",
            "measures",
            "primary_entity",
            "config",
            "meta",
        ],
        &what,
        line,
    )?;
    let model = r.required(m, "model", &what, line)?;
    let defaults = match r.object(m, "defaults", &what, line)? {
        Some(d) => {
            r.only_keys(
                d,
                &["agg_time_dimension"],
                &format!("`defaults` of {what}"),
                line,
            )?;
            Some(SemanticModelDefaults {
                agg_time_dimension: r.text_of(d, "agg_time_dimension", &what, line)?,
            })
        }
        None => None,
    };
    let mut entities = Vec::new();
    for (e, ename, at) in r.named_list(m, "entities", &what, line)? {
        entities.push(entity(r, e, ename, &what, at)?);
    }
    let mut dimensions = Vec::new();
    for (d, dname, at) in r.named_list(m, "dimensions", &what, line)? {
        dimensions.push(dimension(r, d, dname, &what, at)?);
    }
    let mut measures = Vec::new();
    for (x, mname, at) in r.named_list(m, "measures", &what, line)? {
        measures.push(measure(r, x, mname, &what, at)?);
    }
    Ok(SemanticModel {
        description: r.text_of(m, "description", &what, line)?,
        label: r.text_of(m, "label", &what, line)?,
        primary_entity: r.text_of(m, "primary_entity", &what, line)?,
        node_relation: NodeRelation::default(),
        config: r.element_config(m),
        metadata: None,
        defaults,
        entities,
        dimensions,
        measures,
        model,
        line,
        name,
    })
}

fn entity(
    r: &Reader,
    e: &Entry,
    name: String,
    model: &str,
    line: usize,
) -> Result<Entity, Problem> {
    let what = format!("entity `{name}` of {model}");
    r.only_keys(
        e,
        &[
            "name",
            "type",
            "description",
            "label",
            "role",
            "expr",
            "config",
            "meta",
        ],
        &what,
        line,
    )?;
    let kind = r.required(e, "type", &what, line)?;
    let entity_type = EntityType::parse(&kind).ok_or_else(|| {
        r.problem(
            r.key_line(line, "type"),
            format!("{what} has type `{kind}`"),
            did_you_mean(
                &closest(&kind, EntityType::NAMES.into_iter()),
                "an entity's type is primary, unique, foreign or natural",
            ),
        )
    })?;
    Ok(Entity {
        description: r.text_of(e, "description", &what, line)?,
        label: r.text_of(e, "label", &what, line)?,
        role: r.text_of(e, "role", &what, line)?,
        expr: r.text_of(e, "expr", &what, line)?,
        metadata: None,
        config: r.element_config(e),
        entity_type,
        line,
        name,
    })
}

fn dimension(
    r: &Reader,
    d: &Entry,
    name: String,
    model: &str,
    line: usize,
) -> Result<Dimension, Problem> {
    let what = format!("dimension `{name}` of {model}");
    r.only_keys(
        d,
        &[
            "name",
            "type",
            "description",
            "label",
            "expr",
            "is_partition",
            "type_params",
            "config",
            "meta",
        ],
        &what,
        line,
    )?;
    let kind = r.required(d, "type", &what, line)?;
    let dimension_type = match kind.to_ascii_lowercase().as_str() {
        "categorical" => DimensionType::Categorical,
        "time" => DimensionType::Time,
        _ => {
            return Err(r.problem(
                r.key_line(line, "type"),
                format!("{what} has type `{kind}`"),
                did_you_mean(
                    &closest(&kind, ["categorical", "time"].into_iter()),
                    "a dimension's type is categorical or time",
                ),
            ))
        }
    };
    let type_params = match r.object(d, "type_params", &what, line)? {
        Some(p) => {
            r.only_keys(
                p,
                &["time_granularity", "validity_params"],
                &format!("`type_params` of {what}"),
                line,
            )?;
            let grain = r.required(
                p,
                "time_granularity",
                &format!("`type_params` of {what}"),
                line,
            )?;
            let validity_params = match r.object(p, "validity_params", &what, line)? {
                Some(v) => Some(ValidityParams {
                    is_start: r.flag(v, "is_start", &what, line)?,
                    is_end: r.flag(v, "is_end", &what, line)?,
                }),
                None => None,
            };
            Some(DimensionTypeParams {
                time_granularity: r.grain(&grain, "time_granularity", &what, line)?,
                validity_params,
            })
        }
        None => None,
    };
    if dimension_type == DimensionType::Time && type_params.is_none() {
        return Err(r.problem(
            line,
            format!("time {what} has no `type_params.time_granularity`"),
            "add `type_params: {time_granularity: day}` (the grain of its values)".into(),
        ));
    }
    Ok(Dimension {
        description: r.text_of(d, "description", &what, line)?,
        label: r.text_of(d, "label", &what, line)?,
        expr: r.text_of(d, "expr", &what, line)?,
        is_partition: r.flag(d, "is_partition", &what, line)?,
        metadata: None,
        config: r.element_config(d),
        dimension_type,
        type_params,
        line,
        name,
    })
}

fn measure(
    r: &Reader,
    x: &Entry,
    name: String,
    model: &str,
    line: usize,
) -> Result<Measure, Problem> {
    let what = format!("measure `{name}` of {model}");
    r.only_keys(
        x,
        &[
            "name",
            "agg",
            "description",
            "label",
            "expr",
            "agg_params",
            "create_metric",
            "non_additive_dimension",
            "agg_time_dimension",
            "config",
            "meta",
        ],
        &what,
        line,
    )?;
    let agg_text = r.required(x, "agg", &what, line)?;
    let agg = Aggregation::parse(&agg_text.to_ascii_lowercase()).ok_or_else(|| {
        r.problem(
            r.key_line(line, "agg"),
            format!("{what} has agg `{agg_text}`"),
            did_you_mean(
                &closest(&agg_text, Aggregation::NAMES.into_iter()),
                &format!("use one of {}", Aggregation::NAMES.join(", ")),
            ),
        )
    })?;
    let agg_params = match r.object(x, "agg_params", &what, line)? {
        Some(p) => {
            r.only_keys(
                p,
                &[
                    "percentile",
                    "use_discrete_percentile",
                    "use_approximate_percentile",
                ],
                &format!("`agg_params` of {what}"),
                line,
            )?;
            Some(AggregationParams {
                percentile: p.get("percentile").and_then(Json::as_f64),
                use_discrete_percentile: r.flag(p, "use_discrete_percentile", &what, line)?,
                use_approximate_percentile: r.flag(p, "use_approximate_percentile", &what, line)?,
            })
        }
        None => None,
    };
    if agg == Aggregation::Percentile {
        let p = agg_params.as_ref().and_then(|p| p.percentile);
        if !p.is_some_and(|p| p > 0.0 && p < 1.0) {
            return Err(r.problem(
                line,
                format!("percentile {what} needs `agg_params.percentile` between 0 and 1"),
                "add `agg_params: {percentile: 0.9}`".into(),
            ));
        }
    }
    let non_additive_dimension = match r.object(x, "non_additive_dimension", &what, line)? {
        Some(n) => Some(non_additive(r, n, &what, line)?),
        None => None,
    };
    Ok(Measure {
        description: r.text_of(x, "description", &what, line)?,
        label: r.text_of(x, "label", &what, line)?,
        expr: r.text_of(x, "expr", &what, line)?,
        create_metric: r.flag(x, "create_metric", &what, line)?,
        agg_time_dimension: r.text_of(x, "agg_time_dimension", &what, line)?,
        metadata: None,
        config: r.element_config(x),
        agg,
        agg_params,
        non_additive_dimension,
        line,
        name,
    })
}

fn non_additive(
    r: &Reader,
    n: &Entry,
    what: &str,
    line: usize,
) -> Result<NonAdditiveDimension, Problem> {
    let what = format!("`non_additive_dimension` of {what}");
    r.only_keys(
        n,
        &["name", "window_choice", "window_groupings"],
        &what,
        line,
    )?;
    let choice = r
        .text_of(n, "window_choice", &what, line)?
        .unwrap_or_else(|| "min".into());
    let window_choice = match choice.as_str() {
        "min" => Aggregation::Min,
        "max" => Aggregation::Max,
        _ => {
            return Err(r.problem(
                r.key_line(line, "window_choice"),
                format!("{what} has window_choice `{choice}`"),
                "window_choice is min (the first value of the window) or max (the last)".into(),
            ))
        }
    };
    Ok(NonAdditiveDimension {
        name: r.required(n, "name", &what, line)?,
        window_choice,
        window_groupings: crate::loader::yaml::string_list(n.get("window_groupings")),
    })
}
