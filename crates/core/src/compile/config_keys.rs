//! Config keys: the known ones typed into each node's `NodeConfig` (a value
//! of the wrong type is an error where it is set); the ones pm does not know
//! kept (templates read them with `config.get()`) and reported once per place
//! they are set, as dbt 1.10+ warns of custom keys under `config:`.

use super::Draft;
use crate::error::{closest, Code, Problem, Problems};
use crate::loader::config::{self, Config, ConfigTree};
use crate::loader::properties::PropertiesFile;
use crate::loader::Project;
use crate::manifest::node_config::WrongType;
use crate::manifest::{Node, NodeConfig};
use serde_json::Value as Json;
use std::ops::Range;
use std::sync::Arc;

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
    // Citus (pm's; dbt-citus' names where it has them)
    "distributed_by", "colocate_with", "shard_count", "reference",
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
        &project.unit_tests_config,
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

/// The file and the span `find` picks out where a node's config key is set:
/// its own file first, then its YAML, then the project file (as dbt's
/// precedence).
pub(super) fn where_set(
    project: &Project,
    n: &Node,
    find: impl Fn(&str) -> Option<Range<usize>>,
) -> Option<(String, Arc<str>, Range<usize>)> {
    let own = std::iter::once((n.original_file_path.clone(), n.raw_code.clone()));
    let yaml = n.patch_path.iter().map(|p| (p.clone(), project.text_of(p)));
    // The root's project file goes over a package's own.
    let project_file = project
        .all()
        .filter(|p| p.is_root() || p.name == n.package_name)
        .map(|p| (p.project_file.clone(), p.project_text.clone()));
    own.chain(yaml)
        .chain(project_file)
        .find_map(|(file, text)| find(&text).map(|s| (file, text, s)))
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

/// The span of `key` itself where it is given a value (`key=`, `key:`).
fn key_span(text: &str, key: &str) -> Option<Range<usize>> {
    text.match_indices(key).find_map(|(at, _)| {
        let before_ok = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let rest = text[at + key.len()..].trim_start_matches([' ', '\t']);
        (before_ok && rest.starts_with(['=', ':'])).then(|| at..at + key.len())
    })
}

/// Each node's known config keys, typed. A value of the wrong type is a
/// compile error where it is set, for an enabled node; a disabled node's
/// config is never used, so it keeps the defaults.
pub(super) fn type_check(project: &Project, drafts: &mut [Draft], problems: &mut Problems) {
    // Nodes of one folder share their config until one changes it: parse
    // each shared config once.
    let mut parsed: std::collections::HashMap<*const Config, Arc<NodeConfig>> =
        std::collections::HashMap::new();
    for d in drafts.iter_mut() {
        let key = Arc::as_ptr(&d.node.config);
        if let Some(typed) = parsed.get(&key) {
            d.node.typed_config = typed.clone();
            continue;
        }
        match NodeConfig::parse(&d.node.config) {
            Ok(typed) => {
                let typed = Arc::new(typed);
                parsed.insert(key, typed.clone());
                d.node.typed_config = typed;
            }
            Err(wrong) if config::enabled(&d.node.config) => {
                problems.push(wrong_type(project, &d.node, &wrong))
            }
            Err(_) => {}
        }
    }
}

/// Config that dbt-postgres acts on and pm does not (yet): a value that
/// would change what dbt builds is an error naming the key, never silently
/// ignored. The README lists what pm honours.
fn not_honoured(n: &Node) -> Option<(&'static str, String)> {
    let c = &n.config;
    let text = |k: &str| c.get(k).and_then(Json::as_str);
    if let Some(v) = text("on_configuration_change").filter(|v| *v != "apply") {
        return Some(("on_configuration_change", format!("on_configuration_change `{v}` is not supported: pm applies a changed materialized view's query and indexes (`apply`, dbt's default)")));
    }
    if text("incremental_strategy") == Some("microbatch") {
        return Some(("incremental_strategy", "incremental_strategy `microbatch` is not supported by pm yet: use delete+insert over a recomputed window (see PulseMetrics' recomputed_days)".into()));
    }
    if let Some(Json::Object(q)) = c.get("quoting") {
        if q.values().any(|v| v == &Json::Bool(false)) {
            return Some(("quoting", "pm quotes every database, schema and identifier: `quoting: false` is not supported".into()));
        }
    }
    if c.contains_key("loaded_at_query") {
        return Some((
            "loaded_at_query",
            "`loaded_at_query` is not supported by pm yet: use `loaded_at_field`".into(),
        ));
    }
    let persisted = c.get("persist_docs").is_some_and(|p| {
        ["relation", "columns"]
            .iter()
            .any(|k| p.get(k).and_then(Json::as_bool) == Some(true))
    });
    if persisted && text("materialized") == Some("materialized_view") {
        return Some(("persist_docs", "persist_docs on a materialized view is not supported: pm keeps its query's stamp in the view's comment".into()));
    }
    None
}

/// An error for each enabled node whose config asks what pm does not do.
pub(super) fn refuse_not_honoured(project: &Project, drafts: &[Draft], problems: &mut Problems) {
    for d in drafts {
        let n = &d.node;
        if !config::enabled(&n.config) {
            continue;
        }
        let Some((key, message)) = not_honoured(n) else {
            continue;
        };
        let problem = Problem::new(
            Code::CompileConfigUnsupported,
            format!("{} `{}`: {message}", n.resource_type.as_str(), n.name),
        )
        .help(format!(
            "remove `{key}` (the README's \"Config keys\" lists what pm honours)"
        ));
        problems.push(match where_set(project, n, |t| key_span(t, key)) {
            Some((file, text, span)) => problem.in_file(&file, text).label(span, "set here"),
            None => problem,
        });
    }
}

fn wrong_type(project: &Project, n: &Node, wrong: &WrongType) -> Problem {
    let key = wrong.key.as_str();
    let value = n.config.get(key).and_then(|v| match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(_) | Json::Bool(_) => Some(v.to_string()),
        _ => None,
    });
    let find = |text: &str| {
        value
            .as_deref()
            .and_then(|v| value_span(text, key, v))
            .or_else(|| key_span(text, key))
    };
    let problem = Problem::new(
        Code::CompileConfigType,
        format!(
            "{} `{}`: config `{key}`: {}",
            n.resource_type.as_str(),
            n.name,
            wrong.message
        ),
    )
    .help(format!(
        "give `{key}` a value of the type dbt documents for it (in config(), its YAML or the project file)"
    ));
    match where_set(project, n, find) {
        Some((file, text, span)) => problem.in_file(&file, text).label(span, "set here"),
        None => problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let s = key_span("x_limit: 1\nlimit: [1]", "limit").unwrap();
        assert_eq!(s.start, 11);
    }

    #[test]
    fn finds_the_line_of_a_key() {
        let text = "models:\n  - name: a\n    config:\n      materialised: table\n";
        assert_eq!(key_line(text, "materialised", 2), 4);
        let project = "models:\n  p:\n    +materialised: table\n";
        assert_eq!(key_line(project, "materialised", 1), 3);
        assert!(warning("x.yml", 4, "materialised").contains("did you mean `materialized`?"));
    }
}
