//! Incremental models: on the first run (or `--full-refresh`) a table like
//! any other; afterwards the model's query, with `is_incremental()` true,
//! goes into a temporary table whose rows are added to the existing one by
//! `append`, `delete+insert` or `merge` (PostgreSQL 15 MERGE). On Citus the
//! rows can be staged in a distributed table instead (see `citus`).

use super::citus::Distribution;
use crate::error::Problem;
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
        "run::incremental_config",
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
    format!(
        "create temporary table {} on commit drop as (\n{sql}\n)",
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

#[cfg(test)]
mod tests {
    use super::*;

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
