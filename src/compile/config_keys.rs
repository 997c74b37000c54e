//! Config keys pm does not know: kept (templates read them with
//! `config.get()`), and reported once per place they are set, as dbt 1.10+
//! warns of custom keys under `config:`.

use crate::error::closest;
use crate::loader::config::{Config, ConfigTree};
use crate::loader::properties::PropertiesFile;
use crate::loader::Project;

/// Every config key dbt 1.11 and dbt-postgres define, for any resource.
#[rustfmt::skip]
pub const KNOWN_KEYS: &[&str] = &[
    // all resources
    "enabled", "tags", "meta", "docs", "schema", "database", "alias", "materialized",
    "pre-hook", "post-hook", "persist_docs", "full_refresh", "grants", "contract",
    "access", "group", "quoting", "packages", "event_time", "sql_header",
    // models
    "on_schema_change", "on_configuration_change", "unique_key", "incremental_strategy",
    "incremental_predicates", "merge_update_columns", "merge_exclude_columns",
    "batch_size", "lookback", "begin", "concurrent_batches", "indexes", "unlogged",
    // seeds
    "column_types", "delimiter", "quote_columns",
    // data tests
    "severity", "warn_if", "error_if", "fail_calc", "store_failures", "store_failures_as",
    "limit", "where",
    // snapshots
    "strategy", "updated_at", "check_cols", "target_schema", "target_database",
    "invalidate_hard_deletes", "hard_deletes", "dbt_valid_to_current",
    "snapshot_meta_column_names",
    // sources
    "loaded_at_field", "loaded_at_query", "freshness",
];

/// One warning line per unknown key and place: `file:line: ...`.
pub fn warnings(project: &Project) -> Vec<String> {
    let mut out = Vec::new();
    for tree in [
        &project.models_config,
        &project.seeds_config,
        &project.tests_config,
        &project.snapshots_config,
        &project.sources_config,
    ] {
        tree_warnings(project, tree, &mut out);
    }
    for props in &project.properties {
        yaml_warnings(props, &mut out);
    }
    out
}

fn tree_warnings(project: &Project, tree: &ConfigTree, out: &mut Vec<String>) {
    for key in unknown(&tree.config) {
        let line = key_line(&project.project_text, key, 1);
        out.push(warning(&project.project_file, line, key));
    }
    for child in tree.children.values() {
        tree_warnings(project, child, out);
    }
}

fn yaml_warnings(props: &PropertiesFile, out: &mut Vec<String>) {
    let mut report = |config: &Config, from_line: usize| {
        for key in unknown(config) {
            let line = key_line(&props.text, key, from_line);
            out.push(warning(&props.path, line, key));
        }
    };
    for p in props
        .models
        .iter()
        .chain(&props.seeds)
        .chain(&props.snapshots)
        .chain(&props.analyses)
    {
        report(&p.config, p.line);
    }
    for s in &props.sources {
        report(&s.config, s.line);
        for t in &s.tables {
            report(&t.config, t.line);
        }
    }
    for e in &props.exposures {
        report(&e.config, e.line);
    }
}

fn unknown(config: &Config) -> impl Iterator<Item = &str> {
    config
        .keys()
        .map(String::as_str)
        .filter(|k| !KNOWN_KEYS.contains(k))
}

/// The 1-based line where `key:` (or `+key:`) is written, at or after `from`.
fn key_line(text: &str, key: &str, from: usize) -> usize {
    let written = |l: &str| {
        let l = l.trim_start().trim_start_matches("- ");
        let l = l.strip_prefix('+').unwrap_or(l);
        l.strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with(':'))
    };
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find(|(_, l)| written(l))
        .map_or(from, |(i, _)| i + 1)
}

fn warning(file: &str, line: usize, key: &str) -> String {
    let hint = match closest(key, KNOWN_KEYS.iter().copied()).first() {
        Some(k) => format!("did you mean `{k}`? "),
        None => String::new(),
    };
    format!(
        "{file}:{line}: `{key}` is not a config key pm or dbt knows; {hint}it is kept for templates \
         (config.get('{key}')); put values of your own under `meta:`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_line_of_a_key() {
        let text = "models:\n  - name: a\n    config:\n      materialised: table\n";
        assert_eq!(key_line(text, "materialised", 2), 4);
        let project = "models:\n  p:\n    +materialised: table\n";
        assert_eq!(key_line(project, "materialised", 1), 3);
        assert!(warning("x.yml", 4, "materialised").contains("did you mean `materialized`?"));
    }
}
