//! Posting a digest and its charts to Slack or Telegram.
//!
//! The requests are built here as plain values and handed to a
//! [`Transport`]: `transport::Http` sends them (retrying 429s and 5xx),
//! `transport::DryRun` prints them. Secrets (tokens, webhook paths) never appear in what is
//! printed, logged or returned as an error.

use pm_core::error::{Code, Problem};
use serde_json::{json, Value as Json};

/// Where a digest goes, with the secrets to get it there.
#[derive(Clone)]
pub enum Destination {
    /// An incoming webhook: text only.
    SlackWebhook { url: String },
    /// A bot: the text, then the charts uploaded as files.
    SlackBot {
        api: String,
        token: String,
        channel: String,
    },
    /// A Telegram bot: the text, then the charts as photos.
    Telegram {
        api: String,
        token: String,
        chat: String,
    },
}

impl Destination {
    /// The channel's name in `pm_meta.report_deliveries`.
    pub fn channel(&self) -> &'static str {
        match self {
            Destination::SlackWebhook { .. } | Destination::SlackBot { .. } => "slack",
            Destination::Telegram { .. } => "telegram",
        }
    }

    pub(crate) fn service(&self) -> &'static str {
        match self {
            Destination::SlackWebhook { .. } => "the Slack webhook",
            Destination::SlackBot { .. } => "Slack",
            Destination::Telegram { .. } => "Telegram",
        }
    }

    /// The secrets to mask wherever text is shown.
    fn secrets(&self) -> Vec<String> {
        match self {
            Destination::SlackWebhook { url } => webhook_secret(url)
                .into_iter()
                .chain(userinfo(url))
                .collect(),
            Destination::SlackBot { token, api, .. } | Destination::Telegram { token, api, .. } => {
                std::iter::once(token.clone())
                    .chain(userinfo(api))
                    .collect()
            }
        }
    }
}

/// The `user:password` of a URL's authority, when it has one.
fn userinfo(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (info, _) = authority.rsplit_once('@')?;
    (!info.is_empty()).then(|| info.to_string())
}

/// The secret part of a webhook URL: everything after its host.
fn webhook_secret(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.split_once('/').map(|(_, p)| p)?;
    (!path.is_empty()).then(|| path.to_string())
}

/// `text` with every secret replaced by `****`.
pub fn mask(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= 4)
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), "****"))
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    Json(Json),
    Form(Vec<(String, String)>),
    Bytes { content_type: String, data: Vec<u8> },
    Multipart(Vec<Part>),
}

#[derive(Debug, Clone)]
pub struct Part {
    pub name: String,
    pub file: Option<(String, String)>, // file name, content type
    pub data: Vec<u8>,
}

impl Part {
    fn field(name: &str, value: &str) -> Part {
        Part {
            name: name.into(),
            file: None,
            data: value.as_bytes().to_vec(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub url: String,
    pub bearer: Option<String>,
    pub body: Body,
}

/// What an API answered.
pub struct Response {
    pub status: u16,
    pub body: String,
    /// The seconds a 429 asks to wait: its Retry-After header, or
    /// Telegram's `parameters.retry_after`.
    pub retry_after: Option<u64>,
}

/// A request that failed: why, and whether the service may have acted on
/// it all the same (an answer that never came: it may have been posted).
#[derive(Debug)]
pub struct SendFailure {
    pub problem: Box<Problem>,
    pub maybe_delivered: bool,
}

impl SendFailure {
    /// A failure after which the service certainly did nothing.
    pub fn not_delivered(problem: Problem) -> SendFailure {
        SendFailure {
            problem: Box::new(problem),
            maybe_delivered: false,
        }
    }
}

/// Sends requests (or pretends to).
pub trait Transport {
    fn send(&mut self, request: &Request, secrets: &[String]) -> Result<Response, SendFailure>;
}

/// A multipart body: the boundary, then the bytes.
pub fn multipart(parts: &[Part]) -> (String, Vec<u8>) {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(&p.data);
    }
    let boundary = format!("pm-{}", pm_core::text::hex(&h.finalize()))[..35].to_string();
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match &p.file {
            Some((file, ctype)) => out.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{}\"; filename=\"{file}\"\r\nContent-Type: {ctype}\r\n\r\n",
                    p.name
                )
                .as_bytes(),
            ),
            None => out.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{}\"\r\n\r\n", p.name).as_bytes(),
            ),
        }
        out.extend_from_slice(&p.data);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (boundary, out)
}

pub(crate) fn form_encode(fields: &[(String, String)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The body's content type and bytes.
pub fn encode(body: &Body) -> (String, Vec<u8>) {
    match body {
        Body::Json(v) => (
            "application/json; charset=utf-8".into(),
            v.to_string().into_bytes(),
        ),
        Body::Form(f) => (
            "application/x-www-form-urlencoded".into(),
            form_encode(f).into_bytes(),
        ),
        Body::Bytes { content_type, data } => (content_type.clone(), data.clone()),
        Body::Multipart(parts) => {
            let (boundary, bytes) = multipart(parts);
            (format!("multipart/form-data; boundary={boundary}"), bytes)
        }
    }
}

/// A chart to send: its title and PNG bytes.
pub struct Chart {
    pub file_name: String,
    pub title: String,
    pub png: Vec<u8>,
}

/// What was posted.
pub struct Posted {
    pub requests: usize,
    /// Charts that were not sent, and why (a webhook cannot carry files).
    pub charts_left_out: Option<String>,
}

/// A failed delivery: the problem, whether the message had already been
/// posted (so that sending again would post it twice), and whether it may
/// have been (its request got no answer: pm cannot tell).
pub struct Failed {
    pub problem: Box<Problem>,
    pub posted: bool,
    pub maybe_posted: bool,
}

fn slack_text(title: &str, table: &str) -> String {
    format!("*{title}*\n```\n{table}```")
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn telegram_text(title: &str, table: &str) -> String {
    format!(
        "<b>{}</b>\n<pre>{}</pre>",
        html_escape(title),
        html_escape(table)
    )
}

/// A response's JSON, when it is JSON.
fn json_of(r: &Response) -> Json {
    serde_json::from_str(&r.body).unwrap_or(Json::Null)
}

/// Slack's Web API answers 200 with `{"ok": false, "error": …}` when it refuses.
fn slack_ok(r: &Response, what: &str, secrets: &[String]) -> Result<Json, Problem> {
    let v = json_of(r);
    if v.get("ok").and_then(Json::as_bool) == Some(true) {
        return Ok(v);
    }
    let reason = v
        .get("error")
        .and_then(Json::as_str)
        .unwrap_or(r.body.as_str());
    Err(Problem::new(
        Code::ReportRefused,
        mask(&format!("Slack refused {what}: {reason}"), secrets),
    )
    .help(slack_help(reason)))
}

/// Telegram's Bot API answers `{"ok": true, "result": …}`; anything else,
/// a 200 with `{"ok": false}` or a body that is not JSON, is a failure.
fn telegram_ok(r: &Response, what: &str, secrets: &[String]) -> Result<Json, Problem> {
    let v = json_of(r);
    if v.get("ok").and_then(Json::as_bool) == Some(true) {
        return Ok(v);
    }
    let reason = v
        .get("description")
        .and_then(Json::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!(
                "an answer that is not the Bot API's: {}",
                r.body.trim().chars().take(200).collect::<String>()
            )
        });
    Err(Problem::new(
        Code::ReportRefused,
        mask(&format!("Telegram did not take {what}: {reason}"), secrets),
    )
    .help("check TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_ID and PM_TELEGRAM_API_URL"))
}

fn slack_help(reason: &str) -> String {
    match reason {
        "invalid_auth" | "not_authed" | "token_revoked" | "account_inactive" | "invalid_token" => {
            "check SLACK_BOT_TOKEN (a bot token, xoxb-…) or SLACK_WEBHOOK_URL".into()
        }
        "channel_not_found" | "not_in_channel" => {
            "check SLACK_CHANNEL_ID, and invite the bot to the channel (/invite @bot)".into()
        }
        "missing_scope" => {
            "give the bot the chat:write and files:write scopes, then reinstall it".into()
        }
        _ => "see Slack's API documentation for this error".into(),
    }
}

/// The text in a chat's code block and the charts, to `to`.
pub fn deliver(
    to: &Destination,
    title: &str,
    table: &str,
    charts: &[Chart],
    transport: &mut dyn Transport,
) -> Result<Posted, Failed> {
    let mut sender = Sender {
        transport,
        secrets: to.secrets(),
        requests: 0,
        posted: false,
    };
    match to {
        Destination::SlackWebhook { url } => {
            sender.send(Request {
                url: url.clone(),
                bearer: None,
                body: Body::Json(json!({ "text": slack_text(title, table) })),
            })?;
            Ok(Posted {
                requests: 1,
                charts_left_out: (!charts.is_empty()).then(|| {
                    "a Slack webhook cannot carry files; set SLACK_BOT_TOKEN and SLACK_CHANNEL_ID to upload the charts".to_string()
                }),
            })
        }
        Destination::SlackBot {
            api,
            token,
            channel,
        } => slack_bot(&mut sender, api, token, channel, title, table, charts),
        Destination::Telegram { api, token, chat } => {
            telegram(&mut sender, api, token, chat, title, table, charts)
        }
    }
}

/// Sends a delivery's requests, counting them and remembering whether the
/// message itself went out (a later failure then does not unsay it).
struct Sender<'t> {
    transport: &'t mut dyn Transport,
    secrets: Vec<String>,
    requests: usize,
    posted: bool,
}

impl Sender<'_> {
    fn send(&mut self, req: Request) -> Result<Response, Failed> {
        self.requests += 1;
        let posted = self.posted;
        self.transport
            .send(&req, &self.secrets)
            .map_err(|f| Failed {
                problem: f.problem,
                posted,
                maybe_posted: f.maybe_delivered && !posted,
            })
    }

    fn fail(&self, problem: Problem, posted: bool) -> Failed {
        Failed {
            problem: Box::new(problem),
            posted,
            maybe_posted: false,
        }
    }

    fn done(&self) -> Posted {
        Posted {
            requests: self.requests,
            charts_left_out: None,
        }
    }
}

/// chat.postMessage, then each chart through Slack's external upload.
fn slack_bot(
    sender: &mut Sender,
    api: &str,
    token: &str,
    channel: &str,
    title: &str,
    table: &str,
    charts: &[Chart],
) -> Result<Posted, Failed> {
    let bearer = Some(token.to_string());
    let r = sender.send(Request {
        url: format!("{api}/chat.postMessage"),
        bearer: bearer.clone(),
        body: Body::Json(json!({
            "channel": channel,
            "text": slack_text(title, table),
            "unfurl_links": false,
        })),
    })?;
    slack_ok(&r, "the message", &sender.secrets).map_err(|p| sender.fail(p, false))?;
    sender.posted = true;
    let mut files = Vec::new();
    for c in charts {
        let r = sender.send(Request {
            url: format!("{api}/files.getUploadURLExternal"),
            bearer: bearer.clone(),
            body: Body::Form(vec![
                ("filename".into(), c.file_name.clone()),
                ("length".into(), c.png.len().to_string()),
            ]),
        })?;
        let v =
            slack_ok(&r, "the chart upload", &sender.secrets).map_err(|p| sender.fail(p, true))?;
        let (Some(upload), Some(id)) = (
            v.get("upload_url").and_then(Json::as_str),
            v.get("file_id").and_then(Json::as_str),
        ) else {
            return Err(sender.fail(
                Problem::new(
                    Code::ReportRefused,
                    "Slack's files.getUploadURLExternal answered without upload_url and file_id",
                ),
                true,
            ));
        };
        sender.send(Request {
            url: upload.to_string(),
            bearer: None,
            body: Body::Multipart(vec![Part {
                name: "file".into(),
                file: Some((c.file_name.clone(), "image/png".into())),
                data: c.png.clone(),
            }]),
        })?;
        files.push(json!({ "id": id, "title": c.title }));
    }
    if !files.is_empty() {
        let r = sender.send(Request {
            url: format!("{api}/files.completeUploadExternal"),
            bearer,
            body: Body::Json(json!({ "files": files, "channel_id": channel })),
        })?;
        slack_ok(&r, "the charts", &sender.secrets).map_err(|p| sender.fail(p, true))?;
    }
    Ok(sender.done())
}

/// sendMessage (HTML), then each chart with sendPhoto.
fn telegram(
    sender: &mut Sender,
    api: &str,
    token: &str,
    chat: &str,
    title: &str,
    table: &str,
    charts: &[Chart],
) -> Result<Posted, Failed> {
    let text = telegram_text(title, table);
    if text.chars().count() > 4096 {
        return Err(sender.fail(
            Problem::new(
                Code::ReportTooLong,
                format!(
                    "the digest is {} characters; a Telegram message holds 4096",
                    text.chars().count()
                ),
            )
            .help("show fewer metrics or comparisons in this report"),
            false,
        ));
    }
    let r = sender.send(Request {
        url: format!("{api}/bot{token}/sendMessage"),
        bearer: None,
        body: Body::Json(json!({
            "chat_id": chat,
            "text": text,
            "parse_mode": "HTML",
            "disable_web_page_preview": true,
        })),
    })?;
    telegram_ok(&r, "the message", &sender.secrets).map_err(|p| sender.fail(p, false))?;
    sender.posted = true;
    for c in charts {
        let r = sender.send(Request {
            url: format!("{api}/bot{token}/sendPhoto"),
            bearer: None,
            body: Body::Multipart(vec![
                Part::field("chat_id", chat),
                Part::field("caption", &c.title),
                Part {
                    name: "photo".into(),
                    file: Some((c.file_name.clone(), "image/png".into())),
                    data: c.png.clone(),
                },
            ]),
        })?;
        telegram_ok(&r, "a chart", &sender.secrets).map_err(|p| sender.fail(p, true))?;
    }
    Ok(sender.done())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_api_urls_are_secrets() {
        let to = Destination::Telegram {
            api: "https://bob:hunter2@proxy.example/tg".into(),
            token: "123456:ABCDEFGH".into(),
            chat: "1".into(),
        };
        let shown = mask(
            "POST https://bob:hunter2@proxy.example/tg/bot123456:ABCDEFGH/sendMessage",
            &to.secrets(),
        );
        assert_eq!(
            shown,
            "POST https://****@proxy.example/tg/bot****/sendMessage"
        );
        assert_eq!(userinfo("https://h.example/a@b"), None);
    }

    #[test]
    fn secrets_are_masked() {
        let to = Destination::SlackWebhook {
            url: "https://hooks.slack.com/services/T0/B0/XXXX".into(),
        };
        assert_eq!(
            mask(
                "POST https://hooks.slack.com/services/T0/B0/XXXX",
                &to.secrets()
            ),
            "POST https://hooks.slack.com/****"
        );
        let to = Destination::Telegram {
            api: "https://api.telegram.org".into(),
            token: "123:abc-secret".into(),
            chat: "42".into(),
        };
        assert_eq!(
            mask(
                "https://api.telegram.org/bot123:abc-secret/sendMessage",
                &to.secrets()
            ),
            "https://api.telegram.org/bot****/sendMessage"
        );
    }
}
