//! Running data tests, alone or merged into one scan of the relation they test, and judging their counts.

use crate::execute::{
    as_run, compiled_path, write_run_sql, JobResult, RunOptions, RunResult, Status, TestReport,
};
use pm_core::error::Code;
use pm_core::error::Problem;
use pm_core::manifest::{Manifest, Node};
use pm_core::materialize::test::{self as tests, Check, TestConfig, Verdict};
use pm_core::warehouse::{StatementError, Warehouse, WarehouseConnection};
use std::time::Instant;

/// A database error in a test, pointing at its compiled SQL.
pub(super) fn test_problem(m: &Manifest, n: &Node, e: &StatementError) -> Problem {
    if let Some(p) = e.interrupted_or_lost("test", &n.name, "running the test") {
        return p;
    }
    let detail = &e.message;
    Problem::new(
        Code::TestDatabase,
        format!("test `{}` could not run: {detail}", n.name),
    )
    .help(format!(
        "its SQL is in {}; run `pm compile -s {}` after fixing the test or the model it reads",
        compiled_path(m, n),
        n.name
    ))
}

/// Finishes a test's outcome from its count and conditions.
pub(super) async fn judge(
    client: &impl WarehouseConnection,
    n: &Node,
    cfg: &TestConfig,
    failures: i64,
    should_warn: bool,
    should_error: bool,
    stored_in: Option<String>,
) -> (Status, Option<TestReport>) {
    let verdict = cfg.verdict(should_warn, should_error);
    let status = match verdict {
        Verdict::Pass => Status::Pass,
        Verdict::Warn => Status::Warn,
        Verdict::Fail => Status::Fail,
    };
    if verdict == Verdict::Pass {
        return (status, None);
    }
    let condition = if verdict == Verdict::Fail {
        format!("fail if {}", cfg.error_if.sql)
    } else {
        format!("warn if {}", cfg.warn_if.sql)
    };
    let sample = if failures > 0 {
        client.sample(&tests::sample_sql(n, 5)).await
    } else {
        None
    };
    (
        status,
        Some(TestReport {
            failures,
            condition,
            sample,
            stored_in,
        }),
    )
}

/// Runs one test with dbt's query; keeps its failing rows when asked.
pub(super) async fn run_test<W: Warehouse>(
    client: &mut W::Connection,
    m: &Manifest,
    i: usize,
    cfg: &TestConfig,
    options: &RunOptions<'_, W>,
) -> Result<(Status, i64, Option<TestReport>), Problem> {
    let n = &*as_run(m, &m.nodes[i], options).await?;
    let sql = tests::test_sql(n, cfg);
    write_run_sql(m, n, options.target_dir, &sql);
    let mut stored_in = None;
    if let Some(store) = &cfg.store {
        client
            .store_failures(&tests::store_sql(n, cfg, store))
            .await
            .map_err(|e| test_problem(m, n, &e))?;
        stored_in = Some(format!(
            "{}.{}",
            pm_core::text::quote_ident(&store.schema),
            pm_core::text::quote_ident(&store.name)
        ));
    }
    let row = client
        .count(&sql)
        .await
        .map_err(|e| test_problem(m, n, &e))?;
    let failures = row.count(0).map_err(|e| {
        Problem::new(
            Code::TestFailCalc,
            format!(
                "test `{}`: its fail_calc does not give a whole number: {e}",
                n.name
            ),
        )
        .help("fail_calc is an aggregate giving a count, like count(*) or sum(n_records)")
    })?;
    let (status, report) = judge(
        client,
        n,
        cfg,
        failures,
        row.flag(1),
        row.flag(2),
        stored_in,
    )
    .await;
    Ok((status, failures, report))
}

/// Runs a merged scan; each test gets its own outcome.
pub(super) async fn run_merged<W: Warehouse>(
    client: &mut W::Connection,
    m: &Manifest,
    from: &str,
    members: &[(usize, String, Check)],
    options: &RunOptions<'_, W>,
) -> JobResult {
    let t0 = Instant::now();
    let at = chrono::Utc::now();
    let parts: Vec<(&str, &Check)> = members.iter().map(|(_, c, k)| (c.as_str(), k)).collect();
    let sql = tests::merged_sql(from, &parts);
    for (i, _, _) in members {
        write_run_sql(m, &m.nodes[*i], options.target_dir, &sql);
    }
    let row = client.count(&sql).await;
    let seconds = t0.elapsed().as_secs_f64();
    let mut out = Vec::with_capacity(members.len());
    match row {
        // The server refused the scan (one test names a column that is not
        // there, say): each test runs alone and reports its own result.
        Err(e) if e.is_refusal() => {
            for (i, _, _) in members {
                let Some(cfg) = options.test_configs.get(i) else {
                    continue;
                };
                let t0 = Instant::now();
                let r = run_test(client, m, *i, cfg, options).await;
                let seconds = t0.elapsed().as_secs_f64();
                out.push((
                    *i,
                    r.map(|(status, failures, report)| {
                        RunResult::test(status, failures, report, seconds, at)
                    }),
                ));
            }
        }
        Err(e) => {
            for (i, _, _) in members {
                out.push((*i, Err(test_problem(m, &m.nodes[*i], &e))));
            }
        }
        Ok(row) => {
            for (k, (i, _, _)) in members.iter().enumerate() {
                let n = &m.nodes[*i];
                let failures: i64 = row.count(k).unwrap_or(0);
                let Some(cfg) = options.test_configs.get(i) else {
                    continue;
                };
                let warn = cfg.warn_if.holds(failures).unwrap_or(failures != 0);
                let error = cfg.error_if.holds(failures).unwrap_or(failures != 0);
                let (status, report) = judge(client, n, cfg, failures, warn, error, None).await;
                out.push((
                    *i,
                    Ok(RunResult::test(status, failures, report, seconds, at)),
                ));
            }
        }
    }
    out
}

pub(super) fn test_message(status: Status, failures: i64) -> String {
    match status {
        Status::Pass => "PASS".into(),
        _ => format!(
            "Got {failures} result{}",
            if failures == 1 { "" } else { "s" }
        ),
    }
}
