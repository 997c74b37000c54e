//! `pm db …` and `pm debug`.

use crate::adapter::embedded::{Cluster, Status};
use crate::adapter::Endpoint;
use crate::cli::DbAction;
use crate::error::{Problem, Result};
use crate::loader;
use crate::output::Log;
use crate::settings::Settings;
use std::io::{IsTerminal, Write};

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Problem::new(
                "runtime::start",
                format!("cannot start the async runtime: {e}"),
            )
            .into()
        })
}

pub fn run(g: &Settings, action: &DbAction, log: Log) -> Result<i32> {
    let root = loader::find_root(g.project_dir.as_deref())?;
    let cluster = Cluster::for_project(&root, g.env.pg_bin.as_deref())?;
    let mut out = std::io::stdout().lock();
    match action {
        DbAction::Start => {
            let started = cluster.start()?;
            // Connecting creates the `pm` database on first start.
            let rt = runtime()?;
            rt.block_on(Endpoint::Embedded(Box::new(cluster.clone())).connect())?;
            log.info(&if started {
                format!("started the local PostgreSQL ({})", cluster.url())
            } else {
                format!(
                    "the local PostgreSQL is already running ({})",
                    cluster.url()
                )
            });
        }
        DbAction::Stop => {
            if cluster.stop()? {
                log.info("stopped the local PostgreSQL");
            } else {
                log.info("the local PostgreSQL is not running");
            }
        }
        DbAction::Status => {
            let state = match cluster.status() {
                Status::Absent => {
                    "not created (it is created on first use, or with `pm db start`)".to_string()
                }
                Status::Stopped => "stopped".to_string(),
                Status::Running { pid } => format!("running (pid {pid})"),
            };
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
        }
        DbAction::Url => {
            let _ = writeln!(out, "{}", cluster.url());
        }
        DbAction::Reset { yes } => {
            if !yes {
                if !std::io::stdin().is_terminal() {
                    return Err(Problem::new(
                        "db::reset",
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
    let rt = runtime()?;
    let version = rt.block_on(async {
        let client = endpoint.connect().await?;
        crate::adapter::server_version(&client).await
    })?;
    let _ = writeln!(out, "server:       {version}");
    let _ = writeln!(out, "connection test: OK");
    drop(out);
    log.info("all checks passed");
    Ok(0)
}
