//! Loading seeds: the CSV file's bytes go through `COPY … FROM STDIN` into a
//! table built under a temporary name, which then replaces the old one in the
//! same transaction. Whatever fails, the previous table is left as it was.

use crate::Connection;
use bytes::Bytes;
use futures_util::SinkExt;
use pm_core::error::{Code, Problem};
use pm_core::materialize::seed::{self, ExistingSeedTable, Replaced, SeedTable};
use pm_core::materialize::BuildSpec;
use pm_core::text::quote_ident;
use pm_core::warehouse::PendingCheck;
use std::io::Read;
use std::path::Path;

fn db_problem(node: &BuildSpec, what: &str, e: &tokio_postgres::Error) -> Problem {
    if let Some(p) = super::build::interrupted_or_lost(node.resource_type, &node.name, what, e) {
        return p;
    }
    let (msg, detail) = match e.as_db_error() {
        Some(d) => (d.message().to_string(), d.where_().map(str::to_string)),
        None => (super::error_text(e), None),
    };
    // Only a value the column's type rejects (class 22, data exception) is
    // about column_types.
    let about_types = e.code().is_some_and(|c| c.code().starts_with("22"));
    let mut text = format!(
        "seed {} ({}): {what} failed: {msg}",
        node.name, node.original_file_path
    );
    if let Some(w) = detail {
        // COPY errors name the line of the file: "COPY x, line 5, column amount: ..."
        // Name the seed, not the table it was being built in.
        let temp = node.temp_name.clone();
        text.push_str(&format!(" [{}]", w.replace(&temp, &node.alias)));
    }
    Problem::new(Code::SeedLoad, text).help(if about_types {
        "the table from the previous run is unchanged; if a column's type is wrong, set it under `column_types:` in the seed's config"
    } else {
        "the table from the previous run is unchanged"
    })
}

async fn finish_check(check: Option<PendingCheck>) -> Result<(), Problem> {
    match check {
        None => Ok(()),
        Some(check) => check.await,
    }
}

/// Loads `node`'s CSV (checked by `inspect`, or being checked by `check`)
/// into its relation.
pub async fn load_seed(
    client: &mut Connection,
    root: &Path,
    node: &BuildSpec,
    table: &SeedTable,
    full_refresh: bool,
    check: Option<PendingCheck>,
) -> Result<(u64, Replaced), Problem> {
    let client = client.pg_mut();
    let mut check = check;
    let loaded = copy_and_swap(client, root, node, table, full_refresh, &mut check).await;
    // A CSV problem found by the check explains a failed COPY better than
    // the server's message does.
    match loaded {
        Ok(done) => Ok(done),
        Err(p) => {
            finish_check(check.take()).await?;
            Err(p)
        }
    }
}

async fn copy_and_swap(
    client: &mut tokio_postgres::Client,
    root: &Path,
    node: &BuildSpec,
    table: &SeedTable,
    full_refresh: bool,
    check: &mut Option<PendingCheck>,
) -> Result<(u64, Replaced), Problem> {
    let schema = quote_ident(&node.schema);
    let relation = format!("{schema}.{}", quote_ident(&node.alias));
    let tmp = node.temp_name.clone();
    let tmp_rel = format!("{schema}.{}", quote_ident(&tmp));
    client
        .batch_execute(&format!("create schema if not exists {schema}"))
        .await
        .map_err(|e| db_problem(node, "creating the schema", &e))?;
    use super::build::run_hooks;
    run_hooks(&*client, node, &node.pre_hooks, false, "a pre-hook").await?;
    let tx = client
        .transaction()
        .await
        .map_err(|e| db_problem(node, "starting a transaction", &e))?;
    run_hooks(&tx, node, &node.pre_hooks, true, "a pre-hook").await?;
    tx.batch_execute(&format!(
        "drop table if exists {tmp_rel};\n{}",
        table.create_sql(&tmp_rel)
    ))
    .await
    .map_err(|e| db_problem(node, "creating the table", &e))?;

    let rows = if table.no_rows {
        0
    } else {
        copy_file(&tx, root, node, table, &tmp_rel).await?
    };
    // Nothing is put in place before the rows passed the check.
    finish_check(check.take()).await?;
    let replaced = put_in_place(tx, node, &relation, &tmp_rel, full_refresh).await?;
    run_hooks(&*client, node, &node.post_hooks, false, "a post-hook").await?;
    Ok((rows, replaced))
}

/// Streams the seed's file into `tmp_rel` in large chunks; the server parses the CSV.
async fn copy_file(
    tx: &tokio_postgres::Transaction<'_>,
    root: &Path,
    node: &BuildSpec,
    table: &SeedTable,
    tmp_rel: &str,
) -> Result<u64, Problem> {
    let sink = tx
        .copy_in::<_, Bytes>(&table.copy_sql(tmp_rel))
        .await
        .map_err(|e| db_problem(node, "COPY", &e))?;
    futures_util::pin_mut!(sink);
    // The file is read on a blocking thread; its chunks come over a channel.
    let path = root.join(&node.original_file_path);
    let (to, mut chunks) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    let reader = tokio::task::spawn_blocking(move || {
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                let _ = to.blocking_send(Err(e));
                return;
            }
        };
        loop {
            let mut buf = vec![0u8; 1 << 20];
            let sent = match file.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    to.blocking_send(Ok(Bytes::from(buf)))
                }
                Err(e) => to.blocking_send(Err(e)),
            };
            if sent.is_err() {
                return;
            }
        }
    });
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk.map_err(|e| {
            Problem::new(
                Code::SeedRead,
                format!("cannot read {}: {e}", node.original_file_path),
            )
        })?;
        sink.send(chunk)
            .await
            .map_err(|e| db_problem(node, "COPY", &e))?;
    }
    let _ = reader.await;
    sink.as_mut()
        .finish()
        .await
        .map_err(|e| db_problem(node, "COPY", &e))
}

/// Puts the loaded table in place of the old one (or creates it), runs the
/// post-hooks and grants, and commits.
async fn put_in_place(
    tx: tokio_postgres::Transaction<'_>,
    node: &BuildSpec,
    relation: &str,
    tmp_rel: &str,
    full_refresh: bool,
) -> Result<Replaced, Problem> {
    use super::build::{apply_grants, run_hooks};
    let existing = existing_seed_table(&tx, relation, tmp_rel)
        .await
        .map_err(|e| db_problem(node, "looking up the table", &e))?;
    let (statements, replaced) = seed::put_in_place(
        &node.name,
        relation,
        &node.alias,
        tmp_rel,
        &existing,
        full_refresh,
    )?;
    // One by one: Citus sends a DDL statement's text to its workers, which
    // refuse a text holding several.
    for (statement, what) in &statements {
        tx.batch_execute(statement)
            .await
            .map_err(|e| db_problem(node, what, &e))?;
    }
    run_hooks(&tx, node, &node.post_hooks, true, "a post-hook").await?;
    apply_grants(&tx, node, relation).await?;
    tx.commit()
        .await
        .map_err(|e| db_problem(node, "commit", &e))?;
    Ok(replaced)
}

/// The catalog's facts about the seed's table, with the loaded rows in
/// `loaded`: whether it exists, the views that read it, whether the
/// columns are the same.
async fn existing_seed_table(
    tx: &tokio_postgres::Transaction<'_>,
    relation: &str,
    loaded: &str,
) -> Result<ExistingSeedTable, tokio_postgres::Error> {
    let exists = tx
        .query_one("select to_regclass($1) is not null", &[&relation])
        .await?
        .get::<_, bool>(0);
    if !exists {
        return Ok(ExistingSeedTable::default());
    }
    let dependent_views: Vec<String> = tx
        .query(
            "select distinct dv.oid::regclass::text
             from pg_depend d
             join pg_rewrite r on r.oid = d.objid
             join pg_class dv on dv.oid = r.ev_class
             where d.refobjid = to_regclass($1) and dv.oid <> d.refobjid
             order by 1",
            &[&relation],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let columns = "select string_agg(attname || ' ' || format_type(atttypid, atttypmod), ',' order by attnum)
                   from pg_attribute where attrelid = to_regclass($1) and attnum > 0 and not attisdropped";
    let old_columns: Option<String> = tx.query_one(columns, &[&relation]).await?.get(0);
    let new_columns: Option<String> = tx.query_one(columns, &[&loaded]).await?.get(0);
    Ok(ExistingSeedTable {
        exists,
        dependent_views,
        same_columns: old_columns == new_columns,
    })
}
