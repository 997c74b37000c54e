//! The transports a digest's requests go through: [`Http`] sends them over
//! HTTP(S), retrying 429s (after their Retry-After), 5xx and network errors
//! with a growing pause; [`DryRun`] prints them, secrets masked.

use crate::deliver::{
    encode, form_encode, mask, Body, Destination, Request, Response, SendFailure, Transport,
};
use pm_core::error::{Code, Problem};
use serde_json::{json, Value as Json};
use std::time::Duration;

/// Sends over HTTP(S), retrying 429 (after its Retry-After) and 5xx and
/// network errors with a growing pause.
pub struct Http {
    agent: ureq::Agent,
    pub attempts: u32,
    pub first_pause: Duration,
    /// The longest Retry-After pm waits for.
    pub longest_wait: Duration,
    service: &'static str,
    pub log: Box<dyn FnMut(&str)>,
}

impl Http {
    /// `timeout`: how long one request may take, answer included.
    pub fn new(to: &Destination, timeout: Duration, log: Box<dyn FnMut(&str)>) -> Http {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        Http {
            agent,
            attempts: 5,
            first_pause: Duration::from_millis(500),
            longest_wait: Duration::from_secs(120),
            service: to.service(),
            log,
        }
    }

    fn once(&self, request: &Request) -> Result<Response, ureq::Error> {
        let (content_type, bytes) = encode(&request.body);
        let mut req = self
            .agent
            .post(&request.url)
            .header("Content-Type", &content_type);
        if let Some(t) = &request.bearer {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let mut resp = req.send(&bytes[..])?;
        let status = resp.status().as_u16();
        let header = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after_header(v, chrono::Utc::now()));
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        let retry_after = header.or_else(|| retry_after_in(&body));
        Ok(Response {
            status,
            body,
            retry_after,
        })
    }
}

/// A Retry-After header: seconds, or an HTTP date (the seconds until then).
pub(crate) fn retry_after_header(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&chrono::Utc) - now).num_seconds().max(0) as u64)
}

/// Whether a request that failed this way may have reached the service's
/// application: only failures before the connection was made are certain
/// not to have (then retrying is safe); a request sent whose answer never
/// came may have been acted on.
pub(crate) fn may_have_arrived(e: &ureq::Error) -> bool {
    use ureq::Timeout;
    match e {
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => false,
        ureq::Error::Timeout(Timeout::Resolve | Timeout::Connect) => false,
        ureq::Error::Io(io) => !matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::AddrNotAvailable
        ),
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::InvalidProxyUrl => false,
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::TlsRequired => false,
        _ => true,
    }
}

/// Telegram's `parameters.retry_after` in a JSON answer.
pub(crate) fn retry_after_in(body: &str) -> Option<u64> {
    serde_json::from_str::<Json>(body)
        .ok()?
        .pointer("/parameters/retry_after")
        .and_then(Json::as_u64)
}

impl Transport for Http {
    /// Retries only what the service cannot have acted on: a connection
    /// that was never made, a 429 and a 5xx with an answer. A request whose
    /// answer never came (a timeout, a reset) may have been posted: it is not
    /// sent again, and the failure says so.
    fn send(&mut self, request: &Request, secrets: &[String]) -> Result<Response, SendFailure> {
        let service = self.service;
        let mut pause = self.first_pause;
        let mut attempt = 1;
        loop {
            let last = attempt >= self.attempts;
            let wait = match self.once(request) {
                Ok(r) if r.status < 400 => return Ok(r),
                Ok(r) if r.status == 429 => {
                    let asked = r.retry_after.map(Duration::from_secs);
                    let secs = asked.unwrap_or(pause);
                    if secs > self.longest_wait {
                        return Err(SendFailure::not_delivered(
                            Problem::new(
                                Code::ReportRateLimited,
                                format!(
                                    "{service} asks to wait {} s before sending again (429)",
                                    secs.as_secs()
                                ),
                            )
                            .help("send later; pm waits for at most 120 s"),
                        ));
                    }
                    if last {
                        return Err(SendFailure::not_delivered(Problem::new(
                            Code::ReportRateLimited,
                            mask(&format!("{service} still refused after {attempt} attempts: 429 Too Many Requests {}", r.body.trim()), secrets),
                        )));
                    }
                    (self.log)(&match asked {
                        Some(_) => format!(
                            "{service} answered 429 Too Many Requests; retrying in {} s as it asks",
                            secs.as_secs_f64()
                        ),
                        None => format!(
                            "{service} answered 429 Too Many Requests without saying how long to wait; retrying in {:.1} s",
                            secs.as_secs_f64()
                        ),
                    });
                    secs
                }
                Ok(r) if r.status >= 500 => {
                    if last {
                        return Err(SendFailure::not_delivered(
                            Problem::new(
                                Code::ReportServerError,
                                mask(
                                    &format!(
                                        "{service} failed {attempt} times: {} {}",
                                        r.status,
                                        r.body.trim()
                                    ),
                                    secrets,
                                ),
                            )
                            .help("the service is having trouble; run the same command later"),
                        ));
                    }
                    (self.log)(&format!(
                        "{service} answered {}; retrying in {:.1} s",
                        r.status,
                        pause.as_secs_f64()
                    ));
                    pause
                }
                Ok(r) => {
                    return Err(SendFailure::not_delivered(refused(
                        service, r.status, &r.body, secrets,
                    )))
                }
                Err(
                    e @ (ureq::Error::BadUri(_)
                    | ureq::Error::Http(_)
                    | ureq::Error::InvalidProxyUrl),
                ) => {
                    return Err(SendFailure::not_delivered(
                        Problem::new(
                            Code::ReportBadUrl,
                            mask(&format!("cannot send to {service}: {e}"), secrets),
                        )
                        .help("check SLACK_WEBHOOK_URL, PM_SLACK_API_URL or PM_TELEGRAM_API_URL"),
                    ))
                }
                Err(e) if may_have_arrived(&e) => {
                    let why = mask(&e.to_string(), secrets);
                    return Err(SendFailure {
                        problem: Box::new(Problem::new(
                            Code::ReportNoAnswer,
                            format!("{service} did not answer ({why}): the request may have been posted"),
                        )
                        .help("look in the channel before sending again; pm does not send a request twice when it cannot tell whether it arrived")),
                        maybe_delivered: true,
                    });
                }
                Err(e) => {
                    let why = mask(&e.to_string(), secrets);
                    if last {
                        return Err(SendFailure::not_delivered(
                            Problem::new(
                                Code::ReportUnreachable,
                                format!("cannot reach {service} after {attempt} attempts: {why}"),
                            )
                            .help("check the network, a proxy, or the PM_SLACK_API_URL / PM_TELEGRAM_API_URL you set"),
                        ));
                    }
                    (self.log)(&format!(
                        "cannot reach {service} ({why}); retrying in {:.1} s",
                        pause.as_secs_f64()
                    ));
                    pause
                }
            };
            std::thread::sleep(wait);
            pause *= 2;
            attempt += 1;
        }
    }
}

/// A 4xx: the service's own reason, and what to check.
pub(crate) fn refused(service: &str, status: u16, body: &str, secrets: &[String]) -> Problem {
    let v: Json = serde_json::from_str(body).unwrap_or(Json::Null);
    let reason = v
        .get("description")
        .or_else(|| v.get("error"))
        .and_then(Json::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| body.trim().chars().take(300).collect());
    let help = match status {
        401 | 403 => "the token or webhook is wrong, revoked, or lacks the right: check SLACK_WEBHOOK_URL / SLACK_BOT_TOKEN / TELEGRAM_BOT_TOKEN",
        400 => "the chat or channel id may be wrong (SLACK_CHANNEL_ID, TELEGRAM_CHAT_ID)",
        404 => "the URL or chat does not exist: check SLACK_WEBHOOK_URL, TELEGRAM_CHAT_ID and PM_*_API_URL",
        _ => "see the service's API documentation for this status",
    };
    Problem::new(
        Code::ReportRefused,
        mask(
            &format!("{service} refused the request: {status} {reason}"),
            secrets,
        ),
    )
    .help(help)
}

/// Prints each request instead of sending it, answering as the service
/// would when all goes well.
pub struct DryRun {
    pub out: Vec<String>,
}

impl Transport for DryRun {
    fn send(&mut self, request: &Request, secrets: &[String]) -> Result<Response, SendFailure> {
        let mut shown = format!("POST {}\n", mask(&request.url, secrets));
        if request.bearer.is_some() {
            shown.push_str("Authorization: Bearer ****\n");
        }
        match &request.body {
            Body::Json(v) => {
                shown.push_str("Content-Type: application/json; charset=utf-8\n\n");
                shown.push_str(&serde_json::to_string_pretty(v).unwrap_or_default());
            }
            Body::Form(f) => {
                shown.push_str("Content-Type: application/x-www-form-urlencoded\n\n");
                shown.push_str(&form_encode(f));
            }
            Body::Bytes { content_type, data } => {
                shown.push_str(&format!(
                    "Content-Type: {content_type}\n\n<{} bytes>",
                    data.len()
                ));
            }
            Body::Multipart(parts) => {
                shown.push_str("Content-Type: multipart/form-data\n");
                for p in parts {
                    match &p.file {
                        Some((name, ctype)) => shown.push_str(&format!(
                            "\n[{}] file {name} ({ctype}, {} bytes)",
                            p.name,
                            p.data.len()
                        )),
                        None => shown.push_str(&format!(
                            "\n[{}] {}",
                            p.name,
                            String::from_utf8_lossy(&p.data)
                        )),
                    }
                }
            }
        }
        self.out.push(mask(&shown, secrets));
        let body = if request.url.contains("files.getUploadURLExternal") {
            json!({"ok": true, "upload_url": "<upload_url from files.getUploadURLExternal>", "file_id": "<file_id>"})
        } else {
            json!({"ok": true})
        };
        Ok(Response {
            status: 200,
            body: body.to_string(),
            retry_after: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telegram_says_how_long_to_wait_in_its_answer() {
        assert_eq!(
            retry_after_in(r#"{"ok":false,"error_code":429,"parameters":{"retry_after":7}}"#),
            Some(7)
        );
        assert_eq!(retry_after_in("busy"), None);
    }
}
