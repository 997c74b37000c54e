//! `pm run-operation MACRO --args '{...}'`: calls a macro with the warehouse
//! at hand, as dbt's run-operation does.

use super::Session;
use crate::cli::RunOperationArgs;
use pm_core::error::{Code, Problem, Result};
use pm_core::output::Log;
use pm_core::settings::Settings;
use serde_json::{Map, Value as Json};
use std::sync::Arc;

/// `--args` as a mapping of keyword arguments.
fn arguments(text: Option<&str>) -> Result<Map<String, Json>> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(Map::new());
    };
    match serde_yaml::from_str::<Json>(text) {
        Ok(Json::Object(m)) => Ok(m),
        Ok(Json::Null) => Ok(Map::new()),
        Ok(other) => Err(Problem::new(
            Code::RunOperationArgs,
            format!("--args must be a YAML mapping of keyword arguments, not `{other}`"),
        )
        .help("write them as --args '{name: value, other: 2}'")
        .into()),
        Err(e) => Err(Problem::new(
            Code::RunOperationArgs,
            format!("--args is not valid YAML: {e}"),
        )
        .help("write them as --args '{name: value, other: 2}'")
        .into()),
    }
}

pub fn run(g: &Settings, args: &RunOperationArgs, log: Log) -> Result<i32> {
    let started = std::time::Instant::now();
    let arguments = arguments(args.args.as_deref())?;
    let s = Session::open(g, "run-operation", log)?;
    let c = s.compile()?;
    let endpoint = s.endpoint()?;
    let runtime = pm_runner::pipeline::runtime()?;
    let renderer = c.run_renderer.clone();
    let name = args.macro_name.clone();
    let outcome = runtime.block_on(async {
        let connection = pm_postgres::render::RenderConnection::open(&endpoint).await?;
        tokio::task::spawn_blocking(move || {
            renderer.operation(&name, &arguments, Arc::new(connection))
        })
        .await
        .map_err(|e| {
            pm_core::error::Problems::from(Problem::new(
                Code::RunOperationStopped,
                format!("the operation stopped: {e}"),
            ))
        })
    })?;
    match outcome {
        Ok(lines) => {
            for line in lines {
                log.info(&line);
            }
            log.info(&format!(
                "Ran {} in {:.2}s",
                args.macro_name,
                started.elapsed().as_secs_f64()
            ));
            Ok(0)
        }
        // An unknown macro is a mistake in the command: nothing ran.
        Err(p) if p.code == Code::RunOperationUnknownMacro => Err(p.into()),
        Err(p) => {
            log.problems(p.into());
            Ok(1)
        }
    }
}
