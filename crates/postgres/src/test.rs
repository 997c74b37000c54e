//! Running data tests' statements: the count, the failing rows kept in a
//! table, a sample of them for the report.

/// Replaces the stored failing rows by `store_sql`'s, in one transaction.
pub async fn store_failures(
    client: &mut tokio_postgres::Client,
    store_sql: &str,
) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.batch_execute(store_sql).await?;
    tx.commit().await
}

/// The one row of a test's (or merged scan's) counting query.
pub async fn count(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<tokio_postgres::Row, tokio_postgres::Error> {
    // One round trip: an unnamed statement, not a prepared one.
    client.query_typed_one(sql, &[]).await
}

/// The column names and rows (as text, `null` for NULL) of `sql`; None when
/// it fails (a sample is a courtesy, never a failure of its own).
pub async fn sample(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Option<(Vec<String>, Vec<Vec<String>>)> {
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
