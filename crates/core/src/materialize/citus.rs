//! Tables on Citus: a model's (or seed's) `distributed_by`, `colocate_with`,
//! `shard_count` and `reference` config, checked, and the statement that
//! distributes its table. pm creates the table empty, distributes it, then
//! fills it with `insert … select`, which Citus pushes down to the workers
//! (or repartitions between them) instead of pulling every row through the
//! coordinator, as `create table … as` followed by distributing does.

use super::incremental::{IncrementalConfig, Strategy};
use crate::error::{Code, Problem};
use crate::manifest::{Materialization, Node};
use crate::text::quote_literal;

/// Where a table's shards go.
#[derive(Debug, Clone, PartialEq)]
pub enum Distribution {
    /// Hash-distributed by a column.
    Hash {
        column: String,
        colocate_with: Colocation,
        shard_count: Option<u64>,
    },
    /// A copy on every node.
    Reference,
}

/// Which tables a hash-distributed table shares its shards' nodes with.
#[derive(Debug, Clone, PartialEq)]
pub enum Colocation {
    /// Citus' default: tables of the same shard count and column type.
    Default,
    /// A group of its own.
    None,
    /// The table of this relation (`"schema"."name"`).
    With(String),
}

fn refused(n: &Node, msg: String, help: &str) -> Problem {
    Problem::new(
        Code::CitusConfig,
        format!(
            "{} `{}` ({}): {msg}",
            n.resource_type.as_str(),
            n.name,
            n.original_file_path
        ),
    )
    .help(help.to_string())
}

/// Whether the node asks for a Citus layout.
pub fn configured(n: &Node) -> bool {
    let c = &n.typed_config;
    c.distributed_by.is_some()
        || c.reference
        || c.colocate_with.is_some()
        || c.shard_count.is_some()
}

/// The node's distribution, checked; None when it asks for none.
/// `relation_of` names a model's relation (`colocate_with: model`).
pub fn distribution_of(
    n: &Node,
    relation_of: impl Fn(&str) -> Option<String>,
) -> Result<Option<Distribution>, Problem> {
    if !configured(n) {
        return Ok(None);
    }
    let c = &n.typed_config;
    let builds_a_table = matches!(
        n.materialized,
        Some(Materialization::Table | Materialization::Incremental | Materialization::Seed)
    );
    if !builds_a_table {
        return Err(refused(
            n,
            format!(
                "Citus distributes tables, and this node is materialized as `{}`",
                n.materialized_name()
            ),
            "set distributed_by / reference on table and incremental models and seeds only",
        ));
    }
    if c.reference {
        if c.distributed_by.is_some() || c.colocate_with.is_some() || c.shard_count.is_some() {
            return Err(refused(
                n,
                "a reference table is copied to every node: it has no distribution column, colocation or shard count".into(),
                "keep either `reference: true` or `distributed_by:` (with colocate_with / shard_count)",
            ));
        }
        return Ok(Some(Distribution::Reference));
    }
    let Some(column) = c.distributed_by.clone() else {
        return Err(refused(
            n,
            "colocate_with and shard_count need a distribution column".into(),
            "add `distributed_by: <column>`",
        ));
    };
    let colocate_with = match c.colocate_with.as_deref() {
        None | Some("default") => Colocation::Default,
        Some("none") => Colocation::None,
        Some(model) => Colocation::With(relation_of(model).ok_or_else(|| {
            refused(
                n,
                format!("colocate_with names `{model}`, which is not a model of the project"),
                "name a hash-distributed model (or `none`, or `default`)",
            )
        })?),
    };
    if matches!(colocate_with, Colocation::With(_)) && c.shard_count.is_some() {
        return Err(refused(
            n,
            "a table colocated with another has that table's shard count".into(),
            "remove shard_count, or colocate_with",
        ));
    }
    Ok(Some(Distribution::Hash {
        column,
        colocate_with,
        shard_count: c.shard_count,
    }))
}

/// Where an incremental model laid out as `target` keeps this run's rows
/// before adding them to its table (`relation`): Some(a distribution) for a
/// distributed table colocated with it, so that the rows are written on the
/// workers and added shard by shard, or for a reference table beside a
/// reference table (Citus refuses to add a coordinator table's rows to
/// one); None for a temporary table on the coordinator, which Citus sends
/// to the workers when it adds the rows. Refuses what Citus cannot run:
/// MERGE into a reference table, and MERGE whose `unique_key` leaves out
/// the distribution column.
pub fn incremental_staging(
    n: &Node,
    config: &IncrementalConfig,
    target: &Distribution,
    relation: &str,
) -> Result<Option<Distribution>, Problem> {
    let colocated = |column: &str| Distribution::Hash {
        column: column.to_string(),
        colocate_with: Colocation::With(relation.to_string()),
        shard_count: None,
    };
    match target {
        Distribution::Reference if config.strategy == Strategy::Merge => Err(refused(
            n,
            "on Citus, `incremental_strategy: merge` cannot write into a reference table: Citus refuses a reference table as MERGE's target".into(),
            "use incremental_strategy: delete+insert (with the same unique_key) or append",
        )),
        Distribution::Reference => Ok(Some(Distribution::Reference)),
        Distribution::Hash { column, .. } => {
            let keyed = config.unique_key.iter().any(|k| k == column);
            match config.strategy {
                Strategy::Append => Ok(Some(colocated(column))),
                _ if keyed => Ok(Some(colocated(column))),
                Strategy::DeleteInsert => Ok(None),
                Strategy::Merge => Err(refused(
                    n,
                    format!(
                        "on Citus, `incremental_strategy: merge` matches rows on each worker, so its unique_key must hold the distribution column `{column}` (unique_key: [{}])",
                        config.unique_key.join(", ")
                    ),
                    &format!("add `{column}` to unique_key, or use incremental_strategy: delete+insert"),
                )),
            }
        }
    }
}

/// The statement that distributes table `relation` (`"schema"."name"`).
pub fn distribute_sql(relation: &str, d: &Distribution) -> String {
    match d {
        Distribution::Reference => {
            format!("select create_reference_table({})", quote_literal(relation))
        }
        Distribution::Hash {
            column,
            colocate_with,
            shard_count,
        } => {
            let mut args = vec![quote_literal(relation), quote_literal(column)];
            match colocate_with {
                Colocation::Default => {}
                Colocation::None => args.push("colocate_with => 'none'".into()),
                Colocation::With(r) => args.push(format!("colocate_with => {}", quote_literal(r))),
            }
            if let Some(k) = shard_count {
                args.push(format!("shard_count => {k}"));
            }
            format!("select create_distributed_table({})", args.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::materialize::incremental::OnSchemaChange;
    use crate::materialize::relation::tests::node;

    #[test]
    fn incremental_rows_are_staged_colocated_when_citus_can_add_them_shard_by_shard() {
        let n = node("model.p.log", "log");
        let config = |strategy, keys: &[&str]| IncrementalConfig {
            strategy,
            unique_key: keys.iter().map(|k| k.to_string()).collect(),
            on_schema_change: OnSchemaChange::Ignore,
            predicates: Vec::new(),
            merge_update: None,
        };
        let hash = Distribution::Hash {
            column: "user_id".into(),
            colocate_with: Colocation::Default,
            shard_count: Some(8),
        };
        let colocated = Some(Distribution::Hash {
            column: "user_id".into(),
            colocate_with: Colocation::With("\"s\".\"log\"".into()),
            shard_count: None,
        });
        let staging = |c: &IncrementalConfig, d: &Distribution| {
            incremental_staging(&n, c, d, "\"s\".\"log\"").map_err(|p| p.to_string())
        };
        assert_eq!(
            staging(&config(Strategy::Append, &[]), &hash),
            Ok(colocated.clone())
        );
        for strategy in [Strategy::DeleteInsert, Strategy::Merge] {
            assert_eq!(
                staging(&config(strategy, &["day", "user_id"]), &hash),
                Ok(colocated.clone())
            );
        }
        // Keyed on another column: Citus sends a temporary table's rows to
        // every worker for delete+insert, and refuses such a MERGE.
        assert_eq!(
            staging(&config(Strategy::DeleteInsert, &["day"]), &hash),
            Ok(None)
        );
        let merge = staging(&config(Strategy::Merge, &["day"]), &hash).unwrap_err();
        assert!(
            merge.contains("must hold the distribution column `user_id` (unique_key: [day])"),
            "{merge}"
        );
        // A reference table adds rows from another; MERGE into it is refused.
        let r = Distribution::Reference;
        assert_eq!(
            staging(&config(Strategy::DeleteInsert, &["id"]), &r),
            Ok(Some(Distribution::Reference))
        );
        assert_eq!(
            staging(&config(Strategy::Append, &[]), &r),
            Ok(Some(Distribution::Reference))
        );
        let merge = staging(&config(Strategy::Merge, &["id"]), &r).unwrap_err();
        assert!(
            merge.contains("a reference table as MERGE's target"),
            "{merge}"
        );
    }

    #[test]
    fn distribution_statements() {
        let hash = Distribution::Hash {
            column: "user_id".into(),
            colocate_with: Colocation::With("\"analytics\".\"dim_users\"".into()),
            shard_count: None,
        };
        assert_eq!(
            distribute_sql("\"analytics\".\"fct\"", &hash),
            "select create_distributed_table('\"analytics\".\"fct\"', 'user_id', colocate_with => '\"analytics\".\"dim_users\"')"
        );
        let alone = Distribution::Hash {
            column: "id".into(),
            colocate_with: Colocation::None,
            shard_count: Some(8),
        };
        assert_eq!(
            distribute_sql("t", &alone),
            "select create_distributed_table('t', 'id', colocate_with => 'none', shard_count => 8)"
        );
        assert_eq!(
            distribute_sql("t", &Distribution::Reference),
            "select create_reference_table('t')"
        );
    }
}
