//! Incremental models: on the first run (or `--full-refresh`) a table like
//! any other; afterwards the model's query, with `is_incremental()` true,
//! goes into a temporary table whose rows are added to the existing one by
//! `append`, `delete+insert` or `merge` (PostgreSQL 15 MERGE). On Citus the
//! rows can be staged in a distributed table instead (see `citus`).

use super::citus::Distribution;
use crate::error::{Code, Problem};
use crate::manifest::Node;
use crate::text::quote_ident;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Append,
    DeleteInsert,
    Merge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSchemaChange {
    Ignore,
    Fail,
    AppendNewColumns,
    SyncAllColumns,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IncrementalConfig {
    pub strategy: Strategy,
    pub unique_key: Vec<String>,
    pub on_schema_change: OnSchemaChange,
    /// `incremental_predicates`: SQL conditions (on DBT_INTERNAL_DEST, as
    /// dbt names the table) added to delete+insert's delete and merge's match.
    pub predicates: Vec<String>,
    /// The columns merge updates on a match: `merge_update_columns`, or
    /// every column but `merge_exclude_columns` (None: every column).
    pub merge_update: Option<MergeUpdate>,
}

/// Which columns a merge updates on a match.
#[derive(Debug, Clone, PartialEq)]
pub enum MergeUpdate {
    Only(Vec<String>),
    AllBut(Vec<String>),
}

fn config_problem(node: &Node, msg: String, help: &str) -> Problem {
    Problem::new(
        Code::RunIncrementalConfig,
        format!("model `{}` ({}): {msg}", node.name, node.original_file_path),
    )
    .help(help.to_string())
}

/// Reads `incremental_strategy`, `unique_key` and `on_schema_change`.
pub fn config_of(node: &Node) -> Result<IncrementalConfig, Problem> {
    let config = &node.typed_config;
    let unique_key = config.unique_key.clone();
    let strategy = match config.incremental_strategy.as_deref() {
        None if unique_key.is_empty() => Strategy::Append,
        None => Strategy::DeleteInsert,
        Some("append") => Strategy::Append,
        Some("delete+insert") => Strategy::DeleteInsert,
        Some("merge") => Strategy::Merge,
        Some(other) => {
            return Err(config_problem(
                node,
                format!("unknown incremental_strategy `{other}`"),
                "use append, delete+insert or merge",
            ))
        }
    };
    if strategy != Strategy::Append && unique_key.is_empty() {
        return Err(config_problem(
            node,
            "incremental strategies delete+insert and merge need a unique_key".into(),
            "set unique_key='id' (or a list of columns), or use incremental_strategy='append'",
        ));
    }
    let on_schema_change = match config.on_schema_change.as_deref().unwrap_or("ignore") {
        "ignore" => OnSchemaChange::Ignore,
        "fail" => OnSchemaChange::Fail,
        "append_new_columns" => OnSchemaChange::AppendNewColumns,
        "sync_all_columns" => OnSchemaChange::SyncAllColumns,
        other => {
            return Err(config_problem(
                node,
                format!("unknown on_schema_change `{other}`"),
                "use ignore, fail, append_new_columns or sync_all_columns",
            ))
        }
    };
    let merge_update = match (
        config.merge_update_columns.is_empty(),
        config.merge_exclude_columns.is_empty(),
    ) {
        (true, true) => None,
        (false, true) => Some(MergeUpdate::Only(config.merge_update_columns.clone())),
        (true, false) => Some(MergeUpdate::AllBut(config.merge_exclude_columns.clone())),
        (false, false) => {
            return Err(config_problem(
                node,
                "it sets both merge_update_columns and merge_exclude_columns".into(),
                "keep one of them: the columns a merge updates, or those it leaves",
            ))
        }
    };
    if merge_update.is_some() && strategy != Strategy::Merge {
        return Err(config_problem(
            node,
            "merge_update_columns and merge_exclude_columns apply to incremental_strategy='merge' only".into(),
            "use incremental_strategy='merge', or remove them",
        ));
    }
    Ok(IncrementalConfig {
        strategy,
        unique_key,
        on_schema_change,
        predicates: config.incremental_predicates.clone(),
        merge_update,
    })
}

/// What adding this run's rows to an incremental model's table needs.
#[derive(Debug, Clone, PartialEq)]
pub struct AddRows {
    pub config: IncrementalConfig,
    /// The table holding this run's rows (qualified), the statements that
    /// create and fill it, and the one that drops it (a temporary table
    /// goes at commit).
    pub staging_table: String,
    pub create_staging: String,
    pub drop_staging: Option<String>,
}

impl AddRows {
    /// `staging`: None keeps this run's rows in a temporary table, dropped
    /// at commit. On Citus, a distribution lays them out in a table of the
    /// model's schema (under its temporary name): distributed colocated
    /// with the model's table, so that adding them runs on the workers, or
    /// a reference table beside a reference table.
    pub fn of(node: &Node, config: IncrementalConfig, staging: Option<&Distribution>) -> AddRows {
        match staging {
            None => AddRows {
                config,
                staging_table: format!("pg_temp.{}", temp_table(node)),
                create_staging: create_temp_sql(node),
                drop_staging: None,
            },
            Some(d) => {
                let build = super::relation::build(node, super::relation::Kind::Table, Some(d));
                let table = format!(
                    "{}.{}",
                    quote_ident(&build.schema),
                    quote_ident(&build.temp_name)
                );
                AddRows {
                    config,
                    drop_staging: Some(format!("drop table {table}")),
                    staging_table: table,
                    create_staging: build.prepare,
                }
            }
        }
    }
}

/// The temporary table holding this run's rows.
pub fn temp_table(node: &Node) -> String {
    let mut base = format!("pm_incr_{}", node.alias);
    while base.len() > 63 {
        base.pop();
    }
    quote_ident(&base)
}

/// `create temporary table … as (query)`, dropped at commit.
pub fn create_temp_sql(node: &Node) -> String {
    let sql = super::relation::query(node);
    let header = node
        .typed_config
        .sql_header
        .as_deref()
        .map(|h| format!("{}\n", h.trim()))
        .unwrap_or_default();
    format!(
        "{header}create temporary table {} on commit drop as (\n{sql}\n)",
        temp_table(node)
    )
}

/// Moves the staging table's rows into `relation`, writing `columns`.
pub fn apply_sql(
    config: &IncrementalConfig,
    relation: &str,
    temp: &str,
    columns: &[String],
) -> String {
    let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    let list = cols.join(", ");
    let insert = format!("insert into {relation} ({list})\nselect {list} from {temp}");
    let key_match = |l: &str, r: &str| {
        config
            .unique_key
            .iter()
            .map(|k| format!("{l}.{k} = {r}.{k}", k = quote_ident(k)))
            .collect::<Vec<_>>()
            .join(" and ")
    };
    let predicates: String = config
        .predicates
        .iter()
        .map(|p| format!("\n  and ({p})"))
        .collect();
    match config.strategy {
        Strategy::Append => insert,
        // dbt's statement: a semi-join, so that a key shared by many rows (a
        // day, say) deletes them without a join of every pair.
        Strategy::DeleteInsert => {
            let keys: Vec<String> = config.unique_key.iter().map(|k| quote_ident(k)).collect();
            let keys = keys.join(", ");
            format!(
                "delete from {relation} as DBT_INTERNAL_DEST\nwhere ({keys}) in (select distinct {keys} from {temp} as DBT_INTERNAL_SOURCE){predicates};\n{insert}"
            )
        }
        Strategy::Merge => {
            // merge_update_columns as written (one the table lacks is the
            // server's error, naming it, as in dbt).
            let updated: Vec<&String> = match &config.merge_update {
                None => columns
                    .iter()
                    .filter(|c| !config.unique_key.contains(c))
                    .collect(),
                Some(MergeUpdate::Only(only)) => only.iter().collect(),
                Some(MergeUpdate::AllBut(but)) => columns
                    .iter()
                    .filter(|c| !but.iter().any(|b| b.eq_ignore_ascii_case(c)))
                    .collect(),
            };
            let updates: Vec<String> = updated
                .into_iter()
                .map(|c| format!("{q} = DBT_INTERNAL_SOURCE.{q}", q = quote_ident(c)))
                .collect();
            let matched = if updates.is_empty() {
                "when matched then do nothing".to_string()
            } else {
                format!("when matched then update set {}", updates.join(", "))
            };
            let values: Vec<String> = cols
                .iter()
                .map(|c| format!("DBT_INTERNAL_SOURCE.{c}"))
                .collect();
            format!(
                "merge into {relation} as DBT_INTERNAL_DEST\nusing {temp} as DBT_INTERNAL_SOURCE\non {}{predicates}\n{matched}\nwhen not matched then insert ({list}) values ({})",
                key_match("DBT_INTERNAL_DEST", "DBT_INTERNAL_SOURCE"),
                values.join(", ")
            )
        }
    }
}

/// A column as the catalog describes it: name and `format_type` type.
pub type Column = (String, String);

/// What an incremental run does to the existing table before adding rows:
/// the `alter table` statements `on_schema_change` asks for (each with what
/// it is for, for an error), what they change (for the log line), and the
/// columns the rows are written to.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaChangePlan {
    pub statements: super::StatementPlan,
    pub changes: Vec<String>,
    pub write_columns: Vec<String>,
}

/// Compares the table's columns (`existing`) with those of this run's rows
/// (`incoming`) and plans as `on_schema_change` says: `ignore` writes the
/// columns both have, `fail` refuses any difference, `append_new_columns`
/// adds the new ones, `sync_all_columns` also drops the removed ones and
/// retypes the changed ones. Every `unique_key` column must be written.
pub fn plan_schema_change(
    model: &str,
    relation: &str,
    config: &IncrementalConfig,
    existing: &[Column],
    incoming: &[Column],
) -> Result<SchemaChangePlan, Problem> {
    let has = |columns: &[Column], name: &str| columns.iter().any(|(n, _)| n == name);
    let added: Vec<&Column> = incoming.iter().filter(|(n, _)| !has(existing, n)).collect();
    let removed: Vec<&Column> = existing.iter().filter(|(n, _)| !has(incoming, n)).collect();
    let retyped: Vec<&Column> = incoming
        .iter()
        .filter(|(n, t)| existing.iter().any(|(o, ot)| o == n && ot != t))
        .collect();
    let listed = |columns: &[&Column]| {
        columns
            .iter()
            .map(|(n, t)| format!("{n} {t}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let changed = !added.is_empty() || !removed.is_empty() || !retyped.is_empty();
    if config.on_schema_change == OnSchemaChange::Fail && changed {
        return Err(Problem::new(
            Code::RunSchemaChange,
            format!(
                "model `{model}`: the columns changed (added: [{}], removed: [{}], retyped: [{}]) and on_schema_change is fail",
                listed(&added),
                listed(&removed),
                listed(&retyped)
            ),
        )
        .help("set on_schema_change to append_new_columns or sync_all_columns, or rebuild with `pm run --full-refresh`; the table is unchanged"));
    }
    let mut statements = Vec::new();
    let mut changes = Vec::new();
    let mut after: Vec<&str> = existing.iter().map(|(n, _)| n.as_str()).collect();
    let appends = matches!(
        config.on_schema_change,
        OnSchemaChange::AppendNewColumns | OnSchemaChange::SyncAllColumns
    );
    if appends {
        for (n, t) in &added {
            statements.push((
                format!("alter table {relation} add column {} {t}", quote_ident(n)),
                "adding a column",
            ));
            changes.push(format!("added {n}"));
            after.push(n);
        }
    }
    if config.on_schema_change == OnSchemaChange::SyncAllColumns {
        for (n, _) in &removed {
            statements.push((
                format!("alter table {relation} drop column {}", quote_ident(n)),
                "dropping a column",
            ));
            changes.push(format!("dropped {n}"));
            after.retain(|a| a != n);
        }
        for (n, t) in &retyped {
            let q = quote_ident(n);
            statements.push((
                format!("alter table {relation} alter column {q} type {t} using {q}::{t}"),
                "changing a column type",
            ));
            changes.push(format!("retyped {n} to {t}"));
        }
    }
    let write_columns: Vec<String> = incoming
        .iter()
        .map(|(n, _)| n.clone())
        .filter(|n| after.contains(&n.as_str()))
        .collect();
    if let Some(k) = config
        .unique_key
        .iter()
        .find(|k| !write_columns.contains(k))
    {
        return Err(Problem::new(
            Code::RunUniqueKey,
            format!("model `{model}`: unique_key column `{k}` is not among the model's columns"),
        )
        .help("name a column the model selects in unique_key"));
    }
    Ok(SchemaChangePlan {
        statements,
        changes,
        write_columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(spec: &[(&str, &str)]) -> Vec<Column> {
        spec.iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect()
    }

    fn with_schema_change(on_schema_change: OnSchemaChange, keys: &[&str]) -> IncrementalConfig {
        IncrementalConfig {
            on_schema_change,
            ..p(Strategy::DeleteInsert, keys)
        }
    }

    #[test]
    fn schema_change_plans_follow_on_schema_change() {
        let existing = columns(&[("id", "integer"), ("old", "text"), ("amount", "integer")]);
        let incoming = columns(&[("id", "integer"), ("amount", "numeric"), ("new", "date")]);
        let plan = |policy| {
            plan_schema_change(
                "m",
                "s.m",
                &with_schema_change(policy, &["id"]),
                &existing,
                &incoming,
            )
        };

        let ignore = plan(OnSchemaChange::Ignore).unwrap();
        assert!(ignore.statements.is_empty());
        assert_eq!(ignore.write_columns, ["id", "amount"]);

        let append = plan(OnSchemaChange::AppendNewColumns).unwrap();
        assert_eq!(
            append.statements,
            [(
                "alter table s.m add column \"new\" date".to_string(),
                "adding a column"
            )]
        );
        assert_eq!(append.changes, ["added new"]);
        assert_eq!(append.write_columns, ["id", "amount", "new"]);

        let sync = plan(OnSchemaChange::SyncAllColumns).unwrap();
        let sql: Vec<&str> = sync.statements.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(
            sql,
            [
                "alter table s.m add column \"new\" date",
                "alter table s.m drop column \"old\"",
                "alter table s.m alter column \"amount\" type numeric using \"amount\"::numeric",
            ]
        );
        assert_eq!(
            sync.changes,
            ["added new", "dropped old", "retyped amount to numeric"]
        );
        assert_eq!(sync.write_columns, ["id", "amount", "new"]);

        let fail = plan(OnSchemaChange::Fail).unwrap_err();
        assert!(
            fail.to_string().contains(
                "the columns changed (added: [new date], removed: [old text], retyped: [amount numeric]) and on_schema_change is fail"
            ),
            "{fail}"
        );
    }

    #[test]
    fn unchanged_columns_plan_nothing_even_under_fail() {
        let same = columns(&[("id", "integer"), ("v", "text")]);
        let plan = plan_schema_change(
            "m",
            "s.m",
            &with_schema_change(OnSchemaChange::Fail, &["id"]),
            &same,
            &same,
        )
        .unwrap();
        assert!(plan.statements.is_empty() && plan.changes.is_empty());
        assert_eq!(plan.write_columns, ["id", "v"]);
    }

    #[test]
    fn a_unique_key_the_rows_do_not_write_is_refused() {
        let existing = columns(&[("id", "integer"), ("v", "text")]);
        let incoming = columns(&[("key", "integer"), ("v", "text")]);
        let refused = plan_schema_change(
            "m",
            "s.m",
            &with_schema_change(OnSchemaChange::Ignore, &["key"]),
            &existing,
            &incoming,
        )
        .unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("model `m`: unique_key column `key` is not among the model's columns"),
            "{refused}"
        );
    }

    fn p(strategy: Strategy, keys: &[&str]) -> IncrementalConfig {
        IncrementalConfig {
            strategy,
            unique_key: keys.iter().map(|k| k.to_string()).collect(),
            on_schema_change: OnSchemaChange::Ignore,
            predicates: Vec::new(),
            merge_update: None,
        }
    }

    #[test]
    fn statements_per_strategy() {
        let cols = vec!["id".to_string(), "v".to_string()];
        assert_eq!(
            apply_sql(&p(Strategy::Append, &[]), "t1", "tmp", &cols),
            "insert into t1 (\"id\", \"v\")\nselect \"id\", \"v\" from tmp"
        );
        insta::assert_snapshot!(apply_sql(&p(Strategy::DeleteInsert, &["id"]), "t1", "tmp", &cols), @r#"
        delete from t1 as DBT_INTERNAL_DEST
        where ("id") in (select distinct "id" from tmp as DBT_INTERNAL_SOURCE);
        insert into t1 ("id", "v")
        select "id", "v" from tmp
        "#);
        insta::assert_snapshot!(apply_sql(&p(Strategy::Merge, &["id"]), "t1", "tmp", &cols), @r#"
        merge into t1 as DBT_INTERNAL_DEST
        using tmp as DBT_INTERNAL_SOURCE
        on DBT_INTERNAL_DEST."id" = DBT_INTERNAL_SOURCE."id"
        when matched then update set "v" = DBT_INTERNAL_SOURCE."v"
        when not matched then insert ("id", "v") values (DBT_INTERNAL_SOURCE."id", DBT_INTERNAL_SOURCE."v")
        "#);
    }

    #[test]
    fn predicates_narrow_the_delete_and_the_match_and_merge_updates_what_it_is_told() {
        let cols = vec!["id".to_string(), "v".to_string(), "w".to_string()];
        let mut c = p(Strategy::DeleteInsert, &["id"]);
        c.predicates = vec!["DBT_INTERNAL_DEST.day >= current_date - 3".into()];
        insta::assert_snapshot!(apply_sql(&c, "t1", "tmp", &cols[..2]), @r#"
        delete from t1 as DBT_INTERNAL_DEST
        where ("id") in (select distinct "id" from tmp as DBT_INTERNAL_SOURCE)
          and (DBT_INTERNAL_DEST.day >= current_date - 3);
        insert into t1 ("id", "v")
        select "id", "v" from tmp
        "#);
        c.strategy = Strategy::Merge;
        c.merge_update = Some(MergeUpdate::AllBut(vec!["W".into()]));
        insta::assert_snapshot!(apply_sql(&c, "t1", "tmp", &cols), @r#"
        merge into t1 as DBT_INTERNAL_DEST
        using tmp as DBT_INTERNAL_SOURCE
        on DBT_INTERNAL_DEST."id" = DBT_INTERNAL_SOURCE."id"
          and (DBT_INTERNAL_DEST.day >= current_date - 3)
        when matched then update set "id" = DBT_INTERNAL_SOURCE."id", "v" = DBT_INTERNAL_SOURCE."v"
        when not matched then insert ("id", "v", "w") values (DBT_INTERNAL_SOURCE."id", DBT_INTERNAL_SOURCE."v", DBT_INTERNAL_SOURCE."w")
        "#);
        c.merge_update = Some(MergeUpdate::Only(vec!["w".into()]));
        assert!(apply_sql(&c, "t1", "tmp", &cols)
            .contains("update set \"w\" = DBT_INTERNAL_SOURCE.\"w\"\n"));
    }
}
