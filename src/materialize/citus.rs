//! Tables on Citus: a model's (or seed's) `distributed_by`, `colocate_with`,
//! `shard_count` and `reference` config, checked, and the statement that
//! distributes its table. pm creates the table empty, distributes it, then
//! fills it with `insert … select`, which Citus pushes down to the workers
//! (or repartitions between them) instead of pulling every row through the
//! coordinator, as `create table … as` followed by distributing does.

use crate::error::Problem;
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
        "citus::config",
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

/// Refuses the incremental strategies Citus cannot run the way pm adds rows:
/// this run's rows are kept in a temporary table on the coordinator, and
/// Citus merges into a distributed or reference table only from a colocated
/// distributed one; `delete+insert` and `append` work.
pub fn check_incremental(n: &Node, strategy: super::incremental::Strategy) -> Result<(), Problem> {
    if strategy == super::incremental::Strategy::Merge {
        return Err(refused(
            n,
            "on Citus, `incremental_strategy: merge` would merge from this run's rows in a temporary table on the coordinator, which Citus refuses for a distributed or reference table".into(),
            "use incremental_strategy: delete+insert (with the unique_key) or append, which Citus runs on distributed tables",
        ));
    }
    Ok(())
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
