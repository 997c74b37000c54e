//! `pm source freshness`: how recent each selected source table's newest row
//! is, against its `warn_after` / `error_after`.

use super::Session;
use crate::cli::SelectArgs;
use crate::error::{Problem, Problems, Result};
use crate::manifest::ResourceType;
use crate::materialize::freshness::{self, Freshness};
use crate::output::Log;
use crate::settings::Settings;
use serde_json::json;
use std::time::Instant;

pub fn run(
    g: &Settings,
    select: &SelectArgs,
    output: Option<&std::path::Path>,
    log: Log,
) -> Result<i32> {
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let s = Session::open(g, "freshness", log)?;
    let c = s.compile()?;
    let m = &c.manifest;
    let mut problems = Problems::default();
    let mut checks = Vec::new();
    for i in s.select(&c, select)? {
        let n = &m.nodes[i];
        if n.resource_type != ResourceType::Source {
            continue;
        }
        match freshness::criteria(n) {
            Ok(Some(criteria)) => checks.push((i, criteria)),
            Ok(None) => {}
            Err(p) => problems.push(p),
        }
    }
    problems.into_result()?;
    if checks.is_empty() {
        log.warn("no selected source has a freshness check (loaded_at_field with warn_after or error_after)");
        return Ok(0);
    }
    let endpoint = s.endpoint()?;
    let rt = super::db::runtime()?;
    let client = rt.block_on(endpoint.connect())?;
    rt.block_on(client.batch_execute("set time zone 'UTC'"))
        .map_err(|e| {
            Problem::new(
                "freshness::session",
                format!(
                    "cannot set the session's time zone: {}",
                    crate::adapter::error_text(&e)
                ),
            )
        })?;
    let total = checks.len();
    let width = total.to_string().len();
    let (mut pass, mut warn, mut error) = (0, 0, 0);
    let mut results = Vec::new();
    let mut failures = Problems::default();
    for (k, (i, crit)) in checks.iter().enumerate() {
        let n = &m.nodes[*i];
        let t0 = Instant::now();
        let relation = n.relation_name().unwrap_or_default();
        let shown = match &n.source {
            Some(src) => format!("{}.{}", src.source_name, n.name),
            None => n.name.clone(),
        };
        let sql = freshness::query(&relation, crit);
        let row = rt.block_on(client.query_one(&sql, &[]));
        let secs = t0.elapsed().as_secs_f64();
        let criteria = json!({
            "warn_after": crit.raw.get("warn_after").cloned().unwrap_or(json!({})),
            "error_after": crit.raw.get("error_after").cloned().unwrap_or(json!({})),
            "filter": crit.filter,
        });
        match row {
            Ok(row) => {
                let max: Option<String> = row.get(0);
                let now: Option<String> = row.get(1);
                let age: Option<f64> = row.get(2);
                let (status, age_text) = match age {
                    Some(a) => (
                        freshness::judge(crit, a),
                        format!("newest row {} old", freshness::human_age(a)),
                    ),
                    // No rows at all: as stale as can be.
                    None => (Freshness::Error, "no rows".to_string()),
                };
                match status {
                    Freshness::Pass => pass += 1,
                    Freshness::Warn => warn += 1,
                    Freshness::Error => error += 1,
                }
                log.info(&format!(
                    "{:>width$} of {total} {:<6} freshness of {shown} [{age_text}, {secs:.2}s]",
                    k + 1,
                    status.as_str().to_uppercase()
                ));
                results.push(json!({
                    "unique_id": n.unique_id,
                    "max_loaded_at": max,
                    "snapshotted_at": now,
                    "max_loaded_at_time_ago_in_s": age,
                    "status": status.as_str(),
                    "criteria": criteria,
                    "adapter_response": {},
                    "timing": [],
                    "thread_id": "Thread-1",
                    "execution_time": secs,
                }));
            }
            Err(e) => {
                error += 1;
                log.info(&format!(
                    "{:>width$} of {total} ERROR  freshness of {shown} [{secs:.2}s]",
                    k + 1
                ));
                let detail = e
                    .as_db_error()
                    .map(|d| d.message().to_string())
                    .unwrap_or_else(|| e.to_string());
                failures.push(
                    Problem::new(
                        "freshness::query",
                        format!("freshness of {shown} could not be checked: {detail}"),
                    )
                    .help(format!(
                        "check that {relation} exists and has the column `{}` (loaded_at_field); the query was: {sql}",
                        crit.loaded_at_field
                    )),
                );
                results.push(json!({
                    "unique_id": n.unique_id,
                    "status": "runtime error",
                    "error": detail,
                    "criteria": criteria,
                    "execution_time": secs,
                }));
            }
        }
    }
    let doc = json!({
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/sources/v3.json",
            "dbt_version": format!("pm-{}", env!("CARGO_PKG_VERSION")),
            "generated_at": chrono::Utc::now().to_rfc3339(),
            "invocation_id": m.invocation_id,
            "started_at": started_at.to_rfc3339(),
        },
        "results": results,
        "elapsed_time": started.elapsed().as_secs_f64(),
    });
    let path = match output {
        Some(p) => p.to_path_buf(),
        None => s.target_dir().join("sources.json"),
    };
    crate::artifacts::write_json(&path, &doc)?;
    log.info(&format!(
        "Done in {:.2}s. PASS={pass} WARN={warn} ERROR={error} TOTAL={total}",
        started.elapsed().as_secs_f64()
    ));
    if !failures.is_empty() {
        log.problems(failures);
    }
    super::release_at_exit((s, c));
    Ok(if error > 0 { 1 } else { 0 })
}
