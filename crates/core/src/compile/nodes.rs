//! Nodes from the project's files: defaults, folder configs, one node per
//! model, seed, analysis or singular test file (several per snapshot file).

use crate::compile::{blocks, generic_tests, materialization, Draft, Template};
use crate::loader::config::{self, Config};
use crate::loader::{FileKind, Project, SourceText};
use crate::manifest::{Column, Node, ResourceType, TestInfo};
use crate::text::sha256_hex;
use indexmap::IndexMap;
use serde_json::{Map, Value as Json};
use std::collections::HashMap;
use std::sync::Arc;

pub(super) fn file_template(text: &str) -> Template {
    Template::File(Arc::from(
        blocks::mutable_literals(text).as_deref().unwrap_or(text),
    ))
}

pub(super) fn model_defaults() -> Config {
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

pub(super) fn seed_defaults() -> Config {
    let mut c = model_defaults();
    c.insert("materialized".into(), Json::from("seed"));
    c.insert("column_types".into(), Json::Object(Map::new()));
    c.insert("delimiter".into(), Json::from(","));
    c.insert("quote_columns".into(), Json::Null);
    c
}

/// A resource kind and the fqn of a folder, joined with `/`.
pub(super) type FolderKey = (FileKind, String);

/// Folder-level configs, computed once per folder and shared by its nodes.
/// A package's nodes get its own project file's configs, then the root
/// project's (`models: {package_name: ...}`), as in dbt.
pub(super) struct FolderConfigs<'a> {
    project: &'a Project,
    root: Option<&'a Project>,
    cache: std::sync::Mutex<HashMap<FolderKey, Arc<Config>>>,
}

fn tree_of(project: &Project, kind: FileKind) -> &config::ConfigTree {
    match kind {
        FileKind::Seed => &project.seeds_config,
        FileKind::Test => &project.tests_config,
        FileKind::Snapshot => &project.snapshots_config,
        FileKind::UnitTest => &project.unit_tests_config,
        _ => &project.models_config,
    }
}

impl<'a> FolderConfigs<'a> {
    /// The folder configs of `project`, one of `root`'s projects.
    pub(super) fn new(project: &'a Project, root: &'a Project) -> Self {
        FolderConfigs {
            project,
            root: (!project.is_root()).then_some(root),
            cache: Default::default(),
        }
    }

    fn trees(&self, kind: FileKind) -> impl Iterator<Item = &'a config::ConfigTree> {
        std::iter::once(self.project)
            .chain(self.root)
            .map(move |p| tree_of(p, kind))
    }

    /// The sources config for a source table's fqn, with the root's over a
    /// package's.
    pub(super) fn sources(&self, fqn: &[String]) -> Config {
        let mut c = Config::new();
        for p in std::iter::once(self.project).chain(self.root) {
            config::merge(&mut c, &p.sources_config.config_for(fqn));
        }
        c
    }

    fn compute(&self, kind: FileKind, fqn: &[String]) -> Config {
        let mut c = match kind {
            FileKind::Seed => seed_defaults(),
            FileKind::Test => generic_tests::default_config(),
            FileKind::UnitTest => Config::new(),
            _ => model_defaults(),
        };
        for tree in self.trees(kind) {
            config::merge(&mut c, &tree.config_for(fqn));
        }
        if kind == FileKind::Snapshot {
            c.insert("materialized".into(), Json::from("snapshot"));
        }
        c
    }

    /// The config a node with this fqn gets from defaults and the project file.
    pub(super) fn get(&self, kind: FileKind, fqn: &[String]) -> Arc<Config> {
        if self.trees(kind).any(|t| t.has_leaf(fqn)) {
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

pub(super) fn new_node(
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
        typed_config: Default::default(),
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
        defer_relation: None,
        test: None,
        source: None,
        exposure: None,
        unit_test: None,
        semantic: None,
        extra: Map::new(),
        pre_hooks: Vec::new(),
        post_hooks: Vec::new(),
    }
}

pub(super) fn fqn_of(project: &Project, file: &SourceText, name: &str) -> Vec<String> {
    let mut fqn = vec![project.name.clone()];
    fqn.extend(file.folders());
    fqn.push(name.to_string());
    fqn
}

pub(super) fn columns_of(
    defs: &[crate::loader::properties::ColumnDef],
) -> IndexMap<String, Column> {
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
pub(super) fn yml_folders(project: &Project, path: &str) -> Vec<String> {
    let path = path.strip_prefix(&project.dir).unwrap_or(path);
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

/// The nodes a file under a resource path defines (a snapshot file may hold several).
pub(super) fn file_drafts(
    project: &Project,
    folders: &FolderConfigs,
    f: &SourceText,
) -> Vec<Draft> {
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
        FileKind::Macro | FileKind::Docs | FileKind::Fixture | FileKind::UnitTest => {}
    }
    drafts
}
