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
    Ok(IncrementalConfig {
        strategy,
        unique_key,
        on_schema_change,
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
    match config.strategy {
        Strategy::Append => insert,
        // dbt's statement: a semi-join, so that a key shared by many rows (a
        // day, say) deletes them without a join of every pair.
        Strategy::DeleteInsert => {
            let keys: Vec<String> = config.unique_key.iter().map(|k| quote_ident(k)).collect();
            let keys = keys.join(", ");
            format!(
                "delete from {relation}\nwhere ({keys}) in (select distinct {keys} from {temp});\n{insert}"
            )
        }
        Strategy::Merge => {
            let updates: Vec<String> = columns
                .iter()
                .filter(|c| !config.unique_key.contains(c))
                .map(|c| format!("{q} = s.{q}", q = quote_ident(c)))
                .collect();
            let matched = if updates.is_empty() {
                "when matched then do nothing".to_string()
            } else {
                format!("when matched then update set {}", updates.join(", "))
            };
            let values: Vec<String> = cols.iter().map(|c| format!("s.{c}")).collect();
            format!(
                "merge into {relation} as t\nusing {temp} as s\non {}\n{matched}\nwhen not matched then insert ({list}) values ({})",
                key_match("t", "s"),
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
        }
    }

    #[test]
    fn statements_per_strategy() {
        let cols = vec!["id".to_string(), "v".to_string()];
        assert_eq!(
            apply_sql(&p(Strategy::Append, &[]), "t1", "tmp", &cols),
            "insert into t1 (\"id\", \"v\")\nselect \"id\", \"v\" from tmp"
        );
        assert_eq!(
            apply_sql(&p(Strategy::DeleteInsert, &["id"]), "t1", "tmp", &cols),
            "delete from t1\nwhere (\"id\") in (select distinct \"id\" from tmp);\ninsert into t1 (\"id\", \"v\")\nselect \"id\", \"v\" from tmp"
        );
        assert_eq!(
            apply_sql(&p(Strategy::Merge, &["id"]), "t1", "tmp", &cols),
            "merge into t1 as t\nusing tmp as s\non t.\"id\" = s.\"id\"\nwhen matched then update set \"v\" = s.\"v\"\nwhen not matched then insert (\"id\", \"v\") values (s.\"id\", s.\"v\")"
        );
    }
}
