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
    let sql = node
        .compiled_code
        .as_deref()
        .unwrap_or("")
        .trim_end()
        .trim_end_matches(';');
    let prepare = format!(
        "create schema if not exists {schema};\n\
         drop view if exists {temp} cascade;\n\
         drop materialized view if exists {temp} cascade;\n\
         drop table if exists {temp} cascade;\n\
         create {} {temp} as (\n{sql}\n)",
        kind.sql()
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
