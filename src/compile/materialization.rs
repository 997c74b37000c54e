//! Each node's materialization, parsed once: the enum every later module
//! matches on. An unknown name is a compile error pointing at where it is set.

use super::Draft;
use crate::error::{closest, did_you_mean, Problem, Problems};
use crate::loader::config::{self, Config};
use crate::loader::Project;
use crate::manifest::{Materialization, ResourceType};
use serde_json::Value as Json;
use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;

/// The materialization a node has before its own `config()` call is seen.
pub(super) fn provisional(rt: ResourceType, cfg: &Config) -> Option<Materialization> {
    match rt {
        ResourceType::Seed => Some(Materialization::Seed),
        ResourceType::Snapshot => Some(Materialization::Snapshot),
        ResourceType::Test => Some(Materialization::Test),
        ResourceType::Source | ResourceType::Exposure => None,
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
        "compile::materialization",
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
    match where_set(project, n, &shown) {
        Some((file, text, span)) => problem.in_file(&file, text).label(span, "set here"),
        None => problem
            .in_file(
                &n.original_file_path,
                project
                    .files
                    .iter()
                    .find(|f| f.path == n.original_file_path)
                    .map_or_else(|| Arc::from(""), |f| f.text.clone()),
            )
            .label(0..0, format!("this {}", n.resource_type.as_str())),
    }
}

/// The file and span where a node's `materialized` gets `value`: its own
/// file first, then its YAML, then the project file (as dbt's precedence).
fn where_set(
    project: &Project,
    n: &crate::manifest::Node,
    value: &str,
) -> Option<(String, Arc<str>, Range<usize>)> {
    let own = std::iter::once((n.original_file_path.clone(), n.raw_code.clone()));
    let yaml = n.patch_path.iter().filter_map(|p| {
        project
            .properties
            .iter()
            .find(|f| &f.path == p)
            .map(|f| (f.path.clone(), f.text.clone()))
    });
    let project_file =
        std::iter::once((project.project_file.clone(), project.project_text.clone()));
    own.chain(yaml)
        .chain(project_file)
        .find_map(|(file, text)| value_span(&text, "materialized", value).map(|s| (file, text, s)))
}

/// The span of `value` given to `key` in a config call (`key='value'`) or
/// YAML (`key: value`, `+key: "value"`).
pub(super) fn value_span(text: &str, key: &str, value: &str) -> Option<Range<usize>> {
    text.match_indices(key).find_map(|(at, _)| {
        let after = &text[at + key.len()..];
        let rest = after.trim_start_matches([' ', '\t']);
        let rest = rest.strip_prefix(['=', ':'])?;
        let rest = rest.trim_start_matches([' ', '\t']);
        let quoted = rest.starts_with(['\'', '"']);
        let body = if quoted { &rest[1..] } else { rest };
        let end_ok = body
            .strip_prefix(value)?
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        end_ok.then(|| {
            let start = text.len() - body.len();
            start..start + value.len()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::value_span;

    #[test]
    fn finds_the_value_in_config_calls_and_yaml() {
        let sql = "{{ config(materialized = 'tabel') }}\nselect 1";
        let s = value_span(sql, "materialized", "tabel").unwrap();
        assert_eq!(&sql[s], "tabel");
        let yaml = "models:\n  p:\n    +materialized: tabel\n";
        let s = value_span(yaml, "materialized", "tabel").unwrap();
        assert_eq!(&yaml[s.clone()], "tabel");
        assert_eq!(s.start, yaml.rfind("tabel").unwrap());
        assert!(value_span("materialized='table_x'", "materialized", "table").is_none());
    }
}
