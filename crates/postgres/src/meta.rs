//! What pm keeps in the warehouse about its own runs: an advisory lock per
//! target schema, and `pm_meta.run_results`, a row per node and run.

use crate::{Connection, DbError};
use pm_core::error::Code;
use pm_core::warehouse::{ResultRow, SourceFreshness};
use std::collections::HashMap;

use pm_core::error::Problem;

/// The lock key of a target (database and schema).
fn lock_key(database: &str, schema: &str) -> String {
    format!("pm:{database}.{schema}")
}

/// Takes the target's advisory lock on `client` (held until it disconnects).
/// With `wait`, waits for another run to finish; otherwise fails at once.
pub async fn lock_target(
    client: &Connection,
    database: &str,
    schema: &str,
    wait: bool,
    on_wait: impl FnOnce(),
) -> Result<(), Problem> {
    let client = client.pg();
    let key = lock_key(database, schema);
    let got: bool = client
        .query_one(
            "select pg_try_advisory_lock(hashtextextended($1, 0))",
            &[&key],
        )
        .await
        .map_err(|e| {
            Problem::new(
                Code::RunLock,
                format!("cannot take the run lock: {}", super::error_text(&e)),
            )
        })?
        .get(0);
    if got {
        return Ok(());
    }
    if !wait {
        return Err(Problem::new(
            Code::RunLocked,
            format!("another pm run is building schema {schema} of database {database}"),
        )
        .help("wait for it to finish, or run without --no-wait to wait for it"));
    }
    on_wait();
    client
        .execute("select pg_advisory_lock(hashtextextended($1, 0))", &[&key])
        .await
        .map_err(|e| {
            Problem::new(
                Code::RunLock,
                format!("cannot take the run lock: {}", super::error_text(&e)),
            )
        })?;
    Ok(())
}

/// How long each of `nodes` (unique ids) took when it last ran, in seconds,
/// from pm_meta.run_results; empty when there is no history (or it cannot
/// be read: the times only order the run).
pub async fn last_durations(client: &Connection, nodes: &[String]) -> HashMap<String, f64> {
    let client = client.pg();
    let rows = client
        .query(
            "select distinct on (node) node, extract(epoch from finished_at - started_at)::float8
             from pm_meta.run_results
             where node = any($1) and status <> 'skipped'
             order by node, finished_at desc",
            &[&nodes],
        )
        .await;
    match rows {
        Ok(rows) => rows
            .iter()
            .filter_map(|r| Some((r.try_get(0).ok()?, r.try_get(1).ok()?)))
            .collect(),
        Err(_) => HashMap::new(),
    }
}

/// Appends the run's outcomes to `pm_meta.run_results`, in one statement,
/// and removes the runs that finished more than `keep_days` days ago.
pub async fn record_results(
    client: &Connection,
    run_id: &str,
    command: &str,
    rows: &[ResultRow<'_>],
    keep_days: i32,
) -> Result<(), DbError> {
    let client = client.pg();
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
             );
             alter table pm_meta.run_results add column if not exists failures bigint;
             create index if not exists run_results_node_finished_at
                 on pm_meta.run_results (node, finished_at)",
        )
        .await?;
    let mut nodes = Vec::with_capacity(rows.len());
    let mut statuses = Vec::with_capacity(rows.len());
    let mut starts = Vec::with_capacity(rows.len());
    let mut ends = Vec::with_capacity(rows.len());
    let mut affected = Vec::with_capacity(rows.len());
    let mut failures = Vec::with_capacity(rows.len());
    let mut errors = Vec::with_capacity(rows.len());
    for r in rows {
        let finished = r.started_at + chrono::Duration::milliseconds((r.seconds * 1000.0) as i64);
        nodes.push(r.node);
        statuses.push(r.status);
        starts.push(r.started_at.to_rfc3339());
        ends.push(finished.to_rfc3339());
        affected.push(r.rows);
        failures.push(r.failures);
        errors.push(r.error);
    }
    client
        .execute(
            "insert into pm_meta.run_results
                 (run_id, command, node, status, started_at, finished_at, rows_affected, error, failures)
             select $1, $2, n, s, b::timestamptz, e::timestamptz, r, x, f
             from unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::text[], $9::int8[])
                  as t(n, s, b, e, r, x, f)",
            &[&run_id, &command, &nodes, &statuses, &starts, &ends, &affected, &errors, &failures],
        )
        .await?;
    // `pm serve` drops the answers this run may have changed.
    client
        .execute(
            "select pg_notify($1, $2)",
            &[&crate::serve::BUILD_CHANNEL, &run_id],
        )
        .await?;
    client
        .execute(
            "delete from pm_meta.run_results where finished_at < now() - make_interval(days => $1)",
            &[&keep_days],
        )
        .await?;
    Ok(())
}

/// Removes what interrupted runs left in `schemas`: relations with a
/// temporary name (`<alias>__pm_new_<hash>`, see
/// `materialize::relation::temp_name`) and `<relation>__pm_new` of pm
/// versions before it, unless a node in `owned` (schema, name) is that
/// relation. Returns a line per relation removed, or that could not be.
pub async fn remove_leftovers(
    client: &Connection,
    schemas: &[String],
    owned: &std::collections::HashSet<(String, String)>,
) -> Result<Vec<String>, Problem> {
    let client = client.pg();
    use pm_core::materialize::relation::{is_temp_name, relkind_sql};
    let rows = client
        .query(
            "select n.nspname::text, c.relname::text, c.relkind::text
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = any($1) and c.relkind in ('r', 'p', 'v', 'm', 'f')
               and not c.relispartition and c.relname like '%\\_\\_pm\\_new%'
             order by 1, 2",
            &[&schemas],
        )
        .await
        .map_err(|e| {
            Problem::new(
                Code::RunLeftovers,
                format!(
                    "cannot look for leftovers of interrupted runs: {}",
                    super::error_text(&e)
                ),
            )
        })?;
    let mut done = Vec::new();
    for row in rows {
        let (schema, name, kind): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let key = |n: &str| (schema.clone(), n.to_string());
        let legacy = name
            .strip_suffix("__pm_new")
            .is_some_and(|base| owned.contains(&key(base)));
        if owned.contains(&key(&name)) || !(is_temp_name(&name) || legacy) {
            continue;
        }
        let what = relkind_sql(&kind);
        let relation = format!(
            "{}.{}",
            pm_core::text::quote_ident(&schema),
            pm_core::text::quote_ident(&name)
        );
        done.push(
            match client
                .batch_execute(&format!("drop {what} {relation}"))
                .await
            {
                Ok(()) => {
                    format!("removed {schema}.{name}, a {what} an interrupted run left behind")
                }
                Err(e) => {
                    format!(
                "could not remove {schema}.{name}, a {what} an interrupted run left behind: {}",
                super::error_text(&e)
            )
                }
            },
        );
    }
    Ok(done)
}

/// Which of `relations` (schema, name) exist as tables (plain or partitioned).
pub async fn existing_tables(
    client: &Connection,
    relations: &[(String, String)],
) -> Result<std::collections::HashSet<(String, String)>, Problem> {
    let client = client.pg();
    existing(client, relations, "('r', 'p')").await
}

/// Which of `relations` (schema, name) exist, as tables, views or materialized views.
pub async fn existing_relations(
    client: &Connection,
    relations: &[(String, String)],
) -> Result<std::collections::HashSet<(String, String)>, Problem> {
    let client = client.pg();
    existing(client, relations, "('r', 'p', 'v', 'm', 'f')").await
}

async fn existing(
    client: &tokio_postgres::Client,
    relations: &[(String, String)],
    kinds: &str,
) -> Result<std::collections::HashSet<(String, String)>, Problem> {
    let (schemas, names): (Vec<&str>, Vec<&str>) = relations
        .iter()
        .map(|(s, n)| (s.as_str(), n.as_str()))
        .unzip();
    let rows = client
        .query(
            &format!(
                "select n.nspname::text, c.relname::text
                 from unnest($1::text[], $2::text[]) as wanted(schema_name, relation_name)
                 join pg_namespace n on n.nspname = wanted.schema_name
                 join pg_class c on c.relnamespace = n.oid and c.relname = wanted.relation_name
                 where c.relkind in {kinds}"
            ),
            &[&schemas, &names],
        )
        .await
        .map_err(|e| {
            Problem::new(
                Code::RunCatalog,
                format!("cannot look up existing tables: {}", super::error_text(&e)),
            )
        })?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Creates those of `schemas` that are missing, one at a time: concurrent
/// `create schema if not exists` of one new schema can fail in PostgreSQL,
/// and it needs the right to create schemas even when the schema is there.
pub async fn create_missing_schemas(client: &Connection, schemas: &[&str]) -> Result<(), Problem> {
    let client = client.pg();
    let present: Vec<String> = client
        .query(
            "select nspname::text from pg_namespace where nspname = any($1)",
            &[&schemas],
        )
        .await
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        .unwrap_or_default();
    for schema in schemas.iter().filter(|s| !present.iter().any(|p| p == *s)) {
        let ddl = format!(
            "create schema if not exists {}",
            pm_core::text::quote_ident(schema)
        );
        client.batch_execute(&ddl).await.map_err(|e| {
            Problem::new(
                Code::RunSchema,
                format!("cannot create schema {schema}: {}", super::error_text(&e)),
            )
            .help("check that the target's user may create schemas in the database")
        })?;
    }
    Ok(())
}

/// The project's `on-run-start` or `on-run-end` statements, in order.
pub async fn run_hooks(client: &Connection, hooks: &[String], which: &str) -> Result<(), Problem> {
    let client = client.pg();
    for sql in hooks {
        client.batch_execute(sql).await.map_err(|e| {
            Problem::new(
                Code::RunOnRunHook,
                format!("{which} failed: {}", super::error_text(&e)),
            )
            .help(format!("the hook was: {sql}"))
        })?;
    }
    Ok(())
}

/// The newest load time of a source table, the time now and the age in
/// seconds, by `sql` (materialize::freshness::query), in UTC.
pub async fn source_freshness(client: &Connection, sql: &str) -> Result<SourceFreshness, DbError> {
    let client = client.pg();
    client.batch_execute("set time zone 'UTC'").await?;
    let row = client.query_one(sql, &[]).await?;
    Ok(SourceFreshness {
        max_loaded_at: row.try_get(0)?,
        snapshotted_at: row.try_get(1)?,
        age_seconds: row.try_get(2)?,
    })
}
