//! Running data tests' statements: the count, the failing rows kept in a
//! table, a sample of them for the report.

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
    Ok(CountRow(client.query_typed_one(sql, &[]).await?))
}

/// The row of a counting query: counts, then the warn and error flags.
pub struct CountRow(tokio_postgres::Row);

impl CountRow {
    /// Column `k` as a whole number (NULL is 0); the server's type when it
    /// is not one.
    pub fn count(&self, k: usize) -> Result<i64, String> {
        self.0
            .try_get::<_, Option<i64>>(k)
            .map(|v| v.unwrap_or(0))
            .map_err(|e| e.to_string())
    }

    /// Column `k` as a flag (NULL, or not a boolean, is false).
    pub fn flag(&self, k: usize) -> bool {
        self.0
            .try_get::<_, Option<bool>>(k)
            .ok()
            .flatten()
            .unwrap_or(false)
    }
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
use crate::{Connection, DbError};
