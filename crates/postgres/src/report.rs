//! What `pm report` asks the warehouse: a model's day rows, the model's last
//! build, and `pm_meta.report_deliveries`, the record that makes a delivery
//! happen once per report, day and channel.

use crate::Connection;
use chrono::{DateTime, NaiveDate, Utc};
use pm_core::error::{Code, Problem};
use pm_core::text::quote_ident;

fn failed(what: &'static str) -> impl Fn(tokio_postgres::Error) -> Problem {
    move |e| {
        Problem::new(
            Code::ReportQuery,
            format!("{what}: {}", super::error_text(&e)),
        )
    }
}

/// The columns of a relation, or None when it does not exist.
pub async fn columns(
    client: &Connection,
    schema: &str,
    name: &str,
) -> Result<Option<Vec<String>>, Problem> {
    let client = client.pg();
    let rows = client
        .query(
            "select a.attname::text
             from pg_attribute a join pg_class c on c.oid = a.attrelid
             join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = $1 and c.relname = $2 and a.attnum > 0 and not a.attisdropped
             order by a.attnum",
            &[&schema, &name],
        )
        .await
        .map_err(failed("cannot read the model's columns"))?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(rows.iter().map(|r| r.get(0)).collect()))
}

/// The rows of `relation` from `from` to `to` (by `date_column`), each
/// `columns` value as a float (NULL as None).
pub async fn day_rows(
    client: &Connection,
    relation: &str,
    date_column: &str,
    columns: &[String],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(NaiveDate, Vec<Option<f64>>)>, Problem> {
    let client = client.pg();
    let day = quote_ident(date_column);
    let values: Vec<String> = columns
        .iter()
        .map(|c| format!("{}::float8", quote_ident(c)))
        .collect();
    let sql = format!(
        "select {day}::date, {}\nfrom {relation}\nwhere {day}::date between $1 and $2\norder by 1",
        values.join(", ")
    );
    let rows = client
        .query(&sql, &[&from, &to])
        .await
        .map_err(failed("cannot read the report's rows"))?;
    Ok(rows
        .iter()
        .map(|r| {
            let d: NaiveDate = r.get(0);
            let v = (0..columns.len())
                .map(|k| r.get::<_, Option<f64>>(k + 1))
                .collect();
            (d, v)
        })
        .collect())
}

/// The last day `relation` has a row for.
pub async fn last_day(
    client: &Connection,
    relation: &str,
    date_column: &str,
) -> Result<Option<NaiveDate>, Problem> {
    let client = client.pg();
    let sql = format!(
        "select max({}::date) from {relation}",
        quote_ident(date_column)
    );
    let row = client
        .query_one(&sql, &[])
        .await
        .map_err(failed("cannot find the report's last day"))?;
    Ok(row.get(0))
}

/// A node's last recorded outcome in `pm_meta.run_results`.
pub struct LastResult {
    pub status: String,
    pub finished_at: DateTime<Utc>,
    pub error: Option<String>,
}

pub async fn last_result(client: &Connection, node: &str) -> Result<Option<LastResult>, Problem> {
    let client = client.pg();
    let exists: bool = client
        .query_one("select to_regclass('pm_meta.run_results') is not null", &[])
        .await
        .map_err(failed("cannot read pm_meta.run_results"))?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let row = client
        .query_opt(
            "select status, finished_at, error from pm_meta.run_results
             where node = $1 order by finished_at desc limit 1",
            &[&node],
        )
        .await
        .map_err(failed("cannot read pm_meta.run_results"))?;
    Ok(row.map(|r| LastResult {
        status: r.get(0),
        finished_at: r.get(1),
        error: r.get(2),
    }))
}

/// A delivery's record.
pub struct Delivery {
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Identifies one delivery: a report's day on a channel.
pub struct DeliveryKey<'a> {
    pub report: &'a str,
    pub day: NaiveDate,
    pub channel: &'a str,
}

impl DeliveryKey<'_> {
    fn lock(&self) -> String {
        format!("pm-report:{}:{}:{}", self.report, self.day, self.channel)
    }
}

/// Takes the delivery's advisory lock (held until `client` disconnects),
/// creating the record table when needed. False when another pm holds it.
pub async fn lock_delivery(client: &Connection, key: &DeliveryKey<'_>) -> Result<bool, Problem> {
    let client = client.pg();
    client
        .batch_execute(
            "create schema if not exists pm_meta;
             create table if not exists pm_meta.report_deliveries (
                 report text not null,
                 day date not null,
                 channel text not null,
                 status text not null,
                 started_at timestamptz not null,
                 finished_at timestamptz,
                 detail text,
                 primary key (report, day, channel)
             )",
        )
        .await
        .map_err(failed("cannot create pm_meta.report_deliveries"))?;
    let got: bool = client
        .query_one(
            "select pg_try_advisory_lock(hashtextextended($1, 0))",
            &[&key.lock()],
        )
        .await
        .map_err(failed("cannot take the delivery's lock"))?
        .get(0);
    Ok(got)
}

/// Waits for the delivery's advisory lock (another pm is sending it).
pub async fn wait_for_delivery(client: &Connection, key: &DeliveryKey<'_>) -> Result<(), Problem> {
    let client = client.pg();
    client
        .execute(
            "select pg_advisory_lock(hashtextextended($1, 0))",
            &[&key.lock()],
        )
        .await
        .map_err(failed("cannot wait for the delivery's lock"))?;
    Ok(())
}

/// Says why an unfinished delivery is unfinished (it stays so).
pub async fn note_delivery(
    client: &Connection,
    key: &DeliveryKey<'_>,
    detail: &str,
) -> Result<(), Problem> {
    let client = client.pg();
    client
        .execute(
            "update pm_meta.report_deliveries set detail = $4
             where report = $1 and day = $2 and channel = $3",
            &[&key.report, &key.day, &key.channel, &detail],
        )
        .await
        .map_err(failed("cannot record the delivery"))?;
    Ok(())
}

pub async fn delivery(
    client: &Connection,
    key: &DeliveryKey<'_>,
) -> Result<Option<Delivery>, Problem> {
    let client = client.pg();
    let row = client
        .query_opt(
            "select status, started_at, finished_at from pm_meta.report_deliveries
             where report = $1 and day = $2 and channel = $3",
            &[&key.report, &key.day, &key.channel],
        )
        .await
        .map_err(failed("cannot read pm_meta.report_deliveries"))?;
    Ok(row.map(|r| Delivery {
        status: r.get(0),
        started_at: r.get(1),
        finished_at: r.get(2),
    }))
}

/// Records that the delivery is being sent (before anything is sent).
pub async fn start_delivery(client: &Connection, key: &DeliveryKey<'_>) -> Result<(), Problem> {
    let client = client.pg();
    client
        .execute(
            "insert into pm_meta.report_deliveries (report, day, channel, status, started_at)
             values ($1, $2, $3, 'sending', now())
             on conflict (report, day, channel) do update
             set status = 'sending', started_at = now(), finished_at = null, detail = null",
            &[&key.report, &key.day, &key.channel],
        )
        .await
        .map_err(failed("cannot record the delivery"))?;
    Ok(())
}

/// Records that the delivery was sent (`detail`: what went wrong after the
/// message was posted, if anything).
pub async fn finish_delivery(
    client: &Connection,
    key: &DeliveryKey<'_>,
    detail: Option<&str>,
) -> Result<(), Problem> {
    let client = client.pg();
    client
        .execute(
            "update pm_meta.report_deliveries set status = 'sent', finished_at = now(), detail = $4
             where report = $1 and day = $2 and channel = $3",
            &[&key.report, &key.day, &key.channel, &detail],
        )
        .await
        .map_err(failed("cannot record the delivery"))?;
    Ok(())
}

/// Forgets a delivery of which nothing was posted, so that the next attempt sends.
pub async fn forget_delivery(client: &Connection, key: &DeliveryKey<'_>) -> Result<(), Problem> {
    let client = client.pg();
    client
        .execute(
            "delete from pm_meta.report_deliveries where report = $1 and day = $2 and channel = $3",
            &[&key.report, &key.day, &key.channel],
        )
        .await
        .map_err(failed("cannot record the delivery"))?;
    Ok(())
}
