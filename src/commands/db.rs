//! `pm db …` and `pm debug`.

use crate::cli::DbAction;
use pm_core::error::{Code, Problem, Result};
use pm_core::loader;
use pm_core::output::Log;
use pm_core::settings::Settings;
use pm_postgres::embedded::{Cluster, Status};
use pm_postgres::Endpoint;
use std::io::{IsTerminal, Write};

pub fn run(g: &Settings, action: &DbAction, log: Log) -> Result<i32> {
    let root = loader::find_root(g.project_dir.as_deref())?;
    let cluster = Cluster::for_project(&root, &g.env.server)?;
    let mut out = std::io::stdout().lock();
    match action {
        DbAction::Start { workers } => start(&cluster, *workers, log)?,
        DbAction::Stop => {
            if cluster.stop_all()? {
                log.info("stopped the local PostgreSQL");
            } else {
                log.info("the local PostgreSQL is not running");
            }
        }
        DbAction::Status => {
            let state = state_text(
                cluster.status(),
                "not created (it is created on first use, or with `pm db start`)",
            );
            let _ = writeln!(out, "state:     {state}");
            let _ = writeln!(out, "data:      {}", cluster.data_dir.display());
            let _ = writeln!(out, "socket:    {}", cluster.socket_dir.display());
            let _ = writeln!(out, "log:       {}", cluster.log_file.display());
            let _ = writeln!(out, "binaries:  {}", cluster.bin_dir.display());
            let _ = writeln!(
                out,
                "server as: {}",
                cluster
                    .run_as
                    .as_ref()
                    .map(|u| format!("OS user {} (pm runs as root)", u.name))
                    .unwrap_or_else(|| "the current user".into())
            );
            let _ = writeln!(out, "url:       {}", cluster.url());
            for w in cluster.workers() {
                let state = state_text(w.status(), "not created");
                let _ = writeln!(
                    out,
                    "worker {}:  {state}, data {}, port {}",
                    w.worker.unwrap_or_default(),
                    w.data_dir.display(),
                    w.port
                );
            }
        }
        DbAction::Url { role: None } => {
            let _ = writeln!(out, "{}", cluster.url());
        }
        DbAction::Url { role: Some(role) } => {
            let url = pm_runner::pipeline::runtime()?.block_on(cluster.role_url(role))?;
            let _ = writeln!(out, "{url}");
        }
        DbAction::Reset { yes } => {
            if !yes {
                if !std::io::stdin().is_terminal() {
                    return Err(Problem::new(
                        Code::DbReset,
                        "pm db reset deletes the local database and everything in it",
                    )
                    .help("pass --yes to confirm")
                    .into());
                }
                eprint!(
                    "Delete {} and everything in it? [y/N] ",
                    cluster.data_dir.display()
                );
                let mut answer = String::new();
                let _ = std::io::stdin().read_line(&mut answer);
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    log.info("left as it was");
                    return Ok(0);
                }
            }
            cluster.reset()?;
            log.info(&format!("deleted {}", cluster.data_dir.display()));
        }
    }
    Ok(0)
}

/// How `pm db status` says a server's state.
fn state_text(status: Status, absent: &str) -> String {
    match status {
        Status::Absent => absent.to_string(),
        Status::Stopped => "stopped".to_string(),
        Status::Running { pid } => format!("running (pid {pid})"),
    }
}

/// `pm db start [--workers N]`: the server, or a local Citus cluster of a
/// coordinator and N workers (each worker's data under `.pm/worker<k>`).
fn start(cluster: &Cluster, workers: Option<usize>, log: Log) -> Result<()> {
    let existing = cluster.workers().len();
    let wanted = workers.unwrap_or(existing);
    if existing > 0 && wanted != existing {
        return Err(Problem::new(
            Code::DbWorkers,
            format!("the local cluster has {existing} workers, not {wanted}"),
        )
        .help("`pm db reset --yes` deletes it; then `pm db start --workers N` makes a new one")
        .into());
    }
    if wanted > 0 {
        prepare_citus(cluster, wanted)?;
    }
    if let Some(was) = cluster.moved_from() {
        log.warn(&format!(
            "this project's data folder was copied or moved from {}: its server now uses the socket folder {}",
            was.display(),
            cluster.socket_dir.display()
        ));
    }
    let started = cluster.start_all()?;
    // Connecting creates the `pm` database on first start.
    let rt = pm_runner::pipeline::runtime()?;
    rt.block_on(Endpoint::Embedded(Box::new(cluster.clone())).connect())?;
    let what = if wanted > 0 {
        rt.block_on(pm_postgres::citus::join(cluster, &cluster.workers()))?;
        format!("the local Citus cluster: a coordinator and {wanted} workers")
    } else {
        "the local PostgreSQL".to_string()
    };
    log.info(&if started {
        format!("started {what} ({})", cluster.url())
    } else {
        format!("{what} is already running ({})", cluster.url())
    });
    Ok(())
}

/// Every node of a local Citus cluster created and set to load Citus (a
/// running coordinator that did not is stopped, to start again with it).
fn prepare_citus(cluster: &Cluster, workers: usize) -> Result<()> {
    if !cluster.citus_installed() {
        return Err(Problem::new(
            Code::DbCitusMissing,
            format!(
                "a local Citus cluster needs the Citus extension, which is not installed for the PostgreSQL in {}",
                cluster.bin_dir.display()
            ),
        )
        .help("install it: `../shared/citus/install.sh` builds it from source (5-10 minutes), or install your distribution's citus package for this PostgreSQL")
        .into());
    }
    for node in std::iter::once(cluster.clone()).chain((1..=workers).map(|k| cluster.worker(k))) {
        node.init()?;
        if node.preload_citus()? && matches!(node.status(), Status::Running { .. }) {
            node.stop()?;
        }
    }
    cluster.set_worker_count(workers)
}

/// `pm debug`: what pm would use, and whether it can connect.
pub fn debug(g: &Settings, log: Log) -> Result<i32> {
    let session = super::Session::open(g, "debug", log)?;
    let (project, target) = (&session.project, &session.options.target);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "pm version:   {}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(
        out,
        "project:      {} ({})",
        project.name,
        project.root.join(&project.project_file).display()
    );
    let profiles = g
        .profile_dirs(&project.root)
        .into_iter()
        .map(|d| d.join("profiles.yml"))
        .find(|p| p.is_file());
    let _ = writeln!(
        out,
        "profiles.yml: {}",
        profiles
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "none (embedded local PostgreSQL)".into())
    );
    let _ = writeln!(
        out,
        "target:       {} (type {}, schema {}, threads {})",
        target.name, target.kind, target.schema, target.threads
    );
    let endpoint = session.endpoint()?;
    let _ = writeln!(out, "connection:   {}", endpoint.describe());
    let rt = pm_runner::pipeline::runtime()?;
    let version = rt.block_on(async {
        let client = endpoint.connect().await?;
        pm_postgres::server_version(&client).await
    })?;
    let _ = writeln!(out, "server:       {version}");
    let _ = writeln!(out, "connection test: OK");
    drop(out);
    log.info("all checks passed");
    Ok(0)
}
