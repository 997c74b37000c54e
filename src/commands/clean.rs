//! `pm clean`: deletes the folders `clean-targets:` names.

use pm_core::error::{Code, Problem, Problems, Result};
use pm_core::output::Log;
use pm_core::settings::Settings;
use std::path::{Component, Path};

/// A clean target inside the project (not the project itself, nor a path
/// that leaves it), as dbt refuses to clean outside the project.
fn inside_project(target: &str) -> bool {
    let path = Path::new(target);
    !path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && path.components().any(|c| matches!(c, Component::Normal(_)))
}

pub fn run(g: &Settings, log: Log) -> Result<i32> {
    let root = pm_core::loader::find_root(g.project_dir.as_deref())?;
    let targets = pm_core::loader::clean_targets(&root)?;
    let mut problems = Problems::default();
    for t in &targets {
        if !inside_project(t) {
            problems.push(
                Problem::new(
                    Code::CleanOutside,
                    format!("clean-targets names `{t}`, which is not a folder inside the project"),
                )
                .help("pm clean deletes only folders inside the project: name them relative to it (target, dbt_packages)"),
            );
        }
    }
    problems.into_result()?;
    for t in &targets {
        let path = root.join(t);
        match std::fs::remove_dir_all(&path) {
            Ok(()) => log.info(&format!("Deleted {t}/")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                log.info(&format!("{t}/ does not exist"))
            }
            Err(e) => {
                return Err(Problem::new(
                    Code::CleanDelete,
                    format!("cannot delete {}: {e}", path.display()),
                )
                .help("check the folder's permissions")
                .into())
            }
        }
    }
    Ok(0)
}
