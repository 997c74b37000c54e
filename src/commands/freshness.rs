//! `pm source freshness`: how recent each selected source table's newest row
//! is, against its `warn_after` / `error_after`.

use super::Session;
use crate::cli::SelectArgs;
use pm_core::error::{Code, Problem, Problems, Result};
use pm_core::manifest::{Manifest, Node};
use pm_core::materialize::freshness::{self, Freshness};
use pm_core::output::Log;
use pm_core::settings::Settings;
use pm_core::warehouse::{RunControl, SourceFreshness};
use pm_runner::execute::Status;
use pm_runner::pipeline::{RunCommand, Tally};
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
    let s = Session::open(g, RunCommand::Freshness.name(), log)?;
    let c = s.compile()?;
    let m = &c.manifest;
    let checks = criteria(m, &s.select_to_run(&c, select, RunCommand::Freshness)?)?;
    if checks.is_empty() {
        log.warn("no selected source has a freshness check (loaded_at_field with warn_after or error_after)");
        return Ok(0);
    }
    let rt = pm_runner::pipeline::runtime()?;
    let client = rt.block_on(s.endpoint()?.connect())?;
    let total = checks.len();
    let mut results = Vec::new();
    let mut failures = Problems::default();
    let mut statuses = Vec::new();
    for (k, (i, crit)) in checks.iter().enumerate() {
        let checked = rt.block_on(check(&client, &m.nodes[*i], crit));
        log.info(&format!(
            "{:>width$} of {total} {:<6} freshness of {} [{}{:.2}s]",
            k + 1,
            checked.status.as_str().to_uppercase(),
            checked.shown,
            checked
                .age_text
                .as_ref()
                .map_or(String::new(), |a| format!("{a}, ")),
            checked.seconds,
            width = total.to_string().len(),
        ));
        statuses.push(match checked.status {
            Freshness::Pass => Status::Pass,
            Freshness::Warn => Status::Warn,
            Freshness::Error => Status::Error,
        });
        results.push(checked.result);
        if let Some(p) = checked.problem {
            failures.push(p);
        }
    }
    let doc = json!({
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/sources/v3.json",
            "dbt_version": format!("pm-{}", env!("CARGO_PKG_VERSION")),
            "generated_at": chrono::Utc::now().to_rfc3339(),
            "invocation_id": m.invocation_id,
            "invocation_started_at": started_at.to_rfc3339(),
            "env": {},
        },
        "results": results,
        "elapsed_time": started.elapsed().as_secs_f64(),
    });
    let path = match output {
        Some(p) => p.to_path_buf(),
        None => s.target_dir().join("sources.json"),
    };
    pm_runner::artifacts::write_json(&path, &doc)?;
    let tally = Tally::of(statuses.into_iter());
    log.info(&format!(
        "Done in {:.2}s. PASS={} WARN={} ERROR={} TOTAL={total}",
        started.elapsed().as_secs_f64(),
        tally.pass,
        tally.warn,
        tally.error,
    ));
    if !failures.is_empty() {
        log.problems(failures);
    }
    super::release_at_exit((s, c));
    Ok(if tally.error > 0 { 1 } else { 0 })
}

/// The freshness criteria of the selected sources that have them.
fn criteria(m: &Manifest, selected: &[usize]) -> Result<Vec<(usize, freshness::Criteria)>> {
    let mut problems = Problems::default();
    let mut checks = Vec::new();
    for &i in selected {
        match freshness::criteria(&m.nodes[i]) {
            Ok(Some(criteria)) => checks.push((i, criteria)),
            Ok(None) => {}
            Err(p) => problems.push(p),
        }
    }
    problems.into_result()?;
    Ok(checks)
}

/// One source's check: its status, its line's text, its entry in sources.json.
struct Checked {
    status: Freshness,
    shown: String,
    age_text: Option<String>,
    seconds: f64,
    result: serde_json::Value,
    problem: Option<Problem>,
}

async fn check(client: &impl RunControl, n: &Node, crit: &freshness::Criteria) -> Checked {
    let t0 = Instant::now();
    let relation = n.relation_name().unwrap_or_default();
    let shown = match &n.source {
        Some(src) => format!("{}.{}", src.source_name, n.name),
        None => n.name.clone(),
    };
    let sql = freshness::query(&relation, crit);
    let row = client.source_freshness(&sql).await;
    let seconds = t0.elapsed().as_secs_f64();
    let criteria = json!({
        "warn_after": crit.raw.get("warn_after").cloned().unwrap_or(json!({})),
        "error_after": crit.raw.get("error_after").cloned().unwrap_or(json!({})),
        "filter": crit.filter,
    });
    match row {
        Ok(SourceFreshness {
            max_loaded_at: max,
            snapshotted_at: now,
            age_seconds: age,
        }) => {
            let (status, age_text) = match age {
                Some(a) => (
                    freshness::judge(crit, a),
                    format!("newest row {} old", freshness::human_age(a)),
                ),
                // No rows at all: as stale as can be.
                None => (Freshness::Error, "no rows".to_string()),
            };
            Checked {
                status,
                shown,
                age_text: Some(age_text),
                seconds,
                result: json!({
                    "unique_id": n.unique_id,
                    "max_loaded_at": max,
                    "snapshotted_at": now,
                    "max_loaded_at_time_ago_in_s": age,
                    "status": status.as_str(),
                    "criteria": criteria,
                    "adapter_response": {},
                    "timing": [],
                    "thread_id": "Thread-1",
                    "execution_time": seconds,
                }),
                problem: None,
            }
        }
        Err(e) => {
            let detail = e.message;
            let problem = Problem::new(
                Code::FreshnessQuery,
                format!("freshness of {shown} could not be checked: {detail}"),
            )
            .help(format!(
                "check that {relation} exists and has the column `{}` (loaded_at_field); the query was: {sql}",
                crit.loaded_at_field
            ));
            Checked {
                status: Freshness::Error,
                shown,
                age_text: None,
                seconds,
                result: json!({
                    "unique_id": n.unique_id,
                    // dbt's SourceFreshnessRuntimeError has these three only.
                    "status": "runtime error",
                    "error": detail,
                }),
                problem: Some(problem),
            }
        }
    }
}
