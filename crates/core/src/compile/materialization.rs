//! Each node's materialization, parsed once: the enum every later module
//! matches on. An unknown name is a compile error pointing at where it is set.

use super::config_keys::{value_span, where_set};
use super::Draft;
use crate::error::{closest, did_you_mean, Code, Problem, Problems};
use crate::loader::config::{self, Config};
use crate::loader::Project;
use crate::manifest::{Materialization, ResourceType};
use serde_json::Value as Json;
use std::collections::HashSet;

/// The materialization a node has before its own `config()` call is seen.
pub(super) fn provisional(rt: ResourceType, cfg: &Config) -> Option<Materialization> {
    match rt {
        ResourceType::Seed => Some(Materialization::Seed),
        ResourceType::Snapshot => Some(Materialization::Snapshot),
        ResourceType::Test => Some(Materialization::Test),
        ResourceType::Source
        | ResourceType::Exposure
        | ResourceType::UnitTest
        | ResourceType::SemanticModel
        | ResourceType::Metric
        | ResourceType::SavedQuery => None,
        ResourceType::Model | ResourceType::Analysis => Some(
            config::get_str(cfg, "materialized")
                .and_then(Materialization::for_model)
                .unwrap_or(Materialization::View),
        ),
    }
}

/// Parses every model's and analysis' final `materialized` config. `custom`
/// holds the names of the project's `{% materialization %}` blocks.
pub(super) fn settle(
    project: &Project,
    drafts: &mut [Draft],
    custom: &HashSet<String>,
    problems: &mut Problems,
) {
    for d in drafts.iter_mut() {
        let n = &mut d.node;
        if !matches!(
            n.resource_type,
            ResourceType::Model | ResourceType::Analysis
        ) || !config::enabled(&n.config)
        {
            continue;
        }
        let value = n
            .config
            .get("materialized")
            .cloned()
            .unwrap_or(Json::from("view"));
        let parsed = value.as_str().and_then(|name| {
            Materialization::for_model(name).or_else(|| {
                custom
                    .contains(name)
                    .then(|| Materialization::Custom(name.into()))
            })
        });
        match parsed {
            Some(m) => n.materialized = Some(m),
            None => problems.push(unknown(project, n, &value, custom)),
        }
    }
}

fn unknown(
    project: &Project,
    n: &crate::manifest::Node,
    value: &Json,
    custom: &HashSet<String>,
) -> Problem {
    let shown = value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string);
    let mut own: Vec<&str> = custom.iter().map(String::as_str).collect();
    own.sort_unstable();
    let known: Vec<&str> = Materialization::FOR_MODELS
        .iter()
        .copied()
        .chain(own)
        .collect();
    let problem = Problem::new(
        Code::CompileMaterialization,
        format!(
            "{} `{}` is materialized as `{shown}`, which is not a materialization",
            n.resource_type.as_str(),
            n.name
        ),
    )
    .help(did_you_mean(
        &closest(&shown, known.iter().copied()),
        &format!(
            "set materialized to one of {} (in config(), its YAML or the project file)",
            known.join(", ")
        ),
    ));
    match where_set(project, n, |text| value_span(text, "materialized", &shown)) {
        Some((file, text, span)) => problem.in_file(&file, text).label(span, "set here"),
        None => problem
            .in_file(
                &n.original_file_path,
                project.text_of(&n.original_file_path),
            )
            .label(0..0, format!("this {}", n.resource_type.as_str())),
    }
}
