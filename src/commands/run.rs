//! `pm seed`, `pm run`, `pm test`, `pm build`: select, compile, connect and
//! hand the work to `execute`; then report and record the outcomes.

use super::Session;
use crate::cli::RunArgs;
use crate::error::{Problem, Problems, Result};
use crate::execute::{self, Status};
use crate::manifest::{Manifest, Materialization, ResourceType};
use crate::materialize::test::TestConfig;
use crate::output::Log;
use crate::settings::Settings;
use serde_json::json;
use std::collections::HashMap;
use std::time::Instant;

pub fn run(g: &Settings, args: &RunArgs, log: Log) -> Result<i32> {
    execute(g, args, "run", log)
}

/// `pm seed`: the selected seeds, several at once.
pub fn seed(g: &Settings, args: &RunArgs, log: Log) -> Result<i32> {
    execute(g, args, "seed", log)
}

/// `pm test`: the selected data tests.
pub fn test(g: &Settings, args: &RunArgs, log: Log) -> Result<i32> {
    execute(g, args, "test", log)
}

/// `pm build`: seeds, models and tests together, in dependency order.
pub fn build(g: &Settings, args: &RunArgs, log: Log) -> Result<i32> {
    execute(g, args, "build", log)
}

fn execute(g: &Settings, args: &RunArgs, which: &'static str, log: Log) -> Result<i32> {
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let mut s = Session::open(g, which, log)?;
    s.options.full_refresh = args.full_refresh;
    s.options.store_failures = args.store_failures;
    let mut c = s.compile()?;
    // Models that become relations; ephemeral ones live in their consumers.
    let pick = |c: &crate::compile::Compiled, s: &Session| -> Result<Vec<usize>> {
        let m = &c.manifest;
        Ok(s.select(c, &args.select)?
            .into_iter()
            .filter(|&i| {
                let n = &m.nodes[i];
                match n.resource_type {
                    ResourceType::Model => matches!(which, "run" | "build") && !n.is_ephemeral(),
                    ResourceType::Seed => matches!(which, "seed" | "build"),
                    ResourceType::Test => matches!(which, "test" | "build"),
                    _ => false,
                }
            })
            .collect())
    };
    let mut selected = pick(&c, &s)?;
    let mut unsupported = Problems::default();
    for &i in &selected {
        let n = &c.manifest.nodes[i];
        if n.resource_type != ResourceType::Test {
            if let Err(p) = crate::execute::build_job(n, true) {
                unsupported.push(p);
            }
        }
        if let Err(p) = crate::materialize::relation::grants(n) {
            unsupported.push(p);
        }
    }
    // Nodes are sorted by unique id, so a re-render below keeps these indexes.
    let mut test_configs: HashMap<usize, TestConfig> = HashMap::new();
    for &i in &selected {
        let n = &c.manifest.nodes[i];
        if n.resource_type == ResourceType::Test {
            match TestConfig::of(&c.manifest, n, args.store_failures) {
                Ok(cfg) => {
                    test_configs.insert(i, cfg);
                }
                Err(p) => unsupported.push(p),
            }
        }
    }
    unsupported.into_result()?;
    if selected.is_empty() {
        log.warn(match which {
            "seed" => "no seeds selected",
            "test" => "no tests selected",
            _ => "nothing selected to build",
        });
        return Ok(0);
    }
    let target_dir = s.target_dir();
    let endpoint = s.endpoint()?;
    let rt = super::db::runtime()?;
    let threads = s.options.target.threads.max(1).min(selected.len());
    // One connection holds the target's lock for the whole run and records
    // results; the pool's `threads` connections build.
    let control = rt.block_on(endpoint.connect())?;
    let clients = rt.block_on(endpoint.pool(threads))?;
    // Incremental models whose table exists render again with is_incremental() true.
    let incremental_tables: Vec<(String, String, String)> = selected
        .iter()
        .map(|&i| &c.manifest.nodes[i])
        .filter(|n| n.materialized == Some(Materialization::Incremental))
        .map(|n| (n.unique_id.clone(), n.schema.clone(), n.alias.clone()))
        .collect();
    if !incremental_tables.is_empty() && !args.full_refresh {
        let client = &control;
        let found = rt.block_on(async {
            let mut found = std::collections::HashSet::new();
            for (id, schema, name) in &incremental_tables {
                let row = client
                    .query_one(
                        "select exists (select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
                         where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p'))",
                        &[schema, name],
                    )
                    .await;
                if matches!(row.map(|r| r.get::<_, bool>(0)), Ok(true)) {
                    found.insert(id.clone());
                }
            }
            found
        });
        if !found.is_empty() {
            s.options.existing_incremental = found;
            c = s.compile()?;
            selected = pick(&c, &s)?;
        }
    }
    let m = &c.manifest;
    // As `pm compile` would: the SQL of what runs, and the manifest.
    let (compiled, manifest) = rayon::join(
        || crate::artifacts::write_compiled(&target_dir, m, &selected),
        || crate::artifacts::write_manifest(&target_dir, m, true),
    );
    compiled?;
    manifest?;
    let existing = s.options.existing_incremental.clone();
    let merge = s.settings.env.merge_tests;
    let plan = execute::plan(m, &selected, &test_configs, merge);
    log.info(&format!(
        "Running {} nodes with {threads} threads on {}",
        selected.len(),
        endpoint.describe()
    ));

    let target = &s.options.target;
    rt.block_on(crate::adapter::meta::lock_target(
        &control,
        &target.database,
        &target.schema,
        !args.no_wait,
        || log.info("waiting for another pm run on this target to finish"),
    ))?;
    let settings = execute::Settings {
        root: &s.project.root,
        fail_fast: args.fail_fast,
        full_refresh: args.full_refresh,
        target_dir: &target_dir,
        existing_incremental: &existing,
        test_configs: &test_configs,
        endpoint: &endpoint,
        log,
    };
    let on_run = |hooks: &[String], which: &str| -> std::result::Result<(), Problem> {
        for sql in hooks {
            rt.block_on(control.batch_execute(sql)).map_err(|e| {
                Problem::new(
                    "run::on_run_hook",
                    format!(
                        "{which} failed: {}",
                        e.as_db_error()
                            .map(|d| d.message().to_string())
                            .unwrap_or_else(|| e.to_string())
                    ),
                )
                .help(format!("the hook was: {sql}"))
            })?;
        }
        Ok(())
    };
    // Schemas first, one at a time: concurrent `create schema if not exists`
    // of the same new schema can fail in PostgreSQL.
    let mut schemas: Vec<&str> = selected
        .iter()
        .filter(|&&i| m.nodes[i].resource_type != ResourceType::Test)
        .map(|&i| m.nodes[i].schema.as_str())
        .collect();
    // Where tests keep their failing rows, too.
    schemas.extend(
        test_configs
            .values()
            .filter_map(|cfg| cfg.store.as_ref().map(|st| st.schema.as_str())),
    );
    schemas.sort_unstable();
    schemas.dedup();
    // Only the missing ones: `create schema if not exists` needs the right
    // to create schemas even when the schema is there.
    let present: Vec<String> = rt
        .block_on(control.query(
            "select nspname::text from pg_namespace where nspname = any($1)",
            &[&schemas],
        ))
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        .unwrap_or_default();
    for schema in schemas.iter().filter(|s| !present.iter().any(|p| p == *s)) {
        let ddl = format!(
            "create schema if not exists {}",
            crate::manifest::quote_ident(schema)
        );
        rt.block_on(control.batch_execute(&ddl)).map_err(|e| {
            Problem::new(
                "run::schema",
                format!(
                    "cannot create schema {schema}: {}",
                    crate::adapter::error_text(&e)
                ),
            )
            .help("check that the target's user may create schemas in the database")
        })?;
    }
    // Relations an interrupted run left under temporary names, in the
    // schemas this run writes to (also those of models since removed).
    let owned: std::collections::HashSet<(String, String)> = m
        .nodes
        .iter()
        .filter(|n| {
            matches!(
                n.resource_type,
                ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot
            )
        })
        .map(|n| (n.schema.clone(), n.alias.clone()))
        .collect();
    let swept: Vec<String> = schemas.iter().map(|s| s.to_string()).collect();
    for line in rt.block_on(crate::adapter::meta::remove_leftovers(
        &control, &swept, &owned,
    ))? {
        log.warn(&line);
    }
    on_run(&m.on_run_start, "on-run-start")?;
    let (outcomes, interrupted) = rt.block_on(execute::schedule(m, &plan, clients, &settings));
    let end_problem = if interrupted.is_some() {
        None
    } else {
        on_run(&m.on_run_end, "on-run-end").err()
    };
    let elapsed = started.elapsed().as_secs_f64();

    write_results(
        m,
        &selected,
        &outcomes,
        which,
        args,
        started_at,
        elapsed,
        &target_dir,
    )?;
    let rows: Vec<crate::adapter::meta::ResultRow> = selected
        .iter()
        .map(|&i| {
            let o = &outcomes[&i];
            crate::adapter::meta::ResultRow {
                node: &m.nodes[i].unique_id,
                status: o.status.as_str(),
                started_at: o.started_at,
                seconds: o.seconds,
                rows: o.rows,
                failures: o.failures,
                error: o.problem.as_ref().map(|p| p.message.as_str()),
            }
        })
        .collect();
    if let Err(e) = rt.block_on(crate::adapter::meta::record_results(
        &control,
        &m.invocation_id,
        which,
        &rows,
    )) {
        log.warn(&format!(
            "could not record the results in pm_meta.run_results: {}",
            crate::adapter::error_text(&e)
        ));
    }

    // The summary: counts, the slowest nodes, then each failure in full.
    let count =
        |f: &dyn Fn(Status) -> bool| selected.iter().filter(|&i| f(outcomes[i].status)).count();
    let pass = count(&|s| matches!(s, Status::Success | Status::Pass));
    let warn = count(&|s| s == Status::Warn);
    let error = count(&|s| s.is_failure());
    let skip = count(&|s| s == Status::Skipped);
    let mut slowest: Vec<(f64, &str)> = selected
        .iter()
        .map(|&i| (outcomes[&i].seconds, m.nodes[i].name.as_str()))
        .collect();
    slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
    let slow: Vec<String> = slowest
        .iter()
        .take(3)
        .map(|(t, n)| format!("{n} {t:.2}s"))
        .collect();
    log.info(&format!(
        "Done in {elapsed:.2}s. PASS={pass} WARN={warn} ERROR={error} SKIP={skip} TOTAL={}; slowest: {}",
        selected.len(),
        slow.join(", ")
    ));
    for &i in &selected {
        if let Some(report) = &outcomes[&i].report {
            log.report(&test_report(m, i, outcomes[&i].status, report, log.quiet));
        }
    }
    let mut problems = Problems::default();
    for &i in &selected {
        if let Some(p) = &outcomes[&i].problem {
            problems.push(p.clone());
        }
    }
    let end_failed = end_problem.is_some();
    if let Some(p) = end_problem {
        problems.push(p);
    }
    if !problems.is_empty() {
        log.problems(problems);
    }
    super::release_at_exit((s, c));
    if let Some(code) = interrupted {
        log.warn("interrupted: running statements were cancelled and rolled back; nothing half-built was left");
        return Ok(code);
    }
    Ok(if error > 0 || end_failed { 1 } else { 0 })
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
    let word = if status == Status::Fail {
        "Failure"
    } else {
        "Warning"
    };
    let mut out = format!(
        "\n{word} in test {} ({})\n  Got {} result{}, configured to {}\n  compiled SQL: target/{}\n",
        n.name,
        n.original_file_path,
        r.failures,
        if r.failures == 1 { "" } else { "s" },
        r.condition,
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
            for line in crate::output::table(cols, rows).lines() {
                out.push_str(&format!("    {line}\n"));
            }
        }
    }
    out.push_str(&format!("  rerun: pm test --select {}", n.name));
    out
}

/// target/run_results.json with dbt's field names.
#[allow(clippy::too_many_arguments)]
fn write_results(
    m: &Manifest,
    selected: &[usize],
    outcomes: &HashMap<usize, execute::Outcome>,
    which: &str,
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
                "compiled_code": if n.resource_type == ResourceType::Test { n.compiled_code.as_deref() } else { None },
            })
        })
        .collect();
    let doc = json!({
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
            "dbt_version": format!("pm-{}", env!("CARGO_PKG_VERSION")),
            "generated_at": chrono::Utc::now().to_rfc3339(),
            "invocation_id": m.invocation_id,
            "started_at": started_at.to_rfc3339(),
        },
        "results": results,
        "elapsed_time": elapsed,
        "args": {"which": which, "select": args.select.select, "exclude": args.select.exclude},
    });
    crate::artifacts::write_json(&target_dir.join("run_results.json"), &doc)
}
