//! The semantic layer's entries as nodes of the manifest: a semantic model
//! depends on its model (its `model: ref(...)` renders like an exposure's
//! `depends_on`), a metric on the semantic models of its measures and on the
//! metrics it reads, a saved query on its metrics. Once relations are known,
//! each semantic model learns its model's relation, each metric the
//! measures it reads, and the whole layer is checked.

use super::nodes::{new_node, yml_folders};
use super::{Draft, Rendered, Template};
use crate::error::{Problem, Problems};
use crate::loader::config::Config;
use crate::loader::properties::{PropertiesFile, ResourcePatch, SemanticKind};
use crate::loader::Project;
use crate::loader::{FileKind, SourceText};
use crate::manifest::layer::{relation_of, semantic_layer};
use crate::manifest::{Node, ResourceType};
use crate::semantic::definition::{Definition, NodeRelation};
use crate::semantic::latest;
use crate::semantic::parse::{self, Reader};
use crate::semantic::validate;
use serde_json::{Map, Value as Json};
use std::collections::HashMap;
use std::sync::Arc;

/// The semantic layer's nodes declared in one properties file.
pub(super) fn semantic_drafts(
    project: &Project,
    props: &PropertiesFile,
    problems: &mut Problems,
) -> Vec<Draft> {
    let latest: Vec<&ResourcePatch> = props
        .models
        .iter()
        .filter(|p| latest::declares_semantic_model(p))
        .collect();
    if props.semantic.is_empty() && latest.is_empty() {
        return Vec::new();
    }
    let reader = Reader::new(&props.path, &props.text);
    let folders = yml_folders(project, &props.path);
    let mut drafts = Vec::new();
    // dbt 1.12's spec: a model's own semantic model and metrics.
    for p in latest {
        let (model, metrics) = latest::model_entries(p);
        match parse::semantic_model(&reader, &model, p.line) {
            Ok(def) => drafts.push(draft(
                project,
                props,
                &folders,
                &model,
                p.line,
                Definition::SemanticModel(def),
            )),
            Err(e) => problems.push(e),
        }
        for m in metrics {
            let name = m.get("name").and_then(|n| n.as_str()).unwrap_or_default();
            let line = reader.name_line(p.line, name);
            match parse::metric(&reader, &m, line) {
                Ok(def) => drafts.push(draft(
                    project,
                    props,
                    &folders,
                    &m,
                    line,
                    Definition::Metric(def),
                )),
                Err(e) => problems.push(e),
            }
        }
    }
    for entry in &props.semantic {
        let parsed = match entry.kind {
            SemanticKind::SemanticModel => parse::semantic_model(&reader, &entry.value, entry.line)
                .map(Definition::SemanticModel),
            SemanticKind::Metric => {
                parse::metric(&reader, &latest::advanced(&entry.value), entry.line)
                    .map(Definition::Metric)
            }
            SemanticKind::SavedQuery => {
                parse::saved_query(&reader, &entry.value, entry.line).map(Definition::SavedQuery)
            }
        };
        match parsed {
            Ok(def) => drafts.push(draft(
                project,
                props,
                &folders,
                &entry.value,
                entry.line,
                def,
            )),
            Err(p) => problems.push(p),
        }
    }
    drafts
}

fn draft(
    project: &Project,
    props: &PropertiesFile,
    folders: &[String],
    entry: &Map<String, Json>,
    line: usize,
    def: Definition,
) -> Draft {
    let (resource_type, name, description, source) = match &def {
        Definition::SemanticModel(m) => (
            ResourceType::SemanticModel,
            m.name.clone(),
            m.description.clone().unwrap_or_default(),
            format!("{{{{ {} }}}}\n", m.model),
        ),
        Definition::Metric(m) => (
            ResourceType::Metric,
            m.name.clone(),
            m.description.clone(),
            String::new(),
        ),
        Definition::SavedQuery(q) => (
            ResourceType::SavedQuery,
            q.name.clone(),
            q.description.clone().unwrap_or_default(),
            String::new(),
        ),
    };
    let mut fqn = vec![project.name.clone()];
    fqn.extend(folders.iter().cloned());
    fqn.push(name.clone());
    let mut cfg = Config::new();
    cfg.insert("enabled".into(), Json::Bool(true));
    if let Some(Json::Object(c)) = entry.get("config") {
        for (k, v) in c {
            cfg.insert(k.clone(), v.clone());
        }
    }
    let file = SourceText {
        kind: FileKind::Model,
        path: props.path.clone(),
        resource_path: props.path.clone(),
        text: Arc::from(""),
    };
    let mut node = new_node(resource_type, project, name, &file, fqn, Arc::new(cfg));
    node.checksum = String::new();
    node.line = line;
    node.description = description;
    node.patch_path = Some(props.path.clone());
    if let Some(Json::Object(meta)) = entry.get("meta") {
        node.meta = meta.clone();
    }
    node.semantic = Some(Box::new(def));
    Draft {
        template: Template::Generated {
            source,
            args: Map::new(),
            model: None,
        },
        node: Box::new(node),
    }
}

/// What a metric or saved query reads, by name: the edges of the DAG that
/// no template records. Unknown names are left to [`resolve`], which says
/// so with the names that would do.
pub(super) fn add_edges(drafts: &[Draft], states: &mut [Rendered]) {
    let mut metrics: HashMap<(&str, &str), usize> = HashMap::new();
    let mut measures: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, d) in drafts.iter().enumerate() {
        let package = d.node.package_name.as_str();
        match d.node.semantic.as_deref() {
            Some(Definition::Metric(m)) => {
                metrics.insert((package, m.name.as_str()), i);
            }
            Some(Definition::SemanticModel(m)) => {
                for x in &m.measures {
                    measures.insert((package, x.name.as_str()), i);
                }
            }
            _ => {}
        }
    }
    for (i, d) in drafts.iter().enumerate() {
        let package = d.node.package_name.as_str();
        let parents: Vec<usize> = match d.node.semantic.as_deref() {
            Some(Definition::Metric(m)) => m
                .own_measures()
                .iter()
                .filter_map(|x| measures.get(&(package, x.name.as_str())))
                .chain(
                    m.metric_inputs()
                        .iter()
                        .filter_map(|x| metrics.get(&(package, x.name.as_str()))),
                )
                .copied()
                .collect(),
            Some(Definition::SavedQuery(q)) => q
                .query_params
                .metrics
                .iter()
                .filter_map(|x| metrics.get(&(package, x.as_str())))
                .copied()
                .collect(),
            _ => continue,
        };
        if let Some((_, state)) = states[i].as_mut() {
            for p in parents {
                if !state.depends.contains(&p) {
                    state.depends.push(p);
                }
            }
        }
    }
}

/// Fills in what the definitions learn from the compiled project (each
/// semantic model's relation, each metric's input measures) and checks the
/// layer as a whole.
pub(super) fn resolve(project: &Project, nodes: &mut [Node]) -> Result<(), Problems> {
    let relations: HashMap<String, NodeRelation> = nodes
        .iter()
        .filter(|n| n.resource_type.is_refable())
        .map(|n| (n.unique_id.clone(), relation_of(n)))
        .collect();
    for n in nodes.iter_mut() {
        if let Some(Definition::SemanticModel(m)) = n.semantic.as_deref_mut() {
            if let Some(r) = n.depends_on.iter().find_map(|id| relations.get(id)) {
                m.node_relation = r.clone();
            }
        }
    }
    let mut metrics: Vec<&mut crate::semantic::definition::Metric> = nodes
        .iter_mut()
        .filter_map(|n| match n.semantic.as_deref_mut() {
            Some(Definition::Metric(m)) => Some(m),
            _ => None,
        })
        .collect();
    validate::fill_input_measures(&mut metrics);
    let mut problems = Problems::default();
    let layer = semantic_layer(nodes);
    for p in validate::validate(&layer, &|path| project.text_of(path)) {
        problems.push(p);
    }
    for n in nodes.iter() {
        if n.resource_type == ResourceType::SemanticModel && n.depends_on.is_empty() {
            problems.push(model_not_a_ref(project, n));
        }
    }
    problems.into_result()?;
    // Their templates only record what they read: there is no SQL to keep
    // (an exported saved query's is planned below).
    for n in nodes.iter_mut().filter(|n| n.semantic.is_some()) {
        n.compiled_code = None;
    }
    plan_exports(project, nodes)
}

/// The SQL a saved query's exports build: its query, planned now, so that
/// a query that cannot be answered is an error at its line before any run.
fn plan_exports(project: &Project, nodes: &mut [Node]) -> Result<(), Problems> {
    let mut planned = Vec::new();
    {
        let layer = semantic_layer(nodes);
        for (i, n) in nodes.iter().enumerate() {
            let Some(Definition::SavedQuery(q)) = n.semantic.as_deref() else {
                continue;
            };
            if q.exports.is_empty() {
                continue;
            }
            let query = crate::semantic::query::Query::of_saved(q);
            planned.push((i, crate::semantic::query::plan(&layer, &query)));
        }
    }
    let mut problems = Problems::default();
    for (i, plan) in planned {
        match plan {
            Ok(plan) => nodes[i].compiled_code = Some(plan.sql),
            Err(e) => {
                let n = &nodes[i];
                problems.push(
                    at_entry(
                        project,
                        n,
                        crate::error::Code::SemanticQuery,
                        format!(
                            "saved query `{}` is exported, but its query cannot be answered: {e}",
                            n.name
                        ),
                    )
                    .help("fix its query_params, or remove its exports until pm answers it"),
                );
            }
        }
    }
    problems.into_result()
}

fn model_not_a_ref(project: &Project, n: &Node) -> Problem {
    let model = match n.semantic.as_deref() {
        Some(Definition::SemanticModel(m)) => m.model.clone(),
        _ => String::new(),
    };
    at_entry(
        project,
        n,
        crate::error::Code::SemanticReference,
        format!(
            "semantic model `{}` has model `{model}`, which is not a ref() of a model",
            n.name
        ),
    )
    .help("write `model: ref('<model name>')`")
}

/// A problem at the YAML entry of node `n`.
fn at_entry(project: &Project, n: &Node, code: crate::error::Code, message: String) -> Problem {
    Problem::new(code, message)
        .in_file(
            &n.original_file_path,
            project.text_of(&n.original_file_path),
        )
        .label_line(n.line, "here")
}
