//! What YAML files add: descriptions and config patched onto nodes,
//! sources and exposures, and the generic tests declared on them.

use crate::compile::nodes::{columns_of, new_node, yml_folders};
use crate::compile::{generic_tests, Draft, FolderConfigs, MacroSet, Template};
use crate::error::{Code, Problem, Problems};
use crate::loader::config::{self, Config};
use crate::loader::profile::Target;
use crate::loader::{FileKind, Project, SourceText};
use crate::manifest::{ExposureInfo, Node, ResourceType, SourceInfo, TestInfo, TestMetadata};
use crate::text::sha256_hex;
use serde_json::{Map, Value as Json};
use std::collections::HashMap;
use std::sync::Arc;

/// A resource that YAML tests can be attached to.
pub(super) struct Testable<'a> {
    name: String,
    /// `ref('x')` or `source('a', 'b')`.
    expr: String,
    attached: String,
    is_source: bool,
    tests: &'a [crate::loader::properties::TestDef],
    columns: &'a [crate::loader::properties::ColumnDef],
    file_key: String,
}

/// Test nodes declared in one properties file, with the problems found.
pub(super) fn yaml_tests(
    project: &Project,
    props: &crate::loader::properties::PropertiesFile,
    attachable: &HashMap<(ResourceType, String), String>,
    macros: &MacroSet,
    folder_configs: &FolderConfigs,
) -> (Vec<Draft>, Vec<Problem>) {
    let site = TestSite {
        project,
        props,
        folders: yml_folders(project, &props.path),
        folder_configs,
        macros,
    };
    let mut test_drafts = Vec::new();
    let mut problems = Vec::new();
    for t in testables(project, props, attachable) {
        for (column, column_sql, def) in tests_and_columns(&t) {
            match site.test_draft(&t, column, column_sql.as_deref(), def) {
                Ok(draft) => test_drafts.push(draft),
                Err(p) => problems.push(p),
            }
        }
    }
    (test_drafts, problems)
}

/// A resource's tests with the column each is on (none for the resource's
/// own) and the column as the test's SQL names it: `quote: true` columns
/// are quoted, as dbt does.
fn tests_and_columns<'a>(
    t: &Testable<'a>,
) -> Vec<(
    Option<&'a str>,
    Option<String>,
    &'a crate::loader::properties::TestDef,
)> {
    let mut all: Vec<_> = t.tests.iter().map(|d| (None, None, d)).collect();
    for c in t.columns {
        let in_sql = if c.quote == Some(true) {
            crate::text::quote_ident(&c.name)
        } else {
            c.name.clone()
        };
        all.extend(
            c.tests
                .iter()
                .map(|d| (Some(c.name.as_str()), Some(in_sql.clone()), d)),
        );
    }
    all
}

/// Where a properties file's tests become nodes: the project, the file,
/// its folders, and the macros its tests may call.
struct TestSite<'a> {
    project: &'a Project,
    props: &'a crate::loader::properties::PropertiesFile,
    folders: Vec<String>,
    folder_configs: &'a FolderConfigs<'a>,
    macros: &'a MacroSet,
}

impl TestSite<'_> {
    /// The node of test `def` on `t` (on its `column`, when given).
    fn test_draft(
        &self,
        t: &Testable<'_>,
        column: Option<&str>,
        column_sql: Option<&str>,
        def: &crate::loader::properties::TestDef,
    ) -> Result<Draft, Problem> {
        let parsed = generic_tests::parse_test(def).map_err(|msg| {
            Problem::new(
                Code::YamlTest,
                format!("invalid test in {}: {msg}", self.props.path),
            )
            .in_file(&self.props.path, self.props.text.clone())
            .label_line(def.line, "this test")
            .help("write a test as `- unique`, or `- accepted_values: {values: [a, b]}`")
        })?;
        let (short, full) = generic_tests::synthesize_name(&parsed, &t.name, t.is_source, column);
        // As dbt: the node is named by its full name (what `-s` matches);
        // a name of 64 characters or more keeps its shortened form as
        // the alias (stored failures' table, the compiled file).
        let shortened = parsed.custom_name.is_none() && short != full;
        let name = parsed.custom_name.clone().unwrap_or_else(|| full.clone());
        let mut fqn = vec![self.project.name.clone()];
        fqn.extend(self.folders.iter().cloned());
        fqn.push(name.clone());
        let mut cfg = self.folder_configs.get(FileKind::Test, &fqn);
        if !parsed.config.is_empty() {
            config::merge(Arc::make_mut(&mut cfg), &parsed.config);
        }
        if shortened && !cfg.contains_key("alias") {
            Arc::make_mut(&mut cfg).insert("alias".into(), Json::from(short.clone()));
        }
        let file = SourceText {
            kind: FileKind::Test,
            path: self.props.path.clone(),
            resource_path: self.props.path.clone(),
            text: Arc::from(""),
        };
        let mut node = new_node(
            ResourceType::Test,
            self.project,
            name.clone(),
            &file,
            fqn,
            cfg,
        );
        // dbt's own hash, so that ids match across the two tools.
        let hash = generic_tests::dbt_hash(&name, &parsed, &t.expr, column);
        node.unique_id = format!("test.{}.{}.{}", self.project.name, name, hash);
        node.line = def.line;
        node.description = parsed.description.clone();
        node.patch_path = Some(self.props.path.clone());
        let src = generic_tests::template_for(&parsed);
        node.raw_code = Arc::from(src.as_str());
        node.checksum = sha256_hex(&src);
        let mut kwargs = parsed.kwargs.clone();
        if let Some(c) = column_sql {
            kwargs.insert("column_name".into(), Json::from(c));
        }
        kwargs.insert(
            "model".into(),
            Json::from(format!("{{{{ get_where_subquery({}) }}}}", t.expr)),
        );
        node.test = Some(Box::new(TestInfo {
            metadata: Some(TestMetadata {
                name: parsed.test_name.clone(),
                kwargs,
                namespace: parsed.namespace.clone(),
            }),
            column_name: column.map(str::to_string),
            attached_node: Some(t.attached.clone()),
            file_key_name: Some(t.file_key.clone()),
        }));
        let test_name = format!("test_{}", parsed.test_name);
        if !self
            .macros
            .reaches(&self.project.name, parsed.namespace.as_deref(), &test_name)
        {
            return Err(unknown_test(
                self.props,
                &parsed,
                def,
                &t.file_key,
                column,
                self.macros,
            ));
        }
        let args = generic_tests::context_args(&parsed, column_sql);
        Ok(Draft {
            template: Template::Generated {
                source: src,
                args,
                model: Some(t.attached.clone()),
            },
            node: Box::new(node),
        })
    }
}

/// The resources of a YAML file that tests can be attached to.
fn testables<'p>(
    project: &Project,
    props: &'p crate::loader::properties::PropertiesFile,
    attachable: &HashMap<(ResourceType, String), String>,
) -> Vec<Testable<'p>> {
    let mut targets: Vec<Testable> = Vec::new();
    for (rt, key, patches) in [
        (ResourceType::Model, "models", &props.models),
        (ResourceType::Seed, "seeds", &props.seeds),
        (ResourceType::Snapshot, "snapshots", &props.snapshots),
    ] {
        for p in patches {
            let Some(i) = attachable.get(&(rt, p.name.clone())) else {
                continue;
            };
            targets.push(Testable {
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
            targets.push(Testable {
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
    targets
}

/// A test whose generic test is not defined, with the closest names.
fn unknown_test(
    props: &crate::loader::properties::PropertiesFile,
    parsed: &generic_tests::ParsedTest,
    def: &crate::loader::properties::TestDef,
    file_key: &str,
    column: Option<&str>,
    macros: &MacroSet,
) -> Problem {
    let names = match &parsed.namespace {
        Some(ns) => macros.by_package.get(ns).unwrap_or(&macros.names),
        None => &macros.names,
    };
    let known: Vec<&str> = names
        .iter()
        .filter_map(|m| m.strip_prefix("test_"))
        .collect();
    let suggestions = crate::error::closest(&parsed.test_name, known.iter().copied());
    Problem::new(
            Code::CompileUnknownTest,
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
                "define it with {{% test {}(model, column_name) %}} in a macro file or tests/generic/, or install the package that has it (pm deps)",
                parsed.test_name
            ),
        ))
}

/// Descriptions, columns and config from YAML onto the nodes they describe.
pub(super) fn apply_patches(
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
                    // A YAML-defined snapshot is its own node (yaml_resources).
                    if p.extra.contains_key("relation") {
                        continue;
                    }
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
                            Code::ProjectDuplicatePatch,
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
                describe(node, p, doc_map);
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
pub(super) fn yaml_resources(
    project: &Project,
    props: &crate::loader::properties::PropertiesFile,
    target: &Target,
    doc_map: &HashMap<String, String>,
    folder_configs: &FolderConfigs,
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
                &folder_configs.sources(&[project.name.clone(), s.name.clone(), t.name.clone()]),
            );
            config::merge(&mut cfg, &s.config);
            config::merge(&mut cfg, &t.config);
            for tag in s.tags.iter().chain(&t.tags) {
                config::merge_key(&mut cfg, "tags", &Json::from(tag.clone()));
            }
            let file = yaml_file(props);
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
    for p in &props.snapshots {
        if let Some(Json::String(relation)) = p.extra.get("relation") {
            let mut draft = yaml_snapshot(project, props, &folders, folder_configs, p, relation);
            describe(&mut draft.node, p, doc_map);
            drafts.push(draft);
        }
    }
    for e in &props.exposures {
        drafts.push(exposure_draft(project, props, &folders, doc_map, e));
    }
    drafts
}

/// An exposure's node; what it depends on is rendered like a test's template.
fn exposure_draft(
    project: &Project,
    props: &crate::loader::properties::PropertiesFile,
    folders: &[String],
    doc_map: &HashMap<String, String>,
    e: &crate::loader::properties::ExposureDef,
) -> Draft {
    let mut fqn = vec![project.name.clone()];
    fqn.extend(folders.iter().cloned());
    fqn.push(e.name.clone());
    let mut cfg = Config::new();
    cfg.insert("enabled".into(), Json::Bool(true));
    config::merge(&mut cfg, &e.config);
    for tag in &e.tags {
        config::merge_key(&mut cfg, "tags", &Json::from(tag.clone()));
    }
    let file = yaml_file(props);
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
    Draft {
        template: Template::Generated {
            source: src,
            args: Map::new(),
            model: None,
        },
        node: Box::new(node),
    }
}

/// What a YAML entry says of its node: description, columns (their
/// `{{ doc() }}`s resolved), meta and docs.
fn describe(
    node: &mut Node,
    p: &crate::loader::properties::ResourcePatch,
    doc_map: &HashMap<String, String>,
) {
    node.description = resolve_docs(&p.description, doc_map);
    node.columns = columns_of(&p.columns);
    for c in node.columns.values_mut() {
        c.description = resolve_docs(&c.description, doc_map);
    }
    node.meta = p.meta.clone();
    node.docs = p.docs.clone();
}

/// A snapshot defined in YAML (dbt 1.9's `relation:`): its query is
/// `select * from` that relation.
fn yaml_snapshot(
    project: &Project,
    props: &crate::loader::properties::PropertiesFile,
    folders: &[String],
    folder_configs: &FolderConfigs,
    p: &crate::loader::properties::ResourcePatch,
    relation: &str,
) -> Draft {
    let mut fqn = vec![project.name.clone()];
    fqn.extend(folders.iter().cloned());
    fqn.push(p.name.clone());
    let mut cfg = Config::new();
    cfg.insert("enabled".into(), Json::Bool(true));
    config::merge(&mut cfg, &folder_configs.get(FileKind::Snapshot, &fqn));
    config::merge(&mut cfg, &p.config);
    let file = yaml_file(props);
    let mut node = new_node(
        ResourceType::Snapshot,
        project,
        p.name.clone(),
        &file,
        fqn,
        Arc::new(cfg),
    );
    node.line = p.line;
    node.patch_path = Some(props.path.clone());
    Draft {
        template: Template::Generated {
            source: format!("select * from {{{{ {relation} }}}}"),
            args: Map::new(),
            model: None,
        },
        node: Box::new(node),
    }
}

/// Replaces `{{ doc('name') }}` in a description with the docs block.
pub(super) fn resolve_docs(text: &str, docs: &HashMap<String, String>) -> String {
    crate::text::resolve_doc_refs(text, |name| docs.get(name).map(String::as_str))
}

/// The YAML file a source or exposure is declared in, as the file of its node.
fn yaml_file(props: &crate::loader::properties::PropertiesFile) -> SourceText {
    SourceText {
        kind: FileKind::Model,
        path: props.path.clone(),
        resource_path: props.path.clone(),
        text: Arc::from(""),
    }
}
