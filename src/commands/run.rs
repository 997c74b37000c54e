//! `pm seed`, `pm run`, `pm test`, `pm build`: the run pipeline's phases in
//! order, then the summary and `run_results.json`.

use super::Session;
use crate::cli::RunArgs;
use pm_core::compile::Compiled;
use pm_core::error::{Code, Problem, Problems, Result};
use pm_core::manifest::{Manifest, ResourceType};
use pm_core::materialize::test::TestConfig;
use pm_core::output::Log;
use pm_core::settings::Settings;
use pm_core::warehouse::{RunControl, Warehouse};
use pm_runner::execute::{self, Status};
use pm_runner::pipeline::{self, Connections, RunCommand, Tally};
use serde_json::json;
use std::collections::HashMap;
use std::time::Instant;

pub fn run(g: &Settings, args: &RunArgs, log: Log) -> Result<i32> {
    execute(g, args, RunCommand::Run, log)
}

/// `pm seed`: the selected seeds, several at once.
pub fn seed(g: &Settings, args: &RunArgs, log: Log) -> Result<i32> {
    execute(g, args, RunCommand::Seed, log)
}

/// `pm test`: the selected data tests.
pub fn test(g: &Settings, args: &RunArgs, log: Log) -> Result<i32> {
    execute(g, args, RunCommand::Test, log)
}

/// `pm snapshot`: the selected snapshots.
pub fn snapshot(g: &Settings, args: &RunArgs, log: Log) -> Result<i32> {
    execute(g, args, RunCommand::Snapshot, log)
}

/// `pm build`: seeds, models and tests together, in dependency order.
pub fn build(g: &Settings, args: &RunArgs, log: Log) -> Result<i32> {
    execute(g, args, RunCommand::Build, log)
}

/// `pm retry`: the nodes that failed or were skipped in the last run, seed,
/// test or build, run again by the same command with its flags.
pub fn retry(g: &Settings, log: Log) -> Result<i32> {
    let s = Session::open(g, "retry", log)?;
    let path = s.target_dir().join("run_results.json");
    let last = pm_runner::artifacts::read_run_results(&path).map_err(|e| {
        Problem::new(Code::RetryNoResults, format!("cannot read {}: {e}", path.display()))
            .help("pm retry runs again what the last pm run, seed, test or build left failed or skipped; run one first")
    })?;
    drop(s);
    let command = match last.which.as_str() {
        "run" => RunCommand::Run,
        "snapshot" => RunCommand::Snapshot,
        "seed" => RunCommand::Seed,
        "test" => RunCommand::Test,
        "build" => RunCommand::Build,
        other => {
            return Err(Problem::new(
                Code::RetryCommand,
                format!("the last results are of `pm {other}`, which pm retry does not repeat"),
            )
            .help("pm retry repeats run, seed, test and build")
            .into())
        }
    };
    if last.unfinished.is_empty() {
        log.info(&format!(
            "Nothing to retry: every node of the last `pm {}` succeeded",
            last.which
        ));
        return Ok(0);
    }
    log.info(&format!(
        "Retrying {} node(s) of the last `pm {}`",
        last.unfinished.len(),
        last.which
    ));
    let args = RunArgs {
        full_refresh: last.flag("full_refresh"),
        store_failures: last.flag("store_failures"),
        empty: last.flag("empty"),
        fail_fast: last.flag("fail_fast"),
        no_wait: last.flag("no_wait"),
        defer: last.flag("defer"),
        favor_state: last.flag("favor_state"),
        select: crate::cli::SelectArgs {
            state: last.text("state").map(std::path::PathBuf::from),
            unique_ids: last.unfinished,
            ..Default::default()
        },
    };
    execute(g, &args, command, log)
}

fn execute(g: &Settings, args: &RunArgs, command: RunCommand, log: Log) -> Result<i32> {
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let mut s = Session::open(g, command.name(), log)?;
    s.options.full_refresh = args.full_refresh;
    s.options.empty = args.empty;
    s.options.store_failures = args.store_failures;
    let run_results_retention_days = run_results_retention_days(&s)?;
    let c = s.compile()?;
    let selected = s.select_to_run(&c, &args.select, command)?;
    let test_configs = pipeline::check(&c.manifest, &selected, args.store_failures)?;
    if selected.is_empty() {
        log.warn(command.nothing_selected());
        return Ok(0);
    }
    let conn = s.connect(selected.len())?;
    let target = &s.options.target;
    pipeline::lock_target(
        (&target.database, &target.schema),
        &conn,
        !args.no_wait,
        log,
    )?;
    let (c, selected, test_configs) =
        recompile_for_incremental(&mut s, (c, selected, test_configs), &conn, command, args)?;
    let m = &c.manifest;
    let target_dir = s.target_dir();
    pipeline::write_artifacts(&target_dir, m, &selected)?;
    let mut plan = execute::plan::plan(m, &selected, &test_configs, s.settings.env.merge_tests);
    let ids: Vec<String> = selected
        .iter()
        .map(|&i| m.nodes[i].unique_id.clone())
        .collect();
    let last = conn.runtime.block_on(conn.control.last_durations(&ids));
    plan.estimate_remaining(m, &last);
    let citus = pipeline::citus_target(m, &selected, &conn, log)?;
    log.info(&format!(
        "Running {} nodes with {} threads on {}",
        selected.len(),
        conn.threads,
        conn.warehouse.describe()
    ));
    pipeline::prepare_target(m, &selected, &test_configs, &conn, log)?;
    let options = execute::RunOptions {
        command: command.name(),
        root: &s.project.root,
        fail_fast: args.fail_fast,
        full_refresh: args.full_refresh,
        run_results_retention_days,
        empty: args.empty,
        target_dir: &target_dir,
        existing_incremental: &s.options.existing_incremental,
        test_configs: &test_configs,
        run_renderer: Some(c.run_renderer.clone()),
        warehouse: &conn.warehouse,
        citus,
        log,
    };
    let ran = pipeline::run_jobs(m, &selected, &plan, &conn, &options)?;
    let elapsed = started.elapsed().as_secs_f64();
    write_results(
        m,
        &selected,
        &ran.results,
        command,
        args,
        started_at,
        elapsed,
        &target_dir,
    )?;
    let code = summarize(m, &selected, ran, elapsed, log);
    super::release_at_exit((s, c));
    Ok(code)
}

/// How many days of runs `pm_meta.run_results` keeps: the var
/// `pm_run_results_retention_days` (`--vars` over the project's), 90 by default.
fn run_results_retention_days(s: &Session) -> Result<i32> {
    const KEY: &str = "pm_run_results_retention_days";
    let Some(v) = s.var(KEY) else {
        return Ok(90);
    };
    v.as_i64()
        .or_else(|| v.as_str().and_then(|t| t.trim().parse().ok()))
        .filter(|d| (1..=36_600).contains(d))
        .map(|d| d as i32)
        .ok_or_else(|| {
            Problem::new(
                Code::RunRetention,
                format!("var {KEY} is `{v}`, not a number of days from 1 to 36600"),
            )
            .help("give it as a whole number of days, e.g. 90")
            .into()
        })
}

/// A compile, its selection and the selected tests' configs.
type Checked = (Compiled, Vec<usize>, HashMap<usize, TestConfig>);

/// With incremental models whose table exists, the project compiles again
/// with `is_incremental()` true for them; the selection and test configs
/// are taken again from that compile (node indexes are a compile's own).
fn recompile_for_incremental(
    s: &mut Session,
    checked: Checked,
    conn: &Connections<impl Warehouse>,
    command: RunCommand,
    args: &RunArgs,
) -> Result<Checked> {
    let (c, selected, _) = &checked;
    let existing = kept_incremental(
        &c.manifest,
        pipeline::existing_incremental(&c.manifest, selected, conn)?,
        args.full_refresh,
        s.log,
    );
    let deferred = deferred_relations(&c.manifest, selected, conn, args)?;
    if existing.is_empty() && deferred.is_empty() {
        return Ok(checked);
    }
    if !deferred.is_empty() {
        s.log.info(&format!(
            "Deferring {} node(s) not selected to the relations of {}",
            deferred.len(),
            args.select
                .state
                .as_deref()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        ));
    }
    s.options.existing_incremental = existing;
    s.options.deferred = deferred;
    let c = s.compile()?;
    let selected = s.select_to_run(&c, &args.select, command)?;
    let test_configs = pipeline::check(&c.manifest, &selected, args.store_failures)?;
    Ok((c, selected, test_configs))
}

/// The incremental models whose existing table this run adds to: dbt's
/// `full_refresh` config decides over the flag (`false`: never rebuilt, a
/// history that cannot be computed again; `true`: always rebuilt).
fn kept_incremental(
    m: &pm_core::manifest::Manifest,
    existing: std::collections::HashSet<String>,
    full_refresh_flag: bool,
    log: Log,
) -> std::collections::HashSet<String> {
    existing
        .into_iter()
        .filter(|id| {
            let config = m
                .index
                .get(id)
                .and_then(|&i| m.nodes[i].typed_config.full_refresh);
            match config {
                Some(true) => false,
                Some(false) => {
                    if full_refresh_flag {
                        log.info(&format!(
                            "{id} has full_refresh: false: adding to its table, not rebuilding it (see the README to rebuild it on purpose)"
                        ));
                    }
                    true
                }
                None => !full_refresh_flag,
            }
        })
        .collect()
}

/// `--defer`: the nodes not selected whose `ref()` reads the `--state`
/// environment's relation: those this target lacks (all of them with
/// `--favor-state`), by unique id.
fn deferred_relations(
    m: &Manifest,
    selected: &[usize],
    conn: &Connections<impl Warehouse>,
    args: &RunArgs,
) -> Result<HashMap<String, [String; 3]>> {
    let (true, Some(dir)) = (args.defer, args.select.state.as_deref()) else {
        return Ok(HashMap::new());
    };
    let state = pm_core::graph::selector::PriorState::load(dir)?;
    let chosen: std::collections::HashSet<usize> = selected.iter().copied().collect();
    let candidates: Vec<(&pm_core::manifest::Node, &[String; 3])> = m
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, n)| !chosen.contains(i) && n.resource_type.is_refable())
        .filter(|(_, n)| n.materialized != Some(pm_core::manifest::Materialization::Ephemeral))
        .filter_map(|(_, n)| state.relations.get(&n.unique_id).map(|r| (n, r)))
        .filter(|(n, [_, schema, alias])| (&n.schema, &n.alias) != (schema, alias))
        .collect();
    let here: std::collections::HashSet<(String, String)> =
        if args.favor_state || candidates.is_empty() {
            Default::default()
        } else {
            let wanted: Vec<(String, String)> = candidates
                .iter()
                .map(|(n, _)| (n.schema.clone(), n.alias.clone()))
                .collect();
            conn.runtime
                .block_on(conn.control.existing_relations(&wanted))?
        };
    Ok(candidates
        .into_iter()
        .filter(|(n, _)| !here.contains(&(n.schema.clone(), n.alias.clone())))
        .map(|(n, r)| (n.unique_id.clone(), r.clone()))
        .collect())
}

/// The summary: counts, the slowest nodes, then each failure in full.
/// Returns the exit code.
fn summarize(m: &Manifest, selected: &[usize], ran: pipeline::Ran, elapsed: f64, log: Log) -> i32 {
    let results = &ran.results;
    let tally = Tally::of(selected.iter().map(|i| results[i].status));
    let mut slowest: Vec<(f64, &str)> = selected
        .iter()
        .map(|&i| (results[&i].seconds, m.nodes[i].name.as_str()))
        .collect();
    slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
    let slow: Vec<String> = slowest
        .iter()
        .take(3)
        .map(|(t, n)| format!("{n} {t:.2}s"))
        .collect();
    log.info(&format!(
        "Done in {elapsed:.2}s. PASS={} WARN={} ERROR={} SKIP={} TOTAL={}; slowest: {}",
        tally.pass,
        tally.warn,
        tally.error,
        tally.skip,
        selected.len(),
        slow.join(", ")
    ));
    for &i in selected {
        if let Some(report) = &results[&i].report {
            log.report(&test_report(m, i, results[&i].status, report, log.quiet));
        }
    }
    let mut problems = Problems::default();
    for &i in selected {
        if let Some(p) = &results[&i].problem {
            problems.push(p.clone());
        }
    }
    let end_failed = ran.end_problem.is_some();
    if let Some(p) = ran.end_problem {
        problems.push(p);
    }
    if !problems.is_empty() {
        log.problems(problems);
    }
    if let Some(code) = ran.interrupted {
        log.warn("interrupted: running statements were cancelled and rolled back; nothing half-built was left");
        return code;
    }
    if tally.error > 0 || end_failed {
        1
    } else {
        0
    }
}

/// A warning or failing test in full: its count and condition, where its
/// SQL is, its first failing rows, and how to run it again.
fn test_report(
    m: &Manifest,
    i: usize,
    status: Status,
    r: &execute::TestReport,
    short: bool,
) -> String {
    let n = &m.nodes[i];
    if n.resource_type == ResourceType::UnitTest {
        return unit_test_report(m, n, r);
    }
    let word = if status == Status::Fail {
        "Failure"
    } else {
        "Warning"
    };
    let mut out = format!(
        "\n{word} in test {} ({})\n  Got {} result{}, configured to {}\n  compiled SQL: {}/{}\n",
        n.name,
        n.original_file_path,
        r.failures,
        if r.failures == 1 { "" } else { "s" },
        r.condition,
        m.target_path.trim_end_matches('/'),
        m.compiled_path(n),
    );
    if let Some(t) = &r.stored_in {
        out.push_str(&format!("  failing rows stored in {t}\n"));
    }
    if let (false, Some((cols, rows))) = (short, &r.sample) {
        if !rows.is_empty() {
            out.push_str(&format!(
                "  first failing rows{}:\n",
                if rows.len() as i64 >= 5 && r.failures > 5 {
                    " (5 shown)"
                } else {
                    ""
                }
            ));
            for line in pm_core::output::table(cols, rows).lines() {
                out.push_str(&format!("    {line}\n"));
            }
        }
    }
    out.push_str(&format!("  rerun: pm test --select {}", n.name));
    out
}

/// A failing unit test: the rows that differ, marked as dbt (daff) marks them.
fn unit_test_report(m: &Manifest, n: &pm_core::manifest::Node, r: &execute::TestReport) -> String {
    let mut out = format!(
        "\nFailure in unit test {} ({})\n  actual differs from expected ({} row{}):\n",
        n.name,
        n.original_file_path,
        r.failures,
        if r.failures == 1 { "" } else { "s" },
    );
    if let Some((cols, rows)) = &r.sample {
        for line in pm_core::output::table(cols, rows).lines() {
            out.push_str(&format!("    {line}\n"));
        }
    }
    out.push_str("  (+++ a row only in actual, --- a row only in expected, → a changed row: expected→actual)\n");
    out.push_str(&format!(
        "  SQL: {target}/{} (the model on the given rows), {target}/run/ (the comparison)\n  rerun: pm test --select {}",
        m.compiled_path(n),
        n.name,
        target = m.target_path.trim_end_matches('/'),
    ));
    out
}

/// target/run_results.json with dbt's field names.
#[allow(clippy::too_many_arguments)]
fn write_results(
    m: &Manifest,
    selected: &[usize],
    outcomes: &HashMap<usize, execute::RunResult>,
    command: RunCommand,
    args: &RunArgs,
    started_at: chrono::DateTime<chrono::Utc>,
    elapsed: f64,
    target_dir: &std::path::Path,
) -> Result<()> {
    let results: Vec<serde_json::Value> = selected
        .iter()
        .map(|&i| {
            let o = &outcomes[&i];
            let n = &m.nodes[i];
            json!({
                "unique_id": n.unique_id,
                "status": o.status.as_str(),
                "execution_time": o.seconds,
                "message": o.message,
                "thread_id": "Thread-1",
                "timing": [],
                "adapter_response": o.rows.map_or(json!({}), |n| json!({"rows_affected": n})),
                "failures": o.failures,
                "relation_name": n.relation_name(),
                "compiled": n.compiled_code.is_some(),
                "compiled_code": if matches!(n.resource_type, ResourceType::Test | ResourceType::UnitTest) { n.compiled_code.as_deref() } else { None },
            })
        })
        .collect();
    let doc = json!({
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
            "dbt_version": format!("pm-{}", env!("CARGO_PKG_VERSION")),
            "generated_at": chrono::Utc::now().to_rfc3339(),
            "invocation_id": m.invocation_id,
            "invocation_started_at": started_at.to_rfc3339(),
            "env": {},
        },
        "results": results,
        "elapsed_time": elapsed,
        "args": {
            "which": command.name(),
            "select": args.select.select,
            "exclude": args.select.exclude,
            "full_refresh": args.full_refresh,
            "store_failures": args.store_failures,
            "empty": args.empty,
            "fail_fast": args.fail_fast,
            "no_wait": args.no_wait,
            "defer": args.defer,
            "favor_state": args.favor_state,
            "state": args.select.state.as_ref().map(|d| d.display().to_string()),
        },
    });
    pm_runner::artifacts::write_json(&target_dir.join("run_results.json"), &doc)
}
