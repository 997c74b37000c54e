//! What `pm serve` asks the warehouse: a caller's statement run as the
//! caller's role in a read-only transaction with a time limit (so grants,
//! column privileges and row-level security decide what it sees), whether a
//! role may read a statement at all, when the project's models were last
//! built, and a wake-up when a build finishes.

use super::{ConnectionPool, Endpoint};
use pm_core::text::quote_ident;
use serde_json::Value as Json;
use std::collections::HashMap;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type};

/// The channel a build's `pm_meta.run_results` insert notifies.
pub const BUILD_CHANNEL: &str = "pm_meta_run_results";

/// One caller's statement.
#[derive(Debug, Clone, Copy)]
pub struct ReadRequest<'a> {
    /// A role the server's configuration lists (checked by the caller).
    pub role: &'a str,
    pub sql: &'a str,
    /// `$1`, `$2`… as text: the server reads each as the type its place
    /// in the statement gives it, as it reads a quoted literal.
    pub params: &'a [String],
    pub statement_timeout_ms: u64,
    /// At most this many rows come back; `truncated` says there were more.
    pub max_rows: usize,
}

/// The rows of a statement, values as JSON (numbers as numbers).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    /// Name and PostgreSQL type of each column.
    pub columns: Vec<(String, String)>,
    pub rows: Vec<Vec<Json>>,
    pub truncated: bool,
}

/// Why a statement gave no answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadFailure {
    /// The role may not read something the statement reads.
    Denied(String),
    /// It ran past the statement timeout.
    TimedOut,
    /// The warehouse cannot be reached.
    Unavailable(String),
    /// A value the caller gave does not fit its place (SQLSTATE class 22:
    /// a date that is not one), with the server's message.
    BadValue(String),
    /// Any other error, with the server's message.
    Failed(String),
}

impl std::fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadFailure::Denied(m)
            | ReadFailure::Unavailable(m)
            | ReadFailure::BadValue(m)
            | ReadFailure::Failed(m) => f.write_str(m),
            ReadFailure::TimedOut => f.write_str("the statement ran past its time limit"),
        }
    }
}

fn failure(e: &tokio_postgres::Error) -> ReadFailure {
    match e.code() {
        Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => {
            ReadFailure::Denied(super::error_text(e))
        }
        Some(c) if *c == SqlState::QUERY_CANCELED => ReadFailure::TimedOut,
        Some(c) if c.code().starts_with("22") => ReadFailure::BadValue(super::error_text(e)),
        Some(_) => ReadFailure::Failed(super::error_text(e)),
        None if e.is_closed() => ReadFailure::Unavailable(super::error_text(e)),
        None => ReadFailure::Failed(super::error_text(e)),
    }
}

/// The server's own configuration is wrong when it cannot act as a role
/// it lists: never the caller's fault.
fn acting_as(role: &str, e: &tokio_postgres::Error) -> ReadFailure {
    match failure(e) {
        ReadFailure::Unavailable(m) => ReadFailure::Unavailable(m),
        other => ReadFailure::Failed(format!("the server cannot act as role `{role}`: {other}")),
    }
}

/// The roles of `roles` the server's login role cannot act as: each with
/// why (it does not exist, or the login role is not a member of it).
pub async fn unusable_roles(
    pool: &ConnectionPool,
    roles: &[String],
) -> Result<Vec<(String, String)>, ReadFailure> {
    let connection = connection_of(pool).await?;
    let rows = connection
        .pg()
        .query(
            "select w.name, r.oid is not null, coalesce(pg_has_role(current_user, r.oid, 'MEMBER'), false)
             from unnest($1::text[]) as w(name) left join pg_roles r on r.rolname = w.name",
            &[&roles],
        )
        .await
        .map_err(|e| failure(&e))?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let name: String = r.get(0);
            let exists: bool = r.get(1);
            let member: bool = r.get(2);
            match (exists, member) {
                (true, true) => None,
                (false, _) => Some((name, "it does not exist in the warehouse".to_string())),
                (true, false) => Some((
                    name,
                    "the server's login role is not a member of it (GRANT it to that role)"
                        .to_string(),
                )),
            }
        })
        .collect())
}

/// A connection of the pool; none to be had is the warehouse unavailable.
async fn connection_of(pool: &ConnectionPool) -> Result<super::Connection, ReadFailure> {
    pool.get()
        .await
        .map_err(|p| ReadFailure::Unavailable(p.to_string()))
}

/// A parameter sent as text, whatever type the server gives its place.
#[derive(Debug)]
struct TextParam<'a>(&'a str);

impl ToSql for TextParam<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> tokio_postgres::types::Format {
        tokio_postgres::types::Format::Text
    }

    tokio_postgres::types::to_sql_checked!();
}

fn text_params(params: &[String]) -> Vec<TextParam<'_>> {
    params.iter().map(|p| TextParam(p)).collect()
}

fn param_refs<'a>(params: &'a [TextParam<'_>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// A read-only transaction acting as `role` (`SET LOCAL ROLE`), with
/// `statement_timeout` when given.
async fn begin_as<'c>(
    connection: &'c mut super::Connection,
    role: &str,
    statement_timeout_ms: Option<u64>,
) -> Result<tokio_postgres::Transaction<'c>, ReadFailure> {
    let tx = connection
        .pg_mut()
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .map_err(|e| failure(&e))?;
    let mut set = format!("SET LOCAL ROLE {}", quote_ident(role));
    if let Some(ms) = statement_timeout_ms {
        set.push_str(&format!("; SET LOCAL statement_timeout = {ms}"));
    }
    tx.batch_execute(&set)
        .await
        .map_err(|e| acting_as(role, &e))?;
    Ok(tx)
}

/// Runs `r.sql` as `r.role`: a read-only transaction, `SET LOCAL ROLE`,
/// `SET LOCAL statement_timeout`, then at most `max_rows + 1` rows through
/// a portal (the server stops there). The transaction is rolled back.
pub async fn read_as(pool: &ConnectionPool, r: ReadRequest<'_>) -> Result<Answer, ReadFailure> {
    let mut connection = connection_of(pool).await?;
    let tx = begin_as(&mut connection, r.role, Some(r.statement_timeout_ms)).await?;
    let statement = tx.prepare(r.sql).await.map_err(|e| failure(&e))?;
    let params = text_params(r.params);
    let portal = tx
        .bind(&statement, &param_refs(&params))
        .await
        .map_err(|e| failure(&e))?;
    let wanted = i32::try_from(r.max_rows.saturating_add(1)).unwrap_or(i32::MAX);
    let rows = tx
        .query_portal(&portal, wanted)
        .await
        .map_err(|e| failure(&e))?;
    let columns: Vec<(String, String)> = statement
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c.type_().name().to_string()))
        .collect();
    let mut answer = Answer {
        columns,
        rows: Vec::with_capacity(rows.len().min(r.max_rows)),
        truncated: rows.len() > r.max_rows,
    };
    for row in rows.iter().take(r.max_rows) {
        let mut values = Vec::with_capacity(row.len());
        for i in 0..row.len() {
            let cell: Cell = row
                .try_get(i)
                .map_err(|e| ReadFailure::Failed(e.to_string()))?;
            values.push(cell.0);
        }
        answer.rows.push(values);
    }
    // Read-only: nothing to keep.
    tx.rollback().await.map_err(|e| failure(&e))?;
    Ok(answer)
}

/// Whether `role` may read what `sql` reads: the server checks privileges
/// when it plans the statement, so `EXPLAIN` answers without running it.
pub async fn may_read(
    pool: &ConnectionPool,
    role: &str,
    sql: &str,
    params: &[String],
) -> Result<bool, ReadFailure> {
    let mut connection = connection_of(pool).await?;
    let tx = begin_as(&mut connection, role, None).await?;
    let params = text_params(params);
    let outcome = tx
        .query(&format!("EXPLAIN {sql}"), &param_refs(&params))
        .await;
    let _ = tx.rollback().await;
    match outcome {
        Ok(_) => Ok(true),
        Err(e) => match failure(&e) {
            ReadFailure::Denied(_) => Ok(false),
            other => Err(other),
        },
    }
}

/// When each of `nodes` (unique ids) was last built successfully, as the
/// server prints the time; a node never built is absent. No history (no
/// `pm_meta`) is an empty map.
pub async fn build_versions(
    pool: &ConnectionPool,
    nodes: &[String],
) -> Result<HashMap<String, String>, ReadFailure> {
    let connection = connection_of(pool).await?;
    let rows = connection
        .pg()
        .query(
            "select node, max(finished_at)::text from pm_meta.run_results
             where node = any($1) and status = 'success' group by node",
            &[&nodes],
        )
        .await;
    match rows {
        Ok(rows) => Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect()),
        Err(e) if no_history(&e) => Ok(HashMap::new()),
        Err(e) => Err(failure(&e)),
    }
}

/// A project never built here has no `pm_meta.run_results`.
fn no_history(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::UNDEFINED_TABLE || *c == SqlState::INVALID_SCHEMA_NAME
    )
}

/// The last run that built models (`build`, `run`, `seed`, `snapshot`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastBuild {
    pub command: String,
    pub finished_at: String,
    /// No node of it ended in an error or a failed test.
    pub succeeded: bool,
}

/// The last build, from `pm_meta.run_results`; none without history.
pub async fn last_build(pool: &ConnectionPool) -> Result<Option<LastBuild>, ReadFailure> {
    let connection = connection_of(pool).await?;
    let row = connection
        .pg()
        .query_opt(
            "with last as (
                 select run_id from pm_meta.run_results
                 where command in ('build', 'run', 'seed', 'snapshot')
                 order by finished_at desc limit 1)
             select min(command), max(finished_at)::text, bool_and(status not in ('error', 'fail'))
             from pm_meta.run_results where run_id = (select run_id from last)
             having count(*) > 0",
            &[],
        )
        .await;
    match row {
        Ok(row) => Ok(row.map(|r| LastBuild {
            command: r.get(0),
            finished_at: r.get(1),
            succeeded: r.get(2),
        })),
        Err(e) if no_history(&e) => Ok(None),
        Err(e) => Err(failure(&e)),
    }
}

/// Wakes its holder each time a run records its results: a connection
/// that `LISTEN`s on [`BUILD_CHANNEL`].
pub struct BuildNotices {
    notices: tokio::sync::mpsc::UnboundedReceiver<()>,
    _client: tokio_postgres::Client,
}

impl BuildNotices {
    /// Connects and listens. Call [`Endpoint::connect`] first (it starts
    /// the embedded cluster).
    pub async fn listen(endpoint: &Endpoint) -> pm_core::error::Result<BuildNotices> {
        let (config, tls) = endpoint.config()?;
        let (client, mut connection) = config.connect(tls).await.map_err(|e| {
            pm_core::error::Problem::new(
                pm_core::error::Code::ConnectFailed,
                format!(
                    "cannot connect to {}: {}",
                    endpoint.describe(),
                    super::error_text(&e)
                ),
            )
        })?;
        let (send, notices) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            use futures_util::StreamExt;
            while let Some(Ok(message)) = messages.next().await {
                if let tokio_postgres::AsyncMessage::Notification(_) = message {
                    if send.send(()).is_err() {
                        break;
                    }
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {BUILD_CHANNEL}"))
            .await
            .map_err(|e| {
                pm_core::error::Problem::new(
                    pm_core::error::Code::ConnectFailed,
                    format!("cannot listen for builds: {}", super::error_text(&e)),
                )
            })?;
        Ok(BuildNotices {
            notices,
            _client: client,
        })
    }

    /// Waits for the next notice; false when the connection is gone.
    pub async fn next(&mut self) -> bool {
        let got = self.notices.recv().await.is_some();
        // Notices that came together are one wake-up.
        while self.notices.try_recv().is_ok() {}
        got
    }
}

/// A value of any column type a semantic query gives, as JSON.
struct Cell(Json);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Cell, Box<dyn std::error::Error + Sync + Send>> {
        let json = match *ty {
            Type::BOOL => Json::Bool(bool::from_sql(ty, raw)?),
            Type::INT2 => Json::from(i16::from_sql(ty, raw)?),
            Type::INT4 => Json::from(i32::from_sql(ty, raw)?),
            Type::INT8 => Json::from(i64::from_sql(ty, raw)?),
            Type::OID => Json::from(u32::from_sql(ty, raw)?),
            Type::FLOAT4 => Json::from(f32::from_sql(ty, raw)? as f64),
            Type::FLOAT8 => Json::from(f64::from_sql(ty, raw)?),
            Type::NUMERIC => {
                let text = numeric_text(raw)?;
                text.parse::<i64>()
                    .map(Json::from)
                    .or_else(|_| text.parse::<f64>().map(Json::from))
                    .unwrap_or(Json::String(text))
            }
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                Json::String(String::from_utf8_lossy(raw).into_owned())
            }
            Type::DATE => Json::String(chrono::NaiveDate::from_sql(ty, raw)?.to_string()),
            Type::TIMESTAMP => Json::String(
                chrono::NaiveDateTime::from_sql(ty, raw)?
                    .format("%Y-%m-%d %H:%M:%S%.f")
                    .to_string(),
            ),
            Type::TIMESTAMPTZ => Json::String(
                chrono::DateTime::<chrono::Utc>::from_sql(ty, raw)?
                    .format("%Y-%m-%d %H:%M:%S%.f+00")
                    .to_string(),
            ),
            Type::JSON => serde_json::from_slice(raw)?,
            Type::JSONB => serde_json::from_slice(raw.get(1..).unwrap_or_default())?,
            Type::UUID => Json::String(uuid_text(raw)?),
            _ => {
                return Err(format!("pm serve cannot yet send values of type {}", ty.name()).into())
            }
        };
        Ok(Cell(json))
    }

    fn from_sql_null(_ty: &Type) -> Result<Cell, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Cell(Json::Null))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// A binary NUMERIC as its decimal text: four header words (digit count,
/// weight of the first base-10000 digit, sign, display scale), then digits.
fn numeric_text(raw: &[u8]) -> Result<String, Box<dyn std::error::Error + Sync + Send>> {
    let word = |k: usize| -> Result<u16, Box<dyn std::error::Error + Sync + Send>> {
        raw.get(2 * k..2 * k + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "a NUMERIC value too short".into())
    };
    let ndigits = word(0)? as usize;
    let weight = word(1)? as i16 as i32;
    let sign = word(2)?;
    let scale = word(3)? as usize;
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    let digits: Vec<u16> = (0..ndigits)
        .map(|k| word(4 + k))
        .collect::<Result<_, _>>()?;
    let digit = |k: i32| -> u16 {
        usize::try_from(k)
            .ok()
            .and_then(|k| digits.get(k).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        out.push_str(&digit(0).to_string());
        for k in 1..=weight {
            out.push_str(&format!("{:04}", digit(k)));
        }
    }
    if scale > 0 {
        let mut fraction = String::new();
        let mut k = weight + 1;
        while fraction.len() < scale {
            fraction.push_str(&format!("{:04}", digit(k)));
            k += 1;
        }
        fraction.truncate(scale);
        out.push('.');
        out.push_str(&fraction);
    }
    Ok(out)
}

fn uuid_text(raw: &[u8]) -> Result<String, Box<dyn std::error::Error + Sync + Send>> {
    if raw.len() != 16 {
        return Err("a UUID value of the wrong length".into());
    }
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::numeric_text;

    fn numeric(ndigits: u16, weight: i16, sign: u16, scale: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [ndigits, weight as u16, sign, scale].iter().chain(digits) {
            v.extend_from_slice(&w.to_be_bytes());
        }
        v
    }

    #[test]
    fn numerics_read_as_their_decimal_text() {
        // 12345.678 = 1 2345 . 6780
        assert_eq!(
            numeric_text(&numeric(3, 1, 0, 3, &[1, 2345, 6780])).unwrap(),
            "12345.678"
        );
        // -0.05 = weight -1, digit 500
        assert_eq!(
            numeric_text(&numeric(1, -1, 0x4000, 2, &[500])).unwrap(),
            "-0.05"
        );
        // 20000 = 2 0000 with trailing zero digits dropped
        assert_eq!(numeric_text(&numeric(1, 1, 0, 0, &[2])).unwrap(), "20000");
        assert_eq!(numeric_text(&numeric(0, 0, 0, 2, &[])).unwrap(), "0.00");
        assert_eq!(numeric_text(&numeric(0, 0, 0xC000, 0, &[])).unwrap(), "NaN");
        // 0.000012 = weight -2, digit 12 (0.0000|12..)
        assert_eq!(
            numeric_text(&numeric(1, -2, 0, 6, &[1200])).unwrap(),
            "0.000012"
        );
    }
}
