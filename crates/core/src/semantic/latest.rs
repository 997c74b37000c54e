//! dbt 1.12's latest spec, read as the legacy one: a model's
//! `semantic_model:` with `agg_time_dimension`, `primary_entity`, its
//! columns' `entity:`, `dimension:` and `granularity:`, its
//! `derived_semantics:`, and its `metrics:` (simple ones with `agg`/`expr`,
//! which become measures of the model's semantic model, and advanced ones
//! with their keys at the top) become the entries `parse` reads, so one
//! reader checks both. A top-level metric written this way is turned the
//! same way.

use crate::loader::properties::ResourcePatch;
use serde_json::{json, Map, Value as Json};

type Entry = Map<String, Json>;

/// Whether a model's YAML entry declares a semantic model (`semantic_model:
/// true`, or a mapping whose `enabled` is not false).
pub fn declares_semantic_model(p: &ResourcePatch) -> bool {
    match p.extra.get("semantic_model") {
        Some(Json::Bool(b)) => *b,
        Some(Json::Object(o)) => o.get("enabled").and_then(Json::as_bool).unwrap_or(true),
        _ => false,
    }
}

/// The legacy entries of a model's semantic model and of the metrics its
/// YAML entry defines.
pub fn model_entries(p: &ResourcePatch) -> (Entry, Vec<Entry>) {
    let spec = p.extra.get("semantic_model").and_then(Json::as_object);
    let name = spec
        .and_then(|s| s.get("name"))
        .and_then(Json::as_str)
        .unwrap_or(&p.name)
        .to_string();
    let mut model = Entry::new();
    model.insert("name".into(), Json::from(name));
    model.insert("model".into(), Json::from(format!("ref('{}')", p.name)));
    if !p.description.is_empty() {
        model.insert("description".into(), Json::from(p.description.clone()));
    }
    if let Some(config) = spec.and_then(|s| s.get("config")) {
        model.insert("config".into(), config.clone());
    }
    if let Some(label) = spec.and_then(|s| s.get("label")) {
        model.insert("label".into(), label.clone());
    }
    if let Some(t) = p.extra.get("agg_time_dimension") {
        model.insert("defaults".into(), json!({"agg_time_dimension": t}));
    }
    if let Some(e) = p.extra.get("primary_entity") {
        model.insert("primary_entity".into(), e.clone());
    }
    let mut entities = Vec::new();
    let mut dimensions = Vec::new();
    for c in &p.columns {
        if let Some(e) = c.extra.get("entity") {
            entities.push(element(e, &c.name, None));
        }
        if let Some(d) = c.extra.get("dimension") {
            dimensions.push(element(d, &c.name, c.extra.get("granularity")));
        }
    }
    if let Some(derived) = p.extra.get("derived_semantics") {
        for (key, out) in [("entities", &mut entities), ("dimensions", &mut dimensions)] {
            for x in derived
                .get(key)
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(o) = x.as_object() {
                    out.push(derived_element(o));
                }
            }
        }
    }
    model.insert("entities".into(), Json::Array(entities));
    model.insert("dimensions".into(), Json::Array(dimensions));
    let mut measures = Vec::new();
    let mut metrics = Vec::new();
    for m in p
        .extra
        .get("metrics")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let Some(m) = m.as_object() else { continue };
        if m.get("type").and_then(Json::as_str).unwrap_or("simple") == "simple"
            && !m.contains_key("type_params")
        {
            let (measure, metric) = simple(m);
            measures.push(Json::Object(measure));
            metrics.push(metric);
        } else {
            metrics.push(advanced(m));
        }
    }
    model.insert("measures".into(), Json::Array(measures));
    (model, metrics)
}

/// A column's `entity:` or `dimension:` as the legacy element: its name
/// (the column's unless it says), the column as its `expr` when they
/// differ, and a time dimension's grain from the column's `granularity`.
fn element(spec: &Json, column: &str, granularity: Option<&Json>) -> Json {
    let mut out = match spec {
        Json::Object(o) => o.clone(),
        // `entity: primary` / `dimension: categorical` shorthand.
        Json::String(kind) => {
            let mut o = Entry::new();
            o.insert("type".into(), Json::from(kind.clone()));
            o
        }
        _ => Entry::new(),
    };
    let name = out
        .get("name")
        .and_then(Json::as_str)
        .unwrap_or(column)
        .to_string();
    if name != column && !out.contains_key("expr") {
        out.insert("expr".into(), Json::from(column));
    }
    out.insert("name".into(), Json::from(name));
    if out.get("type").and_then(Json::as_str) == Some("time") {
        let validity = out.remove("validity_params");
        let grain = granularity.cloned().unwrap_or(Json::from("day"));
        let mut params = json!({"time_granularity": grain});
        if let (Some(v), Json::Object(p)) = (validity, &mut params) {
            p.insert("validity_params".into(), v);
        }
        out.insert("type_params".into(), params);
    }
    Json::Object(out)
}

/// A `derived_semantics` entity or dimension: a time one's `granularity`
/// becomes its `type_params`.
fn derived_element(o: &Entry) -> Json {
    let mut out = o.clone();
    if let Some(g) = out.remove("granularity") {
        out.insert("type_params".into(), json!({"time_granularity": g}));
    }
    Json::Object(out)
}

/// A simple metric of the latest spec: a measure of the same name, and the
/// metric reading it.
fn simple(m: &Entry) -> (Entry, Entry) {
    let name = m.get("name").cloned().unwrap_or(Json::Null);
    let mut measure = Entry::new();
    measure.insert("name".into(), name.clone());
    let agg = match m.get("agg").and_then(Json::as_str) {
        Some("avg") => Json::from("average"),
        Some(other) => Json::from(other),
        None => Json::Null,
    };
    measure.insert("agg".into(), agg);
    for key in [
        "expr",
        "agg_time_dimension",
        "non_additive_dimension",
        "description",
        "label",
    ] {
        if let Some(v) = m.get(key) {
            measure.insert(key.into(), v.clone());
        }
    }
    if let Some(p) = m.get("percentile").and_then(Json::as_f64) {
        let p = if p > 1.0 { p / 100.0 } else { p };
        let discrete = m.get("percentile_type").and_then(Json::as_str) == Some("discrete");
        measure.insert(
            "agg_params".into(),
            json!({"percentile": p, "use_discrete_percentile": discrete}),
        );
    }
    let mut input = Entry::new();
    input.insert("name".into(), name.clone());
    for key in ["fill_nulls_with", "join_to_timespine"] {
        if let Some(v) = m.get(key) {
            input.insert(key.into(), v.clone());
        }
    }
    let mut metric = Entry::new();
    for key in [
        "name",
        "label",
        "description",
        "filter",
        "config",
        "meta",
        "time_granularity",
    ] {
        if let Some(v) = m.get(key) {
            metric.insert(key.into(), v.clone());
        }
    }
    metric.insert("type".into(), Json::from("simple"));
    metric.insert("type_params".into(), json!({"measure": input}));
    (measure, metric)
}

/// An advanced metric whose keys are at the top (latest spec) as the
/// legacy entry; one already in the legacy shape is kept.
pub fn advanced(m: &Entry) -> Entry {
    if m.contains_key("type_params") {
        return m.clone();
    }
    let kind = m.get("type").and_then(Json::as_str).unwrap_or("");
    let mut out = Entry::new();
    let mut params = Entry::new();
    for (k, v) in m {
        match (kind, k.as_str()) {
            (
                _,
                "name" | "label" | "description" | "type" | "filter" | "config" | "meta"
                | "time_granularity",
            ) => {
                out.insert(k.clone(), v.clone());
            }
            ("derived", "expr") => {
                params.insert("expr".into(), v.clone());
            }
            ("derived", "input_metrics") => {
                params.insert("metrics".into(), v.clone());
            }
            ("ratio", "numerator" | "denominator") => {
                params.insert(k.clone(), v.clone());
            }
            ("cumulative", "input_metric") => {
                params.insert("measure".into(), v.clone());
            }
            ("cumulative", "window" | "grain_to_date" | "period_agg") => {
                let c = params
                    .entry("cumulative_type_params")
                    .or_insert_with(|| Json::Object(Entry::new()));
                if let Json::Object(c) = c {
                    c.insert(k.clone(), v.clone());
                }
            }
            ("conversion", _) => {
                let key = match k.as_str() {
                    "base_metric" => "base_measure",
                    "conversion_metric" => "conversion_measure",
                    other => other,
                };
                let c = params
                    .entry("conversion_type_params")
                    .or_insert_with(|| Json::Object(Entry::new()));
                if let Json::Object(c) = c {
                    c.insert(key.into(), v.clone());
                }
            }
            // Left for the reader to refuse by name.
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out.insert("type_params".into(), Json::Object(params));
    out
}
