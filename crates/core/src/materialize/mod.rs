//! Turning nodes into the statements that build them: statements are plain
//! strings, tested without a database; the adapter runs them. No database
//! here; the one file read is a seed's CSV (`seed::inspect`, for its types).

pub mod citus;
pub mod comment;
pub mod contract;
pub mod dependent_view;
pub mod export;
pub mod freshness;
pub mod incremental;
pub mod relation;
pub mod seed;
pub mod snapshot;
pub mod statement;
pub mod test;
pub mod unit_test;

use crate::error::Problem;
use crate::manifest::{Hook, Node};

/// Statements for the adapter to send in order, each with what it is for
/// (the words of an error: "adding a column").
pub type StatementPlan = Vec<(String, &'static str)>;

/// What the adapter needs of a node to build it: names for messages, where
/// it goes, its SQL, hooks and grants. The adapter never sees a `Node`.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildSpec {
    /// `model`, `seed`, … for messages.
    pub resource_type: &'static str,
    pub name: String,
    pub original_file_path: String,
    pub schema: String,
    pub alias: String,
    /// The name it is built under before it replaces the old relation.
    pub temp_name: String,
    /// The compiled SELECT (empty for seeds).
    pub sql: String,
    pub pre_hooks: Vec<Hook>,
    pub post_hooks: Vec<Hook>,
    /// (privilege, grantee) pairs from `grants:`.
    pub grants: Vec<(String, String)>,
    /// `create index` statements from `indexes:`, on the final relation.
    pub indexes: Vec<String>,
    /// The same indexes built on the temporary relation, and the statements
    /// that rename them once it is swapped in.
    pub temp_indexes: Vec<(String, String)>,
    /// An enforced contract: checked against the query before building.
    pub contract: Option<contract::Contract>,
}

impl BuildSpec {
    pub fn of(node: &Node) -> Result<BuildSpec, Problem> {
        statement::check_single(node, relation::query(node))?;
        let contract = contract::contract_of(node).map_err(|e| {
            Problem::new(
                crate::error::Code::ContractInvalid,
                format!("{} `{}`: {e}", node.resource_type.as_str(), node.name),
            )
            .help("an enforced contract declares every column with its data_type (see dbt's model contracts)")
        })?;
        Ok(BuildSpec {
            contract,
            resource_type: node.resource_type.as_str(),
            name: node.name.clone(),
            original_file_path: node.original_file_path.clone(),
            schema: node.schema.clone(),
            alias: node.alias.clone(),
            temp_name: relation::temp_name(node),
            sql: relation::query(node).to_string(),
            pre_hooks: node.pre_hooks.clone(),
            post_hooks: node.post_hooks.clone(),
            grants: relation::grants(node)?,
            indexes: relation::index_sql(node, &node.relation()),
            temp_indexes: relation::temp_index_sql(
                node,
                &format!(
                    "{}.{}",
                    crate::text::quote_ident(&node.schema),
                    crate::text::quote_ident(&relation::temp_name(node))
                ),
            ),
        })
    }
}
