//! `pm run`: build the selected view and table models in dependency order,
//! several at once.

use super::Session;
use crate::adapter::build::{build_incremental, build_relation, Built};
use crate::adapter::Endpoint;
use crate::cli::{GlobalArgs, RunArgs};
use crate::error::{Problem, Problems, Result};
use crate::manifest::{Manifest, ResourceType};
use crate::materialize::incremental;
use crate::materialize::relation::{self, Kind};
use crate::output::Log;
use futures_util::stream::{FuturesUnordered, StreamExt};
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Success,
    Error,
    Skipped,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Error => "error",
            Status::Skipped => "skipped",
        }
    }
}

struct Outcome {
    status: Status,
    message: String,
    seconds: f64,
    started_at: chrono::DateTime<chrono::Utc>,
}

pub fn run(g: &GlobalArgs, args: &RunArgs, log: Log) -> Result<i32> {
    execute(g, args, "run", log)
}

/// `pm seed`: the selected seeds, several at once.
pub fn seed(g: &GlobalArgs, args: &RunArgs, log: Log) -> Result<i32> {
    execute(g, args, "seed", log)
}

/// `pm build`: seeds and models together, in dependency order.
pub fn build(g: &GlobalArgs, args: &RunArgs, log: Log) -> Result<i32> {
    execute(g, args, "build", log)
}

fn execute(g: &GlobalArgs, args: &RunArgs, which: &'static str, log: Log) -> Result<i32> {
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let mut s = Session::open(g, which, log)?;
    s.options.full_refresh = args.full_refresh;
    let mut c = s.compile()?;
    // Models that become relations; ephemeral ones live in their consumers.
    let pick = |c: &crate::compile::Compiled, s: &Session| -> Result<Vec<usize>> {
        let m = &c.manifest;
        Ok(s.select(c, &args.select)?
            .into_iter()
            .filter(|&i| {
                let n = &m.nodes[i];
                match n.resource_type {
                    ResourceType::Model => which != "seed" && n.materialized() != "ephemeral",
                    ResourceType::Seed => which != "run",
                    _ => false,
                }
            })
            .collect())
    };
    let mut selected = pick(&c, &s)?;
    let mut unsupported = Problems::default();
    for &i in &selected {
        let n = &c.manifest.nodes[i];
        if Kind::of(n).is_none() && n.resource_type == ResourceType::Model {
            unsupported.push(
                Problem::new(
                    "run::materialization",
                    format!("model `{}` is materialized as `{}`, which pm cannot build yet", n.name, n.materialized()),
                )
                .help("pm run builds views, tables and incremental models so far; leave this model out with --exclude"),
            );
        }
        if n.materialized() == "incremental" {
            if let Err(p) = incremental::plan(n) {
                unsupported.push(p);
            }
        }
    }
    unsupported.into_result()?;
    if selected.is_empty() {
        log.warn(if which == "seed" {
            "no seeds selected"
        } else {
            "nothing selected to build"
        });
        return Ok(0);
    }
    let target_dir = s.target_dir();
    let endpoint = Endpoint::resolve(&s.project.root, &s.options.target)?;
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
        .filter(|n| n.materialized() == "incremental")
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
    let existing = s.options.existing_incremental.clone();
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
    let settings = RunSettings {
        root: &s.project.root,
        fail_fast: args.fail_fast,
        full_refresh: args.full_refresh,
        target_dir: &target_dir,
        existing_incremental: &existing,
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
        .map(|&i| m.nodes[i].schema.as_str())
        .collect();
    schemas.sort_unstable();
    schemas.dedup();
    for schema in schemas {
        let ddl = format!(
            "create schema if not exists {}",
            crate::manifest::quote_ident(schema)
        );
        rt.block_on(control.batch_execute(&ddl)).map_err(|e| {
            Problem::new("run::schema", format!("cannot create schema {schema}: {e}"))
                .help("check that the target's user may create schemas in the database")
        })?;
    }
    on_run(&m.on_run_start, "on-run-start")?;
    let (outcomes, cancelled) = rt.block_on(schedule(m, &selected, clients, &settings));
    let end_problem = if cancelled {
        None
    } else {
        on_run(&m.on_run_end, "on-run-end").err()
    };

    // Results: run_results.json with dbt's field names.
    let mut counts: HashMap<&str, usize> = HashMap::new();
    let mut problems = Problems::default();
    let mut results = Vec::new();
    let mut slowest: Vec<(f64, &str)> = Vec::new();
    for &i in &selected {
        let (o, p) = &outcomes[&i];
        *counts.entry(o.status.as_str()).or_default() += 1;
        if let Some(p) = p {
            problems.push(p.clone());
        }
        slowest.push((o.seconds, &m.nodes[i].name));
        results.push(json!({
            "unique_id": m.nodes[i].unique_id,
            "status": o.status.as_str(),
            "execution_time": o.seconds,
            "message": o.message,
            "thread_id": "Thread-1",
            "timing": [],
            "adapter_response": {},
            "failures": null,
            "relation_name": m.nodes[i].relation_name(),
        }));
    }
    let doc = json!({
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
            "dbt_version": format!("pm-{}", env!("CARGO_PKG_VERSION")),
            "generated_at": chrono::Utc::now().to_rfc3339(),
            "invocation_id": m.invocation_id,
            "started_at": started_at.to_rfc3339(),
        },
        "results": results,
        "elapsed_time": started.elapsed().as_secs_f64(),
        "args": {"which": which, "select": args.select.select, "exclude": args.select.exclude},
    });
    let rows: Vec<crate::adapter::meta::ResultRow> = selected
        .iter()
        .map(|&i| {
            let (o, p) = &outcomes[&i];
            crate::adapter::meta::ResultRow {
                node: &m.nodes[i].unique_id,
                status: o.status.as_str(),
                started_at: o.started_at,
                seconds: o.seconds,
                rows: None,
                error: p.as_ref().map(|p| p.message.as_str()),
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
            "could not record the results in pm_meta.run_results: {e}"
        ));
    }
    let path = target_dir.join("run_results.json");
    let _ = std::fs::create_dir_all(&target_dir);
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&doc).unwrap_or_default(),
    )
    .map_err(|e| {
        Problem::new(
            "artifacts::write",
            format!("cannot write {}: {e}", path.display()),
        )
    })?;

    slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
    let slow: Vec<String> = slowest
        .iter()
        .take(3)
        .map(|(t, n)| format!("{n} {t:.2}s"))
        .collect();
    let (pass, error, skip) = (
        counts.get("success").copied().unwrap_or(0),
        counts.get("error").copied().unwrap_or(0),
        counts.get("skipped").copied().unwrap_or(0),
    );
    log.info(&format!(
        "Done in {:.2}s. PASS={pass} ERROR={error} SKIP={skip} TOTAL={}; slowest: {}",
        started.elapsed().as_secs_f64(),
        selected.len(),
        slow.join(", ")
    ));
    let end_failed = end_problem.is_some();
    if let Some(p) = end_problem {
        problems.push(p);
    }
    if !problems.is_empty() {
        log.problems(problems);
    }
    super::release_at_exit((s, c));
    if cancelled {
        log.warn("interrupted: running statements were cancelled and rolled back; nothing half-built was left");
        return Ok(130);
    }
    Ok(if error > 0 || end_failed { 1 } else { 0 })
}

/// Starts a node as soon as all its selected parents succeeded, at most one
/// per connection at a time; a failure marks every selected descendant skipped.
/// Ctrl-C (SIGINT) and SIGTERM, registered once for the whole run.
struct Interrupts {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
}

impl Interrupts {
    fn new() -> Interrupts {
        use tokio::signal::unix::{signal, SignalKind};
        Interrupts {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
        }
    }

    /// Resolves when either arrives (never, without signal handling).
    async fn recv(&mut self) {
        match (&mut self.int, &mut self.term) {
            (Some(int), Some(term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
}

/// How a node is named in progress lines: `view model`, `table model`, `seed`.
fn label(n: &crate::manifest::Node) -> String {
    match n.resource_type {
        ResourceType::Model => format!("{} model", n.materialized().replace('_', " ")),
        other => other.as_str().to_string(),
    }
}

/// How a run goes: fixed for all its nodes.
struct RunSettings<'a> {
    /// The project folder (seeds are read from it).
    root: &'a std::path::Path,
    fail_fast: bool,
    full_refresh: bool,
    target_dir: &'a std::path::Path,
    /// Incremental models whose table exists (rows are added, not rebuilt).
    existing_incremental: &'a std::collections::HashSet<String>,
    endpoint: &'a Endpoint,
    log: Log,
}

async fn schedule(
    m: &Manifest,
    selected: &[usize],
    mut clients: Vec<deadpool_postgres::Object>,
    settings: &RunSettings<'_>,
) -> (HashMap<usize, (Outcome, Option<Problem>)>, bool) {
    let RunSettings {
        root,
        fail_fast,
        full_refresh,
        target_dir,
        existing_incremental,
        endpoint,
        log,
    } = *settings;
    let in_run: HashMap<usize, usize> = selected.iter().enumerate().map(|(k, &i)| (i, k)).collect();
    let total = selected.len();
    let width = total.to_string().len();
    // What each node waits for: its parents in this run, also those reached
    // through ephemeral models (their SQL is inlined into the node's).
    let mut run_children: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut waiting: HashMap<usize, usize> = HashMap::new();
    for &i in selected {
        let mut found: Vec<usize> = Vec::new();
        let mut stack: Vec<usize> = m.dag.parents[i].clone();
        while let Some(p) = stack.pop() {
            if in_run.contains_key(&p) {
                if !found.contains(&p) {
                    found.push(p);
                }
            } else if m.nodes[p].materialized() == "ephemeral" {
                stack.extend(m.dag.parents[p].iter().copied());
            }
        }
        for &p in &found {
            run_children.entry(p).or_default().push(i);
        }
        waiting.insert(i, found.len());
    }
    let mut ready: VecDeque<usize> = selected
        .iter()
        .copied()
        .filter(|i| waiting[i] == 0)
        .collect();
    let mut done: HashMap<usize, (Outcome, Option<Problem>)> = HashMap::new();
    let swap_mutex = tokio::sync::Mutex::new(());
    let swap_lock = &swap_mutex;
    let mut running = FuturesUnordered::new();
    let mut started = 0usize;
    let mut stop = false;
    let mut cancelled = false;
    let mut interrupts = Interrupts::new();

    let cancel_tokens: Vec<tokio_postgres::CancelToken> =
        clients.iter().map(|c| c.cancel_token()).collect();
    // On a terminal a bar shows what runs; start lines are left out there.
    let progress = crate::output::Progress::new(&log, total, "building");
    let mut now_running: std::collections::BTreeSet<&str> = Default::default();
    loop {
        while !stop && !clients.is_empty() {
            let Some(i) = ready.pop_front() else { break };
            let Some(mut client) = clients.pop() else {
                break;
            };
            started += 1;
            let n = &m.nodes[i];
            if progress.is_live() {
                now_running.insert(&n.name);
                progress.running(now_running.iter().copied());
            } else {
                log.info(&format!(
                    "{started:>width$} of {total} START  {} {}.{}",
                    label(n),
                    n.schema,
                    n.alias
                ));
            }
            let kind = Kind::of(n).unwrap_or(Kind::View);
            let add_rows =
                n.materialized() == "incremental" && existing_incremental.contains(&n.unique_id);
            running.push(async move {
                let t0 = Instant::now();
                let at = chrono::Utc::now();
                let compiled_path = format!("target/{}", crate::artifacts::compiled_path(m, n));
                // The SQL that runs, for reading afterwards.
                let run_path = target_dir.join(crate::artifacts::compiled_path(m, n).replacen(
                    "compiled/",
                    "run/",
                    1,
                ));
                if let Some(dir) = run_path.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                let result = if n.resource_type == ResourceType::Seed {
                    let _ = std::fs::remove_file(&run_path);
                    match crate::materialize::seed::inspect(root, n) {
                        Ok(table) => crate::adapter::load::load_seed(
                            &mut client,
                            root,
                            n,
                            &table,
                            full_refresh,
                        )
                        .await
                        .map(|(rows, replaced)| Built {
                            kind: "seed",
                            repointed: Vec::new(),
                            note: Some(format!("{rows} rows, {}", replaced.describe())),
                        }),
                        Err(p) => Err(p),
                    }
                } else if add_rows {
                    let _ = std::fs::write(
                        &run_path,
                        format!("{};\n", incremental::create_temp_sql(n)),
                    );
                    match incremental::plan(n) {
                        Ok(plan) => build_incremental(&mut client, n, &plan, &compiled_path)
                            .await
                            .map(|(rows, changes)| Built {
                                kind: "incremental",
                                repointed: Vec::new(),
                                note: Some(if changes.is_empty() {
                                    format!("{rows} rows written")
                                } else {
                                    format!("{rows} rows written; {}", changes.join(", "))
                                }),
                            }),
                        Err(p) => Err(p),
                    }
                } else {
                    let build = relation::build(n, kind);
                    let _ = std::fs::write(&run_path, format!("{};\n", build.prepare));
                    build_relation(
                        &mut client,
                        n,
                        &build,
                        &compiled_path,
                        full_refresh,
                        swap_lock,
                    )
                    .await
                };
                (i, client, result, t0.elapsed().as_secs_f64(), at)
            });
        }
        let next = tokio::select! {
            next = running.next() => next,
            _ = interrupts.recv(), if !cancelled => {
                // Ctrl-C: cancel what runs on the server (its transaction rolls
                // back, so no half-built relation remains) and start nothing new.
                cancelled = true;
                stop = true;
                log.warn("interrupted: cancelling running statements");
                for token in &cancel_tokens {
                    endpoint.cancel(token).await;
                }
                continue;
            }
        };
        let Some((i, client, result, seconds, at)) = next else {
            break;
        };
        clients.push(client);
        let n = &m.nodes[i];
        now_running.remove(n.name.as_str());
        progress.running(now_running.iter().copied());
        match result {
            Ok(built) => {
                let mut extra = if built.repointed.is_empty() {
                    String::new()
                } else {
                    format!(", views re-created: {}", built.repointed.join(", "))
                };
                if let Some(note) = &built.note {
                    extra.push_str(&format!(", {note}"));
                }
                log.info(&format!(
                    "{:>width$} of {total} OK     {} {}.{} [{seconds:.2}s{extra}]",
                    done.len() + 1,
                    label(n),
                    n.schema,
                    n.alias
                ));
                done.insert(
                    i,
                    (
                        Outcome {
                            started_at: at,
                            status: Status::Success,
                            message: format!("CREATE {}", built.kind.to_uppercase()),
                            seconds,
                        },
                        None,
                    ),
                );
                for &c in run_children.get(&i).map(Vec::as_slice).unwrap_or(&[]) {
                    if let Some(w) = waiting.get_mut(&c) {
                        *w -= 1;
                        if *w == 0 && !done.contains_key(&c) {
                            ready.push_back(c);
                        }
                    }
                }
            }
            Err(p) => {
                log.info(&format!(
                    "{:>width$} of {total} ERROR  {} {}.{} [{seconds:.2}s]",
                    done.len() + 1,
                    label(n),
                    n.schema,
                    n.alias
                ));
                let message = p.message.clone();
                done.insert(
                    i,
                    (
                        Outcome {
                            started_at: at,
                            status: Status::Error,
                            message,
                            seconds,
                        },
                        Some(p),
                    ),
                );
                // Everything downstream in this run is skipped.
                let below = m.dag.reach(&[i], false, None);
                for (c, &hit) in below.iter().enumerate() {
                    if hit && in_run.contains_key(&c) && !done.contains_key(&c) {
                        log.info(&format!(
                            "{:>width$} of {total} SKIP   {} {}.{} (depends on {}, which failed)",
                            done.len() + 1,
                            label(&m.nodes[c]),
                            m.nodes[c].schema,
                            m.nodes[c].alias,
                            n.name
                        ));
                        done.insert(
                            c,
                            (
                                Outcome {
                                    started_at: chrono::Utc::now(),
                                    status: Status::Skipped,
                                    message: format!("skipped: {} failed", n.name),
                                    seconds: 0.0,
                                },
                                None,
                            ),
                        );
                        ready.retain(|&r| r != c);
                    }
                }
                if fail_fast {
                    stop = true;
                }
            }
        }
        if let Some(bar_total) = progress.is_live().then_some(done.len()) {
            progress.set_position(bar_total);
        }
    }
    // With --fail-fast or after Ctrl-C, what never started is skipped.
    let why = if cancelled {
        "skipped: interrupted"
    } else {
        "skipped: --fail-fast"
    };
    for &i in selected {
        done.entry(i).or_insert_with(|| {
            (
                Outcome {
                    started_at: chrono::Utc::now(),
                    status: Status::Skipped,
                    message: why.into(),
                    seconds: 0.0,
                },
                None,
            )
        });
    }
    (done, cancelled)
}
