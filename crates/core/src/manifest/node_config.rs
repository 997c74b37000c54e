//! The config keys pm acts on, typed: parsed once per node when the project
//! compiles, so that a value of the wrong type is a compile error at the line
//! that sets it, and no later module reads a string-keyed map. The map they
//! come from (`Node.config`) keeps every key, known or not, for templates
//! (`config.get()`) and manifest.json.

use crate::loader::config::Config;
use indexmap::IndexMap;
use serde::de::{value::MapDeserializer, Deserializer, Error as _};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

/// A node's known config keys with dbt's defaults. Keys pm does not act on
/// (hooks are rendered with the node; `materialized` is settled into
/// [`super::Materialization`]) stay in the map only.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct NodeConfig {
    #[serde(deserialize_with = "enabled")]
    pub enabled: bool,
    #[serde(deserialize_with = "text_list")]
    pub tags: Vec<String>,
    #[serde(deserialize_with = "mapping")]
    pub meta: Map<String, Json>,
    #[serde(deserialize_with = "text")]
    pub schema: Option<String>,
    #[serde(deserialize_with = "text")]
    pub database: Option<String>,
    #[serde(deserialize_with = "text")]
    pub alias: Option<String>,
    #[serde(deserialize_with = "optional_flag")]
    pub full_refresh: Option<bool>,
    /// Privilege (as written) → grantees.
    #[serde(deserialize_with = "grants")]
    pub grants: IndexMap<String, Vec<String>>,

    // tables and incremental models
    #[serde(deserialize_with = "text_list")]
    pub unique_key: Vec<String>,
    #[serde(deserialize_with = "text")]
    pub incremental_strategy: Option<String>,
    #[serde(deserialize_with = "text")]
    pub on_schema_change: Option<String>,
    /// SQL conditions on DBT_INTERNAL_DEST (and, for merge,
    /// DBT_INTERNAL_SOURCE) that narrow delete+insert's delete and merge's match.
    #[serde(deserialize_with = "text_list")]
    pub incremental_predicates: Vec<String>,
    /// The columns merge updates on a match (all of them when empty).
    #[serde(deserialize_with = "text_list")]
    pub merge_update_columns: Vec<String>,
    /// The columns merge leaves as they are on a match.
    #[serde(deserialize_with = "text_list")]
    pub merge_exclude_columns: Vec<String>,
    #[serde(deserialize_with = "indexes")]
    pub indexes: Vec<IndexConfig>,
    #[serde(deserialize_with = "flag")]
    pub unlogged: bool,
    /// SQL sent right before the statement that creates the relation
    /// (`{% call set_sql_header(config) %}`).
    #[serde(deserialize_with = "text")]
    pub sql_header: Option<String>,
    /// `persist_docs`: descriptions as the relation's and its columns' comments.
    #[serde(deserialize_with = "persist_docs")]
    pub persist_docs: PersistDocs,

    // Citus (tables, incremental models, seeds)
    /// The column a table is hash-distributed by.
    #[serde(deserialize_with = "text")]
    pub distributed_by: Option<String>,
    /// A model (or `none`, `default`) whose shards this table's share nodes.
    #[serde(deserialize_with = "text")]
    pub colocate_with: Option<String>,
    #[serde(deserialize_with = "count")]
    pub shard_count: Option<u64>,
    /// A reference table: a copy on every node.
    #[serde(deserialize_with = "flag")]
    pub reference: bool,

    // seeds
    #[serde(deserialize_with = "column_types")]
    pub column_types: IndexMap<String, String>,
    #[serde(deserialize_with = "text")]
    pub delimiter: Option<String>,
    #[serde(deserialize_with = "optional_flag")]
    pub quote_columns: Option<bool>,

    // snapshots: read as leniently as the snapshot plan reads them (a value
    // of another shape is as good as none; the plan says what is missing)
    #[serde(deserialize_with = "lenient_text")]
    pub strategy: Option<String>,
    #[serde(deserialize_with = "lenient_text")]
    pub updated_at: Option<String>,
    /// `check_cols`: None when not set; `all` or the columns.
    #[serde(deserialize_with = "check_cols")]
    pub check_cols: Option<CheckCols>,
    #[serde(deserialize_with = "lenient_text")]
    pub hard_deletes: Option<String>,
    #[serde(deserialize_with = "lenient_flag")]
    pub invalidate_hard_deletes: bool,
    #[serde(deserialize_with = "lenient_text")]
    pub dbt_valid_to_current: Option<String>,
    /// `snapshot_meta_column_names`: dbt's meta column → the name to use.
    #[serde(deserialize_with = "text_map")]
    pub snapshot_meta_column_names: IndexMap<String, String>,

    // data tests
    #[serde(deserialize_with = "severity")]
    pub severity: Option<String>,
    #[serde(deserialize_with = "text")]
    pub warn_if: Option<String>,
    #[serde(deserialize_with = "text")]
    pub error_if: Option<String>,
    #[serde(deserialize_with = "text")]
    pub fail_calc: Option<String>,
    #[serde(deserialize_with = "optional_flag")]
    pub store_failures: Option<bool>,
    #[serde(deserialize_with = "text")]
    pub store_failures_as: Option<String>,
    #[serde(deserialize_with = "count")]
    pub limit: Option<u64>,
    #[serde(rename = "where", deserialize_with = "text")]
    pub where_: Option<String>,
}

impl Default for NodeConfig {
    fn default() -> NodeConfig {
        NodeConfig {
            enabled: true,
            tags: Vec::new(),
            meta: Map::new(),
            schema: None,
            database: None,
            alias: None,
            full_refresh: None,
            grants: IndexMap::new(),
            unique_key: Vec::new(),
            incremental_strategy: None,
            on_schema_change: None,
            incremental_predicates: Vec::new(),
            merge_update_columns: Vec::new(),
            merge_exclude_columns: Vec::new(),
            indexes: Vec::new(),
            unlogged: false,
            sql_header: None,
            persist_docs: PersistDocs::default(),
            distributed_by: None,
            colocate_with: None,
            shard_count: None,
            reference: false,
            column_types: IndexMap::new(),
            delimiter: None,
            quote_columns: None,
            strategy: None,
            updated_at: None,
            check_cols: None,
            hard_deletes: None,
            invalidate_hard_deletes: false,
            dbt_valid_to_current: None,
            snapshot_meta_column_names: IndexMap::new(),
            severity: None,
            warn_if: None,
            error_if: None,
            fail_calc: None,
            store_failures: None,
            store_failures_as: None,
            limit: None,
            where_: None,
        }
    }
}

/// A snapshot's `check_cols`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckCols {
    /// `check_cols: all`
    All,
    /// The columns (empty when the value is not a list of names).
    Columns(Vec<String>),
}

/// One entry of `indexes:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IndexConfig {
    #[serde(deserialize_with = "text_list")]
    pub columns: Vec<String>,
    #[serde(default, deserialize_with = "flag")]
    pub unique: bool,
    /// The index method (`btree`, `hash`, `gin`, …); btree when not given.
    #[serde(default, rename = "type")]
    pub method: Option<String>,
}

/// A known key whose value has the wrong type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrongType {
    pub key: String,
    pub message: String,
}

impl NodeConfig {
    /// Reads the known keys of `config`; the first with a value of the wrong
    /// type is the error.
    pub fn parse(config: &Config) -> Result<NodeConfig, WrongType> {
        from_entries(config.iter()).map_err(|whole| {
            config
                .iter()
                .find_map(|(key, value)| {
                    from_entries(std::iter::once((key, value)))
                        .err()
                        .map(|e| WrongType {
                            key: key.clone(),
                            message: e.to_string(),
                        })
                })
                .unwrap_or_else(|| WrongType {
                    key: String::new(),
                    message: whole.to_string(),
                })
        })
    }
}

fn from_entries<'a>(
    entries: impl Iterator<Item = (&'a String, &'a Json)>,
) -> Result<NodeConfig, serde_json::Error> {
    let map = MapDeserializer::new(entries.map(|(k, v)| (k.as_str(), v)));
    NodeConfig::deserialize(map)
}

// ---- value shapes, each with dbt's leniency and an error that says what fits

/// A scalar as text: YAML reads `severity: 1` or `warn_if: 10` as numbers.
fn scalar_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn shown(v: &Json) -> String {
    let mut s = v.to_string();
    if s.len() > 60 {
        s.truncate(57);
        s.push_str("...");
    }
    s
}

fn wrong<E: serde::de::Error>(v: &Json, expected: &str) -> E {
    E::custom(format!("expected {expected}, found {}", shown(v)))
}

fn enabled<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let v = Json::deserialize(d)?;
    crate::loader::config::enabled_value(&v).ok_or_else(|| wrong(&v, "true or false"))
}

fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Json::deserialize(d)? {
        Json::Bool(b) => Ok(b),
        Json::Null => Ok(false),
        v => Err(wrong(&v, "true or false")),
    }
}

fn optional_flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Json::deserialize(d)? {
        Json::Bool(b) => Ok(Some(b)),
        Json::Null => Ok(None),
        v => Err(wrong(&v, "true or false")),
    }
}

/// What `persist_docs` asks to keep as comments in the warehouse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PersistDocs {
    pub relation: bool,
    pub columns: bool,
}

fn persist_docs<'de, D: Deserializer<'de>>(d: D) -> Result<PersistDocs, D::Error> {
    let v = Json::deserialize(d)?;
    let flag = |k: &str| match v.get(k) {
        None | Some(Json::Null) => Ok(false),
        Some(Json::Bool(b)) => Ok(*b),
        Some(other) => Err(D::Error::custom(format!(
            "persist_docs.{k}: expected true or false, found {other}"
        ))),
    };
    match &v {
        Json::Null => Ok(PersistDocs::default()),
        Json::Object(_) => Ok(PersistDocs {
            relation: flag("relation")?,
            columns: flag("columns")?,
        }),
        other => Err(D::Error::custom(format!(
            "expected {{relation: true, columns: true}}, found {other}"
        ))),
    }
}

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Json::deserialize(d)? {
        Json::Null => Ok(None),
        v => scalar_text(&v)
            .map(Some)
            .ok_or_else(|| wrong(&v, "a string")),
    }
}

/// A string (not a number or a list), or none.
fn lenient_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Json::deserialize(d)? {
        Json::String(s) => Some(s),
        _ => None,
    })
}

/// `true` only when the value is `true`.
fn lenient_flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(matches!(Json::deserialize(d)?, Json::Bool(true)))
}

fn check_cols<'de, D: Deserializer<'de>>(d: D) -> Result<Option<CheckCols>, D::Error> {
    Ok(match Json::deserialize(d)? {
        Json::Null => None,
        Json::String(s) if s == "all" => Some(CheckCols::All),
        Json::String(s) => Some(CheckCols::Columns(vec![s])),
        Json::Array(items) => Some(CheckCols::Columns(
            items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .unwrap_or_default(),
        )),
        _ => Some(CheckCols::Columns(Vec::new())),
    })
}

/// A mapping of names to names; entries of other shapes are left out.
fn text_map<'de, D: Deserializer<'de>>(d: D) -> Result<IndexMap<String, String>, D::Error> {
    Ok(match Json::deserialize(d)? {
        Json::Object(m) => m
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
            .collect(),
        _ => IndexMap::new(),
    })
}

/// A test's `severity`: `error` or `warn`, in any case (dbt's pattern).
fn severity<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Json::deserialize(d)? {
        Json::Null => Ok(None),
        Json::String(s)
            if s.trim().eq_ignore_ascii_case("error") || s.trim().eq_ignore_ascii_case("warn") =>
        {
            Ok(Some(s))
        }
        v => Err(wrong(&v, "`error` or `warn`")),
    }
}

fn text_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Json::deserialize(d)?;
    list_of_text(&v).ok_or_else(|| wrong(&v, "a string or a list of strings"))
}

fn list_of_text(v: &Json) -> Option<Vec<String>> {
    match v {
        Json::Null => Some(Vec::new()),
        Json::Array(items) => items.iter().map(scalar_text).collect(),
        other => scalar_text(other).map(|s| vec![s]),
    }
}

fn mapping<'de, D: Deserializer<'de>>(d: D) -> Result<Map<String, Json>, D::Error> {
    match Json::deserialize(d)? {
        Json::Object(m) => Ok(m),
        Json::Null => Ok(Map::new()),
        v => Err(wrong(&v, "a mapping")),
    }
}

fn grants<'de, D: Deserializer<'de>>(d: D) -> Result<IndexMap<String, Vec<String>>, D::Error> {
    let expected = "a mapping of privileges to grantees, e.g. {select: [reporter]}";
    let m = match Json::deserialize(d)? {
        Json::Object(m) => m,
        Json::Null => return Ok(IndexMap::new()),
        v => return Err(wrong(&v, expected)),
    };
    m.into_iter()
        .map(|(k, v)| {
            list_of_text(&v)
                .map(|who| (k, who))
                .ok_or_else(|| wrong(&v, "a grantee or a list of grantees"))
        })
        .collect()
}

fn column_types<'de, D: Deserializer<'de>>(d: D) -> Result<IndexMap<String, String>, D::Error> {
    let m = match Json::deserialize(d)? {
        Json::Object(m) => m,
        Json::Null => return Ok(IndexMap::new()),
        v => return Err(wrong(&v, "a mapping of column names to types")),
    };
    m.into_iter()
        .map(|(k, v)| {
            scalar_text(&v)
                .map(|t| (k, t))
                .ok_or_else(|| wrong(&v, "a type name such as `text`"))
        })
        .collect()
}

fn indexes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IndexConfig>, D::Error> {
    let expected = "a list of indexes, e.g. [{columns: [id], unique: true}]";
    let list = match Json::deserialize(d)? {
        Json::Array(a) => a,
        Json::Null => return Ok(Vec::new()),
        v => return Err(wrong(&v, expected)),
    };
    let list = list
        .into_iter()
        .map(|ix| IndexConfig::deserialize(&ix).map_err(D::Error::custom))
        .collect::<Result<Vec<IndexConfig>, D::Error>>()?;
    // The method goes into `create index … using <method>`: a name, nothing else.
    for ix in &list {
        if let Some(m) = &ix.method {
            let name = m.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !name {
                return Err(D::Error::custom(format!(
                    "index type `{m}` is not an index method's name (btree, hash, gist, gin, brin, …)"
                )));
            }
        }
    }
    Ok(list)
}

fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Json::deserialize(d)? {
        Json::Null => Ok(None),
        v => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .map(Some)
            .ok_or_else(|| wrong(&v, "a whole number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::config::from_json;
    use serde_json::json;

    fn parse(v: Json) -> Result<NodeConfig, WrongType> {
        NodeConfig::parse(&from_json(Some(&v)))
    }

    #[test]
    fn known_keys_are_typed_with_dbt_leniency() {
        let c = parse(json!({
            "enabled": "{{ no }}", "tags": "nightly", "unique_key": ["id", 7],
            "grants": {"select": "reporter"}, "severity": "WARN", "warn_if": 10,
            "limit": "100", "indexes": [{"columns": "id", "unique": true}],
            "column_types": {"id": "bigint"}, "custom_key": [1, 2], "pre-hook": "select 1"
        }))
        .unwrap();
        assert!(c.enabled, "a template string other than false is true");
        assert_eq!(c.tags, ["nightly"]);
        assert_eq!(c.unique_key, ["id", "7"]);
        assert_eq!(c.grants["select"], ["reporter"]);
        assert_eq!(c.severity.as_deref(), Some("WARN"));
        assert_eq!(c.warn_if.as_deref(), Some("10"));
        assert_eq!(c.limit, Some(100));
        assert_eq!(c.indexes[0].columns, ["id"]);
        assert!(c.indexes[0].unique);
        assert_eq!(c.column_types["id"], "bigint");
        assert!(!parse(json!({"enabled": "False"})).unwrap().enabled);
        assert_eq!(parse(json!({})).unwrap(), NodeConfig::default());
        assert!(parse(json!({"schema": null})).unwrap().schema.is_none());
    }

    #[test]
    fn a_wrong_type_names_its_key() {
        let e = parse(json!({"tags": ["a"], "full_refresh": "yes"})).unwrap_err();
        assert_eq!(e.key, "full_refresh");
        assert_eq!(e.message, "expected true or false, found \"yes\"");
        let e = parse(json!({"limit": "many"})).unwrap_err();
        assert_eq!(
            (e.key.as_str(), e.message.as_str()),
            ("limit", "expected a whole number, found \"many\"")
        );
        let e = parse(
            json!({"indexes": [{"columns": ["id"], "type": "btree (id); drop table x; --"}]}),
        )
        .unwrap_err();
        assert!(
            e.message.contains("is not an index method's name"),
            "{}",
            e.message
        );
        let e = parse(json!({"indexes": [{"unique": true}]})).unwrap_err();
        assert_eq!(e.key, "indexes");
        assert!(e.message.contains("columns"), "{}", e.message);
    }
}
