//! The HTTP face of [`App`]: routes, content negotiation (JSON or CSV,
//! `ETag`/`If-None-Match`), status codes, and one access-log line per
//! request (method, path, role, status, rows, milliseconds; never a token).

use crate::app::{App, QueryBody, Reply};
use crate::auth::Refusal;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use pm_postgres::serve::ReadFailure;
use serde_json::json;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

/// What every handler shares.
#[derive(Clone)]
pub struct Shared {
    pub app: Arc<App>,
    pub metrics: Bytes,
    pub saved_queries: Bytes,
    pub openapi: Bytes,
    pub json_log: bool,
}

/// What the access log says of a request, set by its handler.
#[derive(Clone, Default)]
struct Facts {
    role: Option<String>,
    rows: Option<usize>,
}

pub const DASHBOARD: &str = include_str!("dashboard.html");

pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/api/v1/health", get(health))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/metrics", get(metrics))
        .route("/api/v1/saved-queries", get(saved_queries))
        .route("/api/v1/saved-queries/{name}", get(saved_query))
        .route("/api/v1/query", post(run_query))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            access_log,
        ))
        .with_state(shared)
}

async fn access_log(State(s): State<Shared>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let facts = response
        .extensions()
        .get::<Facts>()
        .cloned()
        .unwrap_or_default();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let status = response.status().as_u16();
    let line = if s.json_log {
        json!({
            "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "method": method.as_str(), "path": path, "role": facts.role,
            "status": status, "rows": facts.rows, "ms": (ms * 10.0).round() / 10.0,
        })
        .to_string()
    } else {
        format!(
            "{} {method} {path} role={} status={status} rows={} ms={ms:.1}",
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            facts.role.as_deref().unwrap_or("-"),
            facts.rows.map_or("-".to_string(), |r| r.to_string()),
        )
    };
    let _ = writeln!(std::io::stdout().lock(), "{line}");
    response
}

async fn dashboard() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:"),
        ],
        DASHBOARD,
    )
        .into_response()
}

fn json_bytes(bytes: &Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], bytes.clone()).into_response()
}

async fn openapi(State(s): State<Shared>) -> Response {
    json_bytes(&s.openapi)
}

async fn health(State(s): State<Shared>) -> Response {
    let app = &s.app;
    let (status, body) = match pm_postgres::serve::last_build(&app.pool).await {
        Ok(last) => (
            StatusCode::OK,
            json!({
                "status": "ok",
                "warehouse": "reachable",
                "last_build": last.map(|b| json!({"command": b.command, "finished_at": b.finished_at, "succeeded": b.succeeded})),
                "statements": app.statements.load(std::sync::atomic::Ordering::Relaxed),
                "cached_answers": app.cache.len(),
            }),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "warehouse": format!("unreachable: {e}")}),
        ),
    };
    (status, axum::Json(body)).into_response()
}

/// Runs a handler's body once the caller's role is known.
fn authorized(s: &Shared, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    s.app
        .role_of(authorization)
        .map_err(|reply| Box::new(respond(reply, headers, Facts::default())))
}

async fn metrics(State(s): State<Shared>, headers: HeaderMap) -> Response {
    catalog(&s, &headers, &s.metrics)
}

async fn saved_queries(State(s): State<Shared>, headers: HeaderMap) -> Response {
    catalog(&s, &headers, &s.saved_queries)
}

/// A part of the catalog, for a caller with a good token.
fn catalog(s: &Shared, headers: &HeaderMap, part: &Bytes) -> Response {
    match authorized(s, headers) {
        Ok(role) => with_facts(json_bytes(part), Some(role), None),
        Err(r) => *r,
    }
}

async fn saved_query(
    State(s): State<Shared>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let role = match authorized(&s, &headers) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let facts = Facts {
        role: Some(role.clone()),
        rows: None,
    };
    let mut params: Vec<(String, String)> = match query_pairs(raw.as_deref().unwrap_or("")) {
        Ok(p) => p,
        Err(e) => return respond(Reply::Invalid(e), &headers, facts),
    };
    params.sort();
    let (q, values) = match s.app.saved_query_of(&name, &params) {
        Ok(x) => x,
        Err(reply) => return respond(reply, &headers, facts),
    };
    let key = format!(
        "saved:{name}?{}",
        serde_json::to_string(&params).unwrap_or_default()
    );
    let reply = s.app.answer(&role, key, &q, values).await;
    respond(reply, &headers, facts)
}

async fn run_query(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let role = match authorized(&s, &headers) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let facts = Facts {
        role: Some(role.clone()),
        rows: None,
    };
    let asked: QueryBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return respond(
                Reply::Invalid(format!("the body is not a query: {e}")),
                &headers,
                facts,
            )
        }
    };
    let (q, values) = match s.app.query_of(&asked) {
        Ok(x) => x,
        Err(e) => return respond(Reply::Invalid(e), &headers, facts),
    };
    let key = format!(
        "query:{}",
        serde_json::to_string(&asked).unwrap_or_default()
    );
    let reply = s.app.answer(&role, key, &q, values).await;
    respond(reply, &headers, facts)
}

async fn not_found() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "no such endpoint: GET /api/v1/openapi.json lists them".into(),
    )
}

/// `a=1&b=2` into pairs, percent-decoded; a key given twice is an error.
fn query_pairs(raw: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for part in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let k = percent_decode(k)?;
        let v = percent_decode(v)?;
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(format!(
                "`{k}` is given twice: give several values as one, comma-separated"
            ));
        }
        out.push((k, v));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut k = 0;
    while k < bytes.len() {
        match bytes[k] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s
                    .get(k + 1..k + 3)
                    .ok_or("a `%` not followed by two hex digits")?;
                out.push(
                    u8::from_str_radix(hex, 16)
                        .map_err(|_| "a `%` not followed by two hex digits")?,
                );
                k += 2;
            }
            b => out.push(b),
        }
        k += 1;
    }
    String::from_utf8(out).map_err(|_| "the query string is not UTF-8".to_string())
}

fn problem(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn with_facts(mut r: Response, role: Option<String>, rows: Option<usize>) -> Response {
    r.extensions_mut().insert(Facts { role, rows });
    r
}

fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/csv"))
}

/// The response to a reply, content negotiated.
fn respond(reply: Reply, headers: &HeaderMap, facts: Facts) -> Response {
    let Facts { role, .. } = facts;
    let response = match reply {
        Reply::Answer { entry, hit } => {
            let rows = entry.answer.rows.len();
            let matched = headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|t| t.trim() == entry.etag));
            let mut r = if matched {
                StatusCode::NOT_MODIFIED.into_response()
            } else if wants_csv(headers) {
                match pm_core::output::rows_as_csv(&entry.answer.columns, &entry.answer.rows) {
                    Ok(csv) => {
                        ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response()
                    }
                    Err(e) => problem(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("cannot write CSV: {e}"),
                    ),
                }
            } else {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    Body::from(entry.json.clone()),
                )
                    .into_response()
            };
            let h = r.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&entry.etag) {
                h.insert(header::ETAG, v);
            }
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-cache"),
            );
            h.insert(
                "x-pm-cache",
                HeaderValue::from_static(if hit { "hit" } else { "miss" }),
            );
            if entry.answer.truncated {
                h.insert("x-pm-truncated", HeaderValue::from_static("true"));
            }
            return with_facts(r, role, Some(if matched { 0 } else { rows }));
        }
        Reply::Invalid(m) => problem(StatusCode::BAD_REQUEST, m),
        Reply::Refused(Refusal::Unauthenticated(m)) => {
            let mut r = problem(StatusCode::UNAUTHORIZED, m);
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
        Reply::Refused(Refusal::Forbidden(m)) | Reply::Denied(m) => {
            problem(StatusCode::FORBIDDEN, m)
        }
        Reply::NotFound(m) => problem(StatusCode::NOT_FOUND, m),
        Reply::Failed(ReadFailure::TimedOut) => problem(
            StatusCode::GATEWAY_TIMEOUT,
            "the query ran past the server's statement_timeout_ms".into(),
        ),
        Reply::Failed(ReadFailure::Unavailable(m)) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the warehouse cannot be reached: {m}"),
        ),
        Reply::Failed(ReadFailure::Denied(m)) => problem(StatusCode::FORBIDDEN, m),
        Reply::Failed(ReadFailure::BadValue(m)) => problem(
            StatusCode::BAD_REQUEST,
            format!("a value does not fit: {m}"),
        ),
        Reply::Failed(ReadFailure::Failed(m)) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the query failed: {m}"),
        ),
    };
    with_facts(response, role, None)
}

#[cfg(test)]
mod tests {
    use super::query_pairs;

    #[test]
    fn query_strings_are_decoded_and_a_repeated_key_refused() {
        assert_eq!(
            query_pairs("start_date=2024-01-01&country=S%41,AE&x=a+b").unwrap(),
            [
                ("start_date".into(), "2024-01-01".into()),
                ("country".into(), "SA,AE".into()),
                ("x".into(), "a b".into())
            ]
        );
        assert!(query_pairs("a=1&a=2").unwrap_err().contains("twice"));
        assert!(query_pairs("a=%zz").is_err());
    }
}
