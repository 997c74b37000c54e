//! `pm compile`.

use super::Session;
use crate::cli::SelectArgs;
use crate::error::Result;
use crate::output::Log;
use crate::settings::Settings;
use std::io::Write;

pub fn run(g: &Settings, args: &SelectArgs, log: Log) -> Result<i32> {
    let started = std::time::Instant::now();
    let s = Session::open(g, "compile", log)?;
    let c = s.compile()?;
    let mut timer = crate::output::PhaseTimer::new("compile command");
    timer.lap("select");
    let selected = s.select(&c, args)?;
    let target = s.target_dir();
    timer.lap("write compiled files and manifest");
    // Mostly file-system work on one side, serialisation on the other: side by side.
    let (written, manifest) = rayon::join(
        || crate::artifacts::write_compiled(&target, &c.manifest, &selected),
        || crate::artifacts::write_manifest(&target, &c.manifest, true),
    );
    let written = written?;
    manifest?;
    timer.lap("done");
    log.info(&format!(
        "Compiled {written} of {} nodes in {:.2}s ({}); wrote {}/compiled/ and {}/manifest.json",
        c.manifest.nodes.len(),
        started.elapsed().as_secs_f64(),
        super::summary(&c.manifest),
        s.project.target_path,
        s.project.target_path,
    ));
    // One node asked for by name: show its SQL, as dbt does.
    let with_sql: Vec<usize> = selected
        .iter()
        .copied()
        .filter(|&i| {
            c.manifest.nodes[i].compiled_code.is_some()
                && c.manifest.nodes[i].resource_type != crate::manifest::ResourceType::Test
        })
        .collect();
    if !args.select.is_empty() && with_sql.len() == 1 {
        let n = &c.manifest.nodes[with_sql[0]];
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "{}",
            n.compiled_code.as_deref().unwrap_or("").trim_end()
        );
    }
    super::release_at_exit((s, c));
    Ok(0)
}
