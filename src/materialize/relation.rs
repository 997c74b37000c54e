//! Views and tables: the model's query is built under a temporary name and
//! put in place of the old relation in one transaction, so a failed build
//! leaves the previous relation as it was.

use crate::manifest::{quote_ident, Node};

/// What kind of relation a model becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    View,
    Table,
    MaterializedView,
}

impl Kind {
    pub fn of(node: &Node) -> Option<Kind> {
        match node.materialized() {
            "view" => Some(Kind::View),
            // An incremental model's first build (and a full refresh) is a table.
            "table" | "incremental" => Some(Kind::Table),
            "materialized_view" => Some(Kind::MaterializedView),
            _ => None,
        }
    }

    pub fn sql(self) -> &'static str {
        match self {
            Kind::View => "view",
            Kind::Table => "table",
            Kind::MaterializedView => "materialized view",
        }
    }
}

/// The statements that build a model, in order; the swap itself (which
/// depends on what exists) is done by the adapter.
#[derive(Debug, Clone, PartialEq)]
pub struct Build {
    pub kind: Kind,
    pub schema: String,
    pub name: String,
    pub temp_name: String,
    /// `create schema`, `drop … temp`, `create … temp as …`.
    pub prepare: String,
}

/// The model's compiled query as one statement (no trailing `;`).
pub fn query(node: &Node) -> &str {
    node.compiled_code
        .as_deref()
        .unwrap_or("")
        .trim_end()
        .trim_end_matches(';')
}

/// A name for the relation being built, within PostgreSQL's 63 bytes.
pub fn temp_name(name: &str) -> String {
    let mut base = name.to_string();
    while base.len() > 54 {
        base.pop();
    }
    format!("{base}__pm_new")
}

/// The statements for a view or table model.
pub fn build(node: &Node, kind: Kind) -> Build {
    let schema = quote_ident(&node.schema);
    let temp_name = temp_name(&node.alias);
    let temp = format!("{schema}.{}", quote_ident(&temp_name));
    let sql = query(node);
    let unlogged = kind == Kind::Table
        && node
            .config
            .get("unlogged")
            .and_then(serde_json::Value::as_bool)
            == Some(true);
    let create = if unlogged {
        "unlogged table"
    } else {
        kind.sql()
    };
    let prepare = format!(
        "create schema if not exists {schema};\n\
         drop view if exists {temp} cascade;\n\
         drop materialized view if exists {temp} cascade;\n\
         drop table if exists {temp} cascade;\n\
         create {create} {temp} as (\n{sql}\n)"
    );
    Build {
        kind,
        schema: node.schema.clone(),
        name: node.alias.clone(),
        temp_name,
        prepare,
    }
}

/// Byte offset in `sql` of the first line of the model's query inside
/// `prepare` (PostgreSQL error positions count from the statement's start).
pub fn query_offset(prepare: &str) -> usize {
    prepare
        .find(" as (\n")
        .map(|i| i + " as (\n".len())
        .unwrap_or(0)
}

/// What pm writes in a materialized view's comment: the hash of the query it
/// was built from, so an unchanged view is refreshed and a changed one rebuilt.
pub fn definition_stamp(node: &Node) -> String {
    use sha2::Digest;
    let sql = node.compiled_code.as_deref().unwrap_or("");
    format!(
        "pm:{}",
        &crate::compile::context::hex(&sha2::Sha256::digest(sql.as_bytes()))[..16]
    )
}

/// `indexes: [{columns: [a, b], unique: true, type: btree}]` as statements
/// for `target`. Names are derived from the definition, so re-running them
/// on a table that has the index (`if not exists`) does nothing.
pub fn index_sql(node: &Node, target: &str) -> Vec<String> {
    use serde_json::Value as Json;
    let Some(Json::Array(list)) = node.config.get("indexes") else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|ix| {
            let columns = crate::loader::yaml::string_list(ix.get("columns"));
            if columns.is_empty() {
                return None;
            }
            let unique = ix.get("unique").and_then(Json::as_bool).unwrap_or(false);
            let method = ix.get("type").and_then(Json::as_str).unwrap_or("btree");
            let key = format!("{}|{}|{unique}|{method}", node.alias, columns.join(","));
            use sha2::Digest;
            let name = format!(
                "pm_ix_{}",
                &crate::compile::context::hex(&sha2::Sha256::digest(key.as_bytes()))[..20]
            );
            let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
            Some(format!(
                "create {}index if not exists {} on {target} using {method} ({})",
                if unique { "unique " } else { "" },
                quote_ident(&name),
                cols.join(", ")
            ))
        })
        .collect()
}
