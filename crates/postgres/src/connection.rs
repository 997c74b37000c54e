//! pm's own handles on the warehouse: a connection, the pool connections
//! come from, the handle that cancels what one runs, and a database error.
//! Nothing above this crate names the client library (tokio-postgres,
//! deadpool): they hold these.

use super::tls::MakeRustlsConnect;
use pm_core::error::{Code, Problem};
use pm_core::warehouse::StatementError;

/// One connection to the warehouse: opened alone ([`super::Endpoint::connect`])
/// or taken from a [`ConnectionPool`] (given back when dropped).
pub struct Connection {
    client: Client,
    /// For the cancel request, which goes over a new connection.
    tls: MakeRustlsConnect,
    /// Held while a relation is put in place: swaps that repoint views take
    /// catalog locks, and one at a time they cannot deadlock each other.
    /// Shared by the connections of one pool.
    pub(crate) swap_lock: SwapLock,
}

pub(crate) type SwapLock = std::sync::Arc<tokio::sync::Mutex<()>>;

enum Client {
    Alone(tokio_postgres::Client),
    Pooled(deadpool_postgres::Object),
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connection")
    }
}

impl Connection {
    pub(crate) fn alone(client: tokio_postgres::Client, tls: MakeRustlsConnect) -> Connection {
        Connection {
            client: Client::Alone(client),
            tls,
            swap_lock: SwapLock::default(),
        }
    }

    pub(crate) fn pooled(
        object: deadpool_postgres::Object,
        tls: MakeRustlsConnect,
        swap_lock: SwapLock,
    ) -> Connection {
        Connection {
            client: Client::Pooled(object),
            tls,
            swap_lock,
        }
    }

    /// The client, for this crate's statements.
    pub(crate) fn pg(&self) -> &tokio_postgres::Client {
        match &self.client {
            Client::Alone(c) => c,
            Client::Pooled(o) => o,
        }
    }

    /// The client, to open a transaction on it.
    pub(crate) fn pg_mut(&mut self) -> &mut tokio_postgres::Client {
        match &mut self.client {
            Client::Alone(c) => c,
            Client::Pooled(o) => &mut *o,
        }
    }

    /// What cancels the statement this connection runs, from anywhere.
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle {
            token: self.pg().cancel_token(),
            tls: self.tls.clone(),
        }
    }

    /// Whether the connection is gone (the server closed it or it broke).
    pub fn is_closed(&self) -> bool {
        self.pg().is_closed()
    }
}

/// Cancels what a connection is running (Ctrl-C): the server rolls back the
/// statement's transaction.
#[derive(Clone)]
pub struct CancelHandle {
    token: tokio_postgres::CancelToken,
    tls: MakeRustlsConnect,
}

impl CancelHandle {
    /// Asks the server to cancel; a connection that is gone has nothing to cancel.
    pub async fn cancel(&self) {
        let _ = self.token.cancel_query(self.tls.clone()).await;
    }
}

/// Connections to one warehouse, opened when asked for and kept for the
/// next caller; a connection that broke is not handed out again.
pub struct ConnectionPool {
    pub(crate) pool: deadpool_postgres::Pool,
    pub(crate) tls: MakeRustlsConnect,
    pub(crate) swap_lock: SwapLock,
}

/// An error from the server or the connection.
#[derive(Debug)]
pub struct DbError(pub(crate) tokio_postgres::Error);

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> DbError {
        DbError(e)
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&super::error_text(&self.0))
    }
}

impl std::error::Error for DbError {}

impl DbError {
    /// The server's own message when it sent one, else the client's error
    /// with its causes.
    pub fn text(&self) -> String {
        super::error_text(&self.0)
    }

    /// The error as the seam carries it: why the statement failed, and
    /// the message.
    pub fn statement_error(&self) -> StatementError {
        super::statement_error(&self.0)
    }
}

impl ConnectionPool {
    /// A connection: an idle one, else a new one while fewer than the
    /// pool's size are out.
    pub async fn get(&self) -> pm_core::error::Result<Connection> {
        let object = self.pool.get().await.map_err(|e| {
            let detail = match e {
                deadpool_postgres::PoolError::Backend(e) => super::error_text(&e),
                other => other.to_string(),
            };
            Problem::new(
                Code::ConnectPool,
                format!("cannot open a connection: {detail}"),
            )
            .help("check that the server runs and can take more connections (max_connections)")
        })?;
        Ok(Connection::pooled(
            object,
            self.tls.clone(),
            self.swap_lock.clone(),
        ))
    }

    /// `n` connections at once (a run's builders), each from [`ConnectionPool::get`].
    pub async fn get_many(&self, n: usize) -> pm_core::error::Result<Vec<Connection>> {
        let mut connections = Vec::with_capacity(n);
        for _ in 0..n {
            connections.push(self.get().await?);
        }
        Ok(connections)
    }
}
