//! Macros and docs blocks: collected from their files, checked for
//! unbalanced blocks, duplicates and dangling `doc()` references.

use crate::compile::{blocks, generic_tests, BUILTIN_MACROS_FILE};
use crate::error::{Code, Problem, Problems};
use crate::loader::{FileKind, Project, SourceText};
use crate::manifest::{DocBlock, MacroInfo};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// The project's macros, its packages' and pm's built-in ones.
pub(super) struct MacroSet {
    /// The macro files for the Jinja environment.
    pub(super) templates: Vec<MacroFile>,
    pub(super) infos: Vec<MacroInfo>,
    /// Original text of each macro file, for errors.
    pub(super) texts: HashMap<String, Arc<str>>,
    /// The macro names every template sees unqualified: the root project's
    /// and the built-ins.
    pub(super) names: BTreeSet<String>,
    /// Each package's macro names (the root project's under its name too, and
    /// the built-ins under `dbt`), as `package.macro()` reaches them.
    pub(super) by_package: HashMap<String, BTreeSet<String>>,
    /// Where each root project macro is defined (file, line).
    pub(super) defined_at: HashMap<String, (String, usize)>,
    /// Names of the `{% materialization %}` blocks of the project and its packages.
    pub(super) materializations: HashSet<String>,
}

/// A macro file, prepared for the Jinja environment.
#[derive(Debug, Clone)]
pub struct MacroFile {
    /// The package the file belongs to (`pm` for the built-ins).
    pub package: String,
    pub path: String,
    pub prepared: String,
    /// Its macros in file order, and whether each takes `varargs`/`kwargs`.
    pub macros: Vec<(String, bool)>,
}

/// The package name pm's built-in macros go by, and the namespace they are
/// reached through (`dbt.current_timestamp()`), as dbt's own are.
pub const BUILTIN_PACKAGE: &str = "pm";
pub const BUILTIN_NAMESPACE: &str = "dbt";

impl MacroSet {
    /// Whether a template of `package` reaches macro `name` in `namespace`
    /// (or unqualified: the package's own, the root's and the built-ins).
    pub(super) fn reaches(&self, package: &str, namespace: Option<&str>, name: &str) -> bool {
        let has = |p: &str| self.by_package.get(p).is_some_and(|m| m.contains(name));
        match namespace {
            Some(ns) => has(ns),
            None => has(package) || self.names.contains(name),
        }
    }
}

/// Snapshot files are read nowhere else before running: an unclosed
/// `{% snapshot %}` would make the snapshot vanish silently.
pub(super) fn check_snapshot_files(project: &Project, problems: &mut Problems) {
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
pub(super) fn collect_docs(root: &Project, problems: &mut Problems) -> Vec<DocBlock> {
    let mut docs: Vec<DocBlock> = Vec::new();
    for project in root.all() {
        collect_package_docs(project, &mut docs, problems);
    }
    docs
}

fn collect_package_docs(project: &Project, docs: &mut Vec<DocBlock>, problems: &mut Problems) {
    for f in project.files.iter().filter(|f| f.kind == FileKind::Docs) {
        unbalanced_blocks(f, &[("docs", "enddocs")], problems);
        let mut openings = blocks::scan_tags(&f.text)
            .into_iter()
            .filter(|t| t.keyword == "docs")
            .map(|t| (t.rest.trim().to_string(), t.start));
        for (name, body) in blocks::docs_blocks(&f.text) {
            let at = openings.find(|(n, _)| *n == name).map_or(0, |(_, at)| at);
            if let Some(first) = docs
                .iter()
                .find(|d| d.name == name && d.package_name == project.name)
            {
                problems.push(
                    Problem::new(
                        Code::ProjectDuplicateDocs,
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
}

/// Every `doc('name')` in a properties file must name a docs block.
pub(super) fn check_doc_references(
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
                        Code::YamlUnknownDoc,
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

/// Reads the macro files of the project and its packages: `{% test %}`
/// blocks become `test_` macros, a second definition of a name in one
/// package is an error.
pub(super) fn collect_macros(project: &Project, problems: &mut Problems) -> MacroSet {
    let mut set = builtin_macros();
    for unit in project.all() {
        let mut defined_at: HashMap<String, (String, usize)> = HashMap::new();
        let mut names = BTreeSet::new();
        for f in unit.files.iter().filter(|f| f.kind == FileKind::Macro) {
            add_macro_file(&mut set, unit, f, &mut defined_at, &mut names, problems);
        }
        if unit.is_root() {
            set.names.extend(names.iter().cloned());
            set.defined_at = defined_at;
        }
        set.by_package.insert(unit.name.clone(), names);
    }
    set.infos.sort_by(|a, b| a.unique_id.cmp(&b.unique_id));
    set
}

/// dbt's cross-database macros and helpers, written for pm.
pub const DBT_MACROS: &str = include_str!("dbt_macros.sql");
/// The file name they go by in errors.
pub const DBT_MACROS_FILE: &str = "pm/dbt_macros.sql";

/// pm's built-in macros, unqualified and in the `dbt` namespace.
fn builtin_macros() -> MacroSet {
    let mut set = MacroSet {
        templates: Vec::new(),
        infos: Vec::new(),
        texts: HashMap::new(),
        by_package: HashMap::new(),
        names: BTreeSet::new(),
        defined_at: HashMap::new(),
        materializations: HashSet::new(),
    };
    for (path, text) in [
        (BUILTIN_MACROS_FILE, generic_tests::BUILTIN_MACROS),
        (DBT_MACROS_FILE, DBT_MACROS),
    ] {
        let (prepared, defs) = blocks::prepare_macro_file(text);
        for d in &defs {
            set.names.insert(d.name.clone());
            set.infos.push(MacroInfo {
                unique_id: format!("macro.{BUILTIN_PACKAGE}.{}", d.name),
                name: d.name.clone(),
                package_name: BUILTIN_PACKAGE.into(),
                original_file_path: path.into(),
                path: path.trim_start_matches("pm/").into(),
                line: d.line,
                arguments: d.arguments.clone(),
                macro_sql: text[d.start..d.end].to_string(),
            });
        }
        set.texts.insert(path.to_string(), Arc::from(text));
        set.templates.push(MacroFile {
            package: BUILTIN_PACKAGE.into(),
            path: path.into(),
            prepared,
            macros: defs
                .iter()
                .map(|d| (d.name.clone(), blocks::catches_all(&text[d.start..d.end])))
                .collect(),
        });
    }
    set.by_package
        .insert(BUILTIN_NAMESPACE.to_string(), set.names.clone());
    set
}

/// One macro file of `unit`: its macros, checked for balance and for names
/// defined twice in the package.
fn add_macro_file(
    set: &mut MacroSet,
    unit: &Project,
    f: &SourceText,
    defined_at: &mut HashMap<String, (String, usize)>,
    names: &mut BTreeSet<String>,
    problems: &mut Problems,
) {
    set.materializations
        .extend(blocks::materialization_names(&f.text));
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
        if let Some((other, line)) = defined_at.get(&d.name) {
            problems.push(
                Problem::new(
                    Code::ProjectDuplicateMacro,
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
        defined_at.insert(d.name.clone(), (f.path.clone(), d.line));
        names.insert(d.name.clone());
        set.infos.push(MacroInfo {
            unique_id: format!("macro.{}.{}", unit.name, d.name),
            name: d.name.clone(),
            package_name: unit.name.clone(),
            original_file_path: f.path.clone(),
            path: f.resource_path.clone(),
            line: d.line,
            arguments: d.arguments.clone(),
            macro_sql: f.text[d.start..d.end].to_string(),
        });
    }
    set.texts.insert(f.path.clone(), f.text.clone());
    set.templates.push(MacroFile {
        package: unit.name.clone(),
        path: f.path.clone(),
        prepared: src,
        macros: defs
            .iter()
            .map(|d| (d.name.clone(), blocks::catches_all(&f.text[d.start..d.end])))
            .collect(),
    });
}

/// A block left open (or a stray end tag) in a file, as an error at the tag.
pub(super) fn unbalanced_blocks(f: &SourceText, pairs: &[(&str, &str)], problems: &mut Problems) {
    for (at, message) in blocks::unbalanced(&f.text, pairs) {
        problems.push(
            Problem::new(Code::JinjaUnclosedBlock, message.clone())
                .in_file(&f.path, f.text.clone())
                .label(at..at + 2, message)
                .help("close every block with its end tag; what follows an unclosed block would be lost"),
        );
    }
}
