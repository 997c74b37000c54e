//! `state:` selection: the manifest of an earlier run, compared node by node.

use crate::error::{Code, Problem};
use serde_json::Value as Json;
use std::collections::HashMap;

/// What an earlier run's manifest says about each node, for `state:`.
#[derive(Debug, Clone, Default)]
pub struct PriorState {
    /// unique id → (checksum, config)
    pub nodes: HashMap<String, (String, Json)>,
    /// unique id → (database, schema, alias) of the nodes built as relations
    /// (models, seeds, snapshots; not ephemeral models), for `--defer`.
    pub relations: HashMap<String, [String; 3]>,
}

impl PriorState {
    pub fn load(dir: &std::path::Path) -> std::result::Result<PriorState, Problem> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Problem::new(Code::StateRead, format!("cannot read {}: {e}", path.display()))
                .help("point --state at the target/ folder of an earlier `pm compile` or run (keep a copy: the next run overwrites it)")
        })?;
        let doc: Json = serde_json::from_str(&text).map_err(|e| {
            Problem::new(
                Code::StateParse,
                format!("{} is not a manifest: {e}", path.display()),
            )
        })?;
        let mut nodes = HashMap::new();
        let mut relations = HashMap::new();
        for key in ["nodes", "sources", "exposures"] {
            if let Some(m) = doc.get(key).and_then(Json::as_object) {
                for (id, n) in m {
                    if let Some(rel) = built_relation(n) {
                        relations.insert(id.clone(), rel);
                    }
                    let checksum = n
                        .pointer("/checksum/checksum")
                        .and_then(Json::as_str)
                        .unwrap_or("")
                        .to_string();
                    let config = n.get("config").cloned().unwrap_or(Json::Null);
                    nodes.insert(id.clone(), (checksum, config));
                }
            }
        }
        Ok(PriorState { nodes, relations })
    }
}

/// A manifest node's relation, when it is built as one.
fn built_relation(n: &Json) -> Option<[String; 3]> {
    let kind = n.get("resource_type").and_then(Json::as_str)?;
    let materialized = n.pointer("/config/materialized").and_then(Json::as_str);
    if !matches!(kind, "model" | "seed" | "snapshot") || materialized == Some("ephemeral") {
        return None;
    }
    let part = |k: &str| n.get(k).and_then(Json::as_str).map(str::to_string);
    Some([
        part("database").unwrap_or_default(),
        part("schema")?,
        part("alias")?,
    ])
}

pub(super) fn config_equal(old: &Json, new: &crate::loader::config::Config) -> bool {
    use crate::loader::config::as_written_by_dbt;
    let new = serde_json::to_value(as_written_by_dbt(new)).unwrap_or(Json::Null);
    // A manifest of an earlier pm wrote hooks as text.
    let old = match serde_json::from_value::<crate::loader::config::Config>(old.clone()) {
        Ok(c) => serde_json::to_value(as_written_by_dbt(&c)).unwrap_or(Json::Null),
        Err(_) => old.clone(),
    };
    old == new
}
