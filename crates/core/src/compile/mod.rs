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

use crate::compile::definitions::{
    check_doc_references, check_snapshot_files, collect_docs, collect_macros, MacroSet,
};
use crate::compile::nodes::{file_drafts, FolderConfigs};
use crate::compile::properties::{apply_patches, yaml_resources, yaml_tests};
use crate::compile::relations::{
    check_relations, check_unique_names, default_relation, resolve_relations,
};
use crate::compile::render::Renderer;
use crate::error::Code;
use crate::manifest::{DocBlock, Manifest, Node, NodeConfig, ResourceType};
pub mod access;
mod assemble;
pub mod blocks;
pub mod config_keys;
mod config_values;
pub mod context;
mod definitions;
pub mod empty;
pub mod ephemeral;
pub mod errors;
pub mod generic_tests;
mod materialization;
mod nodes;
mod properties;
mod relations;
mod render;
pub mod run_render;
mod semantic;
mod unit_tests;

use crate::dag::Dag;
use crate::error::{Problem, Problems, Result};
use crate::loader::profile::Target;
use crate::loader::{config, Project};
use crate::text::sha256_hex;
use context::{NodeMeta, RenderState, ResolvedRelation, Shared};
use rayon::prelude::*;
use serde_json::{Map, Value as Json};
use std::collections::{HashMap, HashSet};
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
    /// `--empty`: `ref()` and `source()` read no rows (`flags.EMPTY`).
    pub empty: bool,
    /// `--defer`: nodes (by unique id) whose `ref()` reads another
    /// environment's relation (database, schema, identifier).
    pub deferred: HashMap<String, [String; 3]>,
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
    /// The nodes that render again at run time, and what rendering then needs.
    pub run_renderer: Arc<run_render::RunRenderer>,
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
    /// A unit test: the tested model's template with its inputs as CTEs.
    UnitTest(Arc<unit_tests::UnitTestTemplate>),
}

/// A node being built, with how its SQL renders. The node is boxed so that
/// sorting and partitioning drafts moves pointers, not kilobyte structs.
#[derive(Clone)]
struct Draft {
    node: Box<Node>,
    template: Template,
}

/// The name pm's own macros (built-in tests, dbt's helpers) go by.
pub const BUILTIN_MACROS_FILE: &str = "pm/builtins.sql";

/// Compiles the project: each phase below returns what the next needs.
pub fn compile(project: &Project, opts: &CompileOptions) -> Result<Compiled> {
    let mut timer = crate::output::PhaseTimer::new("compile");
    let mut warnings = Vec::new();
    let Drafted {
        macros,
        docs,
        mut drafts,
    } = draft(project, opts, &mut warnings, &mut timer)?;
    timer.lap("templated config values");
    let mut problems = Problems::default();
    config_values::render(project, opts, &mut drafts, &mut problems);
    problems.into_result()?;
    timer.lap("disabled (by project/YAML config) and ordering");
    let (mut drafts, mut disabled) = split_disabled(drafts);
    timer.lap("shared render data");
    let shared = shared_render_data(project, opts, &macros, &drafts, &disabled);
    let env = render::environment(&shared, &macros)?;
    let files = errors::FileIndex {
        macro_texts: &macros.texts,
        macro_names: &macros.names,
        yaml_texts: project
            .properties
            .iter()
            .map(|p| (p.path.as_str(), p.text.clone()))
            .collect(),
    };
    timer.lap("phase one: render everything");
    let mut states = render::render_all(&Renderer::new(&env, &shared, &files, &drafts), &drafts)?;
    timer.lap("configs from config() calls; relations");
    let mut problems = Problems::default();
    let (self_disabled, logs) =
        apply_rendered_configs(project, &mut drafts, &states, &macros, &mut problems);
    let overrides = naming_overrides(&macros);
    let mut resolved =
        resolve_relations(&env, &drafts, &opts.target, &overrides).map_err(Problems::from)?;
    check_relations(project, &drafts, &resolved, &self_disabled, &mut problems);
    // `ref()` reads the deferred relations; the nodes keep their own.
    let own_relations = (!opts.deferred.is_empty()).then(|| resolved.clone());
    defer_relations(&drafts, &mut resolved, &opts.deferred);
    let _ = shared.resolved.set(resolved);
    timer.lap("edges");
    semantic::add_edges(&drafts, &mut states);
    let dag = build_dag(project, &drafts, &states, &self_disabled, problems)?;
    timer.lap("phase two: final SQL");
    let rels = shared.resolved.get().cloned().unwrap_or_default();
    let renderer = Renderer::new(&env, &shared, &files, &drafts);
    let compiled = render::final_sql(&renderer, &mut states, &drafts, &rels)?;
    let hooks = render::hooks(&env, project, &drafts)?;
    let flagged = run_render::uses_warehouse(&drafts, &states, &hooks.use_warehouse);
    drop(renderer);
    timer.lap("assemble nodes");
    let mut nodes = assemble::nodes(
        drafts,
        compiled,
        &states,
        &hooks.per_node,
        own_relations.as_deref().unwrap_or(&rels),
        &dag,
        &shared,
    );
    if !opts.deferred.is_empty() {
        for n in nodes.iter_mut() {
            n.defer_relation = opts.deferred.get(&n.unique_id).cloned().map(Box::new);
        }
    }
    let (mut nodes, dag) =
        assemble::without_self_disabled(nodes, dag, &self_disabled, &mut disabled);
    semantic::resolve(project, &mut nodes)?;
    let groups = access::groups(project);
    access::check(project, &nodes, &groups)?;
    disabled.sort_by(|a, b| a.unique_id.cmp(&b.unique_id));
    let run_renderer = Arc::new(run_render::run_renderer(
        env, &shared, &macros, project, flagged, &nodes,
    ));
    timer.lap("done");
    Ok(Compiled {
        manifest: Manifest {
            project_name: project.name.clone(),
            target: opts.target.clone(),
            target_path: project.target_path.clone(),
            index: nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (n.unique_id.clone(), i))
                .collect(),
            nodes,
            disabled,
            macros: macros.infos,
            docs,
            groups,
            dag,
            selectors: project
                .selectors
                .as_ref()
                .map(|(_, j)| j.clone())
                .unwrap_or(Json::Null),
            invocation_id: shared.invocation_id.clone(),
            on_run_start: hooks.on_run_start,
            on_run_end: hooks.on_run_end,
            package_dirs: project
                .packages
                .iter()
                .map(|p| (p.name.clone(), p.dir.clone()))
                .collect(),
            generated_at: shared
                .run_started_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        },
        warnings,
        logs,
        run_renderer,
    })
}

/// Every node the project declares, before rendering, with the macros and
/// docs blocks it may use.
struct Drafted {
    macros: MacroSet,
    docs: Vec<DocBlock>,
    drafts: Vec<Draft>,
}

fn draft(
    project: &Project,
    opts: &CompileOptions,
    warnings: &mut Vec<String>,
    timer: &mut crate::output::PhaseTimer,
) -> Result<Drafted> {
    let mut problems = Problems::default();
    let macros = collect_macros(project, &mut problems);
    timer.lap("docs blocks");
    let docs = collect_docs(project, &mut problems);
    let doc_map: HashMap<String, String> = docs
        .iter()
        .map(|d| (d.name.clone(), d.block_contents.clone()))
        .collect();
    let mut drafts = Vec::new();
    for unit in project.all() {
        check_snapshot_files(unit, &mut problems);
        check_doc_references(unit, &doc_map, &mut problems);
        let inputs = DraftInputs {
            root: project,
            opts,
            macros: &macros,
            doc_map: &doc_map,
        };
        drafts.extend(package_drafts(
            &inputs,
            unit,
            warnings,
            timer,
            &mut problems,
        ));
    }
    let mut tests = Vec::new();
    for unit in project.all() {
        tests.extend(unit_tests::unit_test_drafts(
            project,
            unit,
            &drafts,
            &mut problems,
        ));
    }
    drafts.extend(tests);
    problems.into_result()?;
    Ok(Drafted {
        macros,
        docs,
        drafts,
    })
}

/// What drafting each project reads.
#[derive(Clone, Copy)]
struct DraftInputs<'a> {
    root: &'a Project,
    opts: &'a CompileOptions,
    macros: &'a MacroSet,
    doc_map: &'a HashMap<String, String>,
}

/// The nodes one project (the root or a package) declares: from its files,
/// patched by its YAML, its sources and exposures, and its YAML tests.
fn package_drafts(
    inputs: &DraftInputs,
    unit: &Project,
    warnings: &mut Vec<String>,
    timer: &mut crate::output::PhaseTimer,
    problems: &mut Problems,
) -> Vec<Draft> {
    let DraftInputs {
        root,
        opts,
        macros,
        doc_map,
    } = *inputs;
    timer.lap("nodes from files");
    let folder_configs = FolderConfigs::new(unit, root);
    let mut drafts: Vec<Draft> = unit
        .files
        .par_iter()
        .flat_map_iter(|f| file_drafts(unit, &folder_configs, f))
        .collect();
    timer.lap("YAML patches");
    apply_patches(unit, &mut drafts, doc_map, warnings, problems);
    if unit.is_root() {
        warnings.extend(config_keys::warnings(unit));
    }
    timer.lap("sources and exposures");
    for props in &unit.properties {
        drafts.extend(yaml_resources(
            unit,
            props,
            &opts.target,
            doc_map,
            &folder_configs,
        ));
        drafts.extend(semantic::semantic_drafts(unit, props, problems));
    }
    timer.lap("generic tests");
    let tests = generic_test_drafts(unit, &drafts, macros, &folder_configs, problems);
    drafts.extend(tests);
    timer.lap("duplicates among ref-able names");
    check_unique_names(unit, &drafts, problems);
    drafts
}

/// The tests declared in YAML files, each once.
fn generic_test_drafts(
    project: &Project,
    drafts: &[Draft],
    macros: &MacroSet,
    folder_configs: &FolderConfigs,
    problems: &mut Problems,
) -> Vec<Draft> {
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
        .map(|props| yaml_tests(project, props, &attachable, macros, folder_configs))
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
                let text = project.text_of(&path);
                problems.push(
                    Problem::new(
                        Code::ProjectDuplicateTest,
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
    test_drafts
}

/// Enabled drafts sorted by unique id, and the nodes disabled by project or
/// YAML config (with the tests attached to them).
fn split_disabled(drafts: Vec<Draft>) -> (Vec<Draft>, Vec<Node>) {
    let mut disabled: Vec<Node> = Vec::new();
    let mut enabled: Vec<Draft> = Vec::new();
    for d in drafts {
        if config::enabled(&d.node.config) {
            enabled.push(d);
        } else {
            disabled.push(with_typed_config(*d.node));
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
    disabled.extend(
        more_disabled
            .into_iter()
            .map(|d| with_typed_config(*d.node)),
    );
    drafts.sort_by(|a, b| a.node.unique_id.cmp(&b.node.unique_id));
    (drafts, disabled)
}

/// A disabled node's typed config, for manifest.json and selection by tag;
/// its config is never used to build, so a wrong type keeps the defaults.
fn with_typed_config(mut node: Node) -> Node {
    if let Ok(typed) = NodeConfig::parse(&node.config) {
        node.typed_config = Arc::new(typed);
    }
    node
}

/// `--defer`: the relations `ref()` reads for the deferred nodes are the
/// other environment's.
fn defer_relations(
    drafts: &[Draft],
    resolved: &mut [ResolvedRelation],
    deferred: &HashMap<String, [String; 3]>,
) {
    if deferred.is_empty() {
        return;
    }
    for (d, rel) in drafts.iter().zip(resolved.iter_mut()) {
        if let Some([database, schema, identifier]) = deferred.get(&d.node.unique_id) {
            rel.database = database.clone();
            rel.schema = schema.clone();
            rel.identifier = identifier.clone();
        }
    }
}

/// The root project's `dispatch:` list: macro namespace → packages to search.
fn dispatch_orders(project: &Project) -> HashMap<String, Vec<String>> {
    let Some(Json::Array(entries)) = project.document.get("dispatch") else {
        return HashMap::new();
    };
    entries
        .iter()
        .filter_map(|e| {
            let namespace = e.get("macro_namespace")?.as_str()?.to_string();
            let order = crate::loader::yaml::string_list(e.get("search_order"));
            Some((namespace, order))
        })
        .collect()
}

/// The project's own `generate_*_name` macros.
fn naming_overrides(macros: &MacroSet) -> HashSet<&'static str> {
    [
        "generate_schema_name",
        "generate_alias_name",
        "generate_database_name",
    ]
    .into_iter()
    .filter(|m| macros.defined_at.contains_key(*m))
    .collect()
}

/// What every render reads: each node's pre-render facts, the names `ref()`
/// and `source()` look up, vars, target and flags.
fn shared_render_data(
    project: &Project,
    opts: &CompileOptions,
    macros: &MacroSet,
    drafts: &[Draft],
    disabled: &[Node],
) -> Arc<Shared> {
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
                package_name: n.package_name.clone(),
                config: n.config.clone(),
                provisional: default_relation(n, &n.config, &opts.target),
                description: n.description.clone(),
                source_name: n.source.as_ref().map(|s| s.source_name.clone()),
            }
        })
        .collect();
    let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
    let mut by_source: HashMap<(String, String), Vec<usize>> = HashMap::new();
    for (i, d) in drafts.iter().enumerate() {
        if d.node.resource_type.is_refable() {
            by_name.entry(d.node.name.clone()).or_default().push(i);
        }
        if let Some(s) = &d.node.source {
            by_source
                .entry((s.source_name.clone(), d.node.name.clone()))
                .or_default()
                .push(i);
        }
    }
    let package_vars = project
        .packages
        .iter()
        .map(|p| {
            let mut v = crate::loader::packages::vars_for(project, p);
            v.extend(opts.cli_vars.clone());
            (p.name.clone(), v)
        })
        .collect();
    Arc::new(Shared {
        project_name: project.name.clone(),
        target: opts.target.to_json(),
        vars,
        package_vars,
        namespaces: context::namespaces(&macros.templates),
        package_names: project.all().map(|p| p.name.clone()).collect(),
        dispatch: dispatch_orders(project),
        metas,
        by_name,
        by_source,
        disabled: disabled
            .iter()
            .filter(|n| n.resource_type.is_refable())
            .map(|n| n.name.clone())
            .collect(),
        resolved: OnceLock::new(),
        macro_names: macros.names.clone(),
        run_started_at: chrono::Utc::now(),
        invocation_id: invocation_id(),
        which: opts.which.clone(),
        full_refresh: opts.full_refresh,
        store_failures: opts.store_failures,
        empty: opts.empty,
        existing_incremental: opts.existing_incremental.clone(),
    })
}

/// A node's render output and what rendering recorded (None: no SQL).
type Rendered = Option<(String, RenderState)>;

/// Merges each node's `config()` calls into its config and settles its
/// materialization. Returns the nodes that disabled themselves (with their
/// tests) and the lines templates logged.
fn apply_rendered_configs(
    project: &Project,
    drafts: &mut [Draft],
    states: &[Rendered],
    macros: &MacroSet,
    problems: &mut Problems,
) -> (HashSet<usize>, Vec<(String, String)>) {
    let mut logs = Vec::new();
    for (d, st) in drafts.iter_mut().zip(states) {
        // A unit test renders its model's template: the model's config()
        // calls and logs are the model's, not its own.
        if d.node.resource_type == ResourceType::UnitTest {
            continue;
        }
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
    materialization::settle(project, drafts, &macros.materializations, problems);
    config_keys::type_check(project, drafts, problems);
    config_keys::refuse_not_honoured(project, drafts, problems);
    unit_tests::check(project, drafts, problems);
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
    (self_disabled, logs)
}

/// The dependency graph from what each node referenced; refusing references
/// to disabled nodes, and cycles. `problems` holds what earlier checks found.
fn build_dag(
    project: &Project,
    drafts: &[Draft],
    states: &[Rendered],
    self_disabled: &HashSet<usize>,
    mut problems: Problems,
) -> Result<Dag> {
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
        let Some((_, st)) = &states[i] else {
            continue;
        };
        for &p in st.depends.iter().filter(|p| self_disabled.contains(p)) {
            let target = &drafts[p].node;
            problems.push(
                Problem::new(
                    Code::CompileDisabledRef,
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
    Ok(dag)
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
