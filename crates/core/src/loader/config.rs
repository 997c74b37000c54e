//! Node configuration: merging with dbt's rules and the folder-scoped config
//! trees of the project file (`models:`, `seeds:`, `tests:`, `snapshots:`).

use indexmap::IndexMap;
use serde_json::Value as Json;

/// A node's configuration: key → value, in insertion order.
pub type Config = IndexMap<String, Json>;

/// A config as dbt's manifest.json writes it: `pre-hook` and `post-hook`
/// as lists of `{"sql", "transaction", "index"}` (a hook written as text
/// runs inside the transaction, as dbt's do). Borrowed when it has none.
pub fn as_written_by_dbt(config: &Config) -> std::borrow::Cow<'_, Config> {
    let written_as_text = |v: &Json| match v {
        Json::String(_) => true,
        Json::Array(items) => items.iter().any(Json::is_string),
        _ => false,
    };
    if !["pre-hook", "post-hook"]
        .iter()
        .any(|k| config.get(*k).is_some_and(written_as_text))
    {
        return std::borrow::Cow::Borrowed(config);
    }
    let hook = |v: &Json| match v {
        Json::String(sql) => serde_json::json!({"sql": sql, "transaction": true, "index": null}),
        other => other.clone(),
    };
    let mut out = config.clone();
    for key in ["pre-hook", "post-hook"] {
        if let Some(v) = out.get_mut(key) {
            let written = match &*v {
                Json::Array(items) => Json::Array(items.iter().map(hook).collect()),
                one => Json::Array(vec![hook(one)]),
            };
            *v = written;
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Config keys whose value is itself a mapping (so a mapping under such a key in
/// a folder tree is a config, not a sub-folder).
const DICT_KEYS: &[&str] = &[
    "meta",
    "grants",
    "docs",
    "persist_docs",
    "quoting",
    "column_types",
    "contract",
    "labels",
    "freshness",
    "snapshot_meta_column_names",
];

/// dbt's canonical spelling of a config key (`+pre_hook` → `pre-hook`).
pub fn canonical_key(key: &str) -> String {
    let k = key.strip_prefix('+').unwrap_or(key);
    match k {
        "pre_hook" | "pre-hook" => "pre-hook".into(),
        "post_hook" | "post-hook" => "post-hook".into(),
        _ => k.to_string(),
    }
}

/// Merges `over` into `base` with dbt's rules: `tags` are added to (no
/// duplicates), `meta`, `grants` and `docs` are merged key by key, hooks are
/// appended, everything else is replaced.
pub fn merge(base: &mut Config, over: &Config) {
    for (k, v) in over {
        merge_key(base, k, v);
    }
}

pub fn merge_key(base: &mut Config, key: &str, value: &Json) {
    let key = canonical_key(key);
    match key.as_str() {
        "tags" => {
            let mut tags = string_list(base.get("tags"));
            for t in string_list(Some(value)) {
                if !tags.contains(&t) {
                    tags.push(t);
                }
            }
            base.insert(key, Json::from(tags));
        }
        "pre-hook" | "post-hook" => {
            let mut hooks = match base.get(&key) {
                Some(Json::Array(a)) => a.clone(),
                _ => Vec::new(),
            };
            match value {
                Json::Array(a) => hooks.extend(a.iter().cloned()),
                Json::Null => {}
                other => hooks.push(other.clone()),
            }
            base.insert(key, Json::Array(hooks));
        }
        "meta" | "grants" | "docs" => match (base.get_mut(&key), value) {
            (Some(Json::Object(b)), Json::Object(o)) => {
                for (k, v) in o {
                    b.insert(k.clone(), v.clone());
                }
            }
            _ => {
                base.insert(key, value.clone());
            }
        },
        _ => {
            base.insert(key, value.clone());
        }
    }
}

fn string_list(v: Option<&Json>) -> Vec<String> {
    super::yaml::string_list(v)
}

/// Turns a JSON mapping of config keys into a [`Config`] (keys canonical).
pub fn from_json(v: Option<&Json>) -> Config {
    let mut c = Config::new();
    if let Some(Json::Object(m)) = v {
        for (k, v) in m {
            merge_key(&mut c, k, v);
        }
    }
    c
}

/// One level of a folder-scoped config tree.
#[derive(Debug, Clone, Default)]
pub struct ConfigTree {
    pub config: Config,
    pub children: IndexMap<String, ConfigTree>,
}

impl ConfigTree {
    pub fn from_json(v: Option<&Json>) -> ConfigTree {
        let mut tree = ConfigTree::default();
        let Some(Json::Object(m)) = v else {
            return tree;
        };
        for (k, v) in m {
            let is_config = k.starts_with('+') || !v.is_object() || DICT_KEYS.contains(&k.as_str());
            if is_config {
                merge_key(&mut tree.config, k, v);
            } else {
                tree.children
                    .insert(k.clone(), ConfigTree::from_json(Some(v)));
            }
        }
        tree
    }

    /// The merged config for a node whose fqn is `[package, folder…, name]`:
    /// the root level, then each matching level down the path.
    pub fn config_for(&self, fqn: &[String]) -> Config {
        let mut out = self.config.clone();
        let mut level = self;
        for part in fqn {
            match level.children.get(part) {
                Some(child) => {
                    merge(&mut out, &child.config);
                    level = child;
                }
                None => break,
            }
        }
        out
    }
}

impl ConfigTree {
    /// Whether the tree configures the node itself (a key named after it at
    /// its folder's level), so that its config differs from its folder's.
    pub fn has_leaf(&self, fqn: &[String]) -> bool {
        let Some((name, folders)) = fqn.split_last() else {
            return false;
        };
        let mut level = self;
        for part in folders {
            match level.children.get(part) {
                Some(child) => level = child,
                None => return false,
            }
        }
        level.children.contains_key(name)
    }
}

/// Typed reads of common keys.
pub fn get_str<'a>(c: &'a Config, key: &str) -> Option<&'a str> {
    c.get(key).and_then(Json::as_str)
}

pub fn enabled(c: &Config) -> bool {
    c.get("enabled").and_then(enabled_value).unwrap_or(true)
}

/// `enabled` as dbt reads it: `true`/`false`, or a string other than
/// false/no/0 (a rendered `"{{ var('x') }}"` arrives as text). None for a
/// value of another type.
pub fn enabled_value(v: &Json) -> Option<bool> {
    match v {
        Json::Bool(b) => Some(*b),
        Json::Null => Some(true),
        Json::String(s) => Some(!matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "false" | "no" | "0"
        )),
        _ => None,
    }
}

pub fn tags(c: &Config) -> Vec<String> {
    string_list(c.get("tags"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_rules() {
        let mut base = from_json(Some(
            &json!({"tags": ["a"], "meta": {"x": 1}, "+pre-hook": "h1", "materialized": "view"}),
        ));
        let over = from_json(Some(
            &json!({"tags": "b", "meta": {"y": 2}, "pre_hook": ["h2"], "materialized": "table"}),
        ));
        merge(&mut base, &over);
        assert_eq!(base["tags"], json!(["a", "b"]));
        assert_eq!(base["meta"], json!({"x": 1, "y": 2}));
        assert_eq!(base["pre-hook"], json!(["h1", "h2"]));
        assert_eq!(base["materialized"], json!("table"));
    }

    #[test]
    fn folder_tree() {
        let tree = ConfigTree::from_json(Some(&json!({
            "proj": {"+materialized": "view", "marts": {"+materialized": "table", "+schema": "marts", "meta": {"owner": "x"}}}
        })));
        let fqn: Vec<String> = ["proj", "marts", "finance", "m"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let c = tree.config_for(&fqn);
        assert_eq!(c["materialized"], json!("table"));
        assert_eq!(c["schema"], json!("marts"));
        assert_eq!(c["meta"], json!({"owner": "x"}));
        let other: Vec<String> = ["proj", "staging", "s"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(tree.config_for(&other)["materialized"], json!("view"));
    }
}
