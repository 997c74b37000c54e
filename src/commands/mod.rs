//! One function per command. Each receives plain structs from the CLI and
//! returns an exit code, or the problems that stopped it.

pub mod clean;
pub mod compile;
pub mod db;
pub mod deps;
pub mod docs;
pub mod freshness;
#[cfg(feature = "generate")]
pub mod generate;
pub mod init;
pub mod ls;
pub mod operation;
pub mod query;
#[cfg(feature = "report")]
pub mod report;
pub mod run;
pub mod serve;
pub mod show;

use crate::cli::SelectArgs;
use pm_core::compile::{CompileOptions, Compiled};
use pm_core::error::Result;
use pm_core::graph::selector::{self, PriorState, Request, Selectors};
use pm_core::loader::{self, profile, Project};
use pm_core::output::Log;
use pm_core::settings::Settings;
use pm_postgres::run::Postgres;
use pm_runner::pipeline::{self, Connections, RunCommand};
use std::path::PathBuf;

/// A loaded project with its target: what every command starts from.
pub struct Session {
    pub settings: Settings,
    pub project: Project,
    pub options: CompileOptions,
    pub log: Log,
}

impl Session {
    /// A var as templates read it: `--vars` over the project's `vars:`.
    pub fn var(&self, key: &str) -> Option<&serde_json::Value> {
        self.options
            .cli_vars
            .get(key)
            .or_else(|| self.project.vars.get(key))
    }

    pub fn open(g: &Settings, which: &str, log: Log) -> Result<Session> {
        let mut timer = pm_core::output::PhaseTimer::new("load");
        let root = loader::find_root(g.project_dir.as_deref())?;
        let project = loader::load(&root)?;
        timer.lap("profile");
        let mut target = profile::resolve(g, &project.root, project.profile.as_deref())?;
        pm_postgres::apply_database_url(&mut target, g.env.database_url.as_deref());
        // Said once per command, also when a command opens several sessions
        // (`pm generate --build`).
        static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if let (Some(line), None) = (&target.fallback, &target.database_url) {
            if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
                log.warn(line);
            }
        }
        let cli_vars = match &g.vars {
            Some(v) => loader::parse_cli_vars(v)?,
            None => Default::default(),
        };
        Ok(Session {
            settings: g.clone(),
            project,
            options: CompileOptions {
                target,
                cli_vars,
                which: which.to_string(),
                full_refresh: false,
                store_failures: false,
                empty: false,
                deferred: Default::default(),
                existing_incremental: Default::default(),
            },
            log,
        })
    }

    pub fn compile(&self) -> Result<Compiled> {
        let c = pm_core::compile::compile(&self.project, &self.options)?;
        for w in &c.warnings {
            self.log.warn(w);
        }
        for (node, line) in &c.logs {
            self.log.info(&format!("{node}: {line}"));
        }
        Ok(c)
    }

    /// Where this command's connections go.
    pub fn endpoint(&self) -> Result<pm_postgres::Endpoint> {
        pm_postgres::Endpoint::resolve(
            &self.project.root,
            &self.options.target,
            &self.settings.env.server,
        )
    }

    /// Opens a run of `jobs` nodes on the target: its own connection and
    /// its builders'. This is where a run's warehouse is chosen.
    pub fn connect(&self, jobs: usize) -> Result<Connections<Postgres>> {
        let endpoint = self.endpoint()?;
        let runtime = pipeline::runtime()?;
        let threads = pipeline::builder_count(self.options.target.threads, jobs);
        let (warehouse, control) = runtime.block_on(Postgres::open(endpoint, threads))?;
        Ok(Connections {
            runtime,
            warehouse,
            control,
            threads,
        })
    }

    pub fn target_dir(&self) -> PathBuf {
        self.project.root.join(&self.project.target_path)
    }

    /// The selected nodes `command` runs, in manifest order.
    pub fn select_to_run(
        &self,
        c: &Compiled,
        args: &SelectArgs,
        command: RunCommand,
    ) -> Result<Vec<usize>> {
        let m = &c.manifest;
        Ok(self
            .select(c, args)?
            .into_iter()
            .filter(|&i| command.runs(&m.nodes[i]))
            .collect())
    }

    /// Indexes of the nodes the selection flags pick.
    pub fn select(&self, c: &Compiled, args: &SelectArgs) -> Result<Vec<usize>> {
        if !args.unique_ids.is_empty() {
            let mut chosen: Vec<usize> = args
                .unique_ids
                .iter()
                .filter_map(|id| c.manifest.index.get(id).copied())
                .collect();
            chosen.sort_unstable();
            return Ok(chosen);
        }
        let selectors = Selectors::from_json(self.project.selectors.as_ref())?;
        let state = match &args.state {
            Some(dir) => Some(PriorState::load(dir)?),
            None => None,
        };
        let req = Request {
            select: args.select.clone(),
            exclude: args.exclude.clone(),
            selector: args.selector.clone(),
            indirect: args.indirect_selection.into(),
        };
        selector::select(&c.manifest, &selectors, &req, state.as_ref())
    }
}

/// `pm parse`: load, render and check everything; write the manifest.
pub fn parse(g: &Settings, log: Log) -> Result<i32> {
    let started = std::time::Instant::now();
    let s = Session::open(g, "parse", log)?;
    let c = s.compile()?;
    let path = pm_runner::artifacts::write_manifest(&s.target_dir(), &c.manifest, false)?;
    log.info(&format!(
        "Parsed {} in {:.2}s; wrote {}",
        summary(&c.manifest),
        started.elapsed().as_secs_f64(),
        path.strip_prefix(&s.project.root)
            .unwrap_or(&path)
            .display()
    ));
    Ok(0)
}

/// Hands large structures back to the OS at exit instead of freeing them one
/// allocation at a time: for a 10,000-model manifest that is a few percent of
/// the run. Only for data that lives until the process ends.
pub fn release_at_exit<T>(value: T) {
    std::mem::forget(value);
}

/// "12 models, 3 seeds, 20 tests, 4 sources".
pub fn summary(m: &pm_core::manifest::Manifest) -> String {
    use pm_core::manifest::ResourceType as R;
    let mut parts = Vec::new();
    for (rt, one, many) in [
        (R::Model, "model", "models"),
        (R::Seed, "seed", "seeds"),
        (R::Snapshot, "snapshot", "snapshots"),
        (R::Analysis, "analysis", "analyses"),
        (R::Test, "test", "tests"),
        (R::Source, "source", "sources"),
        (R::Exposure, "exposure", "exposures"),
        (R::SemanticModel, "semantic model", "semantic models"),
        (R::Metric, "metric", "metrics"),
        (R::SavedQuery, "saved query", "saved queries"),
    ] {
        let n = m.nodes.iter().filter(|x| x.resource_type == rt).count();
        if n > 0 {
            parts.push(format!("{n} {}", if n == 1 { one } else { many }));
        }
    }
    parts.push(format!(
        "{} macros",
        m.macros
            .iter()
            .filter(|x| x.package_name == m.project_name)
            .count()
    ));
    parts.join(", ")
}
