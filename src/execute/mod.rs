//! Running a selection against the warehouse: seeds, models and data tests
//! as jobs in one dependency graph. A job starts as soon as the jobs it waits
//! for succeeded, at most one per connection; a failure skips everything
//! downstream, independent branches carry on.
//!
//! `plan` is pure (which jobs, what each waits for); `schedule` runs them.

use crate::adapter::build::{build_incremental, build_relation, Built};
use crate::adapter::Endpoint;
use crate::error::Problem;
use crate::manifest::{Manifest, Materialization, Node, ResourceType};
use crate::materialize::incremental;
use crate::materialize::relation::{self, Kind};
use crate::materialize::test::{self as tests, Check, TestConfig, Verdict};
use crate::materialize::BuildSpec;
use crate::output::Log;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Instant;

/// One unit of work.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// A model or seed.
    Build(usize),
    /// A data test, on its own query.
    Test(usize),
    /// Tests of one relation counted by one scan (each reports its own result).
    Merged {
        from: String,
        tests: Vec<(usize, String, Check)>,
    },
}

impl Work {
    pub fn nodes(&self) -> Vec<usize> {
        match self {
            Work::Build(i) | Work::Test(i) => vec![*i],
            Work::Merged { tests, .. } => tests.iter().map(|t| t.0).collect(),
        }
    }

    fn is_test(&self) -> bool {
        !matches!(self, Work::Build(_))
    }
}

/// The jobs of a run and the order among them.
#[derive(Debug, Clone)]
pub struct Plan {
    pub jobs: Vec<Work>,
    /// The jobs each job waits for.
    pub waits_for: Vec<Vec<usize>>,
    pub children: Vec<Vec<usize>>,
}

/// Parents of `i` that are in the run, also those reached through ephemeral
/// models (their SQL is inlined into the node's).
fn run_parents(m: &Manifest, i: usize, in_run: &HashSet<usize>) -> Vec<usize> {
    let mut found: Vec<usize> = Vec::new();
    let mut stack: Vec<usize> = m.dag.parents[i].clone();
    let mut seen = HashSet::new();
    while let Some(p) = stack.pop() {
        if !seen.insert(p) {
            continue;
        }
        if in_run.contains(&p) {
            if !found.contains(&p) {
                found.push(p);
            }
        } else if m.nodes[p].is_ephemeral() {
            stack.extend(m.dag.parents[p].iter().copied());
        }
    }
    found
}

/// Orders `selected` into jobs. Tests wait for the nodes they test; with
/// `merge`, mergeable tests of one relation share a job. When the run also
/// builds (dbt's `build`), the children of a tested node wait for its tests,
/// so that a failing test keeps bad rows from flowing downstream.
pub fn plan(
    m: &Manifest,
    selected: &[usize],
    configs: &HashMap<usize, TestConfig>,
    merge: bool,
) -> Plan {
    let in_run: HashSet<usize> = selected.iter().copied().collect();
    let mut jobs: Vec<Work> = Vec::new();
    let mut job_of: HashMap<usize, usize> = HashMap::new();
    // Merge groups keyed by the scan they share, in first-seen order.
    let mut groups: BTreeMap<String, Vec<(usize, String, Check)>> = BTreeMap::new();
    let mut group_order: Vec<String> = Vec::new();
    for &i in selected {
        let n = &m.nodes[i];
        if n.resource_type != ResourceType::Test {
            job_of.insert(i, jobs.len());
            jobs.push(Work::Build(i));
            continue;
        }
        let merged = merge
            .then(|| {
                let parents = &m.dag.parents[i];
                let cfg = configs.get(&i)?;
                if parents.len() != 1
                    || cfg.warn_if.holds(0).is_none()
                    || cfg.error_if.holds(0).is_none()
                {
                    return None;
                }
                tests::mergeable(m, n, cfg, &m.nodes[parents[0]])
            })
            .flatten();
        match merged {
            Some(mg) => {
                if !groups.contains_key(&mg.from) {
                    group_order.push(mg.from.clone());
                }
                groups
                    .entry(mg.from)
                    .or_default()
                    .push((i, mg.column, mg.check));
            }
            None => {
                job_of.insert(i, jobs.len());
                jobs.push(Work::Test(i));
            }
        }
    }
    for from in group_order {
        let Some(members) = groups.remove(&from) else {
            continue;
        };
        let work = if members.len() == 1 {
            Work::Test(members[0].0)
        } else {
            Work::Merged {
                from,
                tests: members,
            }
        };
        let k = jobs.len();
        for i in work.nodes() {
            job_of.insert(i, k);
        }
        jobs.push(work);
    }

    let mut waits: Vec<HashSet<usize>> = vec![HashSet::new(); jobs.len()];
    let mut node_children: HashMap<usize, Vec<usize>> = HashMap::new();
    for (k, job) in jobs.iter().enumerate() {
        for i in job.nodes() {
            for p in run_parents(m, i, &in_run) {
                node_children.entry(p).or_default().push(i);
                if let Some(&pj) = job_of.get(&p) {
                    if pj != k {
                        waits[k].insert(pj);
                    }
                }
            }
        }
    }
    // dbt build: a tested node's children also wait for its tests, unless
    // that would close a cycle (a child that is an ancestor of another
    // tested parent, as with a relationships test).
    let builds = jobs.iter().any(|j| !j.is_test());
    if builds {
        for (k, job) in jobs.iter().enumerate() {
            if !job.is_test() {
                continue;
            }
            let mut tested: Vec<usize> = Vec::new();
            for i in job.nodes() {
                for p in run_parents(m, i, &in_run) {
                    if !tested.contains(&p) {
                        tested.push(p);
                    }
                }
            }
            for &p in &tested {
                for &c in node_children.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
                    let Some(&cj) = job_of.get(&c) else { continue };
                    if jobs[cj].is_test() || cj == k {
                        continue;
                    }
                    let cycle = tested.contains(&c)
                        || (tested.len() > 1 && {
                            let below = m.dag.reach(&[c], false, None);
                            tested.iter().any(|&t| below[t])
                        });
                    if !cycle {
                        waits[cj].insert(k);
                    }
                }
            }
        }
    }
    let waits_for: Vec<Vec<usize>> = waits
        .into_iter()
        .map(|s| {
            let mut v: Vec<usize> = s.into_iter().collect();
            v.sort_unstable();
            v
        })
        .collect();
    let mut children = vec![Vec::new(); jobs.len()];
    for (k, w) in waits_for.iter().enumerate() {
        for &p in w {
            children[p].push(k);
        }
    }
    Plan {
        jobs,
        waits_for,
        children,
    }
}

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
pub struct RunOptions<'a> {
    /// The command's name (`run`, `build`, ...), as recorded with the results.
    pub command: &'static str,
    /// The project folder (seeds are read from it).
    pub root: &'a std::path::Path,
    pub fail_fast: bool,
    pub full_refresh: bool,
    pub target_dir: &'a std::path::Path,
    /// Incremental models whose table exists (rows are added, not rebuilt).
    pub existing_incremental: &'a HashSet<String>,
    pub test_configs: &'a HashMap<usize, TestConfig>,
    pub endpoint: &'a Endpoint,
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

/// Writes the SQL that runs for a node under target/run/.
fn write_run_sql(m: &Manifest, n: &Node, target_dir: &std::path::Path, sql: &str) {
    let path = target_dir.join(m.compiled_path(n).replacen("compiled/", "run/", 1));
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(&path, format!("{sql};\n"));
}

type JobResult = Vec<(usize, Result<RunResult, Problem>)>;

/// How a node is built.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildJob {
    /// Copy the seed's file into a new table and swap it in.
    LoadSeed,
    /// Build the whole relation under a temporary name and swap it in.
    Replace(Kind),
    /// Add this run's rows to the incremental model's existing table.
    AddRows(incremental::IncrementalConfig),
}

/// The one place a materialization maps to the job that builds it.
/// `table_exists`: an incremental model's table is already there (and no
/// full refresh was asked for). An error names what pm cannot build.
pub fn build_job(n: &Node, table_exists: bool) -> Result<BuildJob, Problem> {
    let cannot = |what: String| {
        Problem::new(
            "run::materialization",
            format!("{} `{}` {what}, which pm cannot build", n.resource_type.as_str(), n.name),
        )
        .help("pm builds views, tables, incremental models, materialized views and seeds; leave this node out with --exclude")
    };
    match &n.materialized {
        Some(Materialization::Seed) => Ok(BuildJob::LoadSeed),
        Some(Materialization::Incremental) => {
            let config = incremental::config_of(n)?;
            Ok(if table_exists {
                BuildJob::AddRows(config)
            } else {
                BuildJob::Replace(Kind::Table)
            })
        }
        Some(
            m
            @ (Materialization::View | Materialization::Table | Materialization::MaterializedView),
        ) => Ok(BuildJob::Replace(Kind::of(m).unwrap_or(Kind::Table))),
        Some(Materialization::Custom(name)) => Err(cannot(format!(
            "is materialized as `{name}`, the project's own materialization"
        ))),
        Some(other) => Err(cannot(format!("is materialized as `{}`", other.as_str()))),
        None => Err(cannot("is not materialized".into())),
    }
}

/// Builds a model or loads a seed.
async fn run_build(
    client: &mut tokio_postgres::Client,
    m: &Manifest,
    i: usize,
    options: &RunOptions<'_>,
    swap_lock: &tokio::sync::Mutex<()>,
) -> Result<Built, Problem> {
    let n = &m.nodes[i];
    let compiled = compiled_path(m, n);
    let spec = BuildSpec::of(n)?;
    match build_job(n, options.existing_incremental.contains(&n.unique_id))? {
        BuildJob::LoadSeed => load_seed(client, n, &spec, options).await,
        BuildJob::AddRows(config) => {
            let add = incremental::AddRows::of(n, config);
            write_run_sql(m, n, options.target_dir, &add.create_temp);
            let (rows, changes) = build_incremental(client, &spec, &add, &compiled).await?;
            Ok(Built {
                kind: "incremental",
                repointed: Vec::new(),
                note: Some(if changes.is_empty() {
                    format!("{rows} rows written")
                } else {
                    format!("{rows} rows written; {}", changes.join(", "))
                }),
                rows: i64::try_from(rows).ok(),
            })
        }
        BuildJob::Replace(kind) => {
            let build = relation::build(n, kind);
            write_run_sql(m, n, options.target_dir, &build.prepare);
            build_relation(
                client,
                &spec,
                &build,
                &compiled,
                options.full_refresh,
                swap_lock,
            )
            .await
        }
    }
}

async fn load_seed(
    client: &mut tokio_postgres::Client,
    n: &Node,
    spec: &BuildSpec,
    options: &RunOptions<'_>,
) -> Result<Built, Problem> {
    // With every column's type given, the file is checked while it loads.
    let (table, checked) = crate::materialize::seed::inspect_header(options.root, n)?;
    let check = (!checked).then(|| {
        let (root, node) = (options.root.to_path_buf(), n.clone());
        tokio::task::spawn_blocking(move || crate::materialize::seed::inspect(&root, &node))
    });
    let (rows, replaced) = crate::adapter::load::load_seed(
        client,
        options.root,
        spec,
        &table,
        options.full_refresh,
        check,
    )
    .await?;
    Ok(Built {
        kind: "seed",
        repointed: Vec::new(),
        note: Some(format!("{rows} rows, {}", replaced.describe())),
        rows: i64::try_from(rows).ok(),
    })
}

/// A database error in a test, pointing at its compiled SQL.
fn test_problem(m: &Manifest, n: &Node, e: &tokio_postgres::Error) -> Problem {
    if let Some(p) =
        crate::adapter::build::interrupted_or_lost("test", &n.name, "running the test", e)
    {
        return p;
    }
    let detail = crate::adapter::error_text(e);
    Problem::new(
        "test::database",
        format!("test `{}` could not run: {detail}", n.name),
    )
    .help(format!(
        "its SQL is in {}; run `pm compile -s {}` after fixing the test or the model it reads",
        compiled_path(m, n),
        n.name
    ))
}

/// Finishes a test's outcome from its count and conditions.
async fn judge(
    client: &tokio_postgres::Client,
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
        crate::adapter::test::sample(client, &tests::sample_sql(n, 5)).await
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
async fn run_test(
    client: &mut tokio_postgres::Client,
    m: &Manifest,
    i: usize,
    cfg: &TestConfig,
    options: &RunOptions<'_>,
) -> Result<(Status, i64, Option<TestReport>), Problem> {
    let n = &m.nodes[i];
    let sql = tests::test_sql(n, cfg);
    write_run_sql(m, n, options.target_dir, &sql);
    let mut stored_in = None;
    if let Some(store) = &cfg.store {
        crate::adapter::test::store_failures(client, &tests::store_sql(n, cfg, store))
            .await
            .map_err(|e| test_problem(m, n, &e))?;
        stored_in = Some(format!(
            "{}.{}",
            crate::manifest::quote_ident(&store.schema),
            crate::manifest::quote_ident(&store.name)
        ));
    }
    let row = crate::adapter::test::count(client, &sql)
        .await
        .map_err(|e| test_problem(m, n, &e))?;
    let failures = row
        .try_get::<_, Option<i64>>(0)
        .map(|v| v.unwrap_or(0))
        .map_err(|e| {
            Problem::new(
                "test::fail_calc",
                format!(
                    "test `{}`: its fail_calc does not give a whole number: {e}",
                    n.name
                ),
            )
            .help("fail_calc is an aggregate giving a count, like count(*) or sum(n_records)")
        })?;
    let flag = |k: usize| {
        row.try_get::<_, Option<bool>>(k)
            .ok()
            .flatten()
            .unwrap_or(false)
    };
    let (status, report) = judge(client, n, cfg, failures, flag(1), flag(2), stored_in).await;
    Ok((status, failures, report))
}

/// Runs a merged scan; each test gets its own outcome.
async fn run_merged(
    client: &mut tokio_postgres::Client,
    m: &Manifest,
    from: &str,
    members: &[(usize, String, Check)],
    options: &RunOptions<'_>,
) -> JobResult {
    let t0 = Instant::now();
    let at = chrono::Utc::now();
    let parts: Vec<(&str, &Check)> = members.iter().map(|(_, c, k)| (c.as_str(), k)).collect();
    let sql = tests::merged_sql(from, &parts);
    for (i, _, _) in members {
        write_run_sql(m, &m.nodes[*i], options.target_dir, &sql);
    }
    let row = crate::adapter::test::count(client, &sql).await;
    let seconds = t0.elapsed().as_secs_f64();
    let mut out = Vec::with_capacity(members.len());
    match row {
        // The server refused the scan (one test names a column that is not
        // there, say): each test runs alone and reports its own result.
        Err(e) if e.as_db_error().is_some() => {
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
                let failures: i64 = row.try_get(k).unwrap_or(0);
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

fn test_message(status: Status, failures: i64) -> String {
    match status {
        Status::Pass => "PASS".into(),
        _ => format!(
            "Got {failures} result{}",
            if failures == 1 { "" } else { "s" }
        ),
    }
}

/// Runs one job on a connection.
async fn run_job(
    client: &mut tokio_postgres::Client,
    m: &Manifest,
    job: &Work,
    options: &RunOptions<'_>,
    swap_lock: &tokio::sync::Mutex<()>,
) -> JobResult {
    let t0 = Instant::now();
    let at = chrono::Utc::now();
    match job {
        Work::Build(i) => {
            let r = run_build(client, m, *i, options, swap_lock).await;
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
    if n.resource_type == ResourceType::Test {
        let word = match o.status {
            Status::Pass => "PASS  ".to_string(),
            Status::Warn => format!("WARN {}", o.failures.unwrap_or(0)),
            Status::Fail => format!("FAIL {}", o.failures.unwrap_or(0)),
            Status::Error => "ERROR ".to_string(),
            _ => o.status.as_str().to_uppercase(),
        };
        return format!("{k:>width$} of {total} {word:<6} {} [{secs:.2}s]", n.name);
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
pub async fn schedule(
    m: &Manifest,
    plan: &Plan,
    mut clients: Vec<deadpool_postgres::Object>,
    options: &RunOptions<'_>,
) -> (HashMap<usize, RunResult>, Option<i32>) {
    let log = options.log;
    let total: usize = plan.jobs.iter().map(|j| j.nodes().len()).sum();
    let width = total.to_string().len();
    let mut waiting: Vec<usize> = plan.waits_for.iter().map(Vec::len).collect();
    let mut ready: VecDeque<usize> = (0..plan.jobs.len()).filter(|&k| waiting[k] == 0).collect();
    let mut job_done: Vec<bool> = vec![false; plan.jobs.len()];
    let mut done: HashMap<usize, RunResult> = HashMap::new();
    let swap_mutex = tokio::sync::Mutex::new(());
    let swap_lock = &swap_mutex;
    let mut running = FuturesUnordered::new();
    let mut started = 0usize;
    let mut stop = false;
    // The exit code of an interruption (130 SIGINT, 143 SIGTERM).
    let mut interrupted: Option<i32> = None;
    let mut connection_lost = false;
    let mut interrupts = Interrupts::new();
    let cancel_tokens: Vec<tokio_postgres::CancelToken> =
        clients.iter().map(|c| c.cancel_token()).collect();
    // On a terminal a bar shows what runs; start lines are left out there.
    let progress = crate::output::Progress::new(&log, total, "running");
    let mut now_running: std::collections::BTreeSet<&str> = Default::default();
    let skip =
        |k: usize, why: String, done: &mut HashMap<usize, RunResult>, job_done: &mut Vec<bool>| {
            // Everything downstream of job k that has not run is skipped.
            let mut queue: VecDeque<usize> = plan.children[k].iter().copied().collect();
            let mut lines = Vec::new();
            while let Some(c) = queue.pop_front() {
                if job_done[c] {
                    continue;
                }
                job_done[c] = true;
                for i in plan.jobs[c].nodes() {
                    let n = &m.nodes[i];
                    let what = if n.resource_type == ResourceType::Test {
                        format!("test {}", n.name)
                    } else {
                        format!("{} {}.{}", label(n), n.schema, n.alias)
                    };
                    lines.push(format!("SKIP   {what} ({why})"));
                    done.insert(i, RunResult::skipped(format!("skipped: {why}")));
                }
                queue.extend(plan.children[c].iter().copied());
            }
            lines
        };
    loop {
        while !stop && !clients.is_empty() {
            let Some(k) = ready.pop_front() else { break };
            if job_done[k] {
                continue;
            }
            let Some(mut client) = clients.pop() else {
                break;
            };
            let job = &plan.jobs[k];
            for i in job.nodes() {
                started += 1;
                let n = &m.nodes[i];
                if progress.is_live() {
                    now_running.insert(&n.name);
                } else if n.resource_type == ResourceType::Test {
                    log.info(&format!(
                        "{started:>width$} of {total} START  test {}",
                        n.name
                    ));
                } else {
                    log.info(&format!(
                        "{started:>width$} of {total} START  {} {}.{}",
                        label(n),
                        n.schema,
                        n.alias
                    ));
                }
            }
            progress.running(now_running.iter().copied());
            running.push(async move {
                let t0 = Instant::now();
                let r = run_job(&mut client, m, job, options, swap_lock).await;
                (k, client, r, t0.elapsed().as_secs_f64())
            });
        }
        let next = tokio::select! {
            next = running.next() => next,
            code = interrupts.recv(), if interrupted.is_none() => {
                // Ctrl-C: cancel what runs on the server (its transaction rolls
                // back, so no half-built relation remains) and start nothing new.
                interrupted = Some(code);
                stop = true;
                log.warn("interrupted: cancelling running statements");
                for token in &cancel_tokens {
                    options.endpoint.cancel(token).await;
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
        job_done[k] = true;
        let mut blocking: Option<String> = None;
        for (i, r) in results {
            let n = &m.nodes[i];
            now_running.remove(n.name.as_str());
            let outcome = match r {
                Ok(o) => o,
                Err(p) => RunResult::failed(p, job_seconds),
            };
            log.info(&done_line(m, i, &outcome, done.len() + 1, total, width));
            let lost = outcome
                .problem
                .as_ref()
                .is_some_and(|p| p.code == crate::adapter::CONNECTION_LOST);
            if lost && !connection_lost && interrupted.is_none() {
                // The server is gone (or this connection to it): starting more
                // would only fail the same way.
                connection_lost = true;
                stop = true;
                log.warn("the connection to the server was lost: nothing more is started");
            }
            if outcome.status.is_failure() && blocking.is_none() {
                blocking = Some(if n.resource_type == ResourceType::Test {
                    format!("test {} failed", n.name)
                } else {
                    format!("depends on {}, which failed", n.name)
                });
            }
            done.insert(i, outcome);
        }
        progress.running(now_running.iter().copied());
        match blocking {
            None => {
                for &c in &plan.children[k] {
                    waiting[c] -= 1;
                    if waiting[c] == 0 && !job_done[c] {
                        ready.push_back(c);
                    }
                }
            }
            Some(why) => {
                let lines = skip(k, why, &mut done, &mut job_done);
                let base = done.len() - lines.len();
                for (x, line) in lines.iter().enumerate() {
                    log.info(&format!("{:>width$} of {total} {line}", base + x + 1));
                }
                if options.fail_fast {
                    stop = true;
                }
            }
        }
        progress.set_position(done.len());
    }
    // With --fail-fast, after Ctrl-C or a lost connection, what never started is skipped.
    let why = if interrupted.is_some() {
        "skipped: interrupted"
    } else if connection_lost {
        "skipped: the connection to the server was lost"
    } else {
        "skipped: --fail-fast"
    };
    for job in &plan.jobs {
        for i in job.nodes() {
            done.entry(i)
                .or_insert_with(|| RunResult::skipped(why.into()));
        }
    }
    (done, interrupted)
}
