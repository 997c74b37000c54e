//! Running a unit test's statements: the catalog's column types of its
//! inputs and of the model's output, and the comparison query, all in one
//! transaction that is rolled back: a unit test leaves nothing behind.

use crate::{Connection, DbError};
use tokio_postgres::{SimpleQueryMessage, Transaction};

/// A unit test's transaction.
pub struct UnitTestSession<'c> {
    tx: Transaction<'c>,
}

/// The temporary table the model's output columns are read from.
const OUTPUT_TABLE: &str = "pm_unit_test_output";

impl<'c> UnitTestSession<'c> {
    pub async fn begin(connection: &'c mut Connection) -> Result<UnitTestSession<'c>, DbError> {
        Ok(UnitTestSession {
            tx: connection.pg_mut().transaction().await?,
        })
    }

    /// The columns of relation `schema.identifier`; none when it does not exist.
    pub async fn relation_columns(
        &self,
        schema: &str,
        identifier: &str,
    ) -> Result<Vec<(String, String)>, DbError> {
        let name = format!(
            "{}.{}",
            pm_core::text::quote_ident(schema),
            pm_core::text::quote_ident(identifier)
        );
        Ok(super::columns_of(&self.tx, &name).await?)
    }

    /// The columns `sql` gives, with their exact types.
    pub async fn query_columns(&self, sql: &str) -> Result<Vec<(String, String)>, DbError> {
        self.tx
            .batch_execute(&pm_core::materialize::unit_test::empty_table_sql(
                OUTPUT_TABLE,
                sql,
            ))
            .await?;
        let columns = super::columns_of(&self.tx, OUTPUT_TABLE).await?;
        self.tx
            .batch_execute(&format!("drop table {OUTPUT_TABLE}"))
            .await?;
        Ok(columns)
    }

    /// The rows of `sql` as text (None for NULL).
    pub async fn rows(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, DbError> {
        let messages = self.tx.simple_query(sql).await?;
        Ok(messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|k| r.get(k).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect())
    }

    /// Ends the test: everything it created is rolled back.
    pub async fn finish(self) -> Result<(), DbError> {
        Ok(self.tx.rollback().await?)
    }
}
