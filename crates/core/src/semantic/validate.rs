//! The semantic layer's definitions checked against each other, as dbt's
//! validations do: names unique, every measure with a time dimension to
//! aggregate over, every metric's measures and metrics defined, a
//! conversion's entity in both of its models, saved queries naming metrics
//! that exist. Each problem is at the line of what is wrong, with the names
//! that would do.

use super::definition::{DimensionType, EntityType, Metric, MetricType, SemanticModel};
use super::{Layer, Sited};
use crate::error::{closest, did_you_mean, Code, Problem};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Every problem of `layer`; `text_of` gives a file's text by its path.
pub fn validate(layer: &Layer, text_of: &dyn Fn(&str) -> Arc<str>) -> Vec<Problem> {
    let mut out = Vec::new();
    let at = |path: &str, line: usize, message: String, help: String| {
        Problem::new(Code::SemanticReference, message)
            .in_file(path, text_of(path))
            .label_line(line, "here")
            .help(help)
    };
    let mut measures_seen: HashMap<&str, &str> = HashMap::new();
    for m in &layer.semantic_models {
        model_problems(m, &at, &mut out);
        for x in &m.def.measures {
            if let Some(other) = measures_seen.insert(&x.name, &m.def.name) {
                out.push(at(
                    m.path,
                    x.line,
                    format!(
                        "measure `{}` is defined in semantic model `{}` and again in `{}`",
                        x.name, other, m.def.name
                    ),
                    "measure names are unique across semantic models: rename one".into(),
                ));
            }
        }
    }
    duplicates(
        layer
            .semantic_models
            .iter()
            .map(|m| (m.def.name.as_str(), m.path, m.def.line)),
        "semantic model",
        &at,
        &mut out,
    );
    duplicates(
        layer
            .metrics
            .iter()
            .map(|m| (m.def.name.as_str(), m.path, m.def.line)),
        "metric",
        &at,
        &mut out,
    );
    duplicates(
        layer
            .saved_queries
            .iter()
            .map(|m| (m.def.name.as_str(), m.path, m.def.line)),
        "saved query",
        &at,
        &mut out,
    );
    for m in &layer.metrics {
        metric_problems(layer, m, &text_of(m.path), &at, &mut out);
    }
    for q in &layer.saved_queries {
        for name in &q.def.query_params.metrics {
            if layer.metric(name).is_none() {
                out.push(at(
                    q.path,
                    line_naming(&text_of(q.path), q.def.line + 1, name),
                    format!(
                        "saved query `{}` names metric `{name}`, which is not defined",
                        q.def.name
                    ),
                    did_you_mean(
                        &closest(name, layer.metrics.iter().map(|m| m.def.name.as_str())),
                        "define it under `metrics:`, or name one that is",
                    ),
                ));
            }
        }
        let mut exports = HashSet::new();
        for e in &q.def.exports {
            if !exports.insert(&e.name) {
                out.push(at(
                    q.path,
                    e.line,
                    format!(
                        "saved query `{}` has two exports named `{}`",
                        q.def.name, e.name
                    ),
                    "give each export its own name".into(),
                ));
            }
        }
    }
    out
}

type At<'f> = dyn Fn(&str, usize, String, String) -> Problem + 'f;

/// The first line at or after `from` where `name` stands as a whole word
/// (`from` when none): where an entry names something.
pub fn line_naming(text: &str, from: usize, name: &str) -> usize {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find(|(_, l)| {
            l.match_indices(name).any(|(i, _)| {
                !l[..i].chars().next_back().is_some_and(word)
                    && !l[i + name.len()..].chars().next().is_some_and(word)
            })
        })
        .map_or(from, |(i, _)| i + 1)
}

fn duplicates<'a>(
    items: impl Iterator<Item = (&'a str, &'a str, usize)>,
    kind: &str,
    at: &At,
    out: &mut Vec<Problem>,
) {
    let mut seen: HashMap<&str, (&str, usize)> = HashMap::new();
    for (name, path, line) in items {
        if let Some((first_path, first_line)) = seen.insert(name, (path, line)) {
            out.push(at(
                path,
                line,
                format!("{kind} `{name}` is defined twice"),
                format!("the first is in {first_path} line {first_line}; rename or remove one"),
            ));
        }
    }
}

fn model_problems(m: &Sited<SemanticModel>, at: &At, out: &mut Vec<Problem>) {
    let def = m.def;
    let what = format!("semantic model `{}`", def.name);
    let mut names: HashMap<&str, &str> = HashMap::new();
    let elements = def
        .entities
        .iter()
        .map(|e| (e.name.as_str(), "entity", e.line))
        .chain(
            def.dimensions
                .iter()
                .map(|d| (d.name.as_str(), "dimension", d.line)),
        )
        .chain(
            def.measures
                .iter()
                .map(|x| (x.name.as_str(), "measure", x.line)),
        );
    for (name, kind, line) in elements {
        if let Some(first) = names.insert(name, kind) {
            out.push(at(
                m.path,
                line,
                format!("{what} has a {first} and a {kind} both named `{name}`"),
                "names of a semantic model's entities, dimensions and measures are unique within it: rename one".into(),
            ));
        }
    }
    let primaries: Vec<_> = def
        .entities
        .iter()
        .filter(|e| e.entity_type == EntityType::Primary)
        .collect();
    if primaries.len() > 1 {
        out.push(at(
            m.path,
            primaries[1].line,
            format!("{what} has two primary entities, `{}` and `{}`", primaries[0].name, primaries[1].name),
            "a semantic model has one primary entity (a row is one of it); make the other unique or foreign".into(),
        ));
    }
    if let (Some(declared), Some(p)) = (&def.primary_entity, primaries.first()) {
        out.push(at(
            m.path,
            p.line,
            format!(
                "{what} sets primary_entity `{declared}` and also has the primary entity `{}`",
                p.name
            ),
            "keep one of them".into(),
        ));
    }
    if def.primary().is_none() && !def.dimensions.is_empty() {
        out.push(at(
            m.path,
            def.line,
            format!("{what} has dimensions but no primary entity"),
            "add an entity of type primary, or `primary_entity: <name>` naming what a row is"
                .into(),
        ));
    }
    let time_dimensions: Vec<&str> = def
        .dimensions
        .iter()
        .filter(|d| d.dimension_type == DimensionType::Time)
        .map(|d| d.name.as_str())
        .collect();
    let is_time = |name: &str| time_dimensions.contains(&name);
    if let Some(d) = def
        .defaults
        .as_ref()
        .and_then(|d| d.agg_time_dimension.as_deref())
    {
        if !is_time(d) {
            out.push(at(
                m.path,
                def.line,
                format!("{what} aggregates over time dimension `{d}` (defaults.agg_time_dimension), which it does not have"),
                did_you_mean(&closest(d, time_dimensions.iter().copied()), "name one of its time dimensions"),
            ));
        }
    }
    for x in &def.measures {
        match def.agg_time_dimension_of(x) {
            None => out.push(at(
                m.path,
                x.line,
                format!("measure `{}` of {what} has no time dimension to aggregate over", x.name),
                "set `defaults: {agg_time_dimension: <time dimension>}` on the semantic model, or `agg_time_dimension:` on the measure".into(),
            )),
            Some(d) if x.agg_time_dimension.is_some() && !is_time(d) => out.push(at(
                m.path,
                x.line,
                format!("measure `{}` of {what} aggregates over `{d}`, which is not one of its time dimensions", x.name),
                did_you_mean(&closest(d, time_dimensions.iter().copied()), "name one of its time dimensions"),
            )),
            Some(_) => {}
        }
        if let Some(n) = &x.non_additive_dimension {
            if !is_time(&n.name) {
                out.push(at(
                    m.path,
                    x.line,
                    format!("measure `{}` of {what} is non-additive over `{}`, which is not one of its time dimensions", x.name, n.name),
                    did_you_mean(&closest(&n.name, time_dimensions.iter().copied()), "name one of its time dimensions"),
                ));
            }
        }
    }
}

fn metric_problems(layer: &Layer, m: &Sited<Metric>, text: &str, at: &At, out: &mut Vec<Problem>) {
    let def = m.def;
    // The line of the first mention of `name` after the metric's own line.
    let naming = |name: &str| line_naming(text, def.line + 1, name);
    let what = format!("{} metric `{}`", def.metric_type.as_str(), def.name);
    let measure_names = || {
        layer
            .semantic_models
            .iter()
            .flat_map(|s| s.def.measures.iter().map(|x| x.name.as_str()))
    };
    for input in def.own_measures() {
        if layer.measure(&input.name).is_none() {
            out.push(at(
                m.path,
                naming(&input.name),
                format!(
                    "{what} reads measure `{}`, which no semantic model defines",
                    input.name
                ),
                did_you_mean(
                    &closest(&input.name, measure_names()),
                    "define it under a semantic model's `measures:`",
                ),
            ));
        }
    }
    let mut names = HashSet::new();
    for input in def.metric_inputs() {
        if layer.metric(&input.name).is_none() {
            out.push(at(
                m.path,
                naming(&input.name),
                format!("{what} reads metric `{}`, which is not defined", input.name),
                did_you_mean(
                    &closest(
                        &input.name,
                        layer.metrics.iter().map(|x| x.def.name.as_str()),
                    ),
                    "define it under `metrics:`",
                ),
            ));
        }
        if def.metric_type == MetricType::Derived && !names.insert(input.alias_or_name()) {
            out.push(at(
                m.path,
                naming(input.alias_or_name()),
                format!(
                    "{what} reads `{}` twice under one name",
                    input.alias_or_name()
                ),
                "give one of them an `alias:`, the name its `expr` uses".into(),
            ));
        }
    }
    if let Some(c) = &def.type_params.conversion_type_params {
        for input in [&c.base_measure, &c.conversion_measure] {
            if let Some((model, _)) = layer.measure(&input.name) {
                if model.entity(&c.entity).is_none() {
                    out.push(at(
                        m.path,
                        def.line,
                        format!(
                            "{what} joins on entity `{}`, which semantic model `{}` (of measure `{}`) does not have",
                            c.entity, model.name, input.name
                        ),
                        did_you_mean(&closest(&c.entity, model.entities.iter().map(|e| e.name.as_str())), "name an entity both measures' semantic models have"),
                    ));
                }
            }
        }
    }
}

/// Fills each metric's `input_measures`: the measures it reads all the way
/// down, as dbt lists them. A cycle between metrics stops the walk (the
/// dependency graph reports it).
pub fn fill_input_measures(metrics: &mut [&mut Metric]) {
    let by_name: HashMap<String, Metric> = metrics
        .iter()
        .map(|m| (m.name.clone(), (**m).clone()))
        .collect();
    for m in metrics.iter_mut() {
        let mut seen = HashSet::new();
        let mut found = Vec::new();
        collect_measures(&by_name, m, &mut seen, &mut found);
        m.type_params.input_measures = found;
    }
}

fn collect_measures(
    by_name: &HashMap<String, Metric>,
    m: &Metric,
    seen: &mut HashSet<String>,
    found: &mut Vec<super::definition::MeasureInput>,
) {
    if !seen.insert(m.name.clone()) {
        return;
    }
    for x in m.own_measures() {
        if !found.contains(x) {
            found.push(x.clone());
        }
    }
    for input in m.metric_inputs() {
        if let Some(other) = by_name.get(&input.name) {
            collect_measures(by_name, other, seen, found);
        }
    }
}
