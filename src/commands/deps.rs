//! `pm deps [--upgrade] [--lock]`: installs the declared packages (see
//! `crate::deps`).

use crate::cli::DepsArgs;
use crate::deps::{self, DepsOptions};
use pm_core::error::Result;
use pm_core::loader;
use pm_core::output::Log;
use pm_core::settings::Settings;

pub fn run(g: &Settings, args: &DepsArgs, log: Log) -> Result<i32> {
    let root = loader::find_root(g.project_dir.as_deref())?;
    let project = loader::load_without_packages(&root)?;
    if loader::packages::declared(&project)?.is_empty() {
        log.info("No packages are declared (packages.yml or dependencies.yml); nothing to install");
        return Ok(0);
    }
    let options = DepsOptions {
        hub_url: g.env.package_hub_url.clone(),
        upgrade: args.upgrade,
        lock_only: args.lock,
    };
    let installed = deps::install(&project, &options, &mut |line| log.info(line))?;
    if installed.lock_written {
        log.info("Wrote package-lock.yml");
    }
    let verb = if args.lock { "Resolved" } else { "Installed" };
    log.info(&format!(
        "{verb} {} package(s) into {}/",
        installed.packages.len(),
        loader::packages::install_path(&project)
    ));
    Ok(0)
}
