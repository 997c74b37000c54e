//! The run pipeline: the phases `pm seed`, `run`, `test`, `build` and
//! `source freshness` go through, each a function returning what the next
//! needs, written against the warehouse's seam (`pm_core::warehouse`). A
//! command configures it with a [`RunCommand`] (what it runs and how it
//! says nothing was selected), opens [`Connections`] on its warehouse and
//! runs the phases it needs.

use crate::execute::{self, RunResult, Status};
use pm_core::error::{Code, Problem, Problems, Result};
use pm_core::manifest::{Manifest, Materialization, Node, ResourceType};
use pm_core::materialize::test::TestConfig;
use pm_core::output::Log;
use pm_core::warehouse::{ResultRow, RunControl, Warehouse};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The commands that run selected nodes against the warehouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunCommand {
    Seed,
    Run,
    Test,
    Build,
    Snapshot,
    Freshness,
}

impl RunCommand {
    pub fn name(self) -> &'static str {
        match self {
            RunCommand::Seed => "seed",
            RunCommand::Run => "run",
            RunCommand::Test => "test",
            RunCommand::Build => "build",
            RunCommand::Snapshot => "snapshot",
            RunCommand::Freshness => "freshness",
        }
    }

    /// Whether the command runs node `n` when it is selected. Ephemeral
    /// models live in their consumers' SQL; snapshots run in `snapshot` and
    /// `build`.
    pub fn runs(self, n: &Node) -> bool {
        use RunCommand as C;
        match n.resource_type {
            ResourceType::Model => matches!(self, C::Run | C::Build) && !n.is_ephemeral(),
            ResourceType::Seed => matches!(self, C::Seed | C::Build),
            ResourceType::Test | ResourceType::UnitTest => matches!(self, C::Test | C::Build),
            ResourceType::Source => self == C::Freshness,
            ResourceType::Snapshot => matches!(self, C::Snapshot | C::Build),
            // A saved query's exports are built by `pm build` (dbt's platform does so).
            ResourceType::SavedQuery => {
                self == C::Build && pm_core::materialize::export::has_exports(n)
            }
            _ => false,
        }
    }

    pub fn nothing_selected(self) -> &'static str {
        match self {
            RunCommand::Seed => "no seeds selected",
            RunCommand::Test => "no tests selected",
            RunCommand::Freshness => "no sources selected",
            RunCommand::Snapshot => "no snapshots selected",
            _ => "nothing selected to build",
        }
    }
}

/// Checks every selected node before anything runs: that pm can build it,
/// its grants, and each test's config (returned, by node index).
pub fn check(
    m: &Manifest,
    selected: &[usize],
    store_failures: bool,
) -> Result<HashMap<usize, TestConfig>> {
    let mut problems = Problems::default();
    let mut test_configs = HashMap::new();
    for &i in selected {
        let n = &m.nodes[i];
        if n.resource_type == ResourceType::Test {
            match TestConfig::of(m, n, store_failures) {
                Ok(cfg) => {
                    test_configs.insert(i, cfg);
                }
                Err(p) => problems.push(p),
            }
            continue;
        }
        if n.resource_type == ResourceType::UnitTest {
            continue;
        }
        if let Err(p) = execute::build::build_job(n, true) {
            problems.push(p);
        }
        if let Err(p) = pm_core::materialize::citus::distribution_of(n, |model| {
            execute::build::model_relation(m, model)
        }) {
            problems.push(p);
        }
        if let Some(p) = colocated_with_a_later_model(m, i) {
            problems.push(p);
        }
        if let Err(p) = pm_core::materialize::relation::grants(n) {
            problems.push(p);
        }
        if let Some(p) = temp_shaped_name(n) {
            problems.push(p);
        }
        // Again at build time, for the nodes rendered then.
        if let Err(p) = pm_core::materialize::statement::check_single(
            n,
            pm_core::materialize::relation::query(n),
        ) {
            problems.push(p);
        }
    }
    problems.into_result()?;
    Ok(test_configs)
}

/// A relation named like pm's temporary names (`<name>__pm_new_<8 hex>`)
/// could be taken for another model's half-built relation and dropped.
fn temp_shaped_name(n: &Node) -> Option<Problem> {
    if !matches!(
        n.resource_type,
        ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot
    ) || !pm_core::materialize::relation::is_temp_name(&n.alias)
    {
        return None;
    }
    Some(
        Problem::new(
            Code::RunTempName,
            format!(
                "{} `{}` would be named `{}`, the shape of pm's temporary names (`<name>__pm_new_<8 hex digits>`), which pm drops as the leftovers of interrupted builds",
                n.resource_type.as_str(),
                n.name,
                n.alias
            ),
        )
        .help("rename it, or give it another alias (config(alias=...))"),
    )
}

/// `colocate_with` a model that is not upstream of the node: its table may
/// not exist yet when the node's is distributed.
fn colocated_with_a_later_model(m: &Manifest, i: usize) -> Option<Problem> {
    let n = &m.nodes[i];
    let other = n.typed_config.colocate_with.as_deref()?;
    if matches!(other, "none" | "default") {
        return None;
    }
    let k = m
        .nodes
        .iter()
        .position(|x| x.resource_type == ResourceType::Model && x.name == other)?;
    if m.dag.reach(&[i], true, None)[k] {
        return None;
    }
    Some(
        Problem::new(
            Code::CitusConfig,
            format!(
                "{} `{}` ({}): colocate_with names `{other}`, which is not upstream of it, so its table may not exist when this one is distributed",
                n.resource_type.as_str(),
                n.name,
                n.original_file_path
            ),
        )
        .help("colocate with a model it reads (ref), or leave colocate_with out: Citus colocates tables distributed by the same column type and shard count"),
    )
}

/// Whether the target is a Citus coordinator. On plain PostgreSQL the
/// distribution configs of the selected nodes are ignored, with one warning.
pub fn citus_target(
    m: &Manifest,
    selected: &[usize],
    conn: &Connections<impl Warehouse>,
    log: Log,
) -> Result<bool> {
    let citus = conn.runtime.block_on(conn.control.is_citus_coordinator())?;
    let configured = selected
        .iter()
        .filter(|&&i| pm_core::materialize::citus::configured(&m.nodes[i]))
        .count();
    if !citus && configured > 0 {
        log.warn(&format!(
            "{configured} selected node(s) set a Citus layout (distributed_by, reference); the target is not a Citus coordinator, so they are built as plain tables"
        ));
    }
    if citus {
        check_incremental_layouts(m, selected)?;
    }
    Ok(citus)
}

/// Refuses, before anything runs, the incremental models whose strategy
/// Citus cannot run on their layout.
fn check_incremental_layouts(m: &Manifest, selected: &[usize]) -> Result<()> {
    use pm_core::materialize::{citus, incremental};
    let mut problems = Problems::default();
    for &i in selected {
        let n = &m.nodes[i];
        if n.materialized != Some(Materialization::Incremental) {
            continue;
        }
        let checked = || {
            let Some(d) =
                citus::distribution_of(n, |model| execute::build::model_relation(m, model))?
            else {
                return Ok(());
            };
            citus::incremental_staging(n, &incremental::config_of(n)?, &d, &n.relation())
                .map(|_| ())
        };
        if let Err(p) = checked() {
            problems.push(p);
        }
    }
    problems.into_result()
}

/// The run's connections: its own (the target's lock, the results), and a
/// warehouse whose `threads` builders' connections are open.
pub struct Connections<W: Warehouse> {
    pub runtime: tokio::runtime::Runtime,
    pub warehouse: W,
    pub control: W::Control,
    pub threads: usize,
}

/// The runtime a command's warehouse work runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Problem::new(
                Code::RuntimeStart,
                format!("cannot start the async runtime: {e}"),
            )
            .into()
        })
}

/// How many builders a run of `jobs` nodes uses with the target's `threads`.
pub fn builder_count(threads: usize, jobs: usize) -> usize {
    threads.max(1).min(jobs.max(1))
}

/// Incremental models among `selected` whose table exists: they render
/// again with `is_incremental()` true and add rows instead of rebuilding.
pub fn existing_incremental(
    m: &Manifest,
    selected: &[usize],
    conn: &Connections<impl Warehouse>,
) -> Result<HashSet<String>> {
    let incremental: Vec<&Node> = selected
        .iter()
        .map(|&i| &m.nodes[i])
        .filter(|n| n.materialized == Some(Materialization::Incremental))
        .collect();
    if incremental.is_empty() {
        return Ok(HashSet::new());
    }
    let relations: Vec<(String, String)> = incremental
        .iter()
        .map(|n| (n.schema.clone(), n.alias.clone()))
        .collect();
    let found = conn
        .runtime
        .block_on(conn.control.existing_tables(&relations))?;
    Ok(incremental
        .iter()
        .filter(|n| found.contains(&(n.schema.clone(), n.alias.clone())))
        .map(|n| n.unique_id.clone())
        .collect())
}

/// As `pm compile` would: the SQL of what runs, and the manifest.
pub fn write_artifacts(target_dir: &Path, m: &Manifest, selected: &[usize]) -> Result<()> {
    let (compiled, manifest) = rayon::join(
        || crate::artifacts::write_compiled(target_dir, m, selected),
        || crate::artifacts::write_manifest(target_dir, m, true),
    );
    compiled?;
    manifest?;
    Ok(())
}

/// Takes the lock of the target (`database`.`schema`), before the run looks
/// at the warehouse (which incremental tables exist, what `--defer` reads,
/// whether it is Citus): a run that waited for another decides on what
/// that one left.
pub fn lock_target(
    target: (&str, &str),
    conn: &Connections<impl Warehouse>,
    wait: bool,
    log: Log,
) -> Result<()> {
    let (database, schema) = target;
    conn.runtime
        .block_on(conn.control.lock_target(database, schema, wait, || {
            log.info("waiting for another pm run on this target to finish")
        }))
        .map_err(Problems::from)
}

/// Creates the schemas the run writes to and removes what an interrupted
/// run left under temporary names there (the target's lock is held).
pub fn prepare_target(
    m: &Manifest,
    selected: &[usize],
    test_configs: &HashMap<usize, TestConfig>,
    conn: &Connections<impl Warehouse>,
    log: Log,
) -> Result<()> {
    let rt = &conn.runtime;
    // And the schemas saved queries export to.
    let exports: Vec<Node> = selected
        .iter()
        .flat_map(|&i| pm_core::materialize::export::exports_of(&m.nodes[i]))
        .collect();
    let mut schemas: Vec<&str> = selected
        .iter()
        .filter(|&&i| {
            !matches!(
                m.nodes[i].resource_type,
                ResourceType::Test | ResourceType::UnitTest
            )
        })
        .map(|&i| m.nodes[i].schema.as_str())
        .chain(exports.iter().map(|e| e.schema.as_str()))
        .collect();
    // Where tests keep their failing rows, too.
    schemas.extend(
        test_configs
            .values()
            .filter_map(|cfg| cfg.store.as_ref().map(|st| st.schema.as_str())),
    );
    schemas.sort_unstable();
    schemas.dedup();
    rt.block_on(conn.control.create_missing_schemas(&schemas))?;
    // Also the leftovers of models since removed: every schema written to is swept.
    let owned: HashSet<(String, String)> = m
        .nodes
        .iter()
        .filter(|n| {
            matches!(
                n.resource_type,
                ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot
            )
        })
        .map(|n| (n.schema.clone(), n.alias.clone()))
        .chain(exports.iter().map(|e| (e.schema.clone(), e.alias.clone())))
        .collect();
    let swept: Vec<String> = schemas.iter().map(|s| s.to_string()).collect();
    for line in rt.block_on(conn.control.remove_leftovers(&swept, &owned))? {
        log.warn(&line);
    }
    Ok(())
}

/// What running the jobs gave: each node's result, a failed on-run-end
/// hook, and the exit code when the run was interrupted.
pub struct Ran {
    pub results: HashMap<usize, RunResult>,
    pub end_problem: Option<Problem>,
    pub interrupted: Option<i32>,
}

/// on-run-start, the jobs in dependency order, then on-run-end (unless interrupted).
pub fn run_jobs<W: Warehouse>(
    m: &Manifest,
    selected: &[usize],
    plan: &execute::plan::Plan,
    conn: &Connections<W>,
    options: &execute::RunOptions<'_, W>,
) -> Result<Ran> {
    let Connections {
        runtime,
        warehouse,
        control,
        threads,
    } = conn;
    let builders = runtime.block_on(warehouse.builders(*threads))?;
    runtime.block_on(control.run_hooks(&m.on_run_start, "on-run-start"))?;
    let (results, interrupted) = runtime.block_on(execute::schedule(m, plan, builders, options));
    let end_problem = if interrupted.is_some() {
        None
    } else {
        runtime
            .block_on(control.run_hooks(&m.on_run_end, "on-run-end"))
            .err()
    };
    let rows: Vec<ResultRow> = selected
        .iter()
        .filter_map(|&i| results.get(&i).map(|r| (i, r)))
        .map(|(i, r)| ResultRow {
            node: &m.nodes[i].unique_id,
            status: r.status.as_str(),
            started_at: r.started_at,
            seconds: r.seconds,
            rows: r.rows,
            failures: r.failures,
            error: r.problem.as_ref().map(|p| p.message.as_str()),
        })
        .collect();
    if let Err(e) = runtime.block_on(control.record_results(
        &m.invocation_id,
        options.command,
        &rows,
        options.run_results_retention_days,
    )) {
        options.log.warn(&format!(
            "could not record the results in pm_meta.run_results: {}",
            e.message
        ));
    }
    Ok(Ran {
        results,
        end_problem,
        interrupted,
    })
}

/// Counts of a run's results by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub pass: usize,
    pub warn: usize,
    pub error: usize,
    pub skip: usize,
}

impl Tally {
    pub fn of(statuses: impl Iterator<Item = Status>) -> Tally {
        let mut t = Tally::default();
        for s in statuses {
            match s {
                Status::Success | Status::Pass => t.pass += 1,
                Status::Warn => t.warn += 1,
                Status::Skipped => t.skip += 1,
                s if s.is_failure() => t.error += 1,
                _ => {}
            }
        }
        t
    }
}
