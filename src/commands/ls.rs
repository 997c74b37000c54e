//! `pm ls`: the selected nodes, one a line.

use super::Session;
use crate::cli::{LsArgs, LsOutput};
use pm_core::error::{Code, Problem, Result};
use pm_core::manifest::layer::semantic_layer;
use pm_core::manifest::{Node, ResourceType};
use pm_core::output::Log;
use pm_core::semantic::definition::Definition;
use pm_core::semantic::Layer;
use pm_core::settings::Settings;
use serde_json::{json, Value as Json};
use std::io::Write;

pub fn run(g: &Settings, args: &LsArgs, log: Log) -> Result<i32> {
    let s = Session::open(g, "list", log)?;
    let c = s.compile()?;
    let mut types = Vec::new();
    for t in &args.resource_type {
        if t == "all" || t == "default" {
            continue;
        }
        match ResourceType::parse(t) {
            Some(rt) => types.push(rt),
            None => {
                let names: Vec<&str> = ResourceType::ALL.iter().map(|r| r.as_str()).collect();
                return Err(Problem::new(
                    Code::CliResourceType,
                    format!("unknown resource type `{t}`"),
                )
                .help(format!("resource types: {}", names.join(", ")))
                .into());
            }
        }
    }
    let selected = s.select(&c, &args.select)?;
    let layer = semantic_layer(&c.manifest.nodes);
    let mut lines: Vec<String> = selected
        .iter()
        .map(|&i| &c.manifest.nodes[i])
        .filter(|n| types.is_empty() || types.contains(&n.resource_type))
        .map(|n| line(n, args, &layer))
        .collect();
    lines.sort();
    lines.dedup();
    let mut out = std::io::stdout().lock();
    for l in &lines {
        if writeln!(out, "{l}").is_err() {
            break; // stdout closed (e.g. piped into head)
        }
    }
    if lines.is_empty() {
        log.warn("no nodes selected");
    }
    super::release_at_exit((s, c));
    Ok(0)
}

fn line(n: &Node, args: &LsArgs, layer: &Layer) -> String {
    match args.output {
        LsOutput::Name => n.name.clone(),
        LsOutput::Path => n.original_file_path.clone(),
        LsOutput::Selector => n.selector_string(),
        LsOutput::Json => {
            let mut full = json!({
                "name": n.name,
                "resource_type": n.resource_type.as_str(),
                "package_name": n.package_name,
                "original_file_path": n.original_file_path,
                "unique_id": n.unique_id,
                "alias": n.alias,
                "schema": n.schema,
                "database": n.database,
                "config": n.config,
                "tags": n.tags(),
                "depends_on": {"nodes": n.depends_on, "macros": n.depends_on_macros},
                "relation_name": n.relation_name(),
            });
            // A metric: what `pm query` can group it by.
            if let (Some(Definition::Metric(m)), Json::Object(o)) =
                (n.semantic.as_deref(), &mut full)
            {
                o.insert("label".into(), Json::from(m.label.clone()));
                o.insert("description".into(), Json::from(m.description.clone()));
                o.insert("type".into(), Json::from(m.metric_type.as_str()));
                o.insert(
                    "dimensions".into(),
                    json!(pm_core::semantic::query::group_by_names(layer, &m.name)
                        .unwrap_or_default()),
                );
            }
            if args.output_keys.is_empty() {
                full.to_string()
            } else {
                let mut o = serde_json::Map::new();
                for k in &args.output_keys {
                    o.insert(k.clone(), full.get(k).cloned().unwrap_or(Json::Null));
                }
                Json::Object(o).to_string()
            }
        }
    }
}
