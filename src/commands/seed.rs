//! `pm seed`: load the selected seeds.

use super::Session;
use crate::adapter::load::{load_seed, Replaced};
use crate::adapter::Endpoint;
use crate::cli::{GlobalArgs, SeedArgs};
use crate::error::{Problems, Result};
use crate::manifest::ResourceType;
use crate::materialize::seed;
use crate::output::Log;
use std::time::Instant;

pub fn run(g: &GlobalArgs, args: &SeedArgs, log: Log) -> Result<i32> {
    let started = Instant::now();
    let mut s = Session::open(g, "seed", log)?;
    s.options.full_refresh = args.full_refresh;
    let c = s.compile()?;
    let selected: Vec<usize> = s
        .select(&c, &args.select)?
        .into_iter()
        .filter(|&i| c.manifest.nodes[i].resource_type == ResourceType::Seed)
        .collect();
    if selected.is_empty() {
        log.warn("no seeds selected");
        return Ok(0);
    }
    let endpoint = Endpoint::resolve(&s.project.root, &s.options.target)?;
    let rt = super::db::runtime()?;
    let mut client = rt.block_on(endpoint.connect())?;
    let total = selected.len();
    let width = total.to_string().len();
    let (mut pass, mut error) = (0, 0);
    let mut failures = Problems::default();
    for (k, &i) in selected.iter().enumerate() {
        let node = &c.manifest.nodes[i];
        let t0 = Instant::now();
        let result = seed::inspect(&s.project.root, node).and_then(|table| {
            rt.block_on(load_seed(
                &mut client,
                &s.project.root,
                node,
                &table,
                args.full_refresh,
            ))
        });
        let secs = t0.elapsed().as_secs_f64();
        let label = format!("seed {}.{}", node.schema, node.alias);
        match result {
            Ok((rows, replaced)) => {
                pass += 1;
                let how = match &replaced {
                    Replaced::Created => "created".to_string(),
                    Replaced::Swapped => "replaced".to_string(),
                    Replaced::Refilled => "refilled (views depend on it)".to_string(),
                    Replaced::DroppedDependents(v) => {
                        format!("replaced, dropped dependent views {}", v.join(", "))
                    }
                };
                log.info(&format!(
                    "{:>width$} of {total} OK     {label} [{rows} rows in {secs:.2}s, {how}]",
                    k + 1
                ));
            }
            Err(p) => {
                error += 1;
                log.info(&format!(
                    "{:>width$} of {total} ERROR  {label} [{secs:.2}s]",
                    k + 1
                ));
                failures.push(p);
            }
        }
    }
    log.info(&format!(
        "Done in {:.2}s. PASS={pass} ERROR={error} TOTAL={total}",
        started.elapsed().as_secs_f64()
    ));
    let code = if error > 0 { 1 } else { 0 };
    if !failures.is_empty() {
        log.problems(failures);
    }
    super::release_at_exit((s, c));
    Ok(code)
}
