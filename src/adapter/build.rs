//! Building view and table models in the warehouse.

use crate::error::Problem;
use crate::manifest::{quote_ident, Node};
use crate::materialize::relation::{query_offset, Build};
use std::sync::Arc;

/// What a build did, for the log line.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    pub kind: &'static str,
    /// Views on the relation that were re-created to point at the new one.
    pub repointed: Vec<String>,
}

/// A database error in a model: the message, and the compiled SQL with the
/// position PostgreSQL reported marked.
fn model_problem(
    node: &Node,
    compiled_path: &str,
    build: &Build,
    what: &str,
    e: &tokio_postgres::Error,
) -> Problem {
    let Some(db) = e.as_db_error() else {
        return Problem::new(
            "run::connection",
            format!(
                "{} `{}`: {what} failed: {e}",
                node.resource_type.as_str(),
                node.name
            ),
        )
        .help("the connection to the server failed; check the server and run again");
    };
    let mut p = Problem::new(
        "run::database",
        format!(
            "{} `{}` ({}): {}",
            node.resource_type.as_str(),
            node.name,
            node.original_file_path,
            db.message()
        ),
    )
    .help(
        db.hint()
            .map(|h| format!("{h} (the previous relation is unchanged)"))
            .unwrap_or_else(|| "fix the model; the previous relation is unchanged".into()),
    );
    let sql = node.compiled_code.clone().unwrap_or_default();
    if let Some(tokio_postgres::error::ErrorPosition::Original(pos)) = db.position() {
        // The position counts characters of what was sent; our query starts after `as (\n`.
        let sent = &build.prepare;
        let char_pos = (*pos as usize).saturating_sub(1);
        let byte = sent
            .char_indices()
            .nth(char_pos)
            .map(|(b, _)| b)
            .unwrap_or(sent.len());
        let start = query_offset(sent);
        if byte >= start && byte - start <= sql.len() {
            let at = byte - start;
            p = p
                .in_file(compiled_path, Arc::from(sql.as_str()))
                .label(at..at + 1, db.message().to_string());
        }
    }
    p
}

fn relkind_name(relkind: &str) -> &'static str {
    match relkind {
        "v" => "view",
        "m" => "materialized view",
        "f" => "foreign table",
        _ => "table",
    }
}

/// Builds the model and puts it in place of the old relation, in one transaction.
pub async fn build_relation(
    client: &mut tokio_postgres::Client,
    node: &Node,
    build: &Build,
    compiled_path: &str,
) -> Result<Built, Problem> {
    let schema = quote_ident(&build.schema);
    let target = format!("{schema}.{}", quote_ident(&build.name));
    let temp = format!("{schema}.{}", quote_ident(&build.temp_name));
    let db = |what: &'static str| {
        move |e: tokio_postgres::Error| model_problem(node, compiled_path, build, what, &e)
    };
    let tx = client.transaction().await.map_err(db("begin"))?;
    tx.batch_execute(&build.prepare)
        .await
        .map_err(db("building"))?;
    let existing: Option<String> = tx
        .query_opt(
            "select c.relkind::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = $1 and c.relname = $2",
            &[&build.schema, &build.name],
        )
        .await
        .map_err(db("looking up the relation"))?
        .map(|r| r.get(0));
    let mut repointed = Vec::new();
    if let Some(kind) = existing {
        // Views that read the old relation, directly or through each other,
        // with their definitions, shallowest first: re-created after the swap.
        let dependents = tx
            .query(
                "with recursive deps(oid, depth) as (
                     select r.ev_class, 1 from pg_depend d join pg_rewrite r on r.oid = d.objid
                     where d.refobjid = to_regclass($1) and r.ev_class <> d.refobjid
                   union
                     select r.ev_class, deps.depth + 1 from deps
                     join pg_depend d on d.refobjid = deps.oid
                     join pg_rewrite r on r.oid = d.objid
                     where r.ev_class <> deps.oid and deps.depth < 50
                 )
                 select c.oid::regclass::text, c.relkind::text, pg_get_viewdef(c.oid)
                 from deps join pg_class c on c.oid = deps.oid
                 group by c.oid, c.relkind
                 order by max(deps.depth), 1",
                &[&target],
            )
            .await
            .map_err(db("looking up dependent views"))?;
        tx.batch_execute(&format!("drop {} {target} cascade", relkind_name(&kind)))
            .await
            .map_err(db("replacing the relation"))?;
        tx.batch_execute(&format!(
            "alter {} {temp} rename to {}",
            build.kind.sql(),
            quote_ident(&build.name)
        ))
        .await
        .map_err(db("replacing the relation"))?;
        for row in &dependents {
            let (name, kind, def): (String, String, String) = (row.get(0), row.get(1), row.get(2));
            let create = format!("create {} {name} as {def}", relkind_name(&kind));
            tx.batch_execute(&create).await.map_err(|e| {
                Problem::new(
                    "run::dependent",
                    format!(
                        "{} `{}` was not replaced: view {name}, which depends on it, does not work with the new version: {}",
                        node.resource_type.as_str(),
                        node.name,
                        e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string())
                    ),
                )
                .help(format!("change or drop {name} first; the previous {} `{}` is unchanged", relkind_name(&kind), node.name))
            })?;
            repointed.push(name);
        }
    } else {
        tx.batch_execute(&format!(
            "alter {} {temp} rename to {}",
            build.kind.sql(),
            quote_ident(&build.name)
        ))
        .await
        .map_err(db("naming the relation"))?;
    }
    tx.commit().await.map_err(db("commit"))?;
    Ok(Built {
        kind: build.kind.sql(),
        repointed,
    })
}
