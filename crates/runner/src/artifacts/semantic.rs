//! The semantic layer in `manifest.json` (its `semantic_models`, `metrics`
//! and `saved_queries`, each an object of unique id → definition, as dbt
//! writes them) and in `semantic_manifest.json`, the file MetricFlow reads.

use pm_core::manifest::layer::semantic_layer;
use pm_core::manifest::{Manifest, Node, ResourceType};
use pm_core::semantic::definition::Definition;
use serde_json::{json, Map, Value as Json};

/// The version of dbt-semantic-interfaces whose shape the files have.
const DSI_VERSION: (&str, &str, &str) = ("0", "9", "0");

/// `manifest.json`'s three maps, keyed `semantic_models`, `metrics`, `saved_queries`.
pub fn manifest_maps(m: &Manifest) -> [(&'static str, Map<String, Json>); 3] {
    let mut out = [
        ("semantic_models", Map::new()),
        ("metrics", Map::new()),
        ("saved_queries", Map::new()),
    ];
    for n in &m.nodes {
        let k = match n.resource_type {
            ResourceType::SemanticModel => 0,
            ResourceType::Metric => 1,
            ResourceType::SavedQuery => 2,
            _ => continue,
        };
        if let Some(entry) = manifest_entry(n) {
            out[k].1.insert(n.unique_id.clone(), entry);
        }
    }
    out
}

/// A definition as `manifest.json` has it: the definition, and what every
/// manifest entry carries (its ids, file, dependencies, config).
fn manifest_entry(n: &Node) -> Option<Json> {
    let def = n.semantic.as_deref()?;
    let mut entry = match def {
        Definition::SemanticModel(d) => to_map(d),
        Definition::Metric(d) => to_map(d),
        Definition::SavedQuery(d) => to_map(d),
    };
    let config = json!({"enabled": true, "group": null, "meta": n.meta});
    let common = json!({
        "name": n.name,
        "resource_type": n.resource_type.as_str(),
        "package_name": n.package_name,
        "path": n.path.rsplit('/').next().unwrap_or(&n.path),
        "original_file_path": n.original_file_path,
        "unique_id": n.unique_id,
        "fqn": n.fqn,
        "depends_on": {"macros": [], "nodes": n.depends_on},
        "refs": n.refs,
        "config": config,
        "unrendered_config": {},
        "group": null,
    });
    if let Json::Object(c) = common {
        entry.extend(c);
    }
    match def {
        Definition::SemanticModel(d) => {
            entry.insert("model".into(), Json::from(d.model.clone()));
            // dbt's manifest has no `metadata` on entities and measures.
            for key in ["entities", "measures"] {
                if let Some(Json::Array(items)) = entry.get_mut(key) {
                    for item in items.iter_mut().filter_map(Json::as_object_mut) {
                        item.remove("metadata");
                    }
                }
            }
        }
        Definition::Metric(_) => {
            if let Some(Json::Object(p)) = entry.get_mut("type_params") {
                p.insert("metric_aggregation_params".into(), Json::Null);
                if let Some(Json::Object(c)) = p.get_mut("cumulative_type_params") {
                    c.insert("metric".into(), Json::Null);
                }
            }
            entry.insert("meta".into(), Json::Object(n.meta.clone()));
            entry.insert("tags".into(), json!([]));
            entry.insert("sources".into(), json!([]));
            entry.insert("metrics".into(), json!([]));
        }
        Definition::SavedQuery(_) => {
            if let Some(Json::Object(c)) = entry.get_mut("config") {
                c.insert("export_as".into(), Json::Null);
                c.insert("schema".into(), Json::Null);
                c.insert("cache".into(), json!({"enabled": false}));
            }
            if let Some(Json::Array(exports)) = entry.get_mut("exports") {
                for e in exports.iter_mut().filter_map(Json::as_object_mut) {
                    if let Some(Json::Object(c)) = e.get_mut("config") {
                        c.insert("database".into(), Json::from(n.database.clone()));
                    }
                }
            }
        }
    }
    Some(Json::Object(entry))
}

fn to_map<T: serde::Serialize>(def: &T) -> Map<String, Json> {
    match serde_json::to_value(def) {
        Ok(Json::Object(m)) => m,
        _ => Map::new(),
    }
}

/// `semantic_manifest.json`: the definitions and the time spines.
pub fn semantic_manifest(m: &Manifest) -> Json {
    let layer = semantic_layer(&m.nodes);
    let (major, minor, patch) = DSI_VERSION;
    json!({
        "semantic_models": layer.semantic_models.iter().map(|s| s.def).collect::<Vec<_>>(),
        "metrics": layer.metrics.iter().map(|s| s.def).collect::<Vec<_>>(),
        "project_configuration": {
            "time_spine_table_configurations": [],
            "metadata": null,
            "dsi_package_version": {
                "major_version": major,
                "minor_version": minor,
                "patch_version": patch,
            },
            "time_spines": layer.time_spines,
        },
        "saved_queries": layer.saved_queries.iter().map(|s| s.def).collect::<Vec<_>>(),
    })
}
