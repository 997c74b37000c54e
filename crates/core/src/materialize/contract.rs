//! Model contracts (dbt 1.5, `contract: {enforced: true}`) as dbt-postgres
//! enforces them: the query's columns must be the YAML's, by name and type,
//! before anything is built; a table is created with the declared types and
//! constraints (`not_null`, `unique`, `primary_key`, `foreign_key`, `check`,
//! column and model level) and filled from the query; a view gets the
//! check only.

use crate::manifest::Node;
use crate::text::quote_ident;
use serde_json::Value as Json;

/// A column the contract declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractColumn {
    pub name: String,
    /// `quote: true` in the YAML: the name is used as written; otherwise
    /// it folds to lower case, as an unquoted name does in PostgreSQL.
    pub quoted: bool,
    /// As written in the YAML (`numeric(10,2)`, `int`, `text`).
    pub data_type: String,
    /// SQL after the type: `not null`, `unique`, `check (…)`, …
    pub constraints: Vec<String>,
}

impl ContractColumn {
    /// Whether the query's column `name` is this one.
    fn names(&self, name: &str) -> bool {
        if self.quoted {
            self.name == name
        } else {
            self.name.to_lowercase() == name
        }
    }

    /// The name in SQL.
    fn sql_name(&self) -> String {
        if self.quoted {
            quote_ident(&self.name)
        } else {
            quote_ident(&self.name.to_lowercase())
        }
    }
}

/// An enforced contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contract {
    pub columns: Vec<ContractColumn>,
    /// Table constraints: `primary key (a, b)`, `check (…)`, …
    pub model_constraints: Vec<String>,
}

/// The node's contract, when enforced; the error names what is missing.
pub fn contract_of(node: &Node) -> Result<Option<Contract>, String> {
    let enforced = node
        .config
        .get("contract")
        .and_then(|c| c.get("enforced"))
        .and_then(Json::as_bool)
        == Some(true);
    if !enforced {
        return Ok(None);
    }
    let text = |k: &str| node.config.get(k).and_then(Json::as_str);
    if text("materialized") == Some("incremental")
        && !matches!(
            text("on_schema_change"),
            Some("append_new_columns" | "fail")
        )
    {
        return Err(format!(
            "on_schema_change is `{}`: incremental models with an enforced contract must set it to `append_new_columns` or `fail` (as dbt requires)",
            text("on_schema_change").unwrap_or("ignore")
        ));
    }
    if node.columns.is_empty() {
        return Err("its contract is enforced, and its YAML declares no columns".into());
    }
    let mut columns = Vec::new();
    for c in node.columns.values() {
        let data_type = c
            .data_type
            .clone()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                format!(
                    "column `{}` has no `data_type`, which an enforced contract needs",
                    c.name
                )
            })?;
        let constraints = match c.extra.get("constraints") {
            Some(Json::Array(list)) => list
                .iter()
                .map(|k| constraint_sql(k, None))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("column `{}`: {e}", c.name))?,
            None | Some(Json::Null) => Vec::new(),
            Some(other) => {
                return Err(format!(
                    "column `{}`: `constraints` must be a list, not {other}",
                    c.name
                ))
            }
        };
        columns.push(ContractColumn {
            name: c.name.clone(),
            quoted: c.quote == Some(true),
            data_type,
            constraints: constraints.into_iter().flatten().collect(),
        });
    }
    let model_constraints = match node.extra.get("constraints") {
        Some(Json::Array(list)) => list
            .iter()
            .map(|k| {
                let cols = k.get("columns").and_then(Json::as_array).map(|a| {
                    a.iter()
                        .filter_map(Json::as_str)
                        .map(quote_ident)
                        .collect::<Vec<_>>()
                        .join(", ")
                });
                constraint_sql(k, Some(cols.unwrap_or_default()))
            })
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect(),
        _ => Vec::new(),
    };
    Ok(Some(Contract {
        columns,
        model_constraints,
    }))
}

/// One constraint's SQL; `columns` for a model-level one (`primary key (a)`).
/// None for a constraint PostgreSQL cannot enforce on this kind (dbt-postgres
/// applies them all).
fn constraint_sql(k: &Json, columns: Option<String>) -> Result<Option<String>, String> {
    let kind = k
        .get("type")
        .and_then(Json::as_str)
        .ok_or("a constraint needs a `type`")?;
    let expression = k.get("expression").and_then(Json::as_str);
    let named = |sql: String| match k.get("name").and_then(Json::as_str) {
        Some(n) => format!("constraint {} {sql}", quote_ident(n)),
        None => sql,
    };
    let on = |cols: &Option<String>| cols.as_ref().map(|c| format!(" ({c})")).unwrap_or_default();
    Ok(Some(match kind {
        "not_null" if columns.is_none() => "not null".to_string(),
        "not_null" => return Err("a model-level constraint cannot be `not_null`: put it on the column".into()),
        "unique" => named(format!("unique{}", on(&columns))),
        "primary_key" => named(format!("primary key{}", on(&columns))),
        "check" => named(format!(
            "check ({})",
            expression.ok_or("a `check` constraint needs an `expression`")?
        )),
        "foreign_key" => {
            let to = match (k.get("to"), expression) {
                (Some(_), _) => return Err("a `foreign_key` constraint's `to:` (dbt 1.9) is not supported by pm yet: write the referenced table and columns in `expression` (`analytics.customers (id)`)".into()),
                (None, Some(e)) => e.to_string(),
                (None, None) => return Err("a `foreign_key` constraint needs an `expression`: the referenced table and columns".into()),
            };
            match &columns {
                Some(c) => named(format!("foreign key ({c}) references {to}")),
                None => named(format!("references {to}")),
            }
        }
        "custom" => expression.ok_or("a `custom` constraint needs an `expression`")?.to_string(),
        other => return Err(format!("unknown constraint type `{other}` (not_null, unique, primary_key, foreign_key, check, custom)")),
    }))
}

/// The rows of dbt's "enforced contract failed" table: each column missing
/// from the query, added by it, or of another type. `query` and `declared`
/// carry the server's names of the types (`integer` for `int`).
pub fn mismatches(
    contract: &Contract,
    declared: &[String],
    query: &[(String, String)],
) -> Vec<String> {
    let mut out = Vec::new();
    for (c, want) in contract.columns.iter().zip(declared) {
        match query.iter().find(|(n, _)| c.names(n)) {
            None => out.push(format!(
                "| {} | | {} | missing in definition |",
                c.name, c.data_type
            )),
            Some((_, got)) if got != want => out.push(format!(
                "| {} | {got} | {} | data type mismatch |",
                c.name, c.data_type
            )),
            Some(_) => {}
        }
    }
    for (n, got) in query {
        if !contract.columns.iter().any(|c| c.names(n)) {
            out.push(format!("| {n} | {got} | | missing in contract |"));
        }
    }
    out
}

/// `create table temp (columns with types and constraints, model
/// constraints)`, then the query's rows into it, by column name.
pub fn create_and_fill_sql(contract: &Contract, create: &str, temp: &str, sql: &str) -> String {
    let mut parts: Vec<String> = contract
        .columns
        .iter()
        .map(|c| {
            let mut line = format!("{} {}", c.sql_name(), c.data_type);
            for k in &c.constraints {
                line.push(' ');
                line.push_str(k);
            }
            line
        })
        .collect();
    parts.extend(contract.model_constraints.iter().cloned());
    let names: Vec<String> = contract
        .columns
        .iter()
        .map(ContractColumn::sql_name)
        .collect();
    format!(
        "create {create} {temp} (\n    {}\n);\ninsert into {temp} ({cols})\nselect {cols} from (\n{sql}\n) as model_subq",
        parts.join(",\n    "),
        cols = names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::{create_and_fill_sql, mismatches, Contract, ContractColumn};

    fn contract() -> Contract {
        Contract {
            columns: vec![
                ContractColumn {
                    name: "id".into(),
                    quoted: false,
                    data_type: "int".into(),
                    constraints: vec!["not null".into(), "primary key".into()],
                },
                ContractColumn {
                    name: "Name".into(),
                    quoted: false,
                    data_type: "text".into(),
                    constraints: vec![],
                },
            ],
            model_constraints: vec!["check (id > 0)".into()],
        }
    }

    #[test]
    fn the_table_has_the_declared_types_and_constraints() {
        assert_eq!(
            create_and_fill_sql(&contract(), "table", "s.t", "select 1 as id, 'a' as name"),
            "create table s.t (\n    \"id\" int not null primary key,\n    \"name\" text,\n    check (id > 0)\n);\ninsert into s.t (\"id\", \"name\")\nselect \"id\", \"name\" from (\nselect 1 as id, 'a' as name\n) as model_subq"
        );
    }

    #[test]
    fn each_difference_is_a_row() {
        let declared = ["integer".to_string(), "text".to_string()];
        assert!(mismatches(
            &contract(),
            &declared,
            &[
                ("id".into(), "integer".into()),
                ("name".into(), "text".into())
            ]
        )
        .is_empty());
        let rows = mismatches(
            &contract(),
            &declared,
            &[
                ("id".into(), "text".into()),
                ("extra".into(), "date".into()),
            ],
        );
        assert_eq!(
            rows,
            [
                "| id | text | int | data type mismatch |",
                "| Name | | text | missing in definition |",
                "| extra | date | | missing in contract |"
            ]
        );
    }
}
