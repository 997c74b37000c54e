//! `state:` selection: the manifest of an earlier run, compared node by node.

use super::*;

/// What an earlier run's manifest says about each node, for `state:`.
#[derive(Debug, Clone, Default)]
pub struct PriorState {
    /// unique id → (checksum, config)
    pub nodes: HashMap<String, (String, Json)>,
}

impl PriorState {
    pub fn load(dir: &std::path::Path) -> std::result::Result<PriorState, Problem> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Problem::new("state::read", format!("cannot read {}: {e}", path.display()))
                .help("point --state at the target/ folder of an earlier `pm compile` or run (keep a copy: the next run overwrites it)")
        })?;
        let doc: Json = serde_json::from_str(&text).map_err(|e| {
            Problem::new(
                "state::parse",
                format!("{} is not a manifest: {e}", path.display()),
            )
        })?;
        let mut nodes = HashMap::new();
        for key in ["nodes", "sources", "exposures"] {
            if let Some(m) = doc.get(key).and_then(Json::as_object) {
                for (id, n) in m {
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
        Ok(PriorState { nodes })
    }
}

pub(super) fn config_equal(old: &Json, new: &crate::loader::config::Config) -> bool {
    let new = serde_json::to_value(new).unwrap_or(Json::Null);
    old == &new
}
