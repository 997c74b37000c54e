//! Running a snapshot: its source query materialized, then the history
//! created or brought up to date, all in one transaction, so an interrupted
//! run leaves the previous history as it was.

use super::build::{apply_grants, interrupted_or_lost, run_hooks};
use crate::Connection;
use pm_core::error::{Code, Problem};
use pm_core::materialize::snapshot::{SnapshotPlan, SOURCE_TABLE};
use pm_core::materialize::BuildSpec;
use pm_core::warehouse::Snapshotted;

fn problem(spec: &BuildSpec, what: &str, e: &tokio_postgres::Error) -> Problem {
    if let Some(p) = interrupted_or_lost(spec.resource_type, &spec.name, what, e) {
        return p;
    }
    Problem::new(
        Code::RunDatabase,
        format!(
            "snapshot `{}` ({}): {what} failed: {}",
            spec.name,
            spec.original_file_path,
            super::error_text(e)
        ),
    )
    .help("fix the snapshot; its history is unchanged")
}

pub async fn run_snapshot(
    client: &mut Connection,
    spec: &BuildSpec,
    plan: &SnapshotPlan,
) -> Result<Snapshotted, Problem> {
    let client = client.pg_mut();
    client
        .batch_execute(&format!(
            "create schema if not exists {}",
            pm_core::text::quote_ident(&spec.schema)
        ))
        .await
        .map_err(|e| problem(spec, "creating the schema", &e))?;
    run_hooks(&*client, spec, &spec.pre_hooks, false, "a pre-hook").await?;
    let tx = client
        .transaction()
        .await
        .map_err(|e| problem(spec, "starting a transaction", &e))?;
    run_hooks(&tx, spec, &spec.pre_hooks, true, "a pre-hook").await?;
    tx.batch_execute(&format!(
        "create temporary table {SOURCE_TABLE} on commit drop as\n{}",
        spec.sql
    ))
    .await
    .map_err(|e| problem(spec, "running its query", &e))?;
    let source = super::columns_of(&tx, SOURCE_TABLE)
        .await
        .map_err(|e| problem(spec, "reading its columns", &e))?;
    let existing = super::columns_of(&tx, &plan.relation)
        .await
        .map_err(|e| problem(spec, "reading the history's columns", &e))?;
    let done = if existing.is_empty() {
        let rows = tx
            .execute(plan.create().as_str(), &[])
            .await
            .map_err(|e| problem(spec, "creating the history", &e))?;
        Snapshotted {
            created: true,
            rows,
        }
    } else {
        let names: Vec<String> = existing.into_iter().map(|(c, _)| c).collect();
        let mut rows = 0;
        for sql in plan.merge(&source, &names) {
            rows = tx
                .execute(sql.as_str(), &[])
                .await
                .map_err(|e| problem(spec, "recording the changes", &e))?;
        }
        Snapshotted {
            created: false,
            rows,
        }
    };
    apply_grants(&tx, spec, &plan.relation).await?;
    run_hooks(&tx, spec, &spec.post_hooks, true, "a post-hook").await?;
    tx.commit().await.map_err(|e| problem(spec, "commit", &e))?;
    run_hooks(&*client, spec, &spec.post_hooks, false, "a post-hook").await?;
    Ok(done)
}
