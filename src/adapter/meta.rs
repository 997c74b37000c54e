//! What pm keeps in the warehouse about its own runs: an advisory lock per
//! target schema, and `pm_meta.run_results`, a row per node and run.

use crate::error::Problem;

/// The lock key of a target (database and schema).
fn lock_key(database: &str, schema: &str) -> String {
    format!("pm:{database}.{schema}")
}

/// Takes the target's advisory lock on `client` (held until it disconnects).
/// With `wait`, waits for another run to finish; otherwise fails at once.
pub async fn lock_target(
    client: &tokio_postgres::Client,
    database: &str,
    schema: &str,
    wait: bool,
    on_wait: impl FnOnce(),
) -> Result<(), Problem> {
    let key = lock_key(database, schema);
    let got: bool = client
        .query_one(
            "select pg_try_advisory_lock(hashtextextended($1, 0))",
            &[&key],
        )
        .await
        .map_err(|e| Problem::new("run::lock", format!("cannot take the run lock: {e}")))?
        .get(0);
    if got {
        return Ok(());
    }
    if !wait {
        return Err(Problem::new(
            "run::locked",
            format!("another pm run is building schema {schema} of database {database}"),
        )
        .help("wait for it to finish, or run without --no-wait to wait for it"));
    }
    on_wait();
    client
        .execute("select pg_advisory_lock(hashtextextended($1, 0))", &[&key])
        .await
        .map_err(|e| Problem::new("run::lock", format!("cannot take the run lock: {e}")))?;
    Ok(())
}

/// One node's outcome in a run.
pub struct ResultRow<'a> {
    pub node: &'a str,
    pub status: &'a str,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub seconds: f64,
    pub rows: Option<i64>,
    pub error: Option<&'a str>,
}

/// Appends the run's outcomes to `pm_meta.run_results`.
pub async fn record_results(
    client: &tokio_postgres::Client,
    run_id: &str,
    command: &str,
    rows: &[ResultRow<'_>],
) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute(
            "create schema if not exists pm_meta;
             create table if not exists pm_meta.run_results (
                 run_id text not null,
                 command text not null,
                 node text not null,
                 status text not null,
                 started_at timestamptz not null,
                 finished_at timestamptz not null,
                 rows_affected bigint,
                 error text
             )",
        )
        .await?;
    let stmt = client
        .prepare(
            "insert into pm_meta.run_results
             values ($1, $2, $3, $4, $5::text::timestamptz, $6::text::timestamptz, $7, $8)",
        )
        .await?;
    for r in rows {
        let finished = r.started_at + chrono::Duration::milliseconds((r.seconds * 1000.0) as i64);
        client
            .execute(
                &stmt,
                &[
                    &run_id,
                    &command,
                    &r.node,
                    &r.status,
                    &r.started_at.to_rfc3339(),
                    &finished.to_rfc3339(),
                    &r.rows,
                    &r.error,
                ],
            )
            .await?;
    }
    Ok(())
}
