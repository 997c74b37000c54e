//! `pm docs`: the site's content, and the page driven in headless Chromium.

use crate::common::*;
use serde_json::{json, Value};
use std::path::Path;

fn project() -> tempfile::TempDir {
    crate::common::project(&[
        ("pm_project.yml", "name: metrics\nmodels:\n  metrics:\n    facts:\n      +materialized: table\n"),
        ("models/staging/stg_events.sql", "select 1 as user_id, current_date as day\n"),
        ("models/staging/stg_payments.sql", "select 1 as user_id, 10.0 as amount, current_date as day\n"),
        (
            "models/facts/fct_daily_metrics.sql",
            "select e.day, count(distinct e.user_id) as active_users, sum(p.amount) as revenue\nfrom {{ ref('stg_events') }} e\nleft join {{ ref('stg_payments') }} p using (user_id, day)\ngroup by 1\n",
        ),
        (
            "models/facts/schema.yml",
            "version: 2\nmodels:\n  - name: fct_daily_metrics\n    description: '{{ doc(\"daily\") }}'\n    meta: {owner: finance-team}\n    columns:\n      - name: day\n        data_tests: [unique, not_null]\n      - name: active_users\n        description: Users with at least one event that day.\n      - name: revenue\n",
        ),
        ("models/facts/docs.md", "{% docs daily %}\nOne row per **day** with the headline KPIs.\n{% enddocs %}\n"),
    ])
}

fn data(root: &Path) -> Value {
    let text = read(root, "target/docs/pm-docs-data.js");
    let json = text
        .trim()
        .strip_prefix("window.PM_DATA = ")
        .and_then(|t| t.strip_suffix(';'))
        .expect("the data script");
    serde_json::from_str(json).expect("JSON")
}

#[test]
fn the_site_is_self_contained_and_holds_each_node() {
    let p = project();
    write(
        p.path(),
        "models/facts/unit_tests.yml",
        "unit_tests:\n  - name: one_active_user\n    model: fct_daily_metrics\n    given:\n\
         \x20     - input: ref('stg_events')\n        rows: [{user_id: 1, day: 2024-01-01}]\n\
         \x20     - input: ref('stg_payments')\n        rows: []\n    expect:\n      rows: [{active_users: 1}]\n",
    );
    let r = pm(p.path(), &["docs", "--no-catalog"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("(3 nodes, no column types from the warehouse)"),
        "{}",
        r.stderr
    );
    let html = read(p.path(), "target/docs/index.html");
    // Nothing from the network: no external scripts, styles or fonts.
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "external reference"
    );
    assert!(html.contains("<script src=\"pm-docs-data.js\"></script>"));
    let d = data(p.path());
    let fct = d["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "fct_daily_metrics")
        .unwrap();
    assert_eq!(fct["mat"], "table");
    assert_eq!(fct["owner"], "finance-team");
    assert_eq!(
        fct["desc"],
        "<p>One row per <strong>day</strong> with the headline KPIs.</p>\n"
    );
    assert_eq!(
        fct["cols"][0]["tests"],
        json!([{"name": "not_null_fct_daily_metrics_day", "kind": "not_null", "status": null},
               {"name": "unique_fct_daily_metrics_day", "kind": "unique", "status": null}])
    );
    // A unit test is listed on its model.
    assert_eq!(
        fct["tests"],
        json!([{"name": "one_active_user", "kind": "unit test one_active_user", "status": null}])
    );
    assert_eq!(d["overview"]["by_type"]["unit_test"], 1);
    let sql = read(p.path(), "target/docs/pm-docs-sql-0.js");
    assert!(sql.starts_with("PM_SQL_CHUNK(0, [["), "{sql}");
    assert!(
        sql.contains(r#"from \"pm\".\"public\".\"stg_events\" e"#),
        "{sql}"
    );
    assert_eq!(fct["parents"].as_array().unwrap().len(), 2);
    // Edges run left to right.
    for e in d["edges"].as_array().unwrap() {
        let (a, b) = (
            e[0].as_u64().unwrap() as usize,
            e[1].as_u64().unwrap() as usize,
        );
        assert!(d["nodes"][b]["x"].as_f64() > d["nodes"][a]["x"].as_f64());
    }
    assert_eq!(d["overview"]["models_tested"], 1);
    assert_eq!(d["overview"]["by_layer"], json!({"facts": 1, "staging": 2}));
    // --select limits the graph.
    let r = pm(p.path(), &["docs", "--no-catalog", "-s", "stg_events+"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(data(p.path())["nodes"].as_array().unwrap().len(), 2);
}

#[test]
fn the_page_works_in_headless_chromium() {
    let p = project();
    let r = pm(p.path(), &["docs", "--no-catalog"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let Some(b) = Browser::start() else { return };
    let index = p.path().join("target/docs/index.html");
    b.call(
        "POST",
        "/url",
        json!({"url": format!("file://{}", index.display())}),
    );
    b.wait_for("return document.body.dataset.ready");
    // The graph: one box per model.
    assert_eq!(
        b.js("return document.querySelectorAll('svg g.node').length"),
        json!(3)
    );
    assert_eq!(
        b.js("return document.querySelectorAll('svg path.edge').length"),
        json!(2)
    );
    // The overview first.
    let panel = b.js("return document.getElementById('panel').innerText");
    assert!(
        panel.as_str().unwrap().contains("models with tests"),
        "{panel}"
    );
    // Clicking fct_daily_metrics opens its compiled SQL and columns.
    let node = b.element("g.node[data-name='fct_daily_metrics'] rect");
    b.call("POST", &format!("/element/{node}/click"), json!({}));
    b.wait_for("return document.getElementById('node-name')?.innerText === 'fct_daily_metrics'");
    let sql = b.wait_for("return document.getElementById('compiled-sql')?.innerText");
    assert!(
        sql.as_str()
            .unwrap()
            .contains("count(distinct e.user_id) as active_users"),
        "{sql}"
    );
    let cols = b.js("return document.getElementById('columns').innerText");
    let cols = cols.as_str().unwrap();
    assert!(
        cols.contains("active_users") && cols.contains("Users with at least one event that day."),
        "{cols}"
    );
    assert!(cols.contains("unique"), "{cols}");
    // Search finds a column.
    let search = b.element("#search");
    b.call(
        "POST",
        &format!("/element/{search}/value"),
        json!({"text": "revenu"}),
    );
    let hits = b.wait_for("return document.getElementById('results').innerText");
    assert!(
        hits.as_str().unwrap().contains("fct_daily_metrics"),
        "{hits}"
    );
    assert!(hits.as_str().unwrap().contains("column revenue"), "{hits}");
    // The filter redraws the sub-graph.
    let filter = b.element("#filter");
    b.call(
        "POST",
        &format!("/element/{filter}/value"),
        json!({"text": "+stg_events\n"}),
    );
    b.wait_for("return document.querySelectorAll('svg g.node').length === 1");
    // A screenshot for people to look at.
    b.screenshot("docs-screenshot");
}

#[test]
fn column_types_come_from_the_warehouse_and_the_site_can_be_served() {
    let p = LocalProject::new(&[
        ("models/daily.sql", "{{ config(materialized='table') }}\nselect current_date as day, 3::bigint as users\n"),
        ("models/schema.yml", "version: 2\nmodels:\n  - name: daily\n    columns:\n      - name: day\n        description: The day.\n"),
    ]);
    let r = pm(p.path(), &["run", "-q"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = pm(p.path(), &["docs"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("column types of 2 relations"),
        "{}",
        r.stderr
    );
    let d = data(p.path());
    let daily = d["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "daily")
        .unwrap();
    // The documented column first, then the one only the warehouse knows.
    assert_eq!(daily["cols"][0]["name"], "day");
    assert_eq!(daily["cols"][0]["type"], "date");
    assert_eq!(daily["cols"][1]["name"], "users");
    assert_eq!(daily["cols"][1]["type"], "bigint");
    // The last run's statuses reach the overview.
    assert_eq!(d["overview"]["last_run"]["statuses"]["success"], 2);

    // --serve: the same files over HTTP on localhost.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new(pm_bin())
        .args([
            "docs",
            "-q",
            "--no-catalog",
            "--serve",
            "--port",
            &port.to_string(),
        ])
        .current_dir(p.path())
        .env("HOME", p.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let get = |path: &str| -> Option<(u16, String)> {
        let mut r = ureq::get(&format!("http://127.0.0.1:{port}{path}"))
            .config()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(5)))
            .build()
            .call()
            .ok()?;
        Some((r.status().as_u16(), r.body_mut().read_to_string().ok()?))
    };
    let mut page = None;
    for _ in 0..100 {
        page = get("/");
        if page.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (status, body) = page.expect("the server answers");
    assert_eq!(status, 200);
    assert!(body.contains("<script src=\"pm-docs-data.js\"></script>"));
    let (status, body) = get("/pm-docs-data.js").unwrap();
    assert_eq!(status, 200);
    assert!(body.starts_with("window.PM_DATA = "));
    // Sent as written (an HTTP client would resolve the dots away first):
    // nothing outside the site is served.
    let raw = |path: &str| -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    for path in [
        "/../pm_project.yml",
        "/%2e%2e/pm_project.yml",
        "/..%2fpm_project.yml",
    ] {
        let answer = raw(path);
        assert!(answer.starts_with("HTTP/1.1 404"), "{path}: {answer}");
        assert!(!answer.contains("name:"), "{path}: {answer}");
    }
    // An idle connection (a browser's preconnect) keeps nobody waiting.
    let idle = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(
        get("/").map(|r| r.0),
        Some(200),
        "answered beside an idle connection"
    );
    drop(idle);
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn metrics_show_in_the_lineage_with_what_they_read_and_are_grouped_by() {
    let p = fixture("metrics");
    let r = pm(p.path(), &["docs", "--no-catalog"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let d = data(p.path());
    let nodes = d["nodes"].as_array().expect("nodes");
    let find = |id: &str| {
        nodes
            .iter()
            .position(|n| n["id"] == id)
            .unwrap_or_else(|| panic!("{id} on the page"))
    };
    let metric = find("metric.metrics_shop.revenue_per_customer");
    let revenue = find("metric.metrics_shop.revenue");
    let orders = find("semantic_model.metrics_shop.orders");
    let model = find("model.metrics_shop.orders");
    // metric → semantic model → model, as edges of the graph.
    assert!(nodes[metric]["parents"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!(revenue)));
    assert!(nodes[revenue]["parents"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!(orders)));
    assert!(nodes[orders]["parents"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!(model)));
    let m = &nodes[metric]["metric"];
    assert_eq!(m["label"], "Revenue per customer");
    assert_eq!(m["type"], "ratio");
    assert!(
        m["dimensions"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("customer__tier")),
        "{m}"
    );
    assert_eq!(nodes[metric]["has_sql"], false);
    assert_eq!(
        nodes[find("saved_query.metrics_shop.revenue_by_region")]["has_sql"],
        true
    );
}
