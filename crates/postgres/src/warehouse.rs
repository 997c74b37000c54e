//! The raw warehouse `pm generate` fills: applying its DDL, creating the
//! months of `raw.events`, the state row of what was generated, and bulk
//! loads (binary COPY, one connection and one transaction per table,
//! committed once every table has loaded; an appended load is staged and
//! published in one transaction).

use super::Endpoint;
use crate::{Connection, DbError};
use bytes::Bytes;
use futures_util::SinkExt;
use pm_core::error::{Code, Problem, Problems, Result};
use std::sync::Arc;

use super::error_text as db_message;

/// Runs one DDL file; an error points at the statement's position in it.
pub async fn apply_script(client: &Connection, name: &str, sql: &str) -> Result<()> {
    let client = client.pg();
    client.batch_execute(sql).await.map_err(|e| {
        let mut p = Problem::new(
            Code::GenerateWarehouse,
            format!("applying {name} failed: {}", db_message(&e)),
        )
        .help("the warehouse DDL must run on PostgreSQL 15 or later, as a user that may create schemas and roles");
        if let Some(tokio_postgres::error::ErrorPosition::Original(pos)) =
            e.as_db_error().and_then(|d| d.position())
        {
            let at = sql
                .char_indices()
                .nth((*pos as usize).saturating_sub(1))
                .map_or(0, |(b, _)| b);
            p = p
                .in_file(name, Arc::from(sql))
                .label(at..at + 1, db_message(&e));
        }
        Problems::from(p)
    })
}

/// What an earlier `pm generate` loaded (raw.generator_state).
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorState {
    pub seed: u64,
    pub scale: f64,
    pub start: chrono::NaiveDate,
    /// The last day of activity.
    pub end: chrono::NaiveDate,
}

pub async fn generator_state(client: &Connection) -> Result<Option<GeneratorState>> {
    let client = client.pg();
    let row = client
        .query_opt(
            "select seed, scale, start_date, end_date from raw.generator_state",
            &[],
        )
        .await
        .map_err(|e| {
            Problem::new(
                Code::GenerateState,
                format!("cannot read raw.generator_state: {}", db_message(&e)),
            )
        })?;
    Ok(row.map(|r| GeneratorState {
        seed: r.get::<_, i64>(0) as u64,
        scale: r.get(1),
        start: r.get(2),
        end: r.get(3),
    }))
}

/// Writes the state row, on a connection of its own.
pub async fn record_generator_state(
    connection: &Connection,
    s: &GeneratorState,
) -> std::result::Result<(), DbError> {
    Ok(write_generator_state(connection.pg(), s).await?)
}

/// Writes the state row (in the transaction of `client`).
async fn write_generator_state(
    client: &impl tokio_postgres::GenericClient,
    s: &GeneratorState,
) -> std::result::Result<(), tokio_postgres::Error> {
    client
        .execute(
            "insert into raw.generator_state (id, seed, scale, start_date, end_date, generated_at)
             values (true, $1, $2, $3, $4, now())
             on conflict (id) do update set seed = excluded.seed, scale = excluded.scale,
                 start_date = excluded.start_date, end_date = excluded.end_date, generated_at = now()",
            &[&(s.seed as i64), &s.scale, &s.start, &s.end],
        )
        .await
        .map(|_| ())
}

/// Deletes the state row: a full load is under way.
pub async fn forget_generator_state(client: &Connection) -> Result<()> {
    let client = client.pg();
    client
        .batch_execute("delete from raw.generator_state")
        .await
        .map_err(|e| {
            Problem::new(
                Code::GenerateState,
                format!("cannot clear raw.generator_state: {}", db_message(&e)),
            )
            .into()
        })
}

/// Whether `table` holds a row.
pub async fn has_rows(client: &Connection, table: &str) -> Result<bool> {
    let client = client.pg();
    let row = client
        .query_one(&format!("select exists (select 1 from {table})"), &[])
        .await
        .map_err(|e| {
            Problem::new(
                Code::GenerateState,
                format!("cannot read {table}: {}", db_message(&e)),
            )
        })?;
    Ok(row.get(0))
}

/// Creates the partitions of raw.events for the months holding these days.
pub async fn create_event_partitions(
    client: &Connection,
    days: &[chrono::NaiveDate],
) -> Result<()> {
    let client = client.pg();
    client
        .execute(
            "select raw.create_events_partition(d) from unnest($1::date[]) as t(d)",
            &[&days],
        )
        .await
        .map_err(|e| {
            Problem::new(
                Code::GeneratePartitions,
                format!(
                    "cannot create the partitions of raw.events: {}",
                    db_message(&e)
                ),
            )
        })?;
    Ok(())
}

/// A table to bulk-load.
#[derive(Debug, Clone)]
pub struct BulkTable {
    /// Schema-qualified and quoted.
    pub name: String,
    pub columns: Vec<&'static str>,
    /// Empty it first (in the same transaction, or when the staged rows are published).
    pub replace: bool,
    /// Load into this unlogged staging table instead (made anew, `like` the
    /// table), to be moved into the table by [`publish_staged`] together
    /// with every other table's rows.
    pub stage: Option<String>,
}

/// The staging table of a raw table for an appended load.
pub fn stage_name(table: &str) -> String {
    match table.split_once('.') {
        Some((schema, name)) => format!("{schema}.pm_load_{name}"),
        None => format!("pm_load_{table}"),
    }
}

/// A table loaded in an open transaction: commit it once all are loaded.
pub struct Loaded {
    client: tokio_postgres::Client,
    pub table: String,
    pub rows: u64,
}

impl Loaded {
    pub async fn commit(&self) -> Result<()> {
        self.client.batch_execute("commit").await.map_err(|e| {
            Problem::new(
                Code::GenerateCommit,
                format!("committing {} failed: {}", self.table, db_message(&e)),
            )
            .into()
        })
    }

    /// Analyses the committed table, so the models that read it get good
    /// plans. After the commit: on Citus, a reference table's COPY writes
    /// the coordinator's copy locally, and the transaction cannot analyse
    /// the table after that.
    pub async fn analyze(&self) -> Result<()> {
        self.client
            .batch_execute(&format!("analyze {}", self.table))
            .await
            .map_err(|e| {
                Problem::new(
                    Code::GenerateLoad,
                    format!("analyzing {} failed: {}", self.table, db_message(&e)),
                )
                .help("the rows are loaded; `analyze` the table by hand")
                .into()
            })
    }
}

/// Streams binary COPY data (`chunks`, header to trailer) into a table on a
/// connection of its own, in a transaction left open.
pub async fn bulk_load(
    endpoint: Endpoint,
    table: BulkTable,
    mut chunks: tokio::sync::mpsc::Receiver<Bytes>,
) -> Result<Loaded> {
    let client = endpoint.connect_client().await?;
    let fail = |what: &str, e: tokio_postgres::Error| -> Problems {
        Problem::new(
            Code::GenerateLoad,
            format!("loading {}: {what} failed: {}", table.name, db_message(&e)),
        )
        .help("nothing was committed: the raw tables are as they were")
        .into()
    };
    let mut begin = String::from("begin");
    let target = match &table.stage {
        Some(stage) => {
            // Made anew: a killed earlier load may have left one behind.
            begin.push_str(&format!(
                ";\ndrop table if exists {stage};\ncreate unlogged table {stage} (like {} including defaults)",
                table.name
            ));
            stage
        }
        None => {
            if table.replace {
                begin.push_str(&format!(";\ntruncate table {}", table.name));
            }
            &table.name
        }
    };
    client
        .batch_execute(&begin)
        .await
        .map_err(|e| fail("preparing the table", e))?;
    let copy = format!(
        "copy {target} ({}) from stdin (format binary)",
        table.columns.join(", ")
    );
    let sink = client
        .copy_in::<_, Bytes>(&copy)
        .await
        .map_err(|e| fail("COPY", e))?;
    futures_util::pin_mut!(sink);
    while let Some(chunk) = chunks.recv().await {
        sink.send(chunk).await.map_err(|e| fail("COPY", e))?;
    }
    let rows = sink.finish().await.map_err(|e| fail("COPY", e))?;
    Ok(Loaded {
        client,
        table: table.name,
        rows,
    })
}

/// Moves the staged rows of every table into its table and records the
/// generator's state, in one transaction: an appended load is all there or
/// not at all, whenever it is interrupted (the staging tables are made anew
/// by the next load). `tables` are the staged loads, already committed.
pub async fn publish_staged(
    client: &mut Connection,
    tables: &[BulkTable],
    state: &GeneratorState,
) -> Result<()> {
    let client = client.pg_mut();
    let fail = |what: String, e: tokio_postgres::Error| -> Problems {
        Problem::new(
            Code::GeneratePublish,
            format!("{what} failed: {}", db_message(&e)),
        )
        .help("nothing of this load was committed: the raw tables are as they were; run the same command again")
        .into()
    };
    let tx = client
        .transaction()
        .await
        .map_err(|e| fail("beginning the load's transaction".into(), e))?;
    for table in tables {
        let Some(stage) = &table.stage else { continue };
        let columns = table.columns.join(", ");
        let mut sql = String::new();
        if table.replace {
            sql.push_str(&format!("truncate table {};\n", table.name));
        }
        sql.push_str(&format!(
            "insert into {} ({columns}) select {columns} from {stage};\ndrop table {stage}",
            table.name
        ));
        tx.batch_execute(&sql)
            .await
            .map_err(|e| fail(format!("adding the new rows of {}", table.name), e))?;
    }
    write_generator_state(&tx, state)
        .await
        .map_err(|e| fail("recording raw.generator_state".into(), e))?;
    tx.commit()
        .await
        .map_err(|e| fail("committing the load".into(), e))
}
