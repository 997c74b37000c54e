//! The warehouse a render at run time reads: a connection of the run's
//! renders, queried from the blocking thread the render runs on.

use super::{error_text, CancelHandle, Connection, Endpoint};
use pm_core::compile::context::{QueryResult, RenderWarehouse, WarehouseChange};
use pm_core::error::Result;
use pm_core::text::quote_ident;
use serde_json::Value as Json;
use tokio_postgres::types::Type;
use tokio_postgres::SimpleQueryMessage;

/// A connection for the renders of one run.
pub struct RenderConnection {
    connection: Connection,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for RenderConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RenderConnection")
    }
}

impl RenderConnection {
    /// Waits for a catalog question or change from the render's blocking
    /// thread; the error is the database's message.
    fn answer<T>(
        &self,
        asked: impl std::future::Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    ) -> std::result::Result<T, String> {
        self.runtime.block_on(asked).map_err(|e| error_text(&e))
    }

    /// Connects; queries are then made from a blocking thread (`spawn_blocking`)
    /// while the runtime's own thread drives the connection.
    pub async fn open(endpoint: &Endpoint) -> Result<RenderConnection> {
        Ok(RenderConnection {
            connection: endpoint.connect().await?,
            runtime: tokio::runtime::Handle::current(),
        })
    }
}

/// The connections of a run's renders: a render takes one (connecting when
/// none is free) and gives it back, so a run connects once per concurrent
/// render rather than once per node. Each one's cancel token is kept, so
/// that Ctrl-C cancels what a render is running too.
#[derive(Default)]
pub struct RenderConnections {
    free: std::sync::Mutex<Vec<RenderConnection>>,
    cancel_handles: std::sync::Mutex<Vec<CancelHandle>>,
}

impl std::fmt::Debug for RenderConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RenderConnections")
    }
}

impl RenderConnections {
    pub async fn take(&self, endpoint: &Endpoint) -> Result<RenderConnection> {
        let free = self.free().pop();
        match free {
            Some(c) => Ok(c),
            None => {
                let c = RenderConnection::open(endpoint).await?;
                self.cancel_handles
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(c.connection.cancel_handle());
                Ok(c)
            }
        }
    }

    /// What cancels each connection the run's renders opened.
    pub fn cancel_handles(&self) -> Vec<CancelHandle> {
        self.cancel_handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Keeps `connection` for a later render, unless the server closed it.
    pub fn give_back(&self, connection: RenderConnection) {
        if !connection.connection.is_closed() {
            self.free().push(connection);
        }
    }

    fn free(&self) -> std::sync::MutexGuard<'_, Vec<RenderConnection>> {
        // A render that panicked leaves the list as it was: still usable.
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A text value as the JSON a template reads: numbers as numbers, booleans
/// as booleans, the rest as text.
fn typed(text: Option<&str>, ty: Option<&Type>) -> Json {
    let Some(text) = text else {
        return Json::Null;
    };
    let number = match ty {
        Some(&Type::INT2 | &Type::INT4 | &Type::INT8 | &Type::OID) => {
            text.parse::<i64>().ok().map(Json::from)
        }
        // A whole numeric (count(*) over bigint is numeric in sum()) stays an integer.
        Some(&Type::NUMERIC) => text
            .parse::<i64>()
            .ok()
            .map(Json::from)
            .or_else(|| text.parse::<f64>().ok().map(Json::from)),
        Some(&Type::FLOAT4 | &Type::FLOAT8) => text.parse::<f64>().ok().map(Json::from),
        Some(&Type::BOOL) => Some(Json::Bool(text == "t")),
        _ => None,
    };
    number.unwrap_or_else(|| Json::String(text.to_string()))
}

impl RenderWarehouse for RenderConnection {
    fn change(&self, change: &WarehouseChange) -> std::result::Result<(), String> {
        let sql = pm_core::materialize::relation::change_sql(change);
        self.answer(self.connection.pg().batch_execute(&sql))
    }

    fn relation_kind(
        &self,
        schema: &str,
        name: &str,
    ) -> std::result::Result<Option<String>, String> {
        let row = self.answer(self.connection.pg().query_typed_opt(
            "select c.relkind::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p', 'v', 'm', 'f')",
            &[(&schema, Type::TEXT), (&name, Type::TEXT)],
        ))?;
        Ok(row.map(|r| r.get(0)))
    }

    fn columns(
        &self,
        schema: &str,
        name: &str,
    ) -> std::result::Result<Vec<(String, String)>, String> {
        let relation = format!("{}.{}", quote_ident(schema), quote_ident(name));
        self.answer(super::columns_of(self.connection.pg(), &relation))
    }

    fn relations(&self, schema: &str) -> std::result::Result<Vec<(String, String)>, String> {
        let rows = self.answer(self.connection.pg().query_typed(
            "select c.relname::text, c.relkind::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = $1 and c.relkind in ('r', 'p', 'v', 'm', 'f') order by 1",
            &[(&schema, Type::TEXT)],
        ))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn run_sql(&self, sql: &str) -> std::result::Result<QueryResult, String> {
        self.runtime.block_on(async {
            // The column types, when the SQL is one statement (several cannot
            // be prepared; their values stay text).
            let types: Vec<Type> = match self.connection.pg().prepare(sql).await {
                Ok(st) => st.columns().iter().map(|c| c.type_().clone()).collect(),
                Err(_) => Vec::new(),
            };
            let messages = self
                .connection
                .pg()
                .simple_query(sql)
                .await
                .map_err(|e| error_text(&e))?;
            let mut result = QueryResult::default();
            for m in messages {
                match m {
                    SimpleQueryMessage::RowDescription(columns) => {
                        result.rows.clear();
                        result.columns = columns
                            .iter()
                            .enumerate()
                            .map(|(i, c)| {
                                let ty = types.get(i).map_or("text", |t| t.name());
                                (c.name().to_string(), ty.to_string())
                            })
                            .collect();
                    }
                    SimpleQueryMessage::Row(row) => {
                        result.rows.push(
                            (0..row.len())
                                .map(|i| typed(row.get(i), types.get(i)))
                                .collect(),
                        );
                    }
                    SimpleQueryMessage::CommandComplete(n) => result.rows_affected = n,
                    _ => {}
                }
            }
            Ok(result)
        })
    }
}
