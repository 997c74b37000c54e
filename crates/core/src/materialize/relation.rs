//! Views and tables: the model's query is built under a temporary name and
//! put in place of the old relation in one transaction, so a failed build
//! leaves the previous relation as it was.

use super::citus::Distribution;
use crate::error::Code;
use crate::manifest::{Materialization, Node};
use crate::text::{quote_ident, quote_literal};

/// What kind of relation a model becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    View,
    Table,
    MaterializedView,
}

impl Kind {
    /// The relation a materialization builds by creating it whole and
    /// swapping it in; None for the ones built otherwise.
    pub fn of(materialized: &Materialization) -> Option<Kind> {
        match materialized {
            Materialization::View => Some(Kind::View),
            // An incremental model's first build (and a full refresh) is a table.
            Materialization::Table | Materialization::Incremental => Some(Kind::Table),
            Materialization::MaterializedView => Some(Kind::MaterializedView),
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

/// What marks a temporary name: `<alias>__pm_new_<8 hex digits>`.
const TEMP_MARK: &str = "__pm_new_";

/// The name a node's relation is built under before it replaces the old
/// one: its alias (cut to fit PostgreSQL's 63 bytes), `__pm_new_`, and 8
/// hex digits of a hash of the node's unique id. Two nodes never share it,
/// however long their common prefix, and [`is_temp_name`] recognises it.
pub fn temp_name(node: &Node) -> String {
    let hash = crate::text::sha256_hex(&node.unique_id);
    let mut base = node.alias.as_str();
    while base.len() > 63 - TEMP_MARK.len() - 8 {
        let mut end = base.len() - 1;
        while !base.is_char_boundary(end) {
            end -= 1;
        }
        base = &base[..end];
    }
    format!("{base}{TEMP_MARK}{}", &hash[..8])
}

/// Whether a relation's name has the shape of a temporary name.
pub fn is_temp_name(name: &str) -> bool {
    name.len() > TEMP_MARK.len() + 8
        && name.is_char_boundary(name.len() - 8 - TEMP_MARK.len())
        && name[..name.len() - 8].ends_with(TEMP_MARK)
        && name[name.len() - 8..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The SQL keyword for a relation of PostgreSQL's `relkind`.
pub fn relkind_sql(relkind: &str) -> &'static str {
    match relkind {
        "v" => "view",
        "m" => "materialized view",
        "f" => "foreign table",
        _ => "table",
    }
}

/// A statement that drops whatever relation `schema.name` is (table, view,
/// materialized view), and does nothing when there is none. (`drop view if
/// exists` fails on a table.)
pub fn drop_any_sql(schema: &str, name: &str) -> String {
    let lit = quote_literal;
    format!(
        "do $pm$\ndeclare\n    stmt text;\nbegin\n    \
         select format('drop %s %s cascade', case c.relkind when 'v' then 'view' when 'm' then 'materialized view' \
         when 'f' then 'foreign table' else 'table' end, c.oid::regclass)\n    into stmt\n    \
         from pg_class c join pg_namespace n on n.oid = c.relnamespace\n    \
         where n.nspname = {} and c.relname = {};\n    \
         if stmt is not null then\n        execute stmt;\n    end if;\nend\n$pm$",
        lit(schema),
        lit(name)
    )
}

/// The statements for a view or table model; a table with a Citus
/// `distribution` is created empty, distributed, then filled.
pub fn build(node: &Node, kind: Kind, distribution: Option<&Distribution>) -> Build {
    let schema = quote_ident(&node.schema);
    let temp_name = temp_name(node);
    let temp = format!("{schema}.{}", quote_ident(&temp_name));
    let sql = query(node);
    let unlogged = kind == Kind::Table && node.typed_config.unlogged;
    let create = if unlogged {
        "unlogged table"
    } else {
        kind.sql()
    };
    // A relation under the temporary name is a leftover of an interrupted
    // build of this node (the name is the node's own): whatever it is, it goes.
    let header = node
        .typed_config
        .sql_header
        .as_deref()
        .map(|h| format!("{}\n", h.trim()))
        .unwrap_or_default();
    // A view's contract is the columns' check only, as dbt-postgres's.
    let contract = (kind == Kind::Table)
        .then(|| super::contract::contract_of(node).ok().flatten())
        .flatten();
    let mut prepare = format!(
        "create schema if not exists {schema};\n{};\n{header}",
        drop_any_sql(&node.schema, &temp_name)
    );
    if let Some(c) = &contract {
        let filled = super::contract::create_and_fill_sql(c, create, &temp, sql);
        match distribution {
            // Created empty, distributed, then filled.
            Some(d) => {
                let (create_sql, insert_sql) =
                    filled.split_once(";\ninsert").unwrap_or((&filled, ""));
                prepare.push_str(&format!(
                    "{create_sql};\n{};\ninsert{insert_sql}",
                    super::citus::distribute_sql(&temp, d)
                ));
            }
            None => prepare.push_str(&filled),
        }
    } else {
        prepare.push_str(&format!("create {create} {temp} as (\n{sql}\n)"));
    }
    if let (Some(d), Kind::Table, None) = (distribution, kind, &contract) {
        prepare.push_str(&format!(
            " with no data;\n{};\ninsert into {temp} (\n{sql}\n)",
            super::citus::distribute_sql(&temp, d)
        ));
    }
    for comment in super::comment::comments_sql(node, kind, &temp) {
        prepare.push_str(";\n");
        prepare.push_str(&comment);
    }
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
    // `create … as (` or, under a contract, `insert … select … from (`.
    [" as (\n", " from (\n"]
        .iter()
        .find_map(|m| prepare.find(m).map(|i| i + m.len()))
        .unwrap_or(0)
}

/// What pm writes in a materialized view's comment: the hash of the query it
/// was built from, so an unchanged view is refreshed and a changed one rebuilt.
pub fn definition_stamp(sql: &str) -> String {
    format!("pm:{}", &crate::text::sha256_hex(sql)[..16])
}

/// The statement that brings a materialized view up to date without
/// rebuilding it, when that is enough: the view exists with the stamp of
/// this query (`existing_stamp`, its comment) and `--full-refresh` was not
/// given. None: it is built anew and swapped in.
pub fn materialized_view_refresh(
    relation: &str,
    sql: &str,
    existing_stamp: Option<&str>,
    full_refresh: bool,
) -> Option<String> {
    (!full_refresh && existing_stamp == Some(definition_stamp(sql).as_str()))
        .then(|| format!("refresh materialized view {relation}"))
}

/// The statements that put a relation built under its temporary name in
/// place of `relation`: the old one (of catalog kind `existing`, if any) is
/// dropped with the views on it (re-created afterwards from the catalog's
/// description), the new one renamed; a materialized view is stamped with
/// its query; the indexes built under temporary names (`index_renames`)
/// take their own.
pub fn swap_statements(
    build: &Build,
    relation: &str,
    sql: &str,
    existing: Option<&str>,
    index_renames: impl IntoIterator<Item = impl Into<String>>,
) -> super::StatementPlan {
    let temp = format!(
        "{}.{}",
        quote_ident(&build.schema),
        quote_ident(&build.temp_name)
    );
    let mut statements = Vec::new();
    if let Some(kind) = existing {
        statements.push((
            format!("drop {} {relation} cascade", relkind_sql(kind)),
            "replacing the relation",
        ));
    }
    statements.push((
        format!(
            "alter {} {temp} rename to {}",
            build.kind.sql(),
            quote_ident(&build.name)
        ),
        if existing.is_some() {
            "replacing the relation"
        } else {
            "naming the relation"
        },
    ));
    if build.kind == Kind::MaterializedView {
        statements.push((
            format!(
                "comment on materialized view {relation} is '{}'",
                definition_stamp(sql)
            ),
            "marking the materialized view",
        ));
    }
    if build.kind != Kind::View {
        for rename in index_renames {
            statements.push((rename.into(), "naming an index"));
        }
    }
    statements
}

/// The statement of a change a template asks of the warehouse
/// (`adapter.drop_relation(…)`, `rename_relation`, `truncate_relation`,
/// `create_schema`, `drop_schema`).
pub fn change_sql(change: &crate::compile::context::WarehouseChange) -> String {
    use crate::compile::context::WarehouseChange as C;
    let qualified =
        |schema: &str, name: &str| format!("{}.{}", quote_ident(schema), quote_ident(name));
    match change {
        C::DropRelation { kind, schema, name } => {
            format!("drop {kind} if exists {} cascade", qualified(schema, name))
        }
        C::Truncate { schema, name } => format!("truncate table {}", qualified(schema, name)),
        C::Rename {
            kind,
            schema,
            name,
            new_name,
        } => format!(
            "alter {kind} {} rename to {}",
            qualified(schema, name),
            quote_ident(new_name)
        ),
        C::CreateSchema(schema) => format!("create schema if not exists {}", quote_ident(schema)),
        C::DropSchema(schema) => format!("drop schema if exists {} cascade", quote_ident(schema)),
    }
}

/// `sql` limited to `limit` rows (none when negative), as `pm show` runs it.
pub fn limited(sql: &str, limit: i64) -> String {
    let sql = sql.trim().trim_end_matches(';');
    if limit < 0 {
        sql.to_string()
    } else {
        format!("select * from (\n{sql}\n) pm_show limit {limit}")
    }
}

/// Drops what a build left under its temporary name (when putting it in
/// place failed): the old relation is untouched.
pub fn drop_built_sql(build: &Build) -> String {
    format!(
        "drop {} if exists {}.{} cascade",
        build.kind.sql(),
        quote_ident(&build.schema),
        quote_ident(&build.temp_name)
    )
}

/// A view rebuilt over a view: first tried in place, so that the views on
/// it, its grants and its identity stay as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewInPlace {
    /// Replaces the view's query under a savepoint (fails when a column is
    /// removed, renamed or retyped).
    pub attempt: String,
    /// After a success: the savepoint is released and the view built under
    /// its temporary name dropped.
    pub keep: String,
    /// After a failure: back to the savepoint, and the swap goes on.
    pub undo: String,
}

/// The in-place replacement of a view, when the build is a view and the
/// catalog reports a view (`existing`, its relkind) in its place.
pub fn view_in_place(
    build: &Build,
    relation: &str,
    sql: &str,
    existing: Option<&str>,
) -> Option<ViewInPlace> {
    (build.kind == Kind::View && existing == Some("v")).then(|| ViewInPlace {
        attempt: format!("savepoint pm_replace;\ncreate or replace view {relation} as (\n{sql}\n)"),
        keep: format!(
            "release savepoint pm_replace;\ndrop view {}.{}",
            quote_ident(&build.schema),
            quote_ident(&build.temp_name)
        ),
        undo: "rollback to savepoint pm_replace".into(),
    })
}

/// The statements that make `relation`'s grants what the config lists
/// (`wanted`, as (privilege, grantee)): what the catalog reports granted
/// (`current`, the owner's own left out) and is no longer wanted is revoked,
/// and everything wanted granted (granting twice changes nothing).
pub fn grant_statements(
    relation: &str,
    wanted: &[(String, String)],
    current: &[(String, String)],
) -> super::StatementPlan {
    let revokes = current
        .iter()
        .filter(|(privilege, grantee)| !wanted.iter().any(|(p, g)| p == privilege && g == grantee))
        .map(|(privilege, grantee)| {
            (
                format!(
                    "revoke {privilege} on {relation} from {}",
                    quote_ident(grantee)
                ),
                "revoking privileges",
            )
        });
    let grants = wanted.iter().map(|(privilege, grantee)| {
        (
            format!(
                "grant {privilege} on {relation} to {}",
                quote_ident(grantee)
            ),
            "granting privileges",
        )
    });
    revokes.chain(grants).collect()
}

/// The privileges PostgreSQL grants on tables and views.
pub(crate) const PRIVILEGES: [&str; 9] = [
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "TRUNCATE",
    "REFERENCES",
    "TRIGGER",
    "MAINTAIN",
    "ALL",
];

/// `grants: {select: [role, …]}` as (privilege, grantee) pairs; a key that
/// is not one of PostgreSQL's table privileges is refused (it would be
/// pasted into SQL).
pub fn grants(node: &Node) -> Result<Vec<(String, String)>, crate::error::Problem> {
    let mut out = Vec::new();
    for (key, who) in &node.typed_config.grants {
        let privilege = key
            .trim_start_matches('+')
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_uppercase();
        let privilege = if privilege == "ALL PRIVILEGES" {
            "ALL".to_string()
        } else {
            privilege
        };
        if !PRIVILEGES.contains(&privilege.as_str()) {
            return Err(crate::error::Problem::new(
                Code::RunGrants,
                format!(
                    "{} `{}` ({}): `{key}` under grants: is not a privilege",
                    node.resource_type.as_str(),
                    node.name,
                    node.original_file_path
                ),
            )
            .help("use PostgreSQL's table privileges: select, insert, update, delete, truncate, references, trigger, maintain or all"));
        }
        for grantee in who {
            out.push((privilege.clone(), grantee.clone()));
        }
    }
    Ok(out)
}

/// An entry of `indexes:`: its name (a hash of the model's alias, columns,
/// uniqueness and method) and what it is.
struct IndexDef {
    name: String,
    unique: bool,
    method: String,
    columns: Vec<String>,
}

impl IndexDef {
    /// What follows `create [unique] index <name> on <relation>`.
    fn body(&self) -> String {
        let cols: Vec<String> = self.columns.iter().map(|c| quote_ident(c)).collect();
        format!("using {} ({})", self.method, cols.join(", "))
    }

    fn create(&self) -> &'static str {
        if self.unique {
            "create unique index"
        } else {
            "create index"
        }
    }
}

fn index_defs(node: &Node) -> Vec<IndexDef> {
    node.typed_config
        .indexes
        .iter()
        .filter(|ix| !ix.columns.is_empty())
        .map(|ix| {
            let method = ix.method.as_deref().unwrap_or("btree").to_string();
            let key = format!(
                "{}|{}|{}|{method}",
                node.alias,
                ix.columns.join(","),
                ix.unique
            );
            IndexDef {
                name: format!("pm_ix_{}", &crate::text::sha256_hex(&key)[..20]),
                unique: ix.unique,
                method,
                columns: ix.columns.clone(),
            }
        })
        .collect()
}

/// The statements that give `relation` (an existing table that an
/// incremental run adds to) the indexes of `indexes:` it lacks: one is
/// created only when no index of the table has its columns, uniqueness and
/// method, whatever its name (dbt, which names indexes its own way, built
/// the table, say: a second copy would be built and then kept up to date).
pub fn index_sql(node: &Node, relation: &str) -> Vec<String> {
    index_defs(node)
        .into_iter()
        .map(|ix| {
            let columns: Vec<String> = ix.columns.iter().map(|c| quote_literal(c)).collect();
            format!(
                "do $pm$ begin\n\
                 if not exists (\n\
                 select 1 from pg_index i join pg_class c on c.oid = i.indexrelid join pg_am am on am.oid = c.relam\n\
                 where i.indrelid = {table}::regclass and i.indisunique = {unique} and am.amname = {method}\n\
                 and i.indpred is null and i.indexprs is null\n\
                 and array(select a.attname::text from unnest(i.indkey::int2[]) with ordinality as k(attnum, ord)\n\
                 join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum order by k.ord)\n\
                 = array[{columns}]::text[]) then\n\
                 {create} {name} on {relation} {body};\n\
                 end if;\n\
                 end $pm$",
                table = quote_literal(relation),
                unique = ix.unique,
                method = quote_literal(&ix.method),
                columns = columns.join(", "),
                create = ix.create(),
                name = quote_ident(&ix.name),
                body = ix.body(),
            )
        })
        .collect()
}

/// The indexes of a relation built under its temporary name: each created
/// on `temp_relation` under a temporary name while it is built (outside the
/// swap's locks), and renamed once it has replaced the old relation.
pub fn temp_index_sql(node: &Node, temp_relation: &str) -> Vec<(String, String)> {
    let schema = quote_ident(&node.schema);
    index_defs(node)
        .into_iter()
        .map(|ix| {
            let temp = format!("{}{TEMP_MARK}", ix.name);
            (
                format!(
                    "{} {} on {temp_relation} {}",
                    ix.create(),
                    quote_ident(&temp),
                    ix.body()
                ),
                format!(
                    "alter index {schema}.{} rename to {}",
                    quote_ident(&temp),
                    quote_ident(&ix.name)
                ),
            )
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    #[test]
    fn a_templates_changes_are_quoted_statements() {
        use crate::compile::context::WarehouseChange as C;
        let (s, n) = ("Odd Schema".to_string(), "t".to_string());
        assert_eq!(
            super::change_sql(&C::DropRelation {
                kind: "materialized view",
                schema: s.clone(),
                name: n.clone()
            }),
            "drop materialized view if exists \"Odd Schema\".\"t\" cascade"
        );
        assert_eq!(
            super::change_sql(&C::Rename {
                kind: "table",
                schema: s.clone(),
                name: n.clone(),
                new_name: "u".into()
            }),
            "alter table \"Odd Schema\".\"t\" rename to \"u\""
        );
        assert_eq!(
            super::change_sql(&C::Truncate {
                schema: s.clone(),
                name: n
            }),
            "truncate table \"Odd Schema\".\"t\""
        );
        assert_eq!(
            super::change_sql(&C::CreateSchema(s.clone())),
            "create schema if not exists \"Odd Schema\""
        );
        assert_eq!(
            super::change_sql(&C::DropSchema(s)),
            "drop schema if exists \"Odd Schema\" cascade"
        );
    }

    #[test]
    fn limits_wrap_the_query() {
        assert_eq!(
            super::limited("select 1;\n", 3),
            "select * from (\nselect 1\n) pm_show limit 3"
        );
        assert_eq!(super::limited("select 1", -1), "select 1");
    }

    #[test]
    fn grants_revoke_what_is_no_longer_listed_and_grant_what_is() {
        let pair = |p: &str, g: &str| (p.to_string(), g.to_string());
        let plan = super::grant_statements(
            "s.t",
            &[pair("SELECT", "reporter"), pair("SELECT", "Odd Role")],
            &[
                pair("SELECT", "reporter"),
                pair("UPDATE", "reporter"),
                pair("SELECT", "old"),
            ],
        );
        let statements: Vec<&str> = plan.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(
            statements,
            [
                "revoke UPDATE on s.t from \"reporter\"",
                "revoke SELECT on s.t from \"old\"",
                "grant SELECT on s.t to \"reporter\"",
                "grant SELECT on s.t to \"Odd Role\"",
            ]
        );
        assert!(super::grant_statements("s.t", &[], &[]).is_empty());
    }

    #[test]
    fn only_a_view_over_a_view_is_replaced_in_place() {
        let build = |kind| Build {
            kind,
            schema: "s".into(),
            name: "v".into(),
            temp_name: "v__pm_tmp".into(),
            prepare: String::new(),
        };
        let in_place = super::view_in_place(&build(Kind::View), "s.v", "select 1", Some("v"))
            .expect("a view over a view");
        assert_eq!(
            in_place.attempt,
            "savepoint pm_replace;\ncreate or replace view s.v as (\nselect 1\n)"
        );
        assert_eq!(
            in_place.keep,
            "release savepoint pm_replace;\ndrop view \"s\".\"v__pm_tmp\""
        );
        assert_eq!(in_place.undo, "rollback to savepoint pm_replace");
        assert!(super::view_in_place(&build(Kind::View), "s.v", "select 1", Some("r")).is_none());
        assert!(super::view_in_place(&build(Kind::View), "s.v", "select 1", None).is_none());
        assert!(super::view_in_place(&build(Kind::Table), "s.v", "select 1", Some("v")).is_none());
    }

    use super::*;

    #[test]
    fn a_swap_drops_what_was_there_and_names_the_new_relation() {
        let build = |kind| Build {
            kind,
            schema: "s".into(),
            name: "m".into(),
            temp_name: "m__pm_new".into(),
            prepare: String::new(),
        };
        let sql = |plan: crate::materialize::StatementPlan| {
            plan.into_iter().map(|(s, _)| s).collect::<Vec<_>>()
        };
        assert_eq!(
            sql(swap_statements(
                &build(Kind::Table),
                "\"s\".\"m\"",
                "select 1",
                Some("v"),
                ["alter index ix rename"]
            )),
            [
                "drop view \"s\".\"m\" cascade",
                "alter table \"s\".\"m__pm_new\" rename to \"m\"",
                "alter index ix rename",
            ]
        );
        assert_eq!(
            sql(swap_statements(
                &build(Kind::MaterializedView),
                "\"s\".\"m\"",
                "select 1",
                None,
                std::iter::empty::<&str>()
            )),
            [
                "alter materialized view \"s\".\"m__pm_new\" rename to \"m\"".to_string(),
                format!(
                    "comment on materialized view \"s\".\"m\" is '{}'",
                    definition_stamp("select 1")
                ),
            ]
        );
        assert_eq!(
            sql(swap_statements(
                &build(Kind::View),
                "\"s\".\"m\"",
                "select 1",
                Some("r"),
                ["alter index ix rename"]
            )),
            [
                "drop table \"s\".\"m\" cascade",
                "alter view \"s\".\"m__pm_new\" rename to \"m\"",
            ]
        );
    }

    #[test]
    fn a_materialized_view_is_refreshed_only_when_built_from_the_same_query() {
        let stamp = definition_stamp("select 1");
        assert_eq!(
            materialized_view_refresh("s.mv", "select 1", Some(&stamp), false).as_deref(),
            Some("refresh materialized view s.mv")
        );
        assert_eq!(
            materialized_view_refresh("s.mv", "select 2", Some(&stamp), false),
            None
        );
        assert_eq!(
            materialized_view_refresh("s.mv", "select 1", Some(&stamp), true),
            None
        );
        assert_eq!(
            materialized_view_refresh("s.mv", "select 1", None, false),
            None
        );
    }

    /// A table model `alias` in schema `s`, compiled to `select 1`.
    pub(crate) fn node(id: &str, alias: &str) -> Node {
        Node {
            unique_id: id.into(),
            resource_type: crate::manifest::ResourceType::Model,
            package_name: "p".into(),
            name: alias.into(),
            path: "x.sql".into(),
            original_file_path: "models/x.sql".into(),
            patch_path: None,
            line: 1,
            fqn: vec!["p".into(), alias.into()],
            raw_code: "".into(),
            checksum: String::new(),
            config: Default::default(),
            typed_config: Default::default(),
            materialized: Some(Materialization::Table),
            description: String::new(),
            columns: Default::default(),
            meta: Default::default(),
            docs: serde_json::Value::Null,
            database: "d".into(),
            schema: "s".into(),
            alias: alias.into(),
            refs: Vec::new(),
            sources: Vec::new(),
            depends_on: Vec::new(),
            depends_on_macros: Vec::new(),
            compiled_code: Some("select 1".into()),
            extra_ctes: Vec::new(),
            defer_relation: None,
            test: None,
            source: None,
            exposure: None,
            unit_test: None,
            semantic: None,
            extra: Default::default(),
            pre_hooks: Vec::new(),
            post_hooks: Vec::new(),
        }
    }

    #[test]
    fn temporary_names_are_unique_per_node_and_fit_postgres() {
        let long = "a".repeat(60);
        let a = temp_name(&node("model.p.a", &format!("{long}_one")));
        let b = temp_name(&node("model.p.b", &format!("{long}_two")));
        assert_ne!(a, b, "a shared 60-byte prefix");
        assert!(a.len() <= 63 && b.len() <= 63);
        assert!(is_temp_name(&a) && is_temp_name(&b));
        let short = temp_name(&node("model.p.t", "t"));
        assert!(short.starts_with("t__pm_new_") && short.len() == "t__pm_new_".len() + 8);
        // Multi-byte characters are cut on a boundary.
        let wide = temp_name(&node("model.p.w", &"é".repeat(40)));
        assert!(wide.len() <= 63 && is_temp_name(&wide));
        // A model named like a temporary name of the old scheme is not one.
        assert!(!is_temp_name("t__pm_new"));
        assert!(!is_temp_name("t__pm_new_XYZ12345"));
    }

    #[test]
    fn a_leftover_of_any_kind_is_dropped_before_the_build() {
        let b = build(&node("model.p.t", "t"), Kind::Table, None);
        assert!(b
            .prepare
            .contains("when 'v' then 'view' when 'm' then 'materialized view'"));
        assert!(!b.prepare.contains("drop view if exists"));
        assert_eq!(&b.prepare[query_offset(&b.prepare)..], "select 1\n)");
    }

    #[test]
    fn a_distributed_table_is_created_empty_distributed_then_filled() {
        let d = Distribution::Reference;
        let b = build(&node("model.p.t", "t"), Kind::Table, Some(&d));
        let tail = &b.prepare[query_offset(&b.prepare)..];
        let temp = format!("\"s\".\"{}\"", b.temp_name);
        assert_eq!(
            tail,
            format!(
                "select 1\n) with no data;\nselect create_reference_table('{temp}');\ninsert into {temp} (\nselect 1\n)"
            )
        );
    }
}
