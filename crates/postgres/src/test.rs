//! Running data tests' statements: the count, the failing rows kept in a
//! table, a sample of them for the report.

use crate::{Connection, DbError};
use pm_core::warehouse::{CountCell, CountRow};

/// Replaces the stored failing rows by `store_sql`'s, in one transaction.
pub async fn store_failures(client: &mut Connection, store_sql: &str) -> Result<(), DbError> {
    let client = client.pg_mut();
    let tx = client.transaction().await?;
    tx.batch_execute(store_sql).await?;
    Ok(tx.commit().await?)
}

/// The one row of a test's (or merged scan's) counting query.
pub async fn count(client: &Connection, sql: &str) -> Result<CountRow, DbError> {
    let client = client.pg();
    // One round trip: an unnamed statement, not a prepared one.
    let row = client.query_typed_one(sql, &[]).await?;
    Ok(CountRow(
        row.columns()
            .iter()
            .enumerate()
            .map(|(k, column)| cell(&row, k, column.type_()))
            .collect(),
    ))
}

fn cell(row: &tokio_postgres::Row, k: usize, ty: &tokio_postgres::types::Type) -> CountCell {
    if let Ok(v) = row.try_get::<_, Option<i64>>(k) {
        return CountCell::Count(v);
    }
    if let Ok(v) = row.try_get::<_, Option<bool>>(k) {
        return CountCell::Flag(v);
    }
    CountCell::Other(ty.name().to_string())
}

/// The column names and rows (as text, `null` for NULL) of `sql`; None when
/// it fails (a sample is a courtesy, never a failure of its own).
pub async fn sample(client: &Connection, sql: &str) -> Option<(Vec<String>, Vec<Vec<String>>)> {
    let client = client.pg();
    let msgs = client.simple_query(sql).await.ok()?;
    let mut columns = Vec::new();
    let mut rows = Vec::new();
    for msg in msgs {
        match msg {
            tokio_postgres::SimpleQueryMessage::RowDescription(cols) => {
                columns = cols.iter().map(|c| c.name().to_string()).collect();
            }
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                if columns.is_empty() {
                    columns = r.columns().iter().map(|c| c.name().to_string()).collect();
                }
                rows.push(
                    (0..r.len())
                        .map(|k| r.get(k).unwrap_or("null").to_string())
                        .collect(),
                );
            }
            _ => {}
        }
    }
    Some((columns, rows))
}
