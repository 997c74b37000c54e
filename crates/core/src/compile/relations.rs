//! Where each node's relation lives (database, schema, alias) by the
//! built-in rules or the project's `generate_*_name` macros, and the checks
//! that every name is unique and fits PostgreSQL.

use super::context::ResolvedRelation;
use crate::compile::{context, Draft};
use crate::error::{Code, Problem, Problems};
use crate::loader::config::{self, Config};
use crate::loader::profile::Target;
use crate::loader::Project;
use crate::manifest::{Materialization, Node, ResourceType};
use rayon::iter::{IndexedParallelIterator, IntoParallelRefIterator, ParallelIterator};
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};

/// ref() finds resources by name, so two enabled models, seeds or snapshots
/// may not share one.
pub(super) fn check_unique_names(project: &Project, drafts: &[Draft], problems: &mut Problems) {
    // A source table declared in two files.
    let mut sources: HashMap<&str, &Node> = HashMap::new();
    for d in drafts
        .iter()
        .filter(|d| d.node.resource_type == ResourceType::Source)
    {
        let n = &d.node;
        match sources.get(n.unique_id.as_str()) {
            None => {
                sources.insert(&n.unique_id, n);
            }
            Some(first) => {
                let text = project.text_of(&n.original_file_path);
                let source = n.source.as_ref().map_or("", |s| s.source_name.as_str());
                problems.push(
                    Problem::new(
                        Code::ProjectDuplicateSource,
                        format!(
                            "source table `{source}.{}` is declared twice: in {} and {}",
                            n.name, first.original_file_path, n.original_file_path
                        ),
                    )
                    .in_file(&n.original_file_path, text)
                    .label_line(n.line, "second declaration")
                    .help("declare each source table once"),
                );
            }
        }
    }
    let mut first_by_name: HashMap<&str, &Node> = HashMap::new();
    for d in drafts {
        if !d.node.resource_type.is_refable() || !config::enabled(&d.node.config) {
            continue;
        }
        if let Some(first) = first_by_name.get(d.node.name.as_str()) {
            let text = project.text_of(&d.node.original_file_path);
            problems.push(
                Problem::new(
                    Code::ProjectDuplicateName,
                    format!(
                        "two resources are named `{}`: {} and {}",
                        d.node.name, first.original_file_path, d.node.original_file_path
                    ),
                )
                .in_file(&d.node.original_file_path, text)
                .label(0..0, "second resource with this name")
                .help("ref() finds resources by name: rename one of the files (or disable one with enabled: false)"),
            );
        } else {
            first_by_name.insert(&d.node.name, &d.node);
        }
    }
}

/// PostgreSQL's longest name, in bytes.
pub(super) const MAX_IDENTIFIER: usize = 63;

/// Every relation a run would build has a name PostgreSQL accepts, and no
/// two resources would build the same one (the last would silently win).
pub(super) fn check_relations(
    project: &Project,
    drafts: &[Draft],
    resolved: &[ResolvedRelation],
    disabled: &HashSet<usize>,
    problems: &mut Problems,
) {
    let text_of = |path: &str| project.text_of(path);
    let mut first: HashMap<(&str, &str, &str), usize> = HashMap::new();
    for (i, d) in drafts.iter().enumerate() {
        let n = &d.node;
        let rel = &resolved[i];
        if !matches!(
            n.resource_type,
            ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot
        ) || rel.ephemeral()
            || disabled.contains(&i)
            || !config::enabled(&n.config)
        {
            continue;
        }
        for (what, name) in [("schema", &rel.schema), ("name", &rel.identifier)] {
            if name.len() > MAX_IDENTIFIER {
                problems.push(
                    Problem::new(
                        Code::ProjectNameTooLong,
                        format!(
                            "{} `{}` ({}) would be built with the {what} `{name}`, {} bytes long: PostgreSQL allows {MAX_IDENTIFIER}",
                            n.resource_type.as_str(),
                            n.name,
                            n.original_file_path,
                            name.len()
                        ),
                    )
                    .in_file(&n.original_file_path, text_of(&n.original_file_path))
                    .label(0..0, format!("this {}", n.resource_type.as_str()))
                    .help(if what == "name" {
                        "give it a shorter alias: {{ config(alias='...') }}, or rename the file"
                    } else {
                        "give it a shorter schema"
                    }),
                );
            }
        }
        let key = (
            rel.database.as_str(),
            rel.schema.as_str(),
            rel.identifier.as_str(),
        );
        match first.get(&key) {
            None => {
                first.insert(key, i);
            }
            Some(&j) => {
                let other = &drafts[j].node;
                problems.push(
                    Problem::new(
                        Code::ProjectSameRelation,
                        format!(
                            "{} and {} would both be built as \"{}\".\"{}\".\"{}\" ({} and {})",
                            other.unique_id,
                            n.unique_id,
                            rel.database,
                            rel.schema,
                            rel.identifier,
                            other.original_file_path,
                            n.original_file_path
                        ),
                    )
                    .in_file(&n.original_file_path, text_of(&n.original_file_path))
                    .label(0..0, "the second resource with this relation")
                    .help("give one of them another alias or schema (config alias= / schema=), or disable it"),
                );
            }
        }
    }
}

/// The relation a node gets with the built-in naming rules.
pub(super) fn default_relation(n: &Node, cfg: &Config, target: &Target) -> ResolvedRelation {
    if n.resource_type == ResourceType::Source {
        return ResolvedRelation {
            database: n.database.clone(),
            schema: n.schema.clone(),
            identifier: n.alias.clone(),
            materialized: Materialization::Table,
        };
    }
    let custom_schema = config::get_str(cfg, "schema");
    // A snapshot's legacy target_schema / target_database are used as given.
    let snapshot_target = |key: &str| {
        (n.resource_type == ResourceType::Snapshot)
            .then(|| config::get_str(cfg, key))
            .flatten()
    };
    let schema = match (snapshot_target("target_schema"), custom_schema) {
        (Some(s), _) => s.trim().to_string(),
        (None, Some(s)) => format!("{}_{}", target.schema, s.trim()),
        (None, None) => target.schema.clone(),
    };
    // An analysis is never inlined: only a model can be ephemeral.
    let materialized = n
        .materialized
        .clone()
        .filter(|m| n.resource_type == ResourceType::Model || *m != Materialization::Ephemeral)
        .unwrap_or(Materialization::Table);
    ResolvedRelation {
        database: snapshot_target("target_database")
            .or_else(|| config::get_str(cfg, "database"))
            .map(str::to_string)
            .unwrap_or_else(|| target.database.clone()),
        schema,
        identifier: config::get_str(cfg, "alias")
            .map(str::to_string)
            .unwrap_or_else(|| n.name.clone()),
        materialized,
    }
}

/// Final relations of every node: the built-in rules, or the project's own
/// `generate_schema_name` / `generate_alias_name` / `generate_database_name`.
pub(super) fn resolve_relations(
    env: &minijinja::Environment<'static>,
    drafts: &[Draft],
    target: &Target,
    overrides: &HashSet<&str>,
) -> std::result::Result<Vec<ResolvedRelation>, Problem> {
    drafts
        .par_iter()
        .enumerate()
        .map(|(i, d)| {
            let n = &d.node;
            let mut rel = default_relation(n, &n.config, target);
            if n.resource_type == ResourceType::Source || overrides.is_empty() {
                return Ok(rel);
            }
            let node_json = serde_json::json!({
                "name": n.name, "unique_id": n.unique_id, "resource_type": n.resource_type.as_str(),
                "fqn": n.fqn, "path": n.path, "original_file_path": n.original_file_path,
                "package_name": n.package_name, "config": n.config, "tags": n.tags(),
            });
            let call = |macro_name: &str, key: &str| -> std::result::Result<Option<String>, Problem> {
                if !overrides.contains(macro_name) {
                    return Ok(None);
                }
                let custom = n.config.get(key).cloned().unwrap_or(Json::Null);
                let ctx = minijinja::context! { custom => context::to_value(&custom), node => context::to_value(&node_json) };
                let src = format!("{{{{ {macro_name}(custom, node) }}}}");
                let (r, _) = context::with_render_state(i, || env.render_str(&src, ctx));
                r.map(|s| Some(s.trim().to_string())).map_err(|e| {
                    Problem::new(Code::CompileNaming, format!("{macro_name} failed for {}: {e}", n.unique_id))
                        .help(format!("fix the project's {macro_name} macro"))
                })
            };
            if let Some(s) = call("generate_schema_name", "schema")? {
                rel.schema = s;
            }
            if let Some(a) = call("generate_alias_name", "alias")? {
                rel.identifier = a;
            }
            if let Some(db) = call("generate_database_name", "database")? {
                rel.database = db;
            }
            Ok(rel)
        })
        .collect()
}
