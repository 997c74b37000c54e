//! Running a selection against the warehouse: seeds, models and data tests
//! as jobs in one dependency graph. A job starts as soon as the jobs it waits
//! for succeeded, at most one per connection; a failure skips everything
//! downstream, independent branches carry on.
//!
//! `plan` is pure (which jobs, what each waits for); `schedule` runs them.

pub mod build;
mod data_tests;
pub mod plan;
mod unit_tests;

use build::run_build;
use data_tests::{run_merged, run_test, test_message};
use plan::{Plan, Work};
use pm_core::error::Code;

use futures_util::stream::{FuturesUnordered, StreamExt};
use pm_core::error::Problem;
use pm_core::manifest::{Manifest, Node, ResourceType};
use pm_core::materialize::test::TestConfig;
use pm_core::output::Log;
use pm_core::warehouse::{CancelStatement, Warehouse, WarehouseConnection};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

/// How a node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Error,
    Skipped,
    Pass,
    Warn,
    Fail,
}

impl Status {
    /// run_results.json's status (dbt's words).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Error => "error",
            Status::Skipped => "skipped",
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }

    /// Whether the run failed because of it.
    pub fn is_failure(self) -> bool {
        matches!(self, Status::Error | Status::Fail)
    }
}

/// A failing or warning test's report.
#[derive(Debug, Clone)]
pub struct TestReport {
    pub failures: i64,
    pub condition: String,
    /// The first failing rows: column names, then rows of text.
    pub sample: Option<(Vec<String>, Vec<Vec<String>>)>,
    pub stored_in: Option<String>,
}

pub struct RunResult {
    pub status: Status,
    pub message: String,
    pub seconds: f64,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub failures: Option<i64>,
    pub rows: Option<i64>,
    pub problem: Option<Problem>,
    pub report: Option<TestReport>,
}

impl RunResult {
    /// A node that ran: built, or a test with its count and report.
    fn ran(
        status: Status,
        message: String,
        seconds: f64,
        started_at: chrono::DateTime<chrono::Utc>,
    ) -> RunResult {
        RunResult {
            status,
            message,
            seconds,
            started_at,
            failures: None,
            rows: None,
            problem: None,
            report: None,
        }
    }

    fn test(
        status: Status,
        failures: i64,
        report: Option<TestReport>,
        seconds: f64,
        started_at: chrono::DateTime<chrono::Utc>,
    ) -> RunResult {
        RunResult {
            failures: Some(failures),
            report,
            ..RunResult::ran(status, test_message(status, failures), seconds, started_at)
        }
    }

    fn skipped(message: String) -> RunResult {
        RunResult::ran(Status::Skipped, message, 0.0, chrono::Utc::now())
    }

    fn failed(problem: Problem, seconds: f64) -> RunResult {
        RunResult {
            problem: Some(problem.clone()),
            ..RunResult::ran(Status::Error, problem.message, seconds, chrono::Utc::now())
        }
    }
}

/// How a run goes: fixed for all its jobs.
pub struct RunOptions<'a, W: Warehouse> {
    /// The command's name (`run`, `build`, ...), as recorded with the results.
    pub command: &'static str,
    /// The project folder (seeds are read from it).
    pub root: &'a std::path::Path,
    pub fail_fast: bool,
    pub full_refresh: bool,
    /// How many days of runs `pm_meta.run_results` keeps.
    pub run_results_retention_days: i32,
    /// `--empty`: seeds are created without their rows.
    pub empty: bool,
    pub target_dir: &'a std::path::Path,
    /// Incremental models whose table exists (rows are added, not rebuilt).
    pub existing_incremental: &'a HashSet<String>,
    pub test_configs: &'a HashMap<usize, TestConfig>,
    /// The nodes whose templates use the warehouse, rendered again right
    /// before they run.
    pub run_renderer: Option<std::sync::Arc<pm_core::compile::run_render::RunRenderer>>,
    /// The warehouse: here, the connections its renders at run time share.
    pub warehouse: &'a W,
    /// The target is a Citus coordinator: tables are distributed as configured.
    pub citus: bool,
    pub log: Log,
}

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

    /// Resolves when either arrives (never, without signal handling), with
    /// the exit code that says which: 130 for SIGINT, 143 for SIGTERM.
    async fn recv(&mut self) -> i32 {
        match (&mut self.int, &mut self.term) {
            (Some(int), Some(term)) => {
                tokio::select! {
                    _ = int.recv() => 130,
                    _ = term.recv() => 143,
                }
            }
            _ => std::future::pending::<i32>().await,
        }
    }
}

/// How a node is named in progress lines: `view model`, `table model`, `seed`.
fn label(n: &Node) -> String {
    match n.resource_type {
        ResourceType::Model => format!("{} model", n.materialized_name().replace('_', " ")),
        other => other.as_str().to_string(),
    }
}

/// Where a node's compiled SQL is, as shown to the user.
fn compiled_path(m: &Manifest, n: &Node) -> String {
    format!(
        "{}/{}",
        m.target_path.trim_end_matches('/'),
        m.compiled_path(n)
    )
}

/// Node `n` as it runs: rendered again, with the warehouse at hand, when its
/// template uses it (its compiled SQL under target/compiled/ is replaced by
/// what runs); otherwise as compiled.
async fn as_run<'n, W: Warehouse>(
    m: &Manifest,
    n: &'n Node,
    options: &RunOptions<'_, W>,
) -> Result<std::borrow::Cow<'n, Node>, Problem> {
    let Some(renderer) = options
        .run_renderer
        .as_ref()
        .filter(|r| r.renders(&n.unique_id))
    else {
        return Ok(std::borrow::Cow::Borrowed(n));
    };
    let connection = options.warehouse.take_render_connection().await?;
    let (renderer, id) = (renderer.clone(), n.unique_id.clone());
    let (rendered, hooks, connection) = tokio::task::spawn_blocking(move || {
        let warehouse = std::sync::Arc::new(connection);
        (
            renderer.render(&id, warehouse.clone()),
            renderer.render_hooks(&id, warehouse.clone()),
            std::sync::Arc::into_inner(warehouse),
        )
    })
    .await
    .map_err(|e| {
        Problem::new(
            Code::RunRender,
            format!("rendering {} stopped: {e}", n.unique_id),
        )
    })?;
    if let Some(connection) = connection {
        options.warehouse.give_back_render_connection(connection);
    }
    let mut node = n.clone();
    if let Some((pre, post)) = hooks.transpose()? {
        (node.pre_hooks, node.post_hooks) = (pre, post);
    }
    if let Some(sql) = rendered.transpose()? {
        let path = options.target_dir.join(m.compiled_path(n));
        let _ = std::fs::write(&path, &sql);
        node.compiled_code = Some(sql);
    }
    Ok(std::borrow::Cow::Owned(node))
}

/// Writes the SQL that runs for a node under target/run/.
fn write_run_sql(m: &Manifest, n: &Node, target_dir: &std::path::Path, sql: &str) {
    let path = target_dir.join(m.compiled_path(n).replacen("compiled/", "run/", 1));
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(&path, format!("{sql};\n"));
}

type JobResult = Vec<(usize, Result<RunResult, Problem>)>;

/// Runs one job on a connection.
async fn run_job<W: Warehouse>(
    client: &mut W::Connection,
    m: &Manifest,
    job: &Work,
    options: &RunOptions<'_, W>,
) -> JobResult {
    let t0 = Instant::now();
    let at = chrono::Utc::now();
    match job {
        Work::Build(i) => {
            let r = run_build(client, m, *i, options).await;
            let seconds = t0.elapsed().as_secs_f64();
            vec![(
                *i,
                r.map(|built| {
                    let mut extra = String::new();
                    if !built.repointed.is_empty() {
                        extra.push_str(&format!(
                            ", views re-created: {}",
                            built.repointed.join(", ")
                        ));
                    }
                    if let Some(note) = &built.note {
                        extra.push_str(&format!(", {note}"));
                    }
                    RunResult {
                        rows: built.rows,
                        ..RunResult::ran(
                            Status::Success,
                            format!("CREATE {}{extra}", built.kind.to_uppercase()),
                            seconds,
                            at,
                        )
                    }
                }),
            )]
        }
        Work::Test(i) => {
            let Some(cfg) = options.test_configs.get(i) else {
                return vec![];
            };
            let r = run_test(client, m, *i, cfg, options).await;
            let seconds = t0.elapsed().as_secs_f64();
            vec![(
                *i,
                r.map(|(status, failures, report)| {
                    RunResult::test(status, failures, report, seconds, at)
                }),
            )]
        }
        Work::Merged { from, tests } => run_merged(client, m, from, tests, options).await,
        Work::UnitTest(i) => {
            let r = unit_tests::run_unit_test(client, m, *i, options).await;
            let seconds = t0.elapsed().as_secs_f64();
            vec![(
                *i,
                r.map(|(status, failures, report)| {
                    RunResult::test(status, failures, report, seconds, at)
                }),
            )]
        }
    }
}

/// The log line of a finished node.
fn done_line(
    m: &Manifest,
    i: usize,
    o: &RunResult,
    k: usize,
    total: usize,
    width: usize,
) -> String {
    let n = &m.nodes[i];
    let secs = o.seconds;
    if is_test(n) {
        let word = match o.status {
            Status::Pass => "PASS  ".to_string(),
            Status::Warn => format!("WARN {}", o.failures.unwrap_or(0)),
            Status::Fail => format!("FAIL {}", o.failures.unwrap_or(0)),
            Status::Error => "ERROR ".to_string(),
            _ => o.status.as_str().to_uppercase(),
        };
        let name = if n.resource_type == ResourceType::UnitTest {
            what(n)
        } else {
            n.name.clone()
        };
        return format!("{k:>width$} of {total} {word:<6} {name} [{secs:.2}s]");
    }
    match o.status {
        Status::Success => {
            let extra = o
                .message
                .split_once(", ")
                .map(|(_, rest)| format!(", {rest}"))
                .unwrap_or_default();
            format!(
                "{k:>width$} of {total} OK     {} {}.{} [{secs:.2}s{extra}]",
                label(n),
                n.schema,
                n.alias
            )
        }
        _ => format!(
            "{k:>width$} of {total} ERROR  {} {}.{} [{secs:.2}s]",
            label(n),
            n.schema,
            n.alias
        ),
    }
}

/// Runs the plan; returns each node's outcome and whether Ctrl-C stopped it.
pub async fn schedule<W: Warehouse>(
    m: &Manifest,
    plan: &Plan,
    mut clients: Vec<W::Connection>,
    options: &RunOptions<'_, W>,
) -> (HashMap<usize, RunResult>, Option<i32>) {
    let log = options.log;
    let mut board = Board::new(m, plan);
    let mut running = FuturesUnordered::new();
    let mut started = 0usize;
    // The exit code of an interruption (130 SIGINT, 143 SIGTERM).
    let mut interrupted: Option<i32> = None;
    let mut interrupts = Interrupts::new();
    let cancel_handles: Vec<W::Cancel> = clients
        .iter()
        .map(WarehouseConnection::cancel_handle)
        .collect();
    // On a terminal a bar shows what runs; start lines are left out there.
    let progress = pm_core::output::Progress::new(&log, board.total, "running");
    let mut now_running: std::collections::BTreeSet<&str> = Default::default();
    loop {
        while !board.stop && !clients.is_empty() {
            let Some(k) = board.next_ready() else {
                break;
            };
            let Some(mut client) = clients.pop() else {
                break;
            };
            let job = &plan.jobs[k];
            for i in job.nodes() {
                started += 1;
                let n = &m.nodes[i];
                if progress.is_live() {
                    now_running.insert(&n.name);
                } else {
                    let (total, width) = (board.total, board.width);
                    log.info(&format!("{started:>width$} of {total} START  {}", what(n)));
                }
            }
            progress.running(now_running.iter().copied());
            running.push(async move {
                let t0 = Instant::now();
                let r = run_job(&mut client, m, job, options).await;
                (k, client, r, t0.elapsed().as_secs_f64())
            });
        }
        let next = tokio::select! {
            next = running.next() => next,
            code = interrupts.recv(), if interrupted.is_none() => {
                // Ctrl-C: cancel what runs on the server (its transaction rolls
                // back, so no half-built relation remains) and start nothing new.
                interrupted = Some(code);
                board.stop = true;
                log.warn("interrupted: cancelling running statements");
                // The renders' own connections too (run_query while rendering).
                for handle in cancel_handles
                    .iter()
                    .chain(&options.warehouse.render_cancel_handles())
                {
                    handle.cancel().await;
                }
                continue;
            }
        };
        let Some((k, client, results, job_seconds)) = next else {
            break;
        };
        // A connection that died is not used again.
        if !client.is_closed() {
            clients.push(client);
        }
        for (i, _) in &results {
            now_running.remove(m.nodes[*i].name.as_str());
        }
        board.finish(k, results, job_seconds, interrupted.is_some(), options);
        progress.running(now_running.iter().copied());
        progress.set_position(board.done.len());
    }
    (board.skip_unstarted(interrupted.is_some()), interrupted)
}

/// What the scheduler knows between jobs: what each job still waits for,
/// the jobs ready to start, the outcomes so far, and whether to start more.
struct Board<'m> {
    m: &'m Manifest,
    plan: &'m Plan,
    waiting: Vec<usize>,
    /// Of the jobs ready, the one with the longest expected chain after it
    /// first; ties in plan order.
    ready: std::collections::BinaryHeap<(u64, std::cmp::Reverse<usize>)>,
    job_done: Vec<bool>,
    done: HashMap<usize, RunResult>,
    /// Nodes in the run, and the width of their count in log lines.
    total: usize,
    width: usize,
    /// Start nothing new (--fail-fast, Ctrl-C, a lost connection).
    stop: bool,
    connection_lost: bool,
}

impl<'m> Board<'m> {
    fn new(m: &'m Manifest, plan: &'m Plan) -> Board<'m> {
        let total: usize = plan.jobs.iter().map(|j| j.nodes().len()).sum();
        let waiting: Vec<usize> = plan.waits_for.iter().map(Vec::len).collect();
        let mut board = Board {
            m,
            plan,
            ready: Default::default(),
            job_done: vec![false; plan.jobs.len()],
            done: HashMap::new(),
            total,
            width: total.to_string().len(),
            stop: false,
            connection_lost: false,
            waiting,
        };
        for k in 0..plan.jobs.len() {
            if board.waiting[k] == 0 {
                board.ready.push(board.key(k));
            }
        }
        board
    }

    fn key(&self, k: usize) -> (u64, std::cmp::Reverse<usize>) {
        (
            self.plan.remaining.get(k).copied().unwrap_or(0),
            std::cmp::Reverse(k),
        )
    }

    /// The next job to start, if one is ready.
    fn next_ready(&mut self) -> Option<usize> {
        while let Some((_, std::cmp::Reverse(k))) = self.ready.pop() {
            if !self.job_done[k] {
                return Some(k);
            }
        }
        None
    }

    /// Records job `k`'s outcomes (logging each), then makes ready what
    /// waited for it, or skips everything downstream of a failure.
    fn finish<W: Warehouse>(
        &mut self,
        k: usize,
        results: JobResult,
        job_seconds: f64,
        interrupted: bool,
        options: &RunOptions<'_, W>,
    ) {
        let (m, log, total, width) = (self.m, options.log, self.total, self.width);
        self.job_done[k] = true;
        let mut blocking: Option<String> = None;
        for (i, r) in results {
            let n = &m.nodes[i];
            let outcome = match r {
                Ok(o) => o,
                Err(p) => RunResult::failed(p, job_seconds),
            };
            log.info(&done_line(
                m,
                i,
                &outcome,
                self.done.len() + 1,
                total,
                width,
            ));
            let lost = outcome
                .problem
                .as_ref()
                .is_some_and(|p| p.code == Code::ConnectLost);
            if lost && !self.connection_lost && !interrupted {
                // The server is gone (or this connection to it): starting more
                // would only fail the same way.
                self.connection_lost = true;
                self.stop = true;
                log.warn("the connection to the server was lost: nothing more is started");
            }
            if outcome.status.is_failure() && blocking.is_none() {
                blocking = Some(if is_test(n) {
                    format!("{} failed", what(n))
                } else {
                    format!("depends on {}, which failed", n.name)
                });
            }
            self.done.insert(i, outcome);
        }
        match blocking {
            None => {
                for &c in &self.plan.children[k] {
                    self.waiting[c] -= 1;
                    if self.waiting[c] == 0 && !self.job_done[c] {
                        self.ready.push(self.key(c));
                    }
                }
            }
            Some(why) => {
                let lines =
                    skip_downstream(m, self.plan, k, &why, &mut self.done, &mut self.job_done);
                let base = self.done.len() - lines.len();
                for (x, line) in lines.iter().enumerate() {
                    log.info(&format!("{:>width$} of {total} {line}", base + x + 1));
                }
                if options.fail_fast {
                    self.stop = true;
                }
            }
        }
    }

    /// The outcomes, with what never started skipped (after --fail-fast,
    /// Ctrl-C or a lost connection).
    fn skip_unstarted(mut self, interrupted: bool) -> HashMap<usize, RunResult> {
        let why = if interrupted {
            "skipped: interrupted"
        } else if self.connection_lost {
            "skipped: the connection to the server was lost"
        } else {
            "skipped: --fail-fast"
        };
        for job in &self.plan.jobs {
            for i in job.nodes() {
                self.done
                    .entry(i)
                    .or_insert_with(|| RunResult::skipped(why.into()));
            }
        }
        self.done
    }
}

/// Data tests and unit tests: they pass, warn or fail.
fn is_test(n: &Node) -> bool {
    matches!(n.resource_type, ResourceType::Test | ResourceType::UnitTest)
}

/// How a log line names a node: `test not_null_x`, `table model s.x`.
fn what(n: &Node) -> String {
    if n.resource_type == ResourceType::Test {
        format!("test {}", n.name)
    } else if n.resource_type == ResourceType::UnitTest {
        format!("unit test {}", n.name)
    } else {
        format!("{} {}.{}", label(n), n.schema, n.alias)
    }
}

/// Marks everything downstream of job `k` that has not run as skipped;
/// returns their log lines.
fn skip_downstream(
    m: &Manifest,
    plan: &Plan,
    k: usize,
    why: &str,
    done: &mut HashMap<usize, RunResult>,
    job_done: &mut [bool],
) -> Vec<String> {
    let mut queue: VecDeque<usize> = plan.children[k].iter().copied().collect();
    let mut lines = Vec::new();
    while let Some(c) = queue.pop_front() {
        if job_done[c] {
            continue;
        }
        job_done[c] = true;
        for i in plan.jobs[c].nodes() {
            lines.push(format!("SKIP   {} ({why})", what(&m.nodes[i])));
            done.insert(i, RunResult::skipped(format!("skipped: {why}")));
        }
        queue.extend(plan.children[c].iter().copied());
    }
    lines
}
