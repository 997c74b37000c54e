//! Everything that talks to PostgreSQL: connections and pm's embedded
//! local cluster. The only module that sends SQL.

pub mod build;
pub mod citus;
mod connection;
pub mod embedded;
pub mod load;
pub mod meta;
pub mod render;
pub mod report;
pub mod run;
pub mod serve;
pub mod snapshot;
pub mod test;
pub mod tls;
pub mod unit_test;
pub mod warehouse;

pub use connection::{CancelHandle, Connection, ConnectionPool, DbError};
use pm_core::error::{Code, Problem, Result};
use pm_core::loader::profile::Target;
use pm_core::settings::ServerEnvironment;
use pm_core::warehouse::{Failure, StatementError};
use std::path::Path;

/// Where a command's connection goes.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// `PM_DATABASE_URL`.
    Url(String),
    /// A profiles.yml output.
    Profile(Box<Target>),
    /// pm's own cluster for the project.
    Embedded(Box<embedded::Cluster>),
}

impl Endpoint {
    /// `PM_DATABASE_URL` wins; then a configured target; else the embedded cluster.
    /// `server`: what the embedded cluster reads of the environment (its
    /// binaries' folder, the OS user, PATH).
    pub fn resolve(root: &Path, target: &Target, server: &ServerEnvironment) -> Result<Endpoint> {
        if let Some(url) = &target.database_url {
            return Ok(Endpoint::Url(url.clone()));
        }
        if target.origin != "embedded" {
            return Ok(Endpoint::Profile(Box::new(target.clone())));
        }
        Ok(Endpoint::Embedded(Box::new(
            embedded::Cluster::for_project(root, server)?,
        )))
    }

    /// Where it points, with no secrets.
    pub fn describe(&self) -> String {
        match self {
            Endpoint::Url(u) => format!("PM_DATABASE_URL ({})", mask_connection_string(u)),
            Endpoint::Profile(t) => format!(
                "profile {} target {} ({}@{}:{}/{}, from {})",
                t.profile_name, t.name, t.user, t.host, t.port, t.database, t.origin
            ),
            Endpoint::Embedded(c) => format!("embedded PostgreSQL ({})", c.url()),
        }
    }

    /// The connection settings and the TLS connector that goes with them.
    fn config(&self) -> Result<(tokio_postgres::Config, tls::MakeRustlsConnect)> {
        match self {
            Endpoint::Url(u) => {
                let (rest, passfile) = split_passfile(u);
                let (rest, settings) = split_tls(&rest);
                let mut c = parse_connection_string(&rest)?;
                if let Some(passfile) = passfile {
                    password_from_passfile(&mut c, &passfile)?;
                }
                if c.get_application_name().is_none() {
                    c.application_name("pm");
                }
                c.ssl_mode(settings.ssl_mode()?);
                Ok((c, settings.connector()?))
            }
            Endpoint::Profile(t) => {
                let mut c = tokio_postgres::Config::new();
                c.host(&t.host)
                    .port(t.port)
                    .user(&t.user)
                    .dbname(&t.database)
                    .application_name("pm");
                if let Some(p) = &t.password {
                    c.password(p.expose());
                }
                let num = |k: &str| {
                    t.extra.get(k).and_then(|v| {
                        v.as_u64()
                            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    })
                };
                let text = |k: &str| t.extra.get(k).and_then(pm_core::loader::yaml::as_string);
                if let Some(s) = num("connect_timeout") {
                    c.connect_timeout(std::time::Duration::from_secs(s));
                }
                if let Some(s) = num("keepalives_idle").filter(|&s| s > 0) {
                    c.keepalives_idle(std::time::Duration::from_secs(s));
                }
                if let Some(name) = text("application_name") {
                    c.application_name(&name);
                }
                // Session settings go in the startup packet: every connection gets them.
                let mut options = Vec::new();
                for (key, guc) in [("search_path", "search_path"), ("role", "role")] {
                    if let Some(v) = text(key).filter(|v| !v.trim().is_empty()) {
                        let v = v.replace('\\', "\\\\").replace(' ', "\\ ");
                        options.push(format!("-c {guc}={v}"));
                    }
                }
                if !options.is_empty() {
                    c.options(options.join(" "));
                }
                let settings = tls::TlsSettings {
                    mode: text("sslmode").unwrap_or_default(),
                    root_cert: text("sslrootcert"),
                    cert: text("sslcert"),
                    key: text("sslkey"),
                };
                c.ssl_mode(settings.ssl_mode()?);
                Ok((c, settings.connector()?))
            }
            // Started by `connect` (off the async runtime's thread).
            Endpoint::Embedded(cluster) => Ok((
                cluster.config(embedded::DATABASE),
                tls::TlsSettings::default().connector()?,
            )),
        }
    }

    /// A pool of up to `size` connections, all opened now (so that a
    /// target that cannot take them fails before any work starts) and then
    /// handed out by [`ConnectionPool::get`].
    /// Call [`Endpoint::connect`] first: it creates the embedded database.
    pub async fn pool(&self, size: usize) -> Result<ConnectionPool> {
        let (config, tls) = self.config()?;
        let config_for_timeout = config.clone();
        let manager = deadpool_postgres::Manager::from_config(
            config,
            tls.clone(),
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(size.max(1))
            .build()
            .map_err(|e| {
                Problem::new(
                    Code::ConnectPool,
                    format!("cannot make a connection pool: {e}"),
                )
            })?;
        let limit = startup_timeout(&config_for_timeout);
        let server = describe_server(&config_for_timeout);
        let mut opened = Vec::with_capacity(size);
        for _ in 0..size.max(1) {
            let client = tokio::time::timeout(limit, pool.get())
                .await
                .map_err(|_| self.connect_problem(ConnectFailure::Silent(server.clone(), limit)))?
                .map_err(|e| match e {
                    deadpool_postgres::PoolError::Backend(e) => {
                        self.connect_problem(ConnectFailure::Error(e))
                    }
                    other => Problem::new(
                        Code::ConnectPool,
                        format!("cannot open a connection to {}: {other}", self.describe()),
                    )
                    .into(),
                })?;
            opened.push(client);
        }
        drop(opened);
        Ok(ConnectionPool {
            pool,
            tls,
            swap_lock: Default::default(),
        })
    }

    /// Whether a connection can be made without starting anything: the
    /// embedded cluster must already be running.
    pub fn is_up_without_starting(&self) -> bool {
        match self {
            Endpoint::Embedded(c) => matches!(c.status(), embedded::Status::Running { .. }),
            _ => true,
        }
    }

    /// Column names and types of every relation in `schemas` (tables,
    /// views, materialized views), in column order.
    pub async fn catalog(
        client: &Connection,
        schemas: &[String],
    ) -> std::result::Result<Vec<(String, String, String, String)>, DbError> {
        let client = client.pg();
        Ok(client
            .query(
                "select n.nspname::text, c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod)
                 from pg_attribute a
                 join pg_class c on c.oid = a.attrelid
                 join pg_namespace n on n.oid = c.relnamespace
                 where n.nspname = any($1) and c.relkind in ('r', 'v', 'm', 'p', 'f')
                   and a.attnum > 0 and not a.attisdropped
                 order by 1, 2, a.attnum",
                &[&schemas],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }

    /// Connects (starting the embedded cluster and creating its database when
    /// needed). The whole start-up, authentication included, must finish
    /// within `connect_timeout` (default 10 s), as with libpq.
    pub async fn connect(&self) -> Result<Connection> {
        let tls = self.config()?.1;
        let client = self.connect_client().await?;
        Ok(Connection::alone(client, tls))
    }

    pub(crate) async fn connect_client(&self) -> Result<tokio_postgres::Client> {
        if let Endpoint::Embedded(cluster) = self {
            // initdb and pg_ctl block: they run on a blocking thread, so the
            // runtime's own thread goes on driving other connections.
            let cluster = cluster.clone();
            tokio::task::spawn_blocking(move || cluster.start_all())
                .await
                .map_err(|e| {
                    Problem::new(
                        Code::EmbeddedStart,
                        format!("starting the local PostgreSQL stopped: {e}"),
                    )
                })??;
        }
        let (config, tls) = self.config()?;
        let connect_with = |config: &tokio_postgres::Config| {
            let config = config.clone();
            let tls = tls.clone();
            async move {
                let limit = startup_timeout(&config);
                let (client, connection) = tokio::time::timeout(limit, config.connect(tls))
                    .await
                    .map_err(|_| ConnectFailure::Silent(describe_server(&config), limit))?
                    .map_err(ConnectFailure::Error)?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok::<_, ConnectFailure>(client)
            }
        };
        let first = connect_with(&config).await;
        match (first, self) {
            (Ok(c), _) => Ok(c),
            // First connection to a new embedded cluster: create its database.
            (Err(ConnectFailure::Error(e)), Endpoint::Embedded(cluster))
                if is_missing_database(&e) =>
            {
                let admin = connect_with(&cluster.config("postgres"))
                    .await
                    .map_err(|e| self.connect_problem(e))?;
                admin
                    .batch_execute(&format!("create database {}", embedded::DATABASE))
                    .await
                    .or_else(|e| {
                        if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) {
                            Ok(())
                        } else {
                            Err(ConnectFailure::Error(e))
                        }
                    })
                    .map_err(|e| self.connect_problem(e))?;
                connect_with(&config)
                    .await
                    .map_err(|e| self.connect_problem(e))
            }
            (Err(e), _) => Err(self.connect_problem(e)),
        }
    }

    fn connect_problem(&self, failure: ConnectFailure) -> pm_core::error::Problems {
        let e = match failure {
            ConnectFailure::Error(e) => e,
            ConnectFailure::Silent(server, limit) => {
                return Problem::new(
                    Code::ConnectTimeout,
                    format!(
                        "cannot connect to {}: {server} did not answer within {} s",
                        self.describe(),
                        limit.as_secs_f64()
                    ),
                )
                .help("check that the host and port are those of a PostgreSQL server and that it is not overloaded; \
                       connect_timeout (in profiles.yml or the URL) sets how long pm waits")
                .into();
            }
        };
        let detail = e
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_else(|| {
                let mut s = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(inner) = src {
                    s.push_str(&format!(": {inner}"));
                    src = inner.source();
                }
                s
            });
        Problem::new(Code::ConnectFailed, format!("cannot connect to {}: {detail}", self.describe()))
            .help(match self {
                Endpoint::Embedded(c) => format!("see the server log {}; `pm db status` tells its state", c.log_file.display()),
                _ => "check the host, port, user, password and database of the target, and that the server is running".into(),
            })
            .into()
    }
}

/// The server's `select version()`.
pub async fn server_version(client: &Connection) -> Result<String> {
    let client = client.pg();
    let row = client
        .query_one("select version()", &[])
        .await
        .map_err(|e| {
            pm_core::error::Problem::new(
                Code::ConnectQuery,
                format!(
                    "connected, but `select version()` failed: {}",
                    error_text(&e)
                ),
            )
        })?;
    Ok(row.get(0))
}

/// An error from the server or the connection as a sentence: the server's
/// own message when it sent one (tokio-postgres' text is just "db error"),
/// else the client's error with its causes.
/// Columns (name, `format_type` type) of a relation named as SQL writes it
/// (`"schema"."name"`, or a temporary table's name), in order; none when
/// there is no such relation.
pub(crate) async fn columns_of(
    client: &impl tokio_postgres::GenericClient,
    relation: &str,
) -> Result<Vec<(String, String)>, tokio_postgres::Error> {
    Ok(client
        .query_typed(
            "select attname::text, format_type(atttypid, atttypmod) from pg_attribute
             where attrelid = to_regclass($1) and attnum > 0 and not attisdropped order by attnum",
            &[(&relation, tokio_postgres::types::Type::TEXT)],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

pub(crate) fn error_text(e: &tokio_postgres::Error) -> String {
    if let Some(d) = e.as_db_error() {
        return d.message().to_string();
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// What an error from a statement means for the run, and its message.
pub(crate) fn statement_error(e: &tokio_postgres::Error) -> StatementError {
    use tokio_postgres::error::SqlState;
    let failure = match e.code() {
        Some(c) if *c == SqlState::QUERY_CANCELED => Failure::Cancelled,
        // Class 57P: the server is shutting down or cannot take connections.
        Some(c) if c.code().starts_with("57P") => Failure::ConnectionLost,
        Some(_) => Failure::Refused,
        None if e.as_db_error().is_some() => Failure::Refused,
        None => Failure::ConnectionLost,
    };
    StatementError {
        failure,
        message: error_text(e),
    }
}

/// Why a connection was not made.
enum ConnectFailure {
    Error(tokio_postgres::Error),
    /// The server (host:port) did not finish the start-up within the limit.
    Silent(String, std::time::Duration),
}

/// How long a connection's start-up may take.
fn startup_timeout(config: &tokio_postgres::Config) -> std::time::Duration {
    config
        .get_connect_timeout()
        .copied()
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
}

/// libpq waits forever by default; pm, like most clients, does not.
const DEFAULT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `host:port` (or the socket folder) a configuration connects to first.
fn describe_server(config: &tokio_postgres::Config) -> String {
    let port = config.get_ports().first().copied().unwrap_or(5432);
    match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => format!("the server at {h}:{port}"),
        Some(tokio_postgres::config::Host::Unix(p)) => {
            format!("the server at socket {}", p.display())
        }
        None => format!("the server at localhost:{port}"),
    }
}

fn is_missing_database(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME)
}

/// Parses a connection string (URL or `key=value` pairs), saying what is
/// wrong with it when it does not parse.
fn parse_connection_string(conn: &str) -> Result<tokio_postgres::Config> {
    conn.parse::<tokio_postgres::Config>().map_err(|e| {
        // tokio-postgres says only "invalid connection string"; the reason is its source.
        let reason = std::error::Error::source(&e)
            .map(|s| s.to_string())
            .unwrap_or_else(|| e.to_string());
        let hint = match conn.split_once("://") {
            Some((scheme, _)) if !matches!(scheme, "postgres" | "postgresql") => {
                format!("a URL must start with postgresql:// (this one starts with {scheme}://)")
            }
            _ => "write it like postgresql://user:password@host:5432/dbname?sslmode=require, \
                  or as key=value pairs: host=... port=5432 user=... dbname=..."
                .to_string(),
        };
        Problem::new(
            Code::ConnectUrl,
            format!(
                "PM_DATABASE_URL ({}) is not a valid connection string: {reason}",
                mask_connection_string(conn)
            ),
        )
        .help(hint)
        .into()
    })
}

/// With `PM_DATABASE_URL` set, the target that templates see (`target.dbname`,
/// `target.user`, ...) and that relation names use is the URL's: its
/// database, user, host and port; schema and threads stay the profile's.
pub fn apply_database_url(target: &mut Target, url: Option<&str>) {
    let Some(url) = url else {
        return;
    };
    target.database_url = Some(url.to_string());
    let Ok(c) = split_tls(&split_passfile(url).0)
        .0
        .parse::<tokio_postgres::Config>()
    else {
        // Left for Endpoint::resolve/connect to report with its help line.
        return;
    };
    if let Some(db) = c.get_dbname() {
        target.database = db.to_string();
    } else if let Some(user) = c.get_user() {
        target.database = user.to_string();
    }
    if let Some(user) = c.get_user() {
        target.user = user.to_string();
    }
    if let Some(tokio_postgres::config::Host::Tcp(h)) = c.get_hosts().first() {
        target.host = h.clone();
    }
    if let Some(&port) = c.get_ports().first() {
        target.port = port;
    }
    target.origin = "PM_DATABASE_URL".into();
}

/// Takes the TLS settings (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`)
/// out of a connection string, URL or `key=value` form: tokio-postgres knows
/// only some of them, pm handles all.
fn split_tls(conn: &str) -> (String, tls::TlsSettings) {
    let mut settings = tls::TlsSettings::default();
    let mut take = |k: &str, v: &str| -> bool {
        let slot = match k {
            "sslmode" => {
                settings.mode = v.to_string();
                return true;
            }
            "sslrootcert" => &mut settings.root_cert,
            "sslcert" => &mut settings.cert,
            "sslkey" => &mut settings.key,
            _ => return false,
        };
        *slot = Some(v.to_string());
        true
    };
    if conn.starts_with("postgres://") || conn.starts_with("postgresql://") {
        let Some((base, query)) = conn.split_once('?') else {
            return (conn.to_string(), settings);
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                !take(k, v)
            })
            .collect();
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        (rest, settings)
    } else {
        let kept: Vec<&str> = conn
            .split_whitespace()
            .filter(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                !take(k.trim(), v.trim_matches('\''))
            })
            .collect();
        (kept.join(" "), settings)
    }
}

/// A connection string without its `passfile` parameter (which
/// tokio-postgres does not know), and that parameter's value, decoded.
fn split_passfile(conn: &str) -> (String, Option<String>) {
    let is_url = conn.starts_with("postgres://") || conn.starts_with("postgresql://");
    let (base, params, sep) = if is_url {
        match conn.split_once('?') {
            Some((b, q)) => (b.to_string(), q.split('&').collect::<Vec<_>>(), "&"),
            None => return (conn.to_string(), None),
        }
    } else {
        (String::new(), conn.split_whitespace().collect(), " ")
    };
    let mut passfile = None;
    let kept: Vec<&str> = params
        .into_iter()
        .filter(|kv| match kv.split_once('=') {
            Some((k, v)) if k.trim() == "passfile" => {
                let v = v.trim().trim_matches('\'');
                passfile = Some(if is_url {
                    pm_core::text::percent_decode(v)
                } else {
                    v.to_string()
                });
                false
            }
            _ => true,
        })
        .collect();
    let rest = match (is_url, kept.is_empty()) {
        (true, true) => base,
        (true, false) => format!("{base}?{}", kept.join(sep)),
        (false, _) => kept.join(sep),
    };
    (rest, passfile)
}

/// The password for `config`'s database and user in a libpq password file,
/// when the config has none. libpq's rule: a file others can read is ignored.
fn password_from_passfile(config: &mut tokio_postgres::Config, passfile: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if config.get_password().is_some() {
        return Ok(());
    }
    let unreadable = |why: String| -> pm_core::error::Problems {
        Problem::new(
            Code::ConnectPassfile,
            format!("the passfile {passfile} {why}"),
        )
        .help("`pm db url --role NAME` writes one (.pm/passwords); or put the password in the URL")
        .into()
    };
    let md = std::fs::metadata(passfile).map_err(|e| unreadable(format!("cannot be read: {e}")))?;
    if md.permissions().mode() & 0o077 != 0 {
        return Err(unreadable("can be read by others (chmod 600 it)".into()));
    }
    let text = std::fs::read_to_string(passfile)
        .map_err(|e| unreadable(format!("cannot be read: {e}")))?;
    let database = config.get_dbname().unwrap_or_default().to_string();
    let user = config.get_user().unwrap_or_default().to_string();
    if let Some(p) = text
        .lines()
        .find_map(|l| embedded::passfile_password(l, &database, &user))
    {
        config.password(p);
    }
    Ok(())
}

/// Keys of a connection string whose values are secrets.
const SECRET_PARAMETERS: [&str; 2] = ["password", "sslpassword"];

/// A connection string with every secret replaced by `****`: the password
/// of a URL's user info (`postgresql://me:****@db/x`), a `password=` query
/// parameter, and a `password=` pair of the `key=value` form (quoted or not).
pub fn mask_connection_string(conn: &str) -> String {
    match conn.split_once("://") {
        Some((scheme, rest)) => {
            let (before_query, query) = match rest.split_once('?') {
                Some((b, q)) => (b, Some(q)),
                None => (rest, None),
            };
            let (authority, path) = match before_query.find('/') {
                Some(i) => before_query.split_at(i),
                None => (before_query, ""),
            };
            let authority = match authority.rsplit_once('@') {
                Some((creds, host)) => match creds.split_once(':') {
                    Some((user, _)) => format!("{user}:****@{host}"),
                    None => authority.to_string(),
                },
                None => authority.to_string(),
            };
            let mut out = format!("{scheme}://{authority}{path}");
            if let Some(q) = query {
                let params: Vec<String> = q
                    .split('&')
                    .map(|kv| match kv.split_once('=') {
                        Some((k, _))
                            if SECRET_PARAMETERS.contains(&k.to_ascii_lowercase().as_str()) =>
                        {
                            format!("{k}=****")
                        }
                        _ => kv.to_string(),
                    })
                    .collect();
                out.push('?');
                out.push_str(&params.join("&"));
            }
            out
        }
        None => mask_key_values(conn),
    }
}

/// `host=db password='s e\'cret' user=me` → `host=db password=**** user=me`.
fn mask_key_values(conn: &str) -> String {
    let mut out = String::with_capacity(conn.len());
    let mut rest = conn;
    while !rest.is_empty() {
        // Whitespace between pairs is kept as it is.
        let key_start = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..key_start]);
        rest = &rest[key_start..];
        let key_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        out.push_str(key);
        rest = &rest[key_end..];
        let eq = rest.len() - rest.trim_start().len();
        if !rest[eq..].starts_with('=') {
            continue;
        }
        let after_eq = &rest[eq + 1..];
        let value_start = after_eq.len() - after_eq.trim_start().len();
        let value = &after_eq[value_start..];
        let value_len = if let Some(quoted) = value.strip_prefix('\'') {
            let mut end = quoted.len();
            let mut escaped = false;
            for (i, c) in quoted.char_indices() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '\'' => {
                        end = i + 1;
                        break;
                    }
                    _ => {}
                }
            }
            1 + end
        } else {
            value.find(char::is_whitespace).unwrap_or(value.len())
        };
        out.push_str(&rest[..eq + 1 + value_start]);
        if SECRET_PARAMETERS.contains(&key.to_ascii_lowercase().as_str()) {
            out.push_str("****");
        } else {
            out.push_str(&value[..value_len]);
        }
        rest = &value[value_len..];
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn tls_settings_leave_the_connection_string() {
        let (rest, t) = super::split_tls(
            "postgresql://u:p@db:5432/x?sslmode=verify-full&sslrootcert=/ca.pem&connect_timeout=5",
        );
        assert_eq!(rest, "postgresql://u:p@db:5432/x?connect_timeout=5");
        assert_eq!(t.mode, "verify-full");
        assert_eq!(t.root_cert.as_deref(), Some("/ca.pem"));
        let (rest, t) = super::split_tls("host=db user=u sslmode=require dbname=x");
        assert_eq!(rest, "host=db user=u dbname=x");
        assert_eq!(t.mode, "require");
        assert_eq!(
            super::split_tls("postgresql:///x?host=/tmp").0,
            "postgresql:///x?host=/tmp"
        );
    }

    #[test]
    fn masks_passwords_in_every_form() {
        let mask = super::mask_connection_string;
        assert_eq!(
            mask("postgresql://me:s3cret@db:5432/x"),
            "postgresql://me:****@db:5432/x"
        );
        assert_eq!(mask("postgresql://me@db/x"), "postgresql://me@db/x");
        assert_eq!(
            mask("postgresql://me@db/x?sslmode=require&password=s3cret&PASSWORD=again"),
            "postgresql://me@db/x?sslmode=require&password=****&PASSWORD=****"
        );
        assert_eq!(
            mask("postgres://me:p@ss@db/x?password=s3cret"),
            "postgres://me:****@db/x?password=****"
        );
        assert_eq!(
            mask("host=db password=s3cret user=me"),
            "host=db password=**** user=me"
        );
        assert_eq!(
            mask("host=db  password = 's3 c\\'ret' dbname=x"),
            "host=db  password = **** dbname=x"
        );
        assert_eq!(mask("password='unterminated"), "password=****");
        for masked in [
            mask("postgresql://u:s3cret@h/x?password=s3cret"),
            mask("host=h password=s3cret sslpassword=s3cret"),
        ] {
            assert!(!masked.contains("s3cret"), "{masked}");
        }
    }
}
