//! `pm compile`.

use super::Session;
use crate::cli::SelectArgs;
use pm_core::compile::Compiled;
use pm_core::error::Result;
use pm_core::output::Log;
use pm_core::settings::Settings;
use std::io::Write;
use std::sync::Arc;

/// The selected nodes whose templates use the warehouse are rendered with it
/// when one is at hand (a configured target, or the embedded database
/// already running), as dbt's compile does; nothing is started for it. A
/// node that cannot be rendered so keeps its compile-time SQL, with a warning.
fn render_with_warehouse(s: &Session, c: &mut Compiled, selected: &[usize], log: Log) {
    let uses: Vec<usize> = selected
        .iter()
        .copied()
        .filter(|&i| c.run_renderer.renders(&c.manifest.nodes[i].unique_id))
        .collect();
    if uses.is_empty() {
        return;
    }
    let endpoint = match s.endpoint() {
        Ok(e) if e.is_up_without_starting() => e,
        _ => {
            log.info(&format!(
                "{} node(s) use the warehouse while rendering; compiled without it (start the database, pm db start, to render them with it)",
                uses.len()
            ));
            return;
        }
    };
    let Ok(runtime) = pm_runner::pipeline::runtime() else {
        return;
    };
    let renderer = c.run_renderer.clone();
    let ids: Vec<String> = uses
        .iter()
        .map(|&i| c.manifest.nodes[i].unique_id.clone())
        .collect();
    let rendered = runtime.block_on(async {
        let connection = match pm_postgres::render::RenderConnection::open(&endpoint).await {
            Ok(conn) => Arc::new(conn),
            Err(p) => return Err(p),
        };
        let done = tokio::task::spawn_blocking(move || {
            ids.iter()
                .map(|id| (id.clone(), renderer.render(id, connection.clone())))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        Ok(done)
    });
    let Ok(rendered) = rendered else {
        log.warn("cannot connect to render the nodes that use the warehouse; compiled without it");
        return;
    };
    for (id, result) in rendered {
        let Some(&i) = c.manifest.index.get(&id) else {
            continue;
        };
        match result {
            Some(Ok(sql)) => c.manifest.nodes[i].compiled_code = Some(sql),
            Some(Err(p)) => log.warn(&format!(
                "{} keeps its SQL rendered without the warehouse: {}",
                c.manifest.nodes[i].name, p.message
            )),
            None => {}
        }
    }
}

pub fn run(g: &Settings, args: &SelectArgs, log: Log) -> Result<i32> {
    let started = std::time::Instant::now();
    let s = Session::open(g, "compile", log)?;
    let mut c = s.compile()?;
    let mut timer = pm_core::output::PhaseTimer::new("compile command");
    timer.lap("select");
    let selected = s.select(&c, args)?;
    render_with_warehouse(&s, &mut c, &selected, log);
    let target = s.target_dir();
    timer.lap("write compiled files and manifest");
    // Mostly file-system work on one side, serialisation on the other: side by side.
    let (written, manifest) = rayon::join(
        || pm_runner::artifacts::write_compiled(&target, &c.manifest, &selected),
        || pm_runner::artifacts::write_manifest(&target, &c.manifest, true),
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
                && !matches!(
                    c.manifest.nodes[i].resource_type,
                    pm_core::manifest::ResourceType::Test
                        | pm_core::manifest::ResourceType::UnitTest
                )
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
