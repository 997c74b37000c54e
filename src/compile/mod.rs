//! Compilation: project files → [`Manifest`].
//!
//! 1. Nodes are built from files and YAML with their pre-render config
//!    (defaults < project folder config < YAML `config:`).
//! 2. Every node renders once, in parallel. `ref()`/`source()` record edges and
//!    render as placeholders; `config()` calls are collected.
//! 3. With every config known, relations (database, schema, alias) are
//!    resolved, the DAG is built and checked for cycles.
//! 4. Placeholders are replaced by relation names (nodes that read a
//!    relation's attributes while rendering render again instead) and
//!    ephemeral models are injected as CTEs.

pub mod blocks;
pub mod context;
pub mod ephemeral;
pub mod errors;
pub mod generic_tests;
mod materialization;

use crate::dag::Dag;
use crate::error::{Problem, Problems, Result};
use crate::loader::config::{self, Config};
use crate::loader::profile::Target;
use crate::loader::{FileKind, Project, SourceText};
use crate::manifest::*;
use context::{NodeMeta, Rel, RenderState, Shared};
use indexmap::IndexMap;
use rayon::prelude::*;
use serde_json::{Map, Value as Json};
use sha2::Digest;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, OnceLock};

/// What a compilation needs besides the project.
#[derive(Debug, Clone)]
pub struct CompileOptions {
    pub target: Target,
    /// `--vars`, over the project's `vars:`.
    pub cli_vars: Map<String, Json>,
    /// The command (`compile`, `run`, …), seen by templates as `flags.WHICH`.
    pub which: String,
    pub full_refresh: bool,
    /// `--store-failures`, seen by templates as `flags.STORE_FAILURES`.
    pub store_failures: bool,
    /// Incremental models whose relation exists in the warehouse: for them
    /// `is_incremental()` is true (unless `full_refresh`). Empty when compiling
    /// without a database.
    pub existing_incremental: HashSet<String>,
}

/// A compiled manifest and what compilation had to say.
#[derive(Debug)]
pub struct Compiled {
    pub manifest: Manifest,
    pub warnings: Vec<String>,
    /// Lines from `log(..., info=True)` and `print()`, by node.
    pub logs: Vec<(String, String)>,
}

/// How a node's SQL template is made.
#[derive(Debug, Clone)]
enum Template {
    None,
    /// The node's file text (or a masked copy of the same length).
    File(Arc<str>),
    /// A generated template with its context (generic tests, exposures);
    /// `model` is the unique id of the relation a test checks.
    Generated {
        source: String,
        args: Map<String, Json>,
        model: Option<String>,
    },
}

/// A resource that YAML tests can be attached to.
struct TestTarget<'a> {
    name: String,
    /// `ref('x')` or `source('a', 'b')`.
    expr: String,
    attached: String,
    is_source: bool,
    tests: &'a [crate::loader::properties::TestDef],
    columns: &'a [crate::loader::properties::ColumnDef],
    file_key: String,
}

/// A node being built, with how its SQL renders. The node is boxed so that
/// sorting and partitioning drafts moves pointers, not kilobyte structs.
struct Draft {
    node: Box<Node>,
    template: Template,
}

/// The name pm's own macros (built-in tests, dbt's helpers) go by.
pub const BUILTIN_MACROS_FILE: &str = "pm/builtins.sql";

fn file_template(text: &str) -> Template {
    Template::File(Arc::from(
        blocks::mutable_literals(text).as_deref().unwrap_or(text),
    ))
}

fn sha256_hex(text: &str) -> String {
    context::hex(&sha2::Sha256::digest(text.as_bytes()))
}

fn model_defaults() -> Config {
    let mut c = Config::new();
    c.insert("enabled".into(), Json::Bool(true));
    c.insert("materialized".into(), Json::from("view"));
    c.insert("tags".into(), Json::Array(vec![]));
    c.insert("meta".into(), Json::Object(Map::new()));
    c.insert("pre-hook".into(), Json::Array(vec![]));
    c.insert("post-hook".into(), Json::Array(vec![]));
    c.insert("persist_docs".into(), Json::Object(Map::new()));
    c.insert("grants".into(), Json::Object(Map::new()));
    c.insert("on_schema_change".into(), Json::from("ignore"));
    c.insert("docs".into(), serde_json::json!({"show": true}));
    c
}

fn seed_defaults() -> Config {
    let mut c = model_defaults();
    c.insert("materialized".into(), Json::from("seed"));
    c.insert("column_types".into(), Json::Object(Map::new()));
    c.insert("delimiter".into(), Json::from(","));
    c.insert("quote_columns".into(), Json::Null);
    c
}

/// A resource kind and the fqn of a folder, joined with `/`.
type FolderKey = (FileKind, String);

/// Folder-level configs, computed once per folder and shared by its nodes.
struct FolderConfigs<'a> {
    project: &'a Project,
    cache: std::sync::Mutex<HashMap<FolderKey, Arc<Config>>>,
}

impl<'a> FolderConfigs<'a> {
    fn new(project: &'a Project) -> Self {
        FolderConfigs {
            project,
            cache: Default::default(),
        }
    }

    fn tree(&self, kind: FileKind) -> &'a config::ConfigTree {
        match kind {
            FileKind::Seed => &self.project.seeds_config,
            FileKind::Test => &self.project.tests_config,
            FileKind::Snapshot => &self.project.snapshots_config,
            _ => &self.project.models_config,
        }
    }

    fn compute(&self, kind: FileKind, fqn: &[String]) -> Config {
        let mut c = match kind {
            FileKind::Seed => seed_defaults(),
            FileKind::Test => generic_tests::default_config(),
            _ => model_defaults(),
        };
        config::merge(&mut c, &self.tree(kind).config_for(fqn));
        if kind == FileKind::Snapshot {
            c.insert("materialized".into(), Json::from("snapshot"));
        }
        c
    }

    /// The config a node with this fqn gets from defaults and the project file.
    fn get(&self, kind: FileKind, fqn: &[String]) -> Arc<Config> {
        if self.tree(kind).has_leaf(fqn) {
            return Arc::new(self.compute(kind, fqn));
        }
        let key = (kind, fqn[..fqn.len().saturating_sub(1)].join("/"));
        if let Some(c) = self.cache.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return c;
        }
        let c = Arc::new(self.compute(kind, fqn));
        if let Ok(mut m) = self.cache.lock() {
            m.insert(key, c.clone());
        }
        c
    }
}

fn new_node(
    rt: ResourceType,
    project: &Project,
    name: String,
    file: &SourceText,
    fqn: Vec<String>,
    config: Arc<Config>,
) -> Node {
    Node {
        unique_id: format!("{}.{}.{}", rt.as_str(), project.name, name),
        resource_type: rt,
        package_name: project.name.clone(),
        name,
        path: file.resource_path.clone(),
        original_file_path: file.path.clone(),
        patch_path: None,
        line: 1,
        fqn,
        raw_code: file.text.clone(),
        checksum: if rt == ResourceType::Seed && file.text.is_empty() {
            format!("path:{}", file.path)
        } else {
            sha256_hex(&file.text)
        },
        materialized: materialization::provisional(rt, &config),
        config,
        description: String::new(),
        columns: IndexMap::new(),
        meta: Map::new(),
        docs: Json::Null,
        database: String::new(),
        schema: String::new(),
        alias: String::new(),
        refs: Vec::new(),
        sources: Vec::new(),
        depends_on: Vec::new(),
        depends_on_macros: Vec::new(),
        compiled_code: None,
        extra_ctes: Vec::new(),
        test: None,
        source: None,
        exposure: None,
        extra: Map::new(),
        pre_hooks: Vec::new(),
        post_hooks: Vec::new(),
    }
}

fn fqn_of(project: &Project, file: &SourceText, name: &str) -> Vec<String> {
    let mut fqn = vec![project.name.clone()];
    fqn.extend(file.folders());
    fqn.push(name.to_string());
    fqn
}

fn columns_of(defs: &[crate::loader::properties::ColumnDef]) -> IndexMap<String, Column> {
    defs.iter()
        .map(|c| {
            (
                c.name.clone(),
                Column {
                    name: c.name.clone(),
                    description: c.description.clone(),
                    meta: c.meta.clone(),
                    data_type: c.data_type.clone(),
                    quote: c.quote,
                    tags: c.tags.clone(),
                    extra: c.extra.clone(),
                },
            )
        })
        .collect()
}

/// Folders of a YAML file relative to the resource path it sits under.
fn yml_folders(project: &Project, path: &str) -> Vec<String> {
    let all_paths = project
        .model_paths
        .iter()
        .chain(&project.seed_paths)
        .chain(&project.snapshot_paths)
        .chain(&project.analysis_paths)
        .chain(&project.test_paths)
        .chain(&project.macro_paths);
    for p in all_paths {
        if let Some(rest) = path.strip_prefix(&format!("{p}/")) {
            let mut parts: Vec<String> = rest.split('/').map(str::to_string).collect();
            parts.pop();
            return parts;
        }
    }
    Vec::new()
}

/// Compiles the project.
pub fn compile(project: &Project, opts: &CompileOptions) -> Result<Compiled> {
    let mut timer = crate::output::PhaseTimer::new("compile");
    let mut problems = Problems::default();
    let mut warnings = Vec::new();

    // ---- macros
    let MacroSet {
        templates: macro_templates,
        infos: macros,
        texts: macro_texts,
        names: macro_names,
        defined_at: project_macro_at,
        materializations,
    } = collect_macros(project, &mut problems);

    // ---- docs blocks
    timer.lap("docs blocks");
    check_snapshot_files(project, &mut problems);
    let docs = collect_docs(project, &mut problems);
    let doc_map: HashMap<String, String> = docs
        .iter()
        .map(|d| (d.name.clone(), d.block_contents.clone()))
        .collect();
    check_doc_references(project, &doc_map, &mut problems);

    // ---- nodes from files
    timer.lap("nodes from files");
    let folder_configs = FolderConfigs::new(project);
    let mut drafts: Vec<Draft> = project
        .files
        .par_iter()
        .flat_map_iter(|f| file_drafts(project, &folder_configs, f))
        .collect();

    // ---- YAML patches
    timer.lap("YAML patches");
    apply_patches(project, &mut drafts, &doc_map, &mut warnings, &mut problems);

    // ---- sources and exposures
    timer.lap("sources and exposures");
    for props in &project.properties {
        drafts.extend(yaml_resources(project, props, &opts.target, &doc_map));
    }

    // ---- generic tests
    timer.lap("generic tests");
    let attachable: HashMap<(ResourceType, String), String> = drafts
        .iter()
        .filter(|d| d.node.resource_type != ResourceType::Source)
        .map(|d| {
            (
                (d.node.resource_type, d.node.name.clone()),
                d.node.unique_id.clone(),
            )
        })
        .collect();
    let per_file: Vec<(Vec<Draft>, Vec<Problem>)> = project
        .properties
        .par_iter()
        .map(|props| yaml_tests(project, props, &attachable, &macro_names, &folder_configs))
        .collect();
    let mut test_ids: HashMap<String, (String, usize)> = HashMap::new();
    let mut test_drafts = Vec::new();
    for (tests, file_problems) in per_file {
        for p in file_problems {
            problems.push(p);
        }
        for d in tests {
            let path = d.node.original_file_path.clone();
            if let Some((other, line)) = test_ids.get(&d.node.unique_id) {
                let text = project
                    .properties
                    .iter()
                    .find(|p| p.path == path)
                    .map(|p| p.text.clone())
                    .unwrap_or_else(|| Arc::from(""));
                problems.push(
                    Problem::new(
                        "project::duplicate_test",
                        format!("test `{}` is declared twice", d.node.name),
                    )
                    .in_file(&path, text)
                    .label_line(d.node.line, "second declaration")
                    .help(format!(
                        "the first is in {other} line {line}; remove one, or give one a `name:`"
                    )),
                );
                continue;
            }
            test_ids.insert(d.node.unique_id.clone(), (path, d.node.line));
            test_drafts.push(d);
        }
    }
    drafts.extend(test_drafts);

    // ---- duplicates among ref-able names
    timer.lap("duplicates among ref-able names");
    check_unique_names(project, &drafts, &mut problems);
    problems.into_result()?;
    let mut problems = Problems::default();

    // ---- disabled (by project/YAML config) and ordering
    timer.lap("disabled (by project/YAML config) and ordering");
    let mut disabled: Vec<Node> = Vec::new();
    let mut enabled: Vec<Draft> = Vec::new();
    for d in drafts {
        if config::enabled(&d.node.config) {
            enabled.push(d);
        } else {
            disabled.push(*d.node);
        }
    }
    let disabled_ids: HashSet<String> = disabled.iter().map(|n| n.unique_id.clone()).collect();
    let (mut drafts, more_disabled): (Vec<Draft>, Vec<Draft>) =
        enabled.into_iter().partition(|d| {
            d.node
                .test
                .as_ref()
                .and_then(|t| t.attached_node.as_ref())
                .is_none_or(|a| !disabled_ids.contains(a))
        });
    disabled.extend(more_disabled.into_iter().map(|d| *d.node));
    drafts.sort_by(|a, b| a.node.unique_id.cmp(&b.node.unique_id));

    // ---- shared render data
    timer.lap("shared render data");
    let quoting = (true, true, true);
    let _ = quoting;
    let overrides: HashSet<&str> = [
        "generate_schema_name",
        "generate_alias_name",
        "generate_database_name",
    ]
    .into_iter()
    .filter(|m| project_macro_at.contains_key(*m))
    .collect();
    let mut vars = project.vars.clone();
    vars.extend(opts.cli_vars.clone());
    let metas: Vec<NodeMeta> = drafts
        .par_iter()
        .map(|d| {
            let n = &d.node;
            NodeMeta {
                unique_id: n.unique_id.clone(),
                name: n.name.clone(),
                resource_type: n.resource_type,
                fqn: n.fqn.clone(),
                original_file_path: n.original_file_path.clone(),
                path: n.path.clone(),
                config: n.config.clone(),
                provisional: default_relation(n, &n.config, &opts.target),
                description: n.description.clone(),
                source_name: n.source.as_ref().map(|s| s.source_name.clone()),
            }
        })
        .collect();
    let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
    let mut by_source = HashMap::new();
    for (i, d) in drafts.iter().enumerate() {
        if d.node.resource_type.is_refable() {
            by_name.entry(d.node.name.clone()).or_default().push(i);
        }
        if let Some(s) = &d.node.source {
            by_source.insert((s.source_name.clone(), d.node.name.clone()), i);
        }
    }
    let shared = Arc::new(Shared {
        project_name: project.name.clone(),
        target: opts.target.to_json(),
        vars,
        metas,
        by_name,
        by_source,
        disabled: disabled
            .iter()
            .filter(|n| n.resource_type.is_refable())
            .map(|n| n.name.clone())
            .collect(),
        resolved: OnceLock::new(),
        macro_names: macro_names.clone(),
        run_started_at: chrono::Utc::now(),
        invocation_id: invocation_id(),
        which: opts.which.clone(),
        full_refresh: opts.full_refresh,
        store_failures: opts.store_failures,
        existing_incremental: opts.existing_incremental.clone(),
    });
    let env = context::environment(&shared, macro_templates).map_err(|e| {
        let file = context::template_file(e.name().unwrap_or("macros")).to_string();
        let text = macro_texts
            .get(&file)
            .cloned()
            .unwrap_or_else(|| Arc::from(""));
        Problems::from(errors::jinja_problem(
            &e,
            None,
            &file,
            &text,
            None,
            &macro_names,
        ))
    })?;
    let files = errors::FileIndex {
        macro_texts: &macro_texts,
        macro_names: &macro_names,
        yaml_texts: project
            .properties
            .iter()
            .map(|p| (p.path.as_str(), p.text.clone()))
            .collect(),
    };

    // ---- phase one: render everything
    timer.lap("phase one: render everything");
    let renderer = Renderer::new(&env, &shared, &files, &drafts);
    let rendered: Vec<std::result::Result<Option<(String, RenderState)>, Problem>> = drafts
        .par_iter()
        .enumerate()
        .map(|(i, d)| renderer.render(i, d))
        .collect();
    let mut states: Vec<Option<(String, RenderState)>> = Vec::with_capacity(rendered.len());
    for r in rendered {
        match r {
            Ok(s) => states.push(s),
            Err(p) => {
                problems.push(p);
                states.push(None);
            }
        }
    }
    problems.into_result()?;
    let mut problems = Problems::default();

    // ---- configs from config() calls; relations
    timer.lap("configs from config() calls; relations");
    let mut logs = Vec::new();
    for (d, st) in drafts.iter_mut().zip(&states) {
        if let Some((_, st)) = st {
            if !st.config.is_empty() {
                config::merge(Arc::make_mut(&mut d.node.config), &st.config);
            }
            if d.node.resource_type == ResourceType::Snapshot
                && config::get_str(&d.node.config, "materialized") != Some("snapshot")
            {
                Arc::make_mut(&mut d.node.config)
                    .insert("materialized".into(), Json::from("snapshot"));
            }
            for l in &st.logs {
                logs.push((d.node.unique_id.clone(), l.clone()));
            }
        }
    }
    materialization::settle(project, &mut drafts, &materializations, &mut problems);
    // Nodes that disabled themselves with config(enabled=false) in their file.
    let mut self_disabled: HashSet<usize> = drafts
        .iter()
        .enumerate()
        .filter(|(_, d)| !config::enabled(&d.node.config))
        .map(|(i, _)| i)
        .collect();
    // Tests of a node that disabled itself go with it, as in dbt.
    if !self_disabled.is_empty() {
        let orphaned: Vec<usize> = drafts
            .iter()
            .enumerate()
            .filter(|(i, d)| {
                d.node.resource_type == ResourceType::Test
                    && states[*i]
                        .as_ref()
                        .is_some_and(|(_, st)| st.depends.iter().any(|p| self_disabled.contains(p)))
            })
            .map(|(i, _)| i)
            .collect();
        self_disabled.extend(orphaned);
    }
    let resolved =
        resolve_relations(&env, &drafts, &opts.target, &overrides).map_err(Problems::from)?;
    check_relations(project, &drafts, &resolved, &self_disabled, &mut problems);
    let _ = shared.resolved.set(resolved);

    // ---- edges
    timer.lap("edges");
    let mut edges = Vec::new();
    for (i, st) in states.iter().enumerate() {
        if let Some((_, st)) = st {
            for &p in &st.depends {
                if p != i || drafts[i].node.resource_type != ResourceType::Test {
                    edges.push((p, i));
                }
            }
        }
    }
    for (i, d) in drafts.iter().enumerate() {
        if self_disabled.contains(&i) {
            continue;
        }
        if let Some((_, st)) = &states[i] {
            for &p in &st.depends {
                if self_disabled.contains(&p) {
                    let target = &drafts[p].node;
                    problems.push(
                        Problem::new(
                            "compile::disabled_ref",
                            format!(
                                "{} depends on {}, which is disabled",
                                d.node.unique_id, target.unique_id
                            ),
                        )
                        .help(format!(
                            "enable {} or remove the reference from {}",
                            target.name, d.node.original_file_path
                        )),
                    );
                }
            }
        }
    }
    problems.into_result()?;
    let mut problems = Problems::default();
    let dag = Dag::build(drafts.len(), edges);
    for cycle in dag.cycles() {
        problems.push(errors::cycle_problem(
            &cycle,
            &drafts.iter().map(|d| &*d.node).collect::<Vec<_>>(),
            project,
        ));
    }
    problems.into_result()?;
    let mut problems = Problems::default();

    // ---- phase two: final SQL
    timer.lap("phase two: final SQL");
    let rels = shared.resolved.get().cloned().unwrap_or_default();
    let renderer = Renderer::new(&env, &shared, &files, &drafts);
    // Phase-one output is consumed here, so it is not held alongside the final SQL.
    let outputs: Vec<Option<String>> = states
        .iter_mut()
        .map(|s| s.as_mut().map(|(o, _)| std::mem::take(o)))
        .collect();
    let finals: Vec<std::result::Result<Option<String>, Problem>> = outputs
        .into_par_iter()
        .zip(drafts.par_iter())
        .enumerate()
        .map(|(i, (out, d))| match (out, &states[i]) {
            (Some(_), Some((_, st))) if st.needs_rerender => {
                renderer.render(i, d).map(|r| r.map(|(o, _)| o))
            }
            (Some(out), _) => Ok(Some(ephemeral::substitute(out, &rels))),
            (None, _) => Ok(None),
        })
        .collect();
    let mut compiled: Vec<Option<String>> = Vec::with_capacity(finals.len());
    for f in finals {
        match f {
            Ok(s) => compiled.push(s),
            Err(p) => {
                problems.push(p);
                compiled.push(None);
            }
        }
    }
    problems.into_result()?;

    // ---- hooks (Jinja too: `grant select on {{ this }} to reporter`)
    let mut problems = Problems::default();
    let render_hook = |i: Option<usize>, sql: &str| -> std::result::Result<String, Problem> {
        // on-run hooks have no node: `this` and `config` are empty there.
        let (r, st) = match i {
            Some(i) => context::with_render_state(i, || env.render_named_str("<hook>", sql, ())),
            None => (
                env.render_named_str("<hook>", sql, ()),
                RenderState::default(),
            ),
        };
        r.map_err(|e| {
            let what = i
                .map(|i| format!("a hook of {}", drafts[i].node.unique_id))
                .unwrap_or_else(|| "an on-run hook".into());
            Problem::new(
                "compile::hook",
                format!(
                    "cannot render {what}: {}",
                    st.failure
                        .map(|f| f.message)
                        .unwrap_or_else(|| e.to_string())
                ),
            )
            .help(format!("fix the hook `{sql}`"))
        })
    };
    let hook_sql = |v: &Json| -> Option<(String, bool)> {
        match v {
            Json::String(s) => Some((s.clone(), true)),
            Json::Object(o) => o.get("sql").and_then(Json::as_str).map(|s| {
                let transaction = !matches!(o.get("transaction"), Some(Json::Bool(false)));
                (s.to_string(), transaction)
            }),
            _ => None,
        }
    };
    let mut hooks: Vec<(Vec<Hook>, Vec<Hook>)> = Vec::with_capacity(drafts.len());
    for (i, d) in drafts.iter().enumerate() {
        let mut pair = (Vec::new(), Vec::new());
        for (key, out) in [("pre-hook", &mut pair.0), ("post-hook", &mut pair.1)] {
            if let Some(Json::Array(list)) = d.node.config.get(key) {
                for (h, transaction) in list.iter().filter_map(hook_sql) {
                    match render_hook(Some(i), &h) {
                        Ok(sql) => out.push(Hook { sql, transaction }),
                        Err(p) => problems.push(p),
                    }
                }
            }
        }
        hooks.push(pair);
    }
    let mut on_run = (Vec::new(), Vec::new());
    for (list, out) in [
        (&project.on_run_start, &mut on_run.0),
        (&project.on_run_end, &mut on_run.1),
    ] {
        for h in list {
            match render_hook(None, h) {
                Ok(sql) => out.push(sql),
                Err(p) => problems.push(p),
            }
        }
    }
    problems.into_result()?;

    // ---- assemble nodes
    timer.lap("assemble nodes");
    let eph: Vec<bool> = rels.iter().map(Rel::ephemeral).collect();
    let ctes = ephemeral::collect_ctes(&dag, &eph);
    // Ephemeral bodies are copied into their consumers; everything else moves.
    let bodies: HashMap<usize, String> = ctes
        .iter()
        .flatten()
        .filter_map(|&e| compiled[e].clone().map(|b| (e, b)))
        .collect();
    let built: Vec<Node> = drafts
        .into_par_iter()
        .zip(compiled.into_par_iter())
        .enumerate()
        .map(|(i, (d, sql))| {
            let mut node = d.node;
            let rel = &rels[i];
            if node.resource_type != ResourceType::Source {
                node.database = rel.database.clone();
                node.schema = rel.schema.clone();
                node.alias = rel.identifier.clone();
            }
            if let Some((_, st)) = &states[i] {
                node.refs = st.refs.clone();
                node.sources = st.sources.clone();
                node.depends_on_macros = st.macros.iter().cloned().collect();
            }
            (node.pre_hooks, node.post_hooks) = hooks[i].clone();
            node.depends_on = dag.parents[i]
                .iter()
                .map(|&p| shared.metas[p].unique_id.clone())
                .collect();
            if node.resource_type != ResourceType::Exposure {
                if let Some(sql) = sql {
                    let sql = if node.resource_type == ResourceType::Snapshot {
                        sql.trim().to_string()
                    } else {
                        sql
                    };
                    if ctes[i].is_empty() {
                        node.compiled_code = Some(sql);
                    } else {
                        let body = |e: usize| bodies.get(&e).cloned().unwrap_or_default();
                        let named: Vec<(String, String)> = ctes[i]
                            .iter()
                            .map(|&e| (format!("__dbt__cte__{}", rels[e].identifier), body(e)))
                            .collect();
                        node.compiled_code = Some(ephemeral::inject(&sql, &named));
                        node.extra_ctes = ctes[i]
                            .iter()
                            .map(|&e| (shared.metas[e].unique_id.clone(), body(e)))
                            .collect();
                    }
                }
            }
            *node
        })
        .collect();
    let nodes: Vec<Node> = if self_disabled.is_empty() {
        built
    } else {
        let mut kept = Vec::with_capacity(built.len());
        for (i, node) in built.into_iter().enumerate() {
            if self_disabled.contains(&i) {
                disabled.push(node);
            } else {
                kept.push(node);
            }
        }
        kept
    };
    // Removing self-disabled nodes shifts indexes: rebuild the DAG on what is left.
    let (nodes, dag) = if self_disabled.is_empty() {
        (nodes, dag)
    } else {
        let index: HashMap<&str, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.unique_id.as_str(), i))
            .collect();
        let edges: Vec<(usize, usize)> = nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| {
                n.depends_on
                    .iter()
                    .filter_map(|p| index.get(p.as_str()).map(|&p| (p, i)))
                    .collect::<Vec<_>>()
            })
            .collect();
        let dag = Dag::build(nodes.len(), edges);
        (nodes, dag)
    };
    disabled.sort_by(|a, b| a.unique_id.cmp(&b.unique_id));
    timer.lap("done");
    let index = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.unique_id.clone(), i))
        .collect();
    let selectors = project
        .selectors
        .as_ref()
        .map(|(_, j)| j.clone())
        .unwrap_or(Json::Null);
    Ok(Compiled {
        manifest: Manifest {
            project_name: project.name.clone(),
            target: opts.target.clone(),
            target_path: project.target_path.clone(),
            nodes,
            index,
            disabled,
            macros,
            docs,
            dag,
            selectors,
            invocation_id: shared.invocation_id.clone(),
            on_run_start: on_run.0,
            on_run_end: on_run.1,
            generated_at: shared
                .run_started_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        },
        warnings,
        logs,
    })
}

/// The nodes a file under a resource path defines (a snapshot file may hold several).
fn file_drafts(project: &Project, folders: &FolderConfigs, f: &SourceText) -> Vec<Draft> {
    let mut drafts = Vec::new();
    match f.kind {
        FileKind::Model | FileKind::Analysis => {
            let rt = if f.kind == FileKind::Model {
                ResourceType::Model
            } else {
                ResourceType::Analysis
            };
            let name = f.stem().to_string();
            let fqn = fqn_of(project, f, &name);
            let cfg = folders.get(f.kind, &fqn);
            let node = new_node(rt, project, name, f, fqn, cfg);
            drafts.push(Draft {
                template: file_template(&f.text),
                node: Box::new(node),
            });
        }
        FileKind::Seed => {
            let name = f.stem().to_string();
            let fqn = fqn_of(project, f, &name);
            let cfg = folders.get(FileKind::Seed, &fqn);
            let node = new_node(ResourceType::Seed, project, name, f, fqn, cfg);
            drafts.push(Draft {
                template: Template::None,
                node: Box::new(node),
            });
        }
        FileKind::Test => {
            let name = f.stem().to_string();
            let fqn = fqn_of(project, f, &name);
            let cfg = folders.get(FileKind::Test, &fqn);
            let mut node = new_node(ResourceType::Test, project, name, f, fqn, cfg);
            node.test = Some(Box::new(TestInfo {
                metadata: None,
                column_name: None,
                attached_node: None,
                file_key_name: None,
            }));
            drafts.push(Draft {
                template: file_template(&f.text),
                node: Box::new(node),
            });
        }
        FileKind::Snapshot => {
            for (name, masked) in blocks::snapshot_blocks(&f.text) {
                let fqn = fqn_of(project, f, &name);
                let cfg = folders.get(FileKind::Snapshot, &fqn);
                let mut node = new_node(ResourceType::Snapshot, project, name, f, fqn, cfg);
                node.raw_code = Arc::from(masked.trim());
                node.compiled_code = None;
                drafts.push(Draft {
                    template: file_template(&masked),
                    node: Box::new(node),
                });
            }
        }
        FileKind::Macro | FileKind::Docs => {}
    }
    drafts
}

/// Test nodes declared in one properties file, with the problems found.
fn yaml_tests(
    project: &Project,
    props: &crate::loader::properties::PropertiesFile,
    attachable: &HashMap<(ResourceType, String), String>,
    macro_names: &BTreeSet<String>,
    folder_configs: &FolderConfigs,
) -> (Vec<Draft>, Vec<Problem>) {
    let mut test_drafts = Vec::new();
    let mut problems = Vec::new();
    let folders = yml_folders(project, &props.path);
    let mut targets: Vec<TestTarget> = Vec::new();
    for (rt, key, patches) in [
        (ResourceType::Model, "models", &props.models),
        (ResourceType::Seed, "seeds", &props.seeds),
        (ResourceType::Snapshot, "snapshots", &props.snapshots),
    ] {
        for p in patches {
            let Some(i) = attachable.get(&(rt, p.name.clone())) else {
                continue;
            };
            targets.push(TestTarget {
                name: p.name.clone(),
                expr: format!("ref('{}')", p.name),
                attached: i.clone(),
                is_source: false,
                tests: &p.tests,
                columns: &p.columns,
                file_key: format!("{key}.{}", p.name),
            });
        }
    }
    for s in &props.sources {
        for t in &s.tables {
            targets.push(TestTarget {
                name: format!("{}_{}", s.name, t.name),
                expr: format!("source('{}', '{}')", s.name, t.name),
                attached: format!("source.{}.{}.{}", project.name, s.name, t.name),
                is_source: true,
                tests: &t.tests,
                columns: &t.columns,
                file_key: format!("sources.{}", s.name),
            });
        }
    }
    for TestTarget {
        name: target_name,
        expr: target_expr,
        attached,
        is_source,
        tests: model_tests,
        columns,
        file_key,
    } in targets
    {
        let attached = Some(attached);
        // (column, the column as the test's SQL names it, test): `quote: true`
        // columns are quoted, as dbt does.
        let mut all: Vec<(
            Option<&str>,
            Option<String>,
            &crate::loader::properties::TestDef,
        )> = model_tests.iter().map(|t| (None, None, t)).collect();
        for c in columns {
            let in_sql = if c.quote == Some(true) {
                crate::manifest::quote_ident(&c.name)
            } else {
                c.name.clone()
            };
            all.extend(
                c.tests
                    .iter()
                    .map(|t| (Some(c.name.as_str()), Some(in_sql.clone()), t)),
            );
        }
        for (column, column_sql, def) in all {
            let parsed = match generic_tests::parse_test(def) {
                Ok(p) => p,
                Err(msg) => {
                    problems.push(
                        Problem::new(
                            "yaml::test",
                            format!("invalid test in {}: {msg}", props.path),
                        )
                        .in_file(&props.path, props.text.clone())
                        .label_line(def.line, "this test")
                        .help(
                            "write a test as `- unique`, or `- accepted_values: {values: [a, b]}`",
                        ),
                    );
                    continue;
                }
            };
            let (short, full) =
                generic_tests::synthesize_name(&parsed, &target_name, is_source, column);
            let name = parsed.custom_name.clone().unwrap_or(short);
            let mut fqn = vec![project.name.clone()];
            fqn.extend(folders.iter().cloned());
            fqn.push(name.clone());
            let mut cfg = folder_configs.get(FileKind::Test, &fqn);
            if !parsed.config.is_empty() {
                config::merge(Arc::make_mut(&mut cfg), &parsed.config);
            }
            let file = SourceText {
                kind: FileKind::Test,
                path: props.path.clone(),
                resource_path: props.path.clone(),
                text: Arc::from(""),
            };
            let mut node = new_node(ResourceType::Test, project, name.clone(), &file, fqn, cfg);
            let hash =
                &sha256_hex(&format!("{full}|{}", attached.clone().unwrap_or_default()))[..10];
            node.unique_id = format!("test.{}.{}.{}", project.name, name, hash);
            node.line = def.line;
            node.description = parsed.description.clone();
            node.patch_path = Some(props.path.clone());
            let src = generic_tests::template_for(&parsed);
            node.raw_code = Arc::from(src.as_str());
            node.checksum = sha256_hex(&src);
            let mut kwargs = parsed.kwargs.clone();
            if let Some(c) = &column_sql {
                kwargs.insert("column_name".into(), Json::from(c.as_str()));
            }
            kwargs.insert(
                "model".into(),
                Json::from(format!("{{{{ get_where_subquery({target_expr}) }}}}")),
            );
            node.test = Some(Box::new(TestInfo {
                metadata: Some(TestMetadata {
                    name: parsed.test_name.clone(),
                    kwargs,
                    namespace: parsed.namespace.clone(),
                }),
                column_name: column.map(str::to_string),
                attached_node: attached.clone(),
                file_key_name: Some(file_key.clone()),
            }));
            let test_name = format!("test_{}", parsed.test_name);
            if parsed.namespace.is_some() || !macro_names.contains(&test_name) {
                let known: Vec<&str> = macro_names
                    .iter()
                    .filter_map(|m| m.strip_prefix("test_"))
                    .collect();
                let suggestions = crate::error::closest(&parsed.test_name, known.iter().copied());
                problems.push(
                    Problem::new(
                        "compile::unknown_test",
                        format!(
                            "unknown generic test `{}{}` on {}{}",
                            parsed.namespace.as_ref().map(|n| format!("{n}.")).unwrap_or_default(),
                            parsed.test_name,
                            file_key,
                            column.map(|c| format!(".{c}")).unwrap_or_default()
                        ),
                    )
                    .in_file(&props.path, props.text.clone())
                    .label_line(def.line, "this test")
                    .help(crate::error::did_you_mean(
                        &suggestions,
                        &format!(
                            "define it with {{% test {}(model, column_name) %}} in a macro file or tests/generic/ (packages are not supported)",
                            parsed.test_name
                        ),
                    )),
                );
                continue;
            }
            let args = generic_tests::context_args(&parsed, column_sql.as_deref());
            test_drafts.push(Draft {
                template: Template::Generated {
                    source: src,
                    args,
                    model: attached.clone(),
                },
                node: Box::new(node),
            });
        }
    }
    (test_drafts, problems)
}

/// The project's macros and pm's built-in ones.
struct MacroSet {
    /// (file, prepared text) for the Jinja environment.
    templates: Vec<(String, String)>,
    infos: Vec<MacroInfo>,
    /// Original text of each macro file, for errors.
    texts: HashMap<String, Arc<str>>,
    /// Every macro name, built-in or the project's.
    names: BTreeSet<String>,
    /// Where each project macro is defined (file, line).
    defined_at: HashMap<String, (String, usize)>,
    /// Names of the project's `{% materialization %}` blocks.
    materializations: HashSet<String>,
}

/// Snapshot files are read nowhere else before running: an unclosed
/// `{% snapshot %}` would make the snapshot vanish silently.
fn check_snapshot_files(project: &Project, problems: &mut Problems) {
    for f in project
        .files
        .iter()
        .filter(|f| f.kind == FileKind::Snapshot)
    {
        unbalanced_blocks(f, &[("snapshot", "endsnapshot")], problems);
    }
}

/// The docs blocks of the project's .md files; an unclosed block, or a
/// name defined twice, is a problem.
fn collect_docs(project: &Project, problems: &mut Problems) -> Vec<DocBlock> {
    let mut docs: Vec<DocBlock> = Vec::new();
    for f in project.files.iter().filter(|f| f.kind == FileKind::Docs) {
        unbalanced_blocks(f, &[("docs", "enddocs")], problems);
        let mut openings = blocks::scan_tags(&f.text)
            .into_iter()
            .filter(|t| t.keyword == "docs")
            .map(|t| (t.rest.trim().to_string(), t.start));
        for (name, body) in blocks::docs_blocks(&f.text) {
            let at = openings.find(|(n, _)| *n == name).map_or(0, |(_, at)| at);
            if let Some(first) = docs.iter().find(|d| d.name == name) {
                problems.push(
                    Problem::new(
                        "project::duplicate_docs",
                        format!("docs block `{name}` is defined twice"),
                    )
                    .in_file(&f.path, f.text.clone())
                    .label(at..at + 1, "second definition")
                    .help(format!(
                        "the first is in {}; rename or remove one of them",
                        first.original_file_path
                    )),
                );
                continue;
            }
            docs.push(DocBlock {
                unique_id: format!("doc.{}.{}", project.name, name),
                name,
                package_name: project.name.clone(),
                original_file_path: f.path.clone(),
                block_contents: body,
            });
        }
    }
    docs
}

/// Every `doc('name')` in a properties file must name a docs block.
fn check_doc_references(
    project: &Project,
    doc_map: &HashMap<String, String>,
    problems: &mut Problems,
) {
    for props in &project.properties {
        for (at, name) in blocks::doc_references(&props.text) {
            if !doc_map.contains_key(&name) {
                let known = crate::error::closest(&name, doc_map.keys().map(String::as_str));
                problems.push(
                    Problem::new(
                        "yaml::unknown_doc",
                        format!("no docs block is named `{name}`"),
                    )
                    .in_file(&props.path, props.text.clone())
                    .label(at..at + 4, "this doc()")
                    .help(crate::error::did_you_mean(
                        &known,
                        "define it in a .md file: {% docs name %}…{% enddocs %}",
                    )),
                );
            }
        }
    }
}

/// Reads the macro files: `{% test %}` blocks become `test_` macros, a
/// second definition of a name is an error.
fn collect_macros(project: &Project, problems: &mut Problems) -> MacroSet {
    let mut macro_templates: Vec<(String, String)> = Vec::new();
    let mut macros: Vec<MacroInfo> = Vec::new();
    let mut macro_texts: HashMap<String, Arc<str>> = HashMap::new();
    let (builtin_src, builtin_defs) = blocks::prepare_macro_file(generic_tests::BUILTIN_MACROS);
    macro_texts.insert(
        BUILTIN_MACROS_FILE.into(),
        Arc::from(generic_tests::BUILTIN_MACROS),
    );
    macro_templates.push((BUILTIN_MACROS_FILE.into(), builtin_src));
    let mut macro_names: BTreeSet<String> = builtin_defs.iter().map(|d| d.name.clone()).collect();
    let mut project_macro_at: HashMap<String, (String, usize)> = HashMap::new();
    let mut materializations = HashSet::new();
    for f in project.files.iter().filter(|f| f.kind == FileKind::Macro) {
        materializations.extend(blocks::materialization_names(&f.text));
        unbalanced_blocks(
            f,
            &[
                ("macro", "endmacro"),
                ("test", "endtest"),
                ("materialization", "endmaterialization"),
            ],
            problems,
        );
        let (src, defs) = blocks::prepare_macro_file(&f.text);
        let src = blocks::mutable_literals(&src).unwrap_or(src);
        for d in &defs {
            if let Some((other, line)) = project_macro_at.get(&d.name) {
                problems.push(
                    Problem::new(
                        "project::duplicate_macro",
                        format!("macro `{}` is defined twice", d.name),
                    )
                    .in_file(&f.path, f.text.clone())
                    .label_line(d.line, "second definition")
                    .help(format!(
                        "the first is in {other} line {line}; rename or remove one of them"
                    )),
                );
                continue;
            }
            project_macro_at.insert(d.name.clone(), (f.path.clone(), d.line));
            macro_names.insert(d.name.clone());
            macros.push(MacroInfo {
                unique_id: format!("macro.{}.{}", project.name, d.name),
                name: d.name.clone(),
                package_name: project.name.clone(),
                original_file_path: f.path.clone(),
                path: f.resource_path.clone(),
                line: d.line,
                arguments: d.arguments.clone(),
                macro_sql: f.text[d.start..d.end].to_string(),
            });
        }
        macro_texts.insert(f.path.clone(), f.text.clone());
        macro_templates.push((f.path.clone(), src));
    }
    for d in &builtin_defs {
        macros.push(MacroInfo {
            unique_id: format!("macro.pm.{}", d.name),
            name: d.name.clone(),
            package_name: "pm".into(),
            original_file_path: BUILTIN_MACROS_FILE.into(),
            path: "builtins.sql".into(),
            line: d.line,
            arguments: d.arguments.clone(),
            macro_sql: generic_tests::BUILTIN_MACROS[d.start..d.end].to_string(),
        });
    }
    macros.sort_by(|a, b| a.unique_id.cmp(&b.unique_id));
    MacroSet {
        templates: macro_templates,
        infos: macros,
        texts: macro_texts,
        names: macro_names,
        defined_at: project_macro_at,
        materializations,
    }
}

/// Descriptions, columns and config from YAML onto the nodes they describe.
fn apply_patches(
    project: &Project,
    drafts: &mut [Draft],
    doc_map: &HashMap<String, String>,
    warnings: &mut Vec<String>,
    problems: &mut Problems,
) {
    let mut by_kind_name: HashMap<(ResourceType, String), usize> = HashMap::new();
    for (i, d) in drafts.iter().enumerate() {
        by_kind_name.insert((d.node.resource_type, d.node.name.clone()), i);
    }
    let mut patched: HashMap<(ResourceType, String), String> = HashMap::new();
    for props in &project.properties {
        let groups = [
            (ResourceType::Model, &props.models),
            (ResourceType::Seed, &props.seeds),
            (ResourceType::Snapshot, &props.snapshots),
            (ResourceType::Analysis, &props.analyses),
        ];
        for (rt, patches) in groups {
            for p in patches {
                let key = (rt, p.name.clone());
                let Some(&i) = by_kind_name.get(&key) else {
                    warnings.push(format!(
                        "{}:{}: {} `{}` is described here but no such {} exists",
                        props.path,
                        p.line,
                        rt.as_str(),
                        p.name,
                        rt.as_str()
                    ));
                    continue;
                };
                if let Some(first) = patched.get(&key) {
                    problems.push(
                        Problem::new(
                            "project::duplicate_patch",
                            format!(
                                "{} `{}` is described in two YAML files",
                                rt.as_str(),
                                p.name
                            ),
                        )
                        .in_file(&props.path, props.text.clone())
                        .label_line(p.line, "second description")
                        .help(format!("it is also described in {first}; keep one entry")),
                    );
                    continue;
                }
                patched.insert(key, props.path.clone());
                let node = &mut drafts[i].node;
                node.description = resolve_docs(&p.description, doc_map);
                node.columns = columns_of(&p.columns);
                for c in node.columns.values_mut() {
                    c.description = resolve_docs(&c.description, doc_map);
                }
                node.meta = p.meta.clone();
                node.docs = p.docs.clone();
                node.patch_path = Some(props.path.clone());
                node.extra = p.extra.clone();
                if !p.config.is_empty() {
                    config::merge(Arc::make_mut(&mut node.config), &p.config);
                }
            }
        }
    }
}

/// Source tables and exposures declared in one properties file.
fn yaml_resources(
    project: &Project,
    props: &crate::loader::properties::PropertiesFile,
    target: &Target,
    doc_map: &HashMap<String, String>,
) -> Vec<Draft> {
    let mut drafts = Vec::new();
    let folders = yml_folders(project, &props.path);
    for s in &props.sources {
        for t in &s.tables {
            let mut fqn = vec![project.name.clone()];
            fqn.extend(folders.iter().cloned());
            fqn.push(s.name.clone());
            fqn.push(t.name.clone());
            let mut cfg = Config::new();
            cfg.insert("enabled".into(), Json::Bool(true));
            config::merge(
                &mut cfg,
                &project.sources_config.config_for(&[
                    project.name.clone(),
                    s.name.clone(),
                    t.name.clone(),
                ]),
            );
            config::merge(&mut cfg, &s.config);
            config::merge(&mut cfg, &t.config);
            for tag in s.tags.iter().chain(&t.tags) {
                config::merge_key(&mut cfg, "tags", &Json::from(tag.clone()));
            }
            let file = SourceText {
                kind: FileKind::Model,
                path: props.path.clone(),
                resource_path: props.path.clone(),
                text: Arc::from(""),
            };
            let name = t.name.clone();
            let mut node = new_node(
                ResourceType::Source,
                project,
                name.clone(),
                &file,
                fqn,
                Arc::new(cfg),
            );
            node.unique_id = format!("source.{}.{}.{}", project.name, s.name, t.name);
            node.checksum = String::new();
            node.line = t.line;
            node.description = resolve_docs(&t.description, doc_map);
            node.columns = columns_of(&t.columns);
            node.meta = t.meta.clone();
            node.patch_path = Some(props.path.clone());
            node.database = s
                .database
                .clone()
                .unwrap_or_else(|| target.database.clone());
            node.schema = s.schema.clone().unwrap_or_else(|| s.name.clone());
            node.alias = t.identifier.clone().unwrap_or_else(|| t.name.clone());
            node.source = Some(Box::new(SourceInfo {
                source_name: s.name.clone(),
                source_description: s.description.clone(),
                loader: s.loader.clone(),
                identifier: node.alias.clone(),
                loaded_at_field: t
                    .loaded_at_field
                    .clone()
                    .or_else(|| s.loaded_at_field.clone()),
                freshness: t.freshness.clone().unwrap_or_else(|| s.freshness.clone()),
                external: t.external.clone(),
                source_meta: s.meta.clone(),
            }));
            drafts.push(Draft {
                template: Template::None,
                node: Box::new(node),
            });
        }
    }
    for e in &props.exposures {
        let mut fqn = vec![project.name.clone()];
        fqn.extend(folders.iter().cloned());
        fqn.push(e.name.clone());
        let mut cfg = Config::new();
        cfg.insert("enabled".into(), Json::Bool(true));
        config::merge(&mut cfg, &e.config);
        for tag in &e.tags {
            config::merge_key(&mut cfg, "tags", &Json::from(tag.clone()));
        }
        let file = SourceText {
            kind: FileKind::Model,
            path: props.path.clone(),
            resource_path: props.path.clone(),
            text: Arc::from(""),
        };
        let mut node = new_node(
            ResourceType::Exposure,
            project,
            e.name.clone(),
            &file,
            fqn,
            Arc::new(cfg),
        );
        node.checksum = String::new();
        node.line = e.line;
        node.description = resolve_docs(&e.description, doc_map);
        node.meta = e.meta.clone();
        node.patch_path = Some(props.path.clone());
        node.exposure = Some(Box::new(ExposureInfo {
            kind: e.kind.clone(),
            label: e.label.clone(),
            url: e.url.clone(),
            maturity: e.maturity.clone(),
            owner: e.owner.clone(),
        }));
        // depends_on entries are template expressions: render them like a test's.
        let src: String = e
            .depends_on
            .iter()
            .map(|d| format!("{{{{ {d} }}}}\n"))
            .collect();
        drafts.push(Draft {
            template: Template::Generated {
                source: src,
                args: Map::new(),
                model: None,
            },
            node: Box::new(node),
        });
    }
    drafts
}

/// A block left open (or a stray end tag) in a file, as an error at the tag.
fn unbalanced_blocks(f: &SourceText, pairs: &[(&str, &str)], problems: &mut Problems) {
    for (at, message) in blocks::unbalanced(&f.text, pairs) {
        problems.push(
            Problem::new("jinja::unclosed_block", message.clone())
                .in_file(&f.path, f.text.clone())
                .label(at..at + 2, message)
                .help("close every block with its end tag; what follows an unclosed block would be lost"),
        );
    }
}

/// ref() finds resources by name, so two enabled models, seeds or snapshots
/// may not share one.
fn check_unique_names(project: &Project, drafts: &[Draft], problems: &mut Problems) {
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
                let text = project
                    .properties
                    .iter()
                    .find(|p| p.path == n.original_file_path)
                    .map(|p| p.text.clone())
                    .unwrap_or_else(|| Arc::from(""));
                let source = n.source.as_ref().map_or("", |s| s.source_name.as_str());
                problems.push(
                    Problem::new(
                        "project::duplicate_source",
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
            let text = project
                .files
                .iter()
                .find(|f| f.path == d.node.original_file_path)
                .map(|f| f.text.clone())
                .unwrap_or_else(|| Arc::from(""));
            problems.push(
                Problem::new(
                    "project::duplicate_name",
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
const MAX_IDENTIFIER: usize = 63;

/// Every relation a run would build has a name PostgreSQL accepts, and no
/// two resources would build the same one (the last would silently win).
fn check_relations(
    project: &Project,
    drafts: &[Draft],
    resolved: &[Rel],
    disabled: &HashSet<usize>,
    problems: &mut Problems,
) {
    let text_of = |path: &str| {
        project
            .files
            .iter()
            .find(|f| f.path == path)
            .map(|f| f.text.clone())
            .unwrap_or_else(|| Arc::from(""))
    };
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
                        "project::name_too_long",
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
                        "project::same_relation",
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

fn invocation_id() -> String {
    let now = chrono::Utc::now();
    let d = sha256_hex(&format!(
        "{}{}",
        now.timestamp_nanos_opt().unwrap_or(0),
        std::process::id()
    ));
    format!(
        "{}-{}-{}-{}-{}",
        &d[..8],
        &d[8..12],
        &d[12..16],
        &d[16..20],
        &d[20..32]
    )
}

/// Replaces `{{ doc('name') }}` in a description with the docs block.
fn resolve_docs(text: &str, docs: &HashMap<String, String>) -> String {
    if !text.contains("doc(") {
        return text.to_string();
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        let inner = rest[start + 2..start + end].trim();
        out.push_str(&rest[..start]);
        let name = inner
            .strip_prefix("doc(")
            .and_then(|s| s.strip_suffix(')'))
            .map(|s| s.trim().trim_matches(|c| c == '\'' || c == '"'));
        match name.and_then(|n| docs.get(n)) {
            Some(body) => out.push_str(body),
            None => out.push_str(&rest[start..start + end + 2]),
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

/// The relation a node gets with the built-in naming rules.
fn default_relation(n: &Node, cfg: &Config, target: &Target) -> Rel {
    if n.resource_type == ResourceType::Source {
        return Rel {
            database: n.database.clone(),
            schema: n.schema.clone(),
            identifier: n.alias.clone(),
            materialized: Materialization::Table,
        };
    }
    let custom_schema = config::get_str(cfg, "schema");
    let schema = match custom_schema {
        Some(s) => format!("{}_{}", target.schema, s.trim()),
        None => target.schema.clone(),
    };
    // An analysis is never inlined: only a model can be ephemeral.
    let materialized = n
        .materialized
        .clone()
        .filter(|m| n.resource_type == ResourceType::Model || *m != Materialization::Ephemeral)
        .unwrap_or(Materialization::Table);
    Rel {
        database: config::get_str(cfg, "database")
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
fn resolve_relations(
    env: &minijinja::Environment<'static>,
    drafts: &[Draft],
    target: &Target,
    overrides: &HashSet<&str>,
) -> std::result::Result<Vec<Rel>, Problem> {
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
                    Problem::new("compile::naming", format!("{macro_name} failed for {}: {e}", n.unique_id))
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

/// Renders nodes: the shared environment, plus generated templates (generic
/// tests) compiled once per distinct source.
struct Renderer<'a> {
    env: &'a minijinja::Environment<'static>,
    shared: &'a Arc<Shared>,
    files: &'a errors::FileIndex<'a>,
    /// unique id → node index, for the relation a generic test checks.
    index: HashMap<&'a str, usize>,
    generated: HashMap<&'a str, minijinja::Template<'a, 'a>>,
}

impl<'a> Renderer<'a> {
    fn new(
        env: &'a minijinja::Environment<'static>,
        shared: &'a Arc<Shared>,
        files: &'a errors::FileIndex<'a>,
        drafts: &'a [Draft],
    ) -> Self {
        let index = drafts
            .iter()
            .enumerate()
            .map(|(i, d)| (d.node.unique_id.as_str(), i))
            .collect();
        let mut generated = HashMap::new();
        for d in drafts {
            if let Template::Generated { source, .. } = &d.template {
                if !generated.contains_key(source.as_str()) {
                    // A template that does not compile is compiled again per
                    // node when rendered, so its error names the node.
                    if let Ok(t) = env.template_from_named_str("<generated>", source) {
                        generated.insert(source.as_str(), t);
                    }
                }
            }
        }
        Renderer {
            env,
            shared,
            files,
            index,
            generated,
        }
    }

    /// Renders node `i`; None for nodes without SQL (seeds, sources).
    fn render(
        &self,
        i: usize,
        d: &Draft,
    ) -> std::result::Result<Option<(String, RenderState)>, Problem> {
        let name = &d.node.original_file_path;
        let (source, result, state) = match &d.template {
            Template::None => return Ok(None),
            Template::File(text) => {
                let (r, st) = context::with_render_state(i, || {
                    self.env
                        .template_from_named_str(name, text)
                        .and_then(|t| t.render(()))
                });
                (&**text, r, st)
            }
            Template::Generated {
                source,
                args,
                model,
            } => {
                let model_idx = model.as_deref().and_then(|m| self.index.get(m)).copied();
                let ctx = minijinja::context! {
                    __pm_test_args => context::to_value(args),
                    __pm_model => model_idx.map(|m| context::relation_value(self.shared, m)),
                };
                let (r, st) = context::with_render_state(i, || {
                    if let Some(m) = model_idx {
                        context::record_dependency(m);
                    }
                    match self.generated.get(source.as_str()) {
                        Some(t) => t.render(ctx),
                        None => self
                            .env
                            .template_from_named_str(name, source)
                            .and_then(|t| t.render(ctx)),
                    }
                });
                (source.as_str(), r, st)
            }
        };
        let files = self.files;
        match result {
            Ok(out) => Ok(Some((out, state))),
            Err(e) => Err(errors::node_problem(
                &e,
                state.failure,
                &d.node,
                source,
                files,
            )),
        }
    }
}
