//! `pm serve` on loopback over PulseMetrics on its own embedded PostgreSQL:
//! every endpoint, each role's answer as the access matrix says, tokens
//! that do not hold, hostile filters refused with nothing run, the cache
//! and its invalidation by a build, the dashboard in Chromium, SIGTERM.

use crate::common::{pm, pm_bin, pm_env, sql, unwrapped, Browser, LocalProject};
use serde_json::{json, Value};
use std::io::BufRead;
use std::path::Path;
use std::sync::{Arc, Mutex};

const SECRET: &str = "serve-test-secret-0123456789abcdef0123456789";

/// The test's serve.yml: PulseMetrics' roles, a row cap under the 46 days
/// of data, no clock leeway (the expired token).
const SERVE_YML: &str = "serve:
  roles: [reader, analyst, finance]
  issuer: pulsemetrics
  audience: pm-serve
  leeway_seconds: 0
  pinned_roles:
    wallboard: reader
  max_rows: 40
";

/// A running `pm serve`, stopped (SIGTERM) when dropped; its stdout lines kept.
struct Server {
    child: std::process::Child,
    base: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let mut child = std::process::Command::new(pm_bin())
            .current_dir(dir)
            .args(["serve", "--port", "0"])
            .env("HOME", dir)
            .env("NO_COLOR", "1")
            .env("PM_JWT_SECRET", SECRET)
            .env_remove("PM_DATABASE_URL")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("pm serve starts");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (send, first) = std::sync::mpsc::channel();
        let kept = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if line.starts_with("pm serve: listening on ") {
                    let _ = send.send(line.clone());
                }
                kept.lock().unwrap().push(line);
            }
        });
        let line = first
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("pm serve says where it listens");
        let base = line
            .trim_start_matches("pm serve: listening on ")
            .split(' ')
            .next()
            .unwrap()
            .to_string();
        Server { child, base, lines }
    }

    fn stop(&mut self) -> i32 {
        unsafe_kill(self.child.id(), "TERM");
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                started.elapsed().as_secs() < 20,
                "pm serve did not stop on SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unsafe_kill(pid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status();
}

/// Status, headers we look at, and the body.
struct Reply {
    status: u16,
    etag: Option<String>,
    cache: Option<String>,
    content_type: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn reply(mut r: ureq::http::Response<ureq::Body>) -> Reply {
    let header = |k: &str| {
        r.headers()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Reply {
        status: r.status().as_u16(),
        etag: header("etag"),
        cache: header("x-pm-cache"),
        content_type: header("content-type").unwrap_or_default(),
        body: r.body_mut().read_to_string().unwrap_or_default(),
    }
}

fn get(s: &Server, path: &str, token: Option<&str>, extra: &[(&str, &str)]) -> Reply {
    let mut req = agent().get(format!("{}{path}", s.base));
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    reply(req.call().unwrap())
}

fn post(s: &Server, token: &str, body: &Value) -> Reply {
    reply(
        agent()
            .post(format!("{}/api/v1/query", s.base))
            .header("Authorization", format!("Bearer {token}"))
            .send_json(body)
            .unwrap(),
    )
}

fn mint(dir: &Path, role: &str, extra: &[&str]) -> String {
    let mut args = vec!["serve", "--mint-token", role];
    args.extend_from_slice(extra);
    let r = pm_env(dir, &args, &[("PM_JWT_SECRET", SECRET)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout.trim().to_string()
}

fn build_pulsemetrics() -> LocalProject {
    let p = LocalProject::pulsemetrics();
    let dir = p.path().to_str().unwrap();
    let start = (chrono::Utc::now().date_naive() - chrono::Days::new(45)).to_string();
    let r = pm(
        p.path(),
        &[
            "generate",
            "--build",
            "-q",
            "--seed",
            "7",
            "--scale",
            "0.2",
            "--start",
            &start,
            "--days",
            "45",
            "--project-dir",
            dir,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    std::fs::write(p.path().join("serve.yml"), SERVE_YML).unwrap();
    p
}

#[test]
fn pm_serve_answers_each_role_as_postgresql_decides() {
    let p = build_pulsemetrics();
    let mut s = Server::start(p.path());
    let analyst = mint(p.path(), "analyst", &[]);
    let reader = mint(p.path(), "reader", &[]);
    let finance = mint(p.path(), "finance", &[]);

    catalog_endpoints(&s, &finance);
    each_role_sees_its_rows(&s, p.path(), &analyst, &reader, &finance);
    tokens_that_do_not_hold(&s, p.path(), &reader);
    hostile_filters_run_nothing(&s, &analyst);
    saved_query_endpoints(&s, p.path(), &finance, &analyst);
    cache_lives_until_a_build(&s, p.path(), &analyst);
    // The rebuild of fct_daily_metrics kept each role's access as it was.
    each_role_sees_its_rows(&s, p.path(), &analyst, &reader, &finance);
    dashboard_draws_a_chart(&s, &finance);

    assert_eq!(s.stop(), 0, "SIGTERM stops the server cleanly");
    let log = s.lines.lock().unwrap().join("\n");
    assert!(
        log.contains("POST /api/v1/query role=reader status=200"),
        "{log}"
    );
    assert!(log.contains("status=401"), "{log}");
    for t in [&analyst, &reader, &finance] {
        assert!(!log.contains(t.as_str()), "a token reached the access log");
    }
}

fn catalog_endpoints(s: &Server, token: &str) {
    let health = get(s, "/api/v1/health", None, &[]);
    assert_eq!(health.status, 200, "{}", health.body);
    let h = health.json();
    assert_eq!(h["warehouse"], "reachable");
    assert_eq!(h["last_build"]["command"], "build");
    assert_eq!(h["last_build"]["succeeded"], true);
    let openapi = get(s, "/api/v1/openapi.json", None, &[]).json();
    assert_eq!(openapi["openapi"], "3.1.0");
    for path in [
        "/api/v1/query",
        "/api/v1/metrics",
        "/api/v1/saved-queries/payments_by_country",
        "/api/v1/saved-queries/overview",
    ] {
        assert!(openapi["paths"][path].is_object(), "openapi lacks {path}");
    }
    let metrics = get(s, "/api/v1/metrics", Some(token), &[]).json();
    let mrr = metrics["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "mrr")
        .expect("mrr is listed");
    assert_eq!(mrr["label"], "MRR");
    assert!(mrr["dimensions"]
        .as_array()
        .unwrap()
        .contains(&json!("metric_time")));
    let saved = get(s, "/api/v1/saved-queries", Some(token), &[]).json();
    assert_eq!(saved["saved_queries"].as_array().unwrap().len(), 5);
    assert_eq!(get(s, "/api/v1/metrics", None, &[]).status, 401);
    assert_eq!(get(s, "/api/v1/nothing", Some(token), &[]).status, 404);
}

fn each_role_sees_its_rows(s: &Server, dir: &Path, analyst: &str, reader: &str, finance: &str) {
    let by_day =
        json!({"metrics": ["signups", "daily_active_users"], "group_by": ["metric_time__day"]});
    let all_days: usize = sql(dir, "select count(*) from analytics.fct_daily_metrics")
        .parse()
        .unwrap();
    assert!(all_days > 40, "{all_days}");
    // analyst: every day, cut at the row cap of 40, and it says so.
    let a = post(s, analyst, &by_day);
    assert_eq!(a.status, 200, "{}", a.body);
    let a = a.json();
    assert_eq!(a["rows"].as_array().unwrap().len(), 40);
    assert_eq!(a["truncated"], true);
    assert_eq!(a["columns"][1], json!({"name": "signups", "type": "int8"}));
    // reader: the last 30 days only (row-level security), the same values.
    let r = post(s, reader, &by_day).json();
    let reader_days: usize = sql(
        dir,
        "select count(*) from analytics.fct_daily_metrics where date >= current_date - 30",
    )
    .parse()
    .unwrap();
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), reader_days);
    assert_eq!(r["truncated"], false);
    let day = rows[0][0].as_str().unwrap()[..10].to_string();
    let signups = sql(
        dir,
        &format!("select signups from analytics.fct_daily_metrics where date = '{day}'"),
    );
    assert_eq!(rows[0][1].to_string(), signups);
    // Revenue: finance reads it; analyst and reader are refused, naming the metric.
    let revenue = json!({"metrics": ["mrr"], "group_by": ["metric_time__month"]});
    let f = post(s, finance, &revenue);
    assert_eq!(f.status, 200, "{}", f.body);
    assert!(!f.json()["rows"].as_array().unwrap().is_empty());
    for token in [analyst, reader] {
        let d = post(s, token, &revenue);
        assert_eq!(d.status, 403, "{}", d.body);
        assert!(
            d.json()["error"].as_str().unwrap().contains("mrr"),
            "{}",
            d.body
        );
    }
    // A mix is refused whole, naming only what the role may not read.
    let mixed = post(
        s,
        analyst,
        &json!({"metrics": ["signups", "net_cash_in"], "group_by": ["metric_time__month"]}),
    );
    assert_eq!(mixed.status, 403);
    let e = mixed.json()["error"].as_str().unwrap().to_string();
    assert!(e.contains("net_cash_in") && !e.contains("signups"), "{e}");
    // CSV on request.
    let csv = reply(
        agent()
            .post(format!("{}/api/v1/query", s.base))
            .header("Authorization", format!("Bearer {reader}"))
            .header("Accept", "text/csv")
            .send_json(&by_day)
            .unwrap(),
    );
    assert!(
        csv.content_type.starts_with("text/csv"),
        "{}",
        csv.content_type
    );
    assert!(csv
        .body
        .starts_with("metric_time__day,signups,daily_active_users\n"));
    assert_eq!(csv.body.lines().count(), reader_days + 1);
}

fn tokens_that_do_not_hold(s: &Server, dir: &Path, reader: &str) {
    let path = "/api/v1/metrics";
    let status = |t: Option<&str>| get(s, path, t, &[]).status;
    assert_eq!(status(None), 401);
    assert_eq!(status(Some("not-a-jwt")), 401);
    // Tampered: another payload under the reader's signature.
    let parts: Vec<&str> = reader.split('.').collect();
    let finance = mint(dir, "finance", &[]);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        finance.split('.').nth(1).unwrap(),
        parts[2]
    );
    assert_eq!(status(Some(&forged)), 401);
    // Expired.
    let expired = mint(dir, "reader", &["--expires-in", "0"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = get(s, path, Some(&expired), &[]);
    assert_eq!(r.status, 401);
    assert!(r.body.contains("expired"), "{}", r.body);
    // Another audience, and a role serve.yml does not list: minted by a
    // project that configures them, with the same secret.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(
        other.path().join("dbt_project.yml"),
        "name: other\nprofile: other\n",
    )
    .unwrap();
    std::fs::write(
        other.path().join("serve.yml"),
        "serve:\n  roles: [reader, postgres]\n  issuer: pulsemetrics\n  audience: elsewhere\n",
    )
    .unwrap();
    let wrong_audience = mint(other.path(), "reader", &[]);
    let r = get(s, path, Some(&wrong_audience), &[]);
    assert_eq!(r.status, 401);
    assert!(r.body.contains("audience"), "{}", r.body);
    std::fs::write(
        other.path().join("serve.yml"),
        "serve:\n  roles: [reader, postgres]\n  issuer: pulsemetrics\n  audience: pm-serve\n",
    )
    .unwrap();
    let superuser = mint(other.path(), "postgres", &[]);
    let r = get(s, path, Some(&superuser), &[]);
    assert_eq!(r.status, 403, "{}", r.body);
    // A machine client's subject is pinned to its role.
    let wallboard = mint(dir, "reader", &["--subject", "wallboard"]);
    assert_eq!(status(Some(&wallboard)), 200);
    let escalated = mint(dir, "finance", &["--subject", "wallboard"]);
    assert_eq!(status(Some(&escalated)), 403);
}

fn statements(s: &Server) -> u64 {
    get(s, "/api/v1/health", None, &[]).json()["statements"]
        .as_u64()
        .unwrap()
}

fn hostile_filters_run_nothing(s: &Server, token: &str) {
    let hostile = [
        "signups > 0; drop table analytics.fct_daily_metrics",
        "metric_time__day > '2020-01-01' -- comment",
        "metric_time__day > '2020-01-01' /* comment */",
        "metric_time__day = (select max(date) from analytics.fct_daily_metrics)",
        "exists (select 1 from raw.payments)",
        "metric_time__day in (select date from analytics.fct_daily_metrics)",
        "pg_sleep(5) is null",
        "metric_time__day = now()",
        "current_setting('is_superuser') = 'on'",
        "set_config('role', 'postgres', true) = 'x'",
        "lo_import('/etc/passwd') > 0",
        "pg_read_file('/etc/passwd') = ''",
        "version() = 'x'",
        "dblink('x', 'select 1') is null",
        "metric_time__day::regclass is null",
        "cast(metric_time__day as regrole) is null",
        "password = 'x'",
        "raw.users.email = 'x'",
        "\"metric_time__day\" > '2020-01-01'",
        "metric_time__day > $1",
        "metric_time__day > '2020-01-01' union select 1",
        "metric_time__day > '2020-01-01') or (1=1",
        "metric_time__day ~ '2020'",
        "metric_time__day || 'x' = 'x'",
        "case when 1=1 then true end",
        "metric_time__day > e'\\x32'",
        "metric_time__day > $$2020-01-01$$",
        "{{ env_var('HOME') }} = 'x'",
        "{% if true %}1 = 1{% endif %}",
        "{{ Dimension('user__password') }} = 'x'",
        "count(*) > 1",
        "array_agg(metric_time__day) is null",
        "metric_time__day > '2020-01-01' and (select 1) = 1",
        "row(metric_time__day) = row('2020-01-01')",
        "signups > 0",
    ];
    assert!(hostile.len() >= 30);
    let before = statements(s);
    for filter in hostile {
        let r = post(
            s,
            token,
            &json!({"metrics": ["signups"], "group_by": ["metric_time__day"], "where": filter}),
        );
        assert_eq!(r.status, 400, "`{filter}` gave {}: {}", r.status, r.body);
        assert!(
            r.json()["error"].as_str().unwrap().starts_with("where:"),
            "{}",
            r.body
        );
    }
    // The other parameters are names and numbers the planner looks up.
    for body in [
        json!({"metrics": ["signups; drop table x"]}),
        json!({"metrics": ["signups"], "group_by": ["metric_time__day; drop table x"]}),
        json!({"metrics": ["signups"], "group_by": ["Dimension('x') or 1=1"]}),
        json!({"metrics": ["signups"], "group_by": ["metric_time__day"], "order_by": ["1; drop table x"]}),
        json!({"metrics": ["signups"], "start_time": "2020-01-01'; drop table x; --"}),
        json!({"metrics": ["signups"], "limit": "10; drop table x"}),
        json!({"metrics": ["signups"], "sql": "select 1"}),
    ] {
        let r = post(s, token, &body);
        assert_eq!(r.status, 400, "{body} gave {}: {}", r.status, r.body);
    }
    assert_eq!(
        statements(s),
        before,
        "a hostile request reached the warehouse"
    );
    // A quote inside a value stays in the value.
    let quoted = post(
        s,
        token,
        &json!({"metrics": ["signups"], "where": "metric_time__day = '2020-01-01'' or ''1''=''1'"}),
    );
    assert_eq!(quoted.status, 400, "{}", quoted.body);
    assert!(
        quoted.body.contains("invalid input syntax for type"),
        "{}",
        quoted.body
    );
    // A fair filter runs, its values bound.
    let fair = post(
        s,
        token,
        &json!({"metrics": ["signups"], "group_by": ["metric_time__day"],
                "where": ["metric_time__day between '2000-01-01' and '2100-01-01'", "not metric_time__day is null"]}),
    );
    assert_eq!(fair.status, 200, "{}", fair.body);
}

fn saved_query_endpoints(s: &Server, dir: &Path, finance: &str, analyst: &str) {
    let country = sql(
        dir,
        "select u.country_code from analytics.fct_payments p join analytics.dim_users u using (user_id) group by 1 order by count(*) desc limit 1",
    );
    let path = format!("/api/v1/saved-queries/payments_by_country?country={country}");
    let r = get(s, &path, Some(finance), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let rows = r.json()["rows"].as_array().unwrap().clone();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|row| row[1] == json!(country)), "{rows:?}");
    assert_eq!(get(s, &path, Some(analyst), &[]).status, 403);
    // A day's overview (seed 004's `overview?date=`), as finance.
    let day = sql(
        dir,
        "select max(date)::text from analytics.fct_daily_metrics",
    );
    let o = get(
        s,
        &format!("/api/v1/saved-queries/overview?date={day}"),
        Some(finance),
        &[],
    );
    assert_eq!(o.status, 200, "{}", o.body);
    assert_eq!(o.json()["rows"].as_array().unwrap().len(), 1);
    for (bad, says) in [
        (
            "/api/v1/saved-queries/overview?colour=red",
            "not a parameter",
        ),
        (
            "/api/v1/saved-queries/overview?start_date=yesterday",
            "not a date",
        ),
        (
            "/api/v1/saved-queries/overview?metrics=mrr,secret",
            "secret",
        ),
        ("/api/v1/saved-queries/nothing", "no saved query"),
    ] {
        let r = get(s, bad, Some(finance), &[]);
        assert!(r.status == 400 || r.status == 404, "{bad}: {}", r.status);
        assert!(r.body.contains(says), "{bad}: {}", r.body);
    }
}

fn cache_lives_until_a_build(s: &Server, dir: &Path, token: &str) {
    let path = "/api/v1/saved-queries/engagement?limit=5";
    let first = get(s, path, Some(token), &[]);
    let again = get(s, path, Some(token), &[]);
    assert_eq!(again.cache.as_deref(), Some("hit"));
    assert_eq!(first.etag, again.etag);
    let etag = again.etag.clone().unwrap();
    let unchanged = get(s, path, Some(token), &[("If-None-Match", &etag)]);
    assert_eq!(unchanged.status, 304);
    // Another role has its own answer.
    let finance = mint(dir, "finance", &[]);
    assert_eq!(
        get(s, path, Some(&finance), &[]).cache.as_deref(),
        Some("miss")
    );
    // A build of what it reads makes the next answer fresh.
    let r = pm(dir, &["build", "-q", "-s", "fct_daily_metrics"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let started = std::time::Instant::now();
    loop {
        let r = get(s, path, Some(token), &[("If-None-Match", &etag)]);
        if r.status == 200 {
            assert_eq!(r.cache.as_deref(), Some("miss"));
            assert_ne!(r.etag.as_deref(), Some(etag.as_str()));
            break;
        }
        assert!(
            started.elapsed().as_secs() < 10,
            "the cache outlived the build"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn dashboard_draws_a_chart(s: &Server, token: &str) {
    let page = get(s, "/", None, &[]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<svg id=\"chart\""));
    for outside in [
        "<script src",
        "<link",
        "@import",
        "url(http",
        "fetch(\"http",
    ] {
        assert!(
            !page.body.contains(outside),
            "the dashboard loads {outside}…"
        );
    }
    let Some(b) = Browser::start() else { return };
    b.call(
        "POST",
        "/url",
        json!({"url": format!("{}/#token={token}", s.base)}),
    );
    b.wait_for("return document.body.dataset.ready");
    // A saved query's tile draws its chart and table.
    let tile = b.element("button.tile[data-name='revenue_by_month']");
    b.call("POST", &format!("/element/{tile}/click"), json!({}));
    let points = b.wait_for("return +document.getElementById('chart').dataset.points > 0 && document.getElementById('chart').dataset.points");
    assert!(
        points.as_str().unwrap().parse::<u32>().unwrap() >= 4,
        "{points}"
    );
    let lines = b.js("return document.querySelectorAll('#chart path.series').length");
    assert_eq!(lines, json!(4), "mrr, arr and the two cash-ins");
    // Picked metrics by a dimension.
    b.js("document.querySelector(\"#metric-list input[value='new_users']\").click(); return true");
    b.wait_for("return document.querySelectorAll('#dimension option').length > 1");
    b.js("const d = document.getElementById('dimension'); d.value = [...d.options].find(o => o.value.endsWith('country')).value; document.getElementById('grain').value = 'week'; document.getElementById('run').click(); return true");
    b.wait_for("return document.getElementById('title').textContent === 'new_users' && !document.getElementById('status').textContent.startsWith('Running')");
    let said = b.js("return document.getElementById('status').innerText");
    let points = b.js("return +document.getElementById('chart').dataset.points");
    assert!(points.as_u64().unwrap() > 0, "{said}");
    let rows = b.js("return document.querySelectorAll('#table tr').length");
    assert!(rows.as_u64().unwrap() > 2, "{rows}");
    // The token stays in the browser, not in the address.
    assert_eq!(b.js("return location.hash"), json!(""));
    // A screenshot for people to look at.
    b.screenshot("serve-dashboard");
}

#[test]
fn pm_serve_refuses_to_start_without_what_it_needs() {
    let p = LocalProject::fixture("metrics");
    let serve = |env: &[(&str, &str)]| pm_env(p.path(), &["serve", "--port", "0"], env);
    let r = serve(&[("PM_JWT_SECRET", SECRET)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("serve.yml"), "{}", r.stderr);
    std::fs::write(p.path().join("serve.yml"), "serve:\n  roles: [ghost]\n").unwrap();
    let r = serve(&[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no token key"), "{}", r.stderr);
    let r = serve(&[("PM_JWT_SECRET", "short")]);
    assert!(r.stderr.contains("shorter than 32 bytes"), "{}", r.stderr);
    let r = serve(&[("PM_JWT_SECRET", SECRET)]);
    assert_eq!(r.code, 2);
    let said = unwrapped(&r.stderr);
    assert!(
        said.contains("role `ghost`") && said.contains("does not exist"),
        "{said}"
    );
    std::fs::write(
        p.path().join("serve.yml"),
        "serve:\n  roles: [ghost]\n  max_row: 3\n",
    )
    .unwrap();
    let r = serve(&[("PM_JWT_SECRET", SECRET)]);
    assert!(r.stderr.contains("max_row"), "{}", r.stderr);
}
