//! `pm report`: the digest's numbers in each format, its charts, and its
//! delivery to a loopback HTTP server standing in for Slack and Telegram.

use crate::common::*;
use serde_json::{json, Value as Json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};

/// A month of known values: on 2026-03-31 (a Tuesday) signups are 110
/// against 100 the day before, 0 a week before, and there is no row a month
/// before (no February at all).
fn daily_model() -> String {
    let mut rows = Vec::new();
    for n in 1..=31 {
        let (signups, revenue, rate, active, churned) = match n {
            24 => ("0".to_string(), "240.0".to_string(), "0.3", "1024", "1"),
            30 => ("100".into(), "0".into(), "0.4", "2100", "3"),
            31 => ("110".into(), "0".into(), "0.5", "2000", "5"),
            _ => (
                (2 * n).to_string(),
                format!("{}.0", 10 * n),
                "0.3",
                "1000",
                "1",
            ),
        };
        rows.push(format!(
            "('2026-03-{n:02}'::date, {signups}, {revenue}::numeric(12, 2), {rate}, {active}, {churned})"
        ));
    }
    format!(
        "{{{{ config(materialized='table') }}}}\nselect * from (values\n  {}\n) as t(day, signups, revenue, rate, active, churned)\n",
        rows.join(",\n  ")
    )
}

const REPORTS: &str = "version: 2
reports:
  - name: daily
    title: Daily
    model: daily
    date_column: day
    metrics:
      - {column: signups, month_to_date: true}
      - {column: revenue, format: currency, currency: EUR, month_to_date: true}
      - {column: rate, label: Conversion, format: percent}
      - {column: churned, higher_is_better: false}
    point_in_time:
      - {column: active, label: Active subscriptions}
    charts:
      - {metric: signups, days: 14}
    chart_size: {width: 640, height: 320}
";

fn report_project() -> LocalProject {
    let model = daily_model();
    let p = LocalProject::new(&[
        ("models/daily.sql", model.as_str()),
        ("reports.yml", REPORTS),
    ]);
    let r = pm(p.path(), &["run", "-q"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    p
}

#[test]
fn the_digest_shows_known_numbers_in_each_format_and_draws_its_chart() {
    let p = report_project();
    let r = pm(p.path(), &["report", "daily", "--date", "2026-03-31"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = r.stdout;
    assert!(
        text.starts_with("Daily — Tuesday 2026-03-31 (UTC)\n"),
        "{text}"
    );
    let line = |label: &str| -> String {
        text.lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no line {label}:\n{text}"))
            .split("   ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect::<Vec<_>>()
            .join(" | ")
    };
    // value | previous day | a week before | a month before (no row)
    assert_eq!(
        line("Signups"),
        "Signups | 110 | ▲ 10.0% (100) | ▲ from 0 | no data"
    );
    assert_eq!(
        line("Revenue "),
        "Revenue | €0.00 | = 0 both days | ▼ 100.0% (€240.00) | no data"
    );
    assert_eq!(
        line("Conversion"),
        "Conversion | 50.0% | ▲ 10.0 pp (40.0%) | ▲ 20.0 pp (30.0%) | no data"
    );
    assert_eq!(
        line("Churned"),
        "Churned | 5 | ▲ 66.7% (3) | ▲ 400.0% (1) | no data"
    );
    assert_eq!(
        line("Active subscriptions"),
        "Active subscriptions | 2,000 | ▼ 4.8% (2,100) | ▲ 95.3% (1,024) | no data"
    );
    let (_, month) = text
        .split_once("Month to date (Mar 1–31), vs the same days of last month (Feb 1–28)\n")
        .unwrap_or_else(|| panic!("no month to date:\n{text}"));
    let month: Vec<&str> = month.lines().take_while(|l| !l.is_empty()).collect();
    // 2 × (1 + … + 29) − 48 (the 24th is 0) + 100 + 110; February has no rows.
    assert_eq!(
        month,
        [
            "Signups       1,032   no data",
            "Revenue   €4,350.00   no data"
        ]
    );
    // What a chat gets: one metric per line, its changes below, narrow enough for a phone.
    let r = pm(
        p.path(),
        &[
            "report",
            "daily",
            "--date",
            "2026-03-31",
            "--format",
            "chat",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let chat = r.stdout;
    for l in chat.lines().skip(1) {
        assert!(
            l.chars().count() <= 45,
            "{l:?} is wider than a phone:\n{chat}"
        );
    }
    assert!(
        chat.contains("\nSignups: 110\n  ▲ 10.0% (100) vs day before\n  ▲ from 0 vs week before\n  no data vs month before\n"),
        "{chat}"
    );
    assert!(
        chat.contains("Month to date (Mar 1–31):\nSignups: 1,032\n  no data vs Feb 1–28\n"),
        "{chat}"
    );
    assert!(
        text.contains("No row in daily for 2026-02-28 (a month before): no comparison."),
        "{text}"
    );
    assert!(
        text.contains("Charts: target/reports/daily/2026-03-31/signups.png"),
        "{text}"
    );

    let r = pm(
        p.path(),
        &[
            "report",
            "daily",
            "--date",
            "2026-03-31",
            "--format",
            "markdown",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let md = r.stdout;
    assert!(
        md.starts_with("### Daily — Tuesday 2026-03-31 (UTC)\n"),
        "{md}"
    );
    assert!(
        md.contains("| Signups | 110 | ▲ 10.0% (100) | ▲ from 0 | no data |"),
        "{md}"
    );
    assert!(
        md.contains("| Conversion | 50.0% | ▲ 10.0 pp (40.0%) | ▲ 20.0 pp (30.0%) | no data |"),
        "{md}"
    );
    assert!(md.contains("| Revenue | €4,350.00 |"), "{md}");
    assert!(md.contains("![target/reports/daily/2026-03-31/signups.png](target/reports/daily/2026-03-31/signups.png)"), "{md}");

    let r = pm(
        p.path(),
        &[
            "report",
            "daily",
            "--date",
            "2026-03-31",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j: Json = serde_json::from_str(&r.stdout).expect("JSON");
    let signups = &j["metrics"][0];
    assert_eq!(signups["value"], json!(110.0));
    assert_eq!(
        signups["comparisons"][0],
        json!({
            "comparison": "previous_day", "date": "2026-03-30", "base": 100.0,
            "change_percent": 10.0, "change_points": null, "direction": "up", "good_news": true, "note": null
        })
    );
    assert_eq!(signups["comparisons"][1]["note"], json!("the base is 0"));
    assert_eq!(signups["comparisons"][1]["change_percent"], Json::Null);
    assert_eq!(
        signups["comparisons"][2]["note"],
        json!("no data on the comparison day")
    );
    assert_eq!(
        j["metrics"][2]["comparisons"][0]["change_points"],
        json!(10.0)
    );
    assert_eq!(
        j["metrics"][3]["comparisons"][0]["good_news"],
        json!(false),
        "a rise in churn is bad news"
    );
    assert_eq!(
        j["point_in_time"][0]["comparisons"][0]["direction"],
        json!("down")
    );
    assert_eq!(j["month_to_date"][0]["sum"], json!(1032.0));
    assert_eq!(j["missing_days"], json!(["2026-02-28"]));

    // The chart: a PNG of the configured size, a marker per day, the last one red.
    let png =
        std::fs::read(p.path().join("target/reports/daily/2026-03-31/signups.png")).expect("chart");
    let decoder = png::Decoder::new(&png[..]);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).expect("a frame");
    assert_eq!((info.width, info.height), (640, 320));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let blobs = |rgb: [u8; 3]| count_blobs(&pixels, info.width as usize, info.height as usize, rgb);
    assert_eq!(
        blobs([31, 119, 180]),
        13,
        "a marker for each of the 13 days before the last"
    );
    assert_eq!(blobs([214, 39, 40]), 1, "the last day marked");
}

/// Connected areas of exactly `rgb` in an RGB image.
fn count_blobs(pixels: &[u8], w: usize, h: usize, rgb: [u8; 3]) -> usize {
    let is = |x: usize, y: usize| pixels[(y * w + x) * 3..(y * w + x) * 3 + 3] == rgb;
    let mut seen = vec![false; w * h];
    let mut count = 0;
    for start in 0..w * h {
        if seen[start] || !is(start % w, start / w) {
            continue;
        }
        count += 1;
        let mut stack = vec![start];
        seen[start] = true;
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            let near = [
                (x.wrapping_sub(1), y),
                (x + 1, y),
                (x, y.wrapping_sub(1)),
                (x, y + 1),
            ];
            for (nx, ny) in near {
                if nx < w && ny < h && !seen[ny * w + nx] && is(nx, ny) {
                    seen[ny * w + nx] = true;
                    stack.push(ny * w + nx);
                }
            }
        }
    }
    count
}

/// One request the stand-in API received.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Json {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
}

type Answer = (u16, Vec<(&'static str, String)>, String);

/// A loopback HTTP server answering each request with `answer(request, n, base_url)`.
struct Api {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Api {
    fn start(answer: impl Fn(&Received, usize, &str) -> Answer + Send + 'static) -> Api {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let received = Arc::new(Mutex::new(Vec::new()));
        let (log, base) = (received.clone(), url.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() || first.is_empty() {
                    continue;
                }
                let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut headers = HashMap::new();
                loop {
                    let mut l = String::new();
                    reader.read_line(&mut l).unwrap();
                    let l = l.trim_end();
                    if l.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = l.split_once(':') {
                        headers.insert(k.trim().to_lowercase(), v.trim().to_string());
                    }
                }
                let len: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                let req = Received {
                    path,
                    headers,
                    body,
                };
                let n = {
                    let mut all = log.lock().unwrap();
                    all.push(req.clone());
                    all.len()
                };
                let (status, extra, text) = answer(&req, n, &base);
                let mut out = stream;
                let mut head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    text.len()
                );
                for (k, v) in extra {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                let _ = out.write_all(format!("{head}\r\n{text}").as_bytes());
            }
        });
        Api { url, received }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// The digest's text as the chat receives it: the heading, then the tables.
fn title_and_table(stdout: &str) -> (String, String) {
    let text = stdout.split("\nCharts: ").next().unwrap();
    let (title, table) = text.split_once("\n\n").unwrap();
    (title.to_string(), table.to_string())
}

/// A multipart body's parts: name → (file name, bytes).
fn parts(r: &Received) -> HashMap<String, (Option<String>, Vec<u8>)> {
    let ctype = &r.headers["content-type"];
    let boundary = ctype.split("boundary=").nth(1).expect("a boundary");
    let sep = format!("--{boundary}");
    let body = &r.body;
    let mut out = HashMap::new();
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        (from..=hay.len().saturating_sub(needle.len()))
            .find(|&i| &hay[i..i + needle.len()] == needle)
    };
    let mut at = find(body, sep.as_bytes(), 0).expect("first boundary") + sep.len();
    while &body[at..at + 2] == b"\r\n" {
        let head_end = find(body, b"\r\n\r\n", at).unwrap();
        let head = String::from_utf8_lossy(&body[at + 2..head_end]).to_string();
        let next = find(body, format!("\r\n{sep}").as_bytes(), head_end).unwrap();
        let name = head
            .split("name=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string();
        let file = head
            .split("filename=\"")
            .nth(1)
            .map(|s| s.split('"').next().unwrap().to_string());
        out.insert(name, (file, body[head_end + 4..next].to_vec()));
        at = next + 2 + sep.len();
    }
    out
}

/// The environment of a Telegram bot posting to `chat` through `api`.
fn telegram<'a>(api: &'a Api, chat: &'a str) -> [(&'static str, &'a str); 3] {
    [
        ("TELEGRAM_BOT_TOKEN", TG_TOKEN),
        ("TELEGRAM_CHAT_ID", chat),
        ("PM_TELEGRAM_API_URL", api.url.as_str()),
    ]
}

/// `pm report daily --date <date> --to <to> [extra]` with `env`.
fn send(p: &LocalProject, date: &str, to: &str, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let args = [&["report", "daily", "--date", date, "--to", to][..], extra].concat();
    pm_env(p.path(), &args, env)
}

const TOKEN: &str = "xoxb-1234-secret-token";
const TG_TOKEN: &str = "123456:ABC-secret-telegram";

#[test]
fn slack_and_telegram_get_the_exact_payloads_once_a_day() {
    let p = report_project();
    let day = [
        "report",
        "daily",
        "--date",
        "2026-03-31",
        "--format",
        "chat",
    ];
    let (title, table) = title_and_table(&pm(p.path(), &day).stdout);
    let slack_text = format!("*{title}*\n```\n{table}```");

    // A webhook that asks to wait once (429, Retry-After: 1).
    let hook = Api::start(|_, n, _| {
        if n == 1 {
            (
                429,
                vec![("Retry-After", "1".to_string())],
                "rate_limited".into(),
            )
        } else {
            (200, vec![], "ok".into())
        }
    });
    let webhook = format!("{}/services/T000/B000/{TOKEN}", hook.url);
    let env = [("SLACK_WEBHOOK_URL", webhook.as_str())];
    let started = std::time::Instant::now();
    let r = send(&p, "2026-03-31", "slack", &[], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        started.elapsed().as_secs_f64() >= 1.0,
        "waited as Retry-After asked"
    );
    let got = hook.received();
    assert_eq!(got.len(), 2, "the 429, then the post");
    assert_eq!(got[1].path, format!("/services/T000/B000/{TOKEN}"));
    assert_eq!(got[1].json(), json!({ "text": slack_text }));
    assert!(
        r.stderr
            .contains("429 Too Many Requests; retrying in 1 s as it asks"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("charts not sent: a Slack webhook cannot carry files"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(TOKEN) && !r.stdout.contains(TOKEN));

    // The same day again: nothing is sent, and it says so.
    let r = send(&p, "2026-03-31", "slack", &[], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("report `daily` for 2026-03-31 to slack was already sent at"),
        "{}",
        r.stderr
    );
    assert_eq!(hook.received().len(), 2, "no second post");

    // --dry-run --force prints the exact request, token masked, and sends nothing.
    let r = send(&p, "2026-03-31", "slack", &["--dry-run", "--force"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains(&format!(
            "--- request 1 (not sent) ---\nPOST {}/****",
            hook.url
        )),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("\"text\": \"*Daily — Tuesday 2026-03-31 (UTC)*"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains(TOKEN));
    assert_eq!(hook.received().len(), 2);

    // A bot: the message, then each chart through Slack's external upload.
    let api = Api::start(|r, _, base| {
        let body = match r.path.as_str() {
            "/chat.postMessage" => json!({"ok": true, "ts": "1700000000.000100"}),
            "/files.getUploadURLExternal" => {
                json!({"ok": true, "upload_url": format!("{base}/upload/F1"), "file_id": "F1"})
            }
            "/upload/F1" => return (200, vec![], "OK - 1".into()),
            "/files.completeUploadExternal" => json!({"ok": true, "files": [{"id": "F1"}]}),
            _ => json!({"ok": false, "error": "unknown_method"}),
        };
        (
            200,
            vec![("Content-Type", "application/json".into())],
            body.to_string(),
        )
    });
    let env = [
        ("SLACK_BOT_TOKEN", TOKEN),
        ("SLACK_CHANNEL_ID", "C0123"),
        ("PM_SLACK_API_URL", api.url.as_str()),
    ];
    let r = send(&p, "2026-03-31", "slack", &["--force"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got = api.received();
    let paths: Vec<&str> = got.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/chat.postMessage",
            "/files.getUploadURLExternal",
            "/upload/F1",
            "/files.completeUploadExternal"
        ]
    );
    assert_eq!(got[0].headers["authorization"], format!("Bearer {TOKEN}"));
    assert_eq!(
        got[0].json(),
        json!({"channel": "C0123", "text": slack_text, "unfurl_links": false})
    );
    let png = std::fs::read(p.path().join("target/reports/daily/2026-03-31/signups.png")).unwrap();
    assert_eq!(
        String::from_utf8(got[1].body.clone()).unwrap(),
        format!("filename=signups.png&length={}", png.len())
    );
    assert_eq!(
        got[1].headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert!(
        !got[2].headers.contains_key("authorization"),
        "the upload URL needs no token"
    );
    assert_eq!(
        parts(&got[2])["file"],
        (Some("signups.png".to_string()), png.clone())
    );
    assert_eq!(
        got[3].json(),
        json!({"files": [{"id": "F1", "title": "Signups (2026-03-31)"}], "channel_id": "C0123"})
    );
    assert!(!r.stderr.contains(TOKEN) && !r.stdout.contains(TOKEN));

    // Telegram (failing once with a 502): the digest as HTML, the chart as a
    // photo; then never twice.
    let tg = Api::start(|_, n, _| {
        if n == 1 {
            (502, vec![], "Bad Gateway".into())
        } else {
            (200, vec![], json!({"ok": true, "result": {}}).to_string())
        }
    });
    let env = telegram(&tg, "-100200");
    let r = send(&p, "2026-03-31", "telegram", &[], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Telegram answered 502; retrying in 0.5 s"),
        "{}",
        r.stderr
    );
    let got = tg.received();
    assert_eq!(got.len(), 3, "the 502, the message again, the photo");
    assert_eq!(got[0].body, got[1].body, "the same message, sent again");
    let got = &got[1..];
    assert_eq!(
        got[0].json(),
        json!({
            "chat_id": "-100200",
            "text": format!("<b>{title}</b>\n<pre>{table}</pre>"),
            "parse_mode": "HTML",
            "disable_web_page_preview": true,
        })
    );
    assert_eq!(got[1].path, format!("/bot{TG_TOKEN}/sendPhoto"));
    let photo = parts(&got[1]);
    assert_eq!(photo["chat_id"], (None, b"-100200".to_vec()));
    assert_eq!(photo["caption"], (None, b"Signups (2026-03-31)".to_vec()));
    assert_eq!(photo["photo"], (Some("signups.png".to_string()), png));
    let r = send(&p, "2026-03-31", "telegram", &[], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("was already sent"), "{}", r.stderr);
    assert_eq!(tg.received().len(), 3, "a cron that fires twice posts once");
    assert_eq!(
        sql(
            p.path(),
            "select report, day, channel, status from pm_meta.report_deliveries order by channel"
        ),
        "daily|2026-03-31|slack|sent\ndaily|2026-03-31|telegram|sent"
    );

    // A 403: the service's reason, no token anywhere, nothing recorded.
    let denied = Api::start(|_, _, _| {
        (403, vec![], json!({"ok": false, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}).to_string())
    });
    let env = telegram(&denied, "-100200");
    let r = send(&p, "2026-03-30", "telegram", &[], &env);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let err = unwrapped(&r.stderr);
    assert!(
        err.contains("Telegram refused the request: 403 Forbidden: bot was blocked by the user"),
        "{err}"
    );
    assert!(
        !r.stderr.contains(TG_TOKEN) && !r.stdout.contains(TG_TOKEN),
        "{}",
        r.stderr
    );
    assert_eq!(denied.received().len(), 1, "a 403 is not retried");
    assert_eq!(
        sql(
            p.path(),
            "select count(*) from pm_meta.report_deliveries where day = '2026-03-30'"
        ),
        "0",
        "a delivery that posted nothing can be sent again"
    );
}

#[test]
fn a_report_is_not_sent_before_its_data_is_ready() {
    let p = report_project();
    let tg = Api::start(|_, _, _| (200, vec![], json!({"ok": true}).to_string()));
    let env = telegram(&tg, "1");
    // The day's row is not there yet.
    let r = send(&p, "2026-04-01", "telegram", &[], &env);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let err = r.stderr.replace('\n', " ");
    assert!(
        err.contains("report `daily`: daily has no row for 2026-04-01"),
        "{err}"
    );
    assert!(err.contains("(its last day is"), "{err}");
    // The last build of the model failed (its old table is still there).
    write(
        p.path(),
        "models/daily.sql",
        "select 1 as day from no_such_table\n",
    );
    assert_eq!(pm(p.path(), &["run", "-q"]).code, 1);
    let r = send(&p, "2026-03-31", "telegram", &[], &env);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        unwrapped(&r.stderr).contains("not sent: the last build of daily ("),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("ended `error`"), "{}", r.stderr);
    assert!(tg.received().is_empty(), "nothing was sent");
    // Printing it is still allowed: the numbers are yesterday's table.
    assert_eq!(
        pm(p.path(), &["report", "daily", "--date", "2026-03-31"]).code,
        0
    );
    // Mistakes in reports.yml point at their line.
    write(
        p.path(),
        "reports.yml",
        &REPORTS.replace("column: churned", "column: churn"),
    );
    let r = pm(p.path(), &["report", "daily", "--date", "2026-03-31"]);
    assert_eq!(r.code, 2, "a project error: {}", r.stderr);
    let err = unwrapped(&r.stderr);
    assert!(
        err.contains("report `daily`: daily has no column `churn`"),
        "{err}"
    );
    assert!(err.contains("[reports.yml:11:1]"), "{err}");
    assert!(err.contains("did you mean `churned`?"), "{err}");
    // A --date that is no day is a usage error, said before anything else.
    let r = pm(p.path(), &["report", "daily", "--date", "2026-02-30"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("--date `2026-02-30` is not a day"),
        "{}",
        r.stderr
    );
    // A report name that would leave target/reports/ is refused at its line.
    write(
        p.path(),
        "reports.yml",
        &REPORTS.replace("name: daily", "name: ../../../escape"),
    );
    let r = pm(p.path(), &["report", "--date", "2026-03-31"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("report name ../../../escape is not a plain name"),
        "{}",
        r.stderr
    );
    assert!(!p.path().join("escape").exists());
}

#[test]
fn a_delivery_that_may_have_been_posted_is_never_sent_twice_and_failures_are_failures() {
    let p = report_project();
    // A webhook that takes the request and never answers (within pm's 2 s).
    let silent = Api::start(|_, _, _| {
        std::thread::sleep(std::time::Duration::from_secs(5));
        (200, vec![], "ok".into())
    });
    let webhook = format!("{}/services/T000/B000/{TOKEN}", silent.url);
    let env = [
        ("SLACK_WEBHOOK_URL", webhook.as_str()),
        ("PM_REPORT_TIMEOUT", "2"),
    ];
    let r = send(&p, "2026-03-31", "slack", &[], &env);
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 1, "{err}");
    assert!(err.contains("the request may have been posted"), "{err}");
    assert!(!err.contains(TOKEN), "{err}");
    assert_eq!(silent.received().len(), 1, "sent once, not retried blindly");
    // The next attempt says so instead of posting again.
    let r = send(&p, "2026-03-31", "slack", &[], &env);
    let err = unwrapped(&r.stderr);
    assert_ne!(r.code, 0, "{err}");
    assert!(
        err.contains("never finished; it may have been posted"),
        "{err}"
    );
    assert_eq!(silent.received().len(), 1);

    // Telegram's 200 with ok: false, or an answer that is not JSON, is a failure;
    // nothing is recorded as sent, so the next attempt sends.
    for (answer, says) in [
        (
            json!({"ok": false, "description": "Bad Request: chat not found"}).to_string(),
            "Telegram did not take the message: Bad Request: chat not found",
        ),
        (
            "<html>proxy error</html>".to_string(),
            "Telegram did not take the message: an answer that is not the Bot API's",
        ),
    ] {
        let tg = Api::start(move |_, _, _| (200, vec![], answer.clone()));
        let r = send(&p, "2026-03-30", "telegram", &[], &telegram(&tg, "42"));
        let err = unwrapped(&r.stderr);
        assert_ne!(r.code, 0, "{err}");
        assert!(err.contains(says), "{err}");
        assert!(!err.contains(TG_TOKEN), "{err}");
    }
    let tg = Api::start(|_, _, _| (200, vec![], json!({"ok": true, "result": {}}).to_string()));
    let r = send(&p, "2026-03-30", "telegram", &[], &telegram(&tg, "42"));
    assert_eq!(r.code, 0, "{}", r.stderr);

    // A Retry-After given as an HTTP date is followed; a 429 without one is not said to be.
    let date = (chrono::Utc::now() + chrono::Duration::seconds(4))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let hook = Api::start(move |_, n, _| match n {
        1 => (429, vec![("Retry-After", date.clone())], "slow down".into()),
        2 => (429, vec![], "slow down".into()),
        _ => (200, vec![], "ok".into()),
    });
    let webhook = format!("{}/services/T000/B000/{TOKEN}", hook.url);
    let started = std::time::Instant::now();
    let r = send(
        &p,
        "2026-03-29",
        "slack",
        &[],
        &[("SLACK_WEBHOOK_URL", &webhook)],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        started.elapsed().as_secs_f64() >= 1.0,
        "waited until the date"
    );
    assert!(
        ["1 s", "2 s", "3 s", "4 s"]
            .iter()
            .any(|s| r.stderr.contains(&format!("retrying in {s} as it asks"))),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("without saying how long to wait"),
        "{}",
        r.stderr
    );
    assert_eq!(hook.received().len(), 3);

    // An invalid webhook URL: exit 2 at once, not retried.
    let started = std::time::Instant::now();
    let r = send(
        &p,
        "2026-03-28",
        "slack",
        &[],
        &[("SLACK_WEBHOOK_URL", "hooks.slack.com/services/x")],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("SLACK_WEBHOOK_URL is not an http(s) URL"),
        "{}",
        r.stderr
    );
    assert!(started.elapsed().as_secs_f64() < 5.0);

    // Two at once: the second waits for the first's outcome and reports it.
    let slow = Api::start(|_, _, _| {
        std::thread::sleep(std::time::Duration::from_millis(4000));
        (200, vec![], "ok".into())
    });
    let webhook = format!("{}/services/T000/B000/{TOKEN}", slow.url);
    let first = spawn_pm(
        p.path(),
        &["report", "daily", "--date", "2026-03-27", "--to", "slack"],
        &[("SLACK_WEBHOOK_URL", &webhook)],
    );
    let t0 = std::time::Instant::now();
    while slow.received().is_empty() {
        assert!(t0.elapsed().as_secs() < 30, "the first never sent");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = send(
        &p,
        "2026-03-27",
        "slack",
        &[],
        &[("SLACK_WEBHOOK_URL", &webhook)],
    );
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success());
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stderr.contains("waiting for its outcome"),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains("was already sent at"),
        "{}",
        second.stderr
    );
    assert_eq!(slow.received().len(), 1, "posted once");

    // --dry-run masks credentials in an API URL; a token too short to mask is refused.
    let api = "https://bob:hunter2@127.0.0.1:9/tg";
    let r = send(
        &p,
        "2026-03-26",
        "telegram",
        &["--dry-run"],
        &[
            ("TELEGRAM_BOT_TOKEN", TG_TOKEN),
            ("TELEGRAM_CHAT_ID", "42"),
            ("PM_TELEGRAM_API_URL", api),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("POST https://****@127.0.0.1:9/tg/bot****/sendMessage"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("hunter2") && !r.stderr.contains("hunter2"));
    let r = send(
        &p,
        "2026-03-26",
        "telegram",
        &["--dry-run"],
        &[("TELEGRAM_BOT_TOKEN", "abc"), ("TELEGRAM_CHAT_ID", "42")],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("TELEGRAM_BOT_TOKEN is not a token"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_report_counts_days_in_the_projects_time_zone_or_says_why_not() {
    let p = report_project();
    write(
        p.path(),
        "pm_project.yml",
        "name: local\nvars:\n  timezone: Asia/Kolkata\n",
    );
    let r = pm(p.path(), &["report", "daily", "--date", "2026-03-31"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("(Asia/Kolkata)"),
        "the project's calendar: {}",
        r.stdout
    );
    // --vars decides it as it decides the models'.
    let r = pm(
        p.path(),
        &[
            "report",
            "daily",
            "--date",
            "2026-03-31",
            "--vars",
            "{timezone: Europe/Berlin}",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("(Europe/Berlin)"), "{}", r.stdout);
    // A report that sets another calendar than the models' is an error naming both.
    write(
        p.path(),
        "reports.yml",
        &REPORTS.replace(
            "    date_column: day\n",
            "    date_column: day\n    timezone: America/New_York\n",
        ),
    );
    let r = pm(p.path(), &["report", "daily", "--date", "2026-03-31"]);
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 2, "{err}");
    assert!(
        err.contains("report `daily` counts days in America/New_York, and the models count them in Asia/Kolkata"),
        "{err}"
    );
    assert!(err.contains("reports.yml:7"), "{err}");
}
