//! Reading a project from disk into plain data: the project file, every SQL,
//! CSV and YAML file under its paths, and the target from profiles.yml.
//! Nothing here renders Jinja in models or touches a database.

pub mod config;
pub mod packages;
pub mod profile;
pub mod properties;
pub mod unit_tests;
pub mod yaml;

use crate::error::{Code, Problem, Problems, Result};
use config::ConfigTree;
use properties::PropertiesFile;
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Seeds larger than this are identified by path, not by a checksum of their content.
pub const SEED_CHECKSUM_LIMIT: u64 = 1 << 20;

pub const PROJECT_FILES: [&str; 2] = ["pm_project.yml", "dbt_project.yml"];

/// What a file under the project's paths is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    Model,
    Seed,
    /// A singular data test (`tests/**/*.sql`).
    Test,
    Macro,
    Snapshot,
    Analysis,
    /// Markdown with `{% docs %}` blocks.
    Docs,
    /// A unit test's rows: `fixtures/**/*.csv` or `*.sql` under a test path.
    Fixture,
    /// A unit test (declared in YAML; its config comes from `unit_tests:`).
    UnitTest,
}

/// A file's text with where it came from.
#[derive(Debug, Clone)]
pub struct SourceText {
    pub kind: FileKind,
    /// Path relative to the project root, `/`-separated.
    pub path: String,
    /// Path relative to the resource folder it was found under (`staging/stg_users.sql`).
    pub resource_path: String,
    pub text: Arc<str>,
}

impl SourceText {
    /// File name without extension.
    pub fn stem(&self) -> &str {
        let file = self
            .resource_path
            .rsplit('/')
            .next()
            .unwrap_or(&self.resource_path);
        file.rsplit_once('.').map(|(s, _)| s).unwrap_or(file)
    }
    /// Folders between the resource path and the file.
    pub fn folders(&self) -> Vec<String> {
        let mut parts: Vec<String> = self.resource_path.split('/').map(str::to_string).collect();
        parts.pop();
        parts
    }
}

/// A loaded project: plain data, source locations kept for errors. The
/// project pm runs in is the root; each installed package is a `Project` of
/// its own in the root's `packages`, with every path still relative to the
/// root (`dbt_packages/dbt_utils/macros/x.sql`), so a path names one file.
#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    /// Where this project's files are, relative to the root, with a trailing
    /// `/` (`dbt_packages/dbt_utils/`); empty for the root project.
    pub dir: String,
    pub name: String,
    pub profile: Option<String>,
    /// `pm_project.yml` or `dbt_project.yml`.
    pub project_file: String,
    pub project_text: Arc<str>,
    pub model_paths: Vec<String>,
    pub seed_paths: Vec<String>,
    pub test_paths: Vec<String>,
    pub macro_paths: Vec<String>,
    pub snapshot_paths: Vec<String>,
    pub analysis_paths: Vec<String>,
    pub target_path: String,
    pub vars: serde_json::Map<String, Json>,
    pub models_config: ConfigTree,
    pub seeds_config: ConfigTree,
    pub tests_config: ConfigTree,
    pub snapshots_config: ConfigTree,
    pub unit_tests_config: ConfigTree,
    pub sources_config: ConfigTree,
    pub on_run_start: Vec<String>,
    pub on_run_end: Vec<String>,
    pub quoting: Json,
    pub files: Vec<SourceText>,
    pub properties: Vec<PropertiesFile>,
    /// `selectors.yml` next to the project file, parsed.
    pub selectors: Option<(Arc<str>, Json)>,
    /// The raw project document (kept for unknown keys).
    pub document: Json,
    /// The installed packages (root project only), sorted by name.
    pub packages: Vec<Project>,
}

impl Project {
    /// The root project, then its packages.
    pub fn all(&self) -> impl Iterator<Item = &Project> {
        std::iter::once(self).chain(&self.packages)
    }

    pub fn is_root(&self) -> bool {
        self.dir.is_empty()
    }

    /// The text of a file of this project or its packages (SQL, CSV kept in
    /// memory, YAML or a project file), by its path; empty when not kept.
    pub fn text_of(&self, path: &str) -> Arc<str> {
        self.all()
            .find_map(|p| {
                if p.project_file == path {
                    return Some(p.project_text.clone());
                }
                p.files
                    .iter()
                    .find(|f| f.path == path)
                    .map(|f| f.text.clone())
                    .or_else(|| {
                        p.properties
                            .iter()
                            .find(|f| f.path == path)
                            .map(|f| f.text.clone())
                    })
            })
            .unwrap_or_else(|| Arc::from(""))
    }
}

/// The folder holding the project file: `dir` itself when given, else the
/// current folder or the nearest parent holding one.
pub fn find_root(dir: Option<&Path>) -> Result<PathBuf> {
    if let Some(d) = dir {
        if PROJECT_FILES.iter().any(|f| d.join(f).is_file()) {
            return Ok(d.to_path_buf());
        }
        return Err(Problem::new(
            Code::ProjectNotFound,
            format!("no pm_project.yml or dbt_project.yml in {}", d.display()),
        )
        .help("point --project-dir at the folder that holds the project file")
        .into());
    }
    let cwd = std::env::current_dir().map_err(|e| {
        Problems::from(Problem::new(
            Code::ProjectCwd,
            format!("cannot read the current folder: {e}"),
        ))
    })?;
    for d in cwd.ancestors() {
        if PROJECT_FILES.iter().any(|f| d.join(f).is_file()) {
            return Ok(d.to_path_buf());
        }
    }
    Err(Problem::new(
        Code::ProjectNotFound,
        format!(
            "no pm_project.yml or dbt_project.yml in {} or any folder above it",
            cwd.display()
        ),
    )
    .help("run pm inside a project, or pass --project-dir DIR")
    .into())
}

/// A `*-paths:` list of the project file: a list of folder names (a lone
/// name is taken as a list of one); anything else is an error at its line.
fn path_list(
    doc: &Json,
    keys: &[&str],
    default: &str,
    file: &str,
    text: &Arc<str>,
) -> Result<Vec<String>> {
    for k in keys {
        let Some(v) = doc.get(*k) else { continue };
        let ok = match v {
            Json::String(_) => true,
            Json::Array(items) => items.iter().all(Json::is_string),
            _ => false,
        };
        if !ok {
            return Err(Problem::new(
                Code::ProjectPaths,
                format!("`{k}:` in {file} must be a list of folders, not `{v}`"),
            )
            .in_file(file, text.clone())
            .label_line(yaml::line_of_key(text, k).unwrap_or(1), "here")
            .help(format!("write {k}: [\"{default}\"]"))
            .into());
        }
        return Ok(yaml::string_list(Some(v))
            .into_iter()
            .map(|p| p.trim_end_matches('/').to_string())
            .collect());
    }
    Ok(vec![default.to_string()])
}

fn hooks(v: Option<&Json>) -> Vec<String> {
    yaml::string_list(v)
}

/// Loads the project at `root`, with the packages installed under its
/// `packages-install-path`.
pub fn load(root: &Path) -> Result<Project> {
    let mut project = load_project(root, root)?;
    project.packages = packages::load_installed(&project)?;
    Ok(project)
}

/// Loads the root project alone, without its packages (for `pm deps`,
/// which installs them).
pub fn load_without_packages(root: &Path) -> Result<Project> {
    load_project(root, root)
}

/// Loads the project whose files are in `dir` (the root, or a package
/// installed under it), with paths relative to `root`.
pub(crate) fn load_project(root: &Path, dir: &Path) -> Result<Project> {
    let (project_file, project_text) = read_project_file(dir)?;
    let prefix = rel(dir, root);
    let prefix = if prefix.is_empty() {
        prefix
    } else {
        format!("{prefix}/")
    };
    let project_file = format!("{prefix}{project_file}");
    let doc = yaml::parse(&project_file, &project_text)?;
    let name = project_name(&doc, &project_file, &project_text)?;
    let paths =
        |keys: &[&str], default: &str| path_list(&doc, keys, default, &project_file, &project_text);
    let model_paths = paths(&["model-paths", "source-paths"], "models")?;
    let seed_paths = paths(&["seed-paths", "data-paths"], "seeds")?;
    let test_paths = paths(&["test-paths"], "tests")?;
    let macro_paths = paths(&["macro-paths"], "macros")?;
    let snapshot_paths = paths(&["snapshot-paths"], "snapshots")?;
    let analysis_paths = paths(&["analysis-paths"], "analyses")?;
    // dbt: docs blocks are read from `docs-paths` when it is set, else from
    // the model, seed, macro and snapshot folders.
    let docs_paths = match doc.get("docs-paths") {
        Some(_) => paths(&["docs-paths"], "docs")?,
        None => Vec::new(),
    };
    let docs_anywhere = docs_paths.is_empty();
    let target_path = doc
        .get("target-path")
        .and_then(yaml::as_string)
        .unwrap_or_else(|| "target".into());

    let vars = project_vars(&doc, &name);

    let mut timer = crate::output::PhaseTimer::new("load");
    timer.lap("walk, read files and parse yaml");
    let groups: [ResourceFolders<'_>; 7] = [
        (&model_paths, FileKind::Model, &["sql"]),
        (&seed_paths, FileKind::Seed, &["csv"]),
        (&test_paths, FileKind::Test, &["sql", "csv"]),
        (&macro_paths, FileKind::Macro, &["sql"]),
        (&snapshot_paths, FileKind::Snapshot, &["sql"]),
        (&analysis_paths, FileKind::Analysis, &["sql"]),
        (&docs_paths, FileKind::Docs, &["md"]),
    ];
    let (ok_files, ok_props) = read_files(root, dir, &groups, docs_anywhere)?;
    timer.lap("collect");
    timer.lap("selectors");
    let selectors = if prefix.is_empty() {
        read_selectors(root)?
    } else {
        None
    };

    Ok(Project {
        root: root.to_path_buf(),
        dir: prefix,
        profile: doc.get("profile").and_then(yaml::as_string),
        models_config: ConfigTree::from_json(doc.get("models")),
        seeds_config: ConfigTree::from_json(doc.get("seeds")),
        tests_config: ConfigTree::from_json(doc.get("data_tests").or_else(|| doc.get("tests"))),
        snapshots_config: ConfigTree::from_json(doc.get("snapshots")),
        unit_tests_config: ConfigTree::from_json(doc.get("unit_tests")),
        sources_config: ConfigTree::from_json(doc.get("sources")),
        on_run_start: hooks(doc.get("on-run-start")),
        on_run_end: hooks(doc.get("on-run-end")),
        quoting: doc.get("quoting").cloned().unwrap_or(Json::Null),
        name,
        project_file,
        project_text,
        model_paths,
        seed_paths,
        test_paths,
        macro_paths,
        snapshot_paths,
        analysis_paths,
        target_path,
        vars,
        files: ok_files,
        properties: ok_props,
        selectors,
        document: doc,
        packages: Vec::new(),
    })
}

/// The folders of one kind of resource, with the extensions it reads.
type ResourceFolders<'a> = (&'a [String], FileKind, &'a [&'a str]);

/// Walks the resource folders of the project in `dir` and reads every
/// file: resources and properties (YAML) files, read and parsed on the
/// thread pool while the walk goes on. Results keep their walk order, so
/// the outcome does not depend on timing; every unreadable file is reported.
fn read_files(
    root: &Path,
    dir: &Path,
    groups: &[ResourceFolders<'_>],
    docs_anywhere: bool,
) -> Result<(Vec<SourceText>, Vec<PropertiesFile>)> {
    type Read<T> = std::sync::Mutex<Vec<(usize, std::result::Result<T, Problem>)>>;
    let files: Read<SourceText> = Default::default();
    let props: Read<PropertiesFile> = Default::default();
    let read_batch = |batch: Vec<(usize, FileKind, String, PathBuf)>| {
        let out: Vec<_> = batch
            .into_iter()
            .map(|(i, kind, resource_path, abs)| (i, read_source(root, kind, resource_path, &abs)))
            .collect();
        if let Ok(mut f) = files.lock() {
            f.extend(out);
        }
    };
    let read_props = |i: usize, abs: PathBuf| {
        let result = read_properties(root, &abs);
        if let Ok(mut p) = props.lock() {
            p.push((i, result));
        }
    };
    let walked: std::result::Result<(), Problem> = rayon::scope(|scope| {
        let mut seen_yml = std::collections::HashSet::new();
        let (mut n_files, mut n_yml) = (0usize, 0usize);
        let mut batch = Vec::new();
        for &(paths, kind, exts) in groups {
            for p in paths {
                let base = dir.join(p);
                if !base.is_dir() {
                    continue;
                }
                for entry in walkdir::WalkDir::new(&base)
                    .sort_by_file_name()
                    .follow_links(true)
                {
                    let entry = entry.map_err(|e| {
                        Problem::new(
                            Code::ProjectWalk,
                            format!("cannot read {}: {e}", base.display()),
                        )
                    })?;
                    if !entry.file_type().is_file() {
                        continue;
                    }
                    let path = entry.path();
                    if entry.file_name().to_string_lossy().starts_with('.') {
                        continue;
                    }
                    let file_kind = match found_file(path, &base, kind, exts, docs_anywhere) {
                        Found::Properties => {
                            if seen_yml.insert(path.to_path_buf()) {
                                let (i, abs) = (n_yml, path.to_path_buf());
                                n_yml += 1;
                                scope.spawn(move |_| read_props(i, abs));
                            }
                            continue;
                        }
                        Found::Resource(k) => k,
                        Found::Other => continue,
                    };
                    batch.push((n_files, file_kind, rel(path, &base), path.to_path_buf()));
                    n_files += 1;
                    if batch.len() == 128 {
                        let b = std::mem::take(&mut batch);
                        scope.spawn(move |_| read_batch(b));
                    }
                }
            }
        }
        if !batch.is_empty() {
            scope.spawn(move |_| read_batch(batch));
        }
        Ok(())
    });
    walked?;
    let mut files = files.into_inner().unwrap_or_default();
    files.sort_by_key(|(i, _)| *i);
    let mut props = props.into_inner().unwrap_or_default();
    props.sort_by_key(|(i, _)| *i);
    let files: Vec<_> = files.into_iter().map(|(_, r)| r).collect();
    let props: Vec<_> = props.into_iter().map(|(_, r)| r).collect();

    let mut problems = Problems::default();
    let ok_files = successes(files, &mut problems);
    let ok_props = successes(props, &mut problems);
    problems.into_result()?;
    Ok((ok_files, ok_props))
}

/// The project's `name:`, which it must have: a name (letters, digits and
/// `_`, not starting with a digit), as dbt requires; and `profile:`, when
/// given, a single name.
fn project_name(doc: &Json, project_file: &str, project_text: &Arc<str>) -> Result<String> {
    let at_key = |key: &str, message: String, help: &str| -> Problems {
        let line = yaml::line_of_key(project_text, key).unwrap_or(1);
        Problem::new(Code::ProjectName, message)
            .in_file(project_file, project_text.clone())
            .label_line(line, "here")
            .help(help.to_string())
            .into()
    };
    if let Some(p) = doc
        .get("profile")
        .filter(|p| !p.is_string() && !p.is_null())
    {
        return Err(at_key(
            "profile",
            format!("{project_file}: profile is `{p}`, not a profile's name"),
            "name one profile of profiles.yml, e.g. profile: my_project",
        ));
    }
    match doc.get("name") {
        Some(Json::String(n)) if is_project_name(n) => return Ok(n.clone()),
        Some(Json::Null) | None => {}
        Some(other) => {
            let shown = yaml::as_string(other).unwrap_or_else(|| other.to_string());
            return Err(at_key(
                "name",
                format!("{project_file}: `{shown}` is not a project name"),
                "a project name is letters, digits and `_`, not starting with a digit (it names the package: my_project)",
            ));
        }
    }
    match doc.get("name").and_then(yaml::as_string) {
        Some(n) if !n.is_empty() => Ok(n),
        _ => Err(
            Problem::new(Code::ProjectName, format!("{project_file} has no `name:`"))
                .in_file(project_file, project_text.clone())
                .label(0..0, "the project needs a name")
                .help("add `name: my_project` at the top of the file")
                .into(),
        ),
    }
}

/// dbt's rule for a project's name: an identifier.
fn is_project_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// Reads and parses one YAML properties file.
fn read_properties(root: &Path, abs: &Path) -> std::result::Result<PropertiesFile, Problem> {
    let path = rel(abs, root);
    let text: Arc<str> = std::fs::read_to_string(abs)
        .map_err(|e| Problem::new(Code::ProjectRead, format!("cannot read {path}: {e}")))?
        .into();
    let doc = yaml::parse(&path, &text)?;
    properties::parse(&path, &text, &doc)
}

/// The project file (`pm_project.yml` or `dbt_project.yml`) and its text.
/// The folders `clean-targets:` names (default: the target path), read from
/// the project file alone, so that cleaning works on a project that does
/// not load (packages not installed, a broken model).
pub fn clean_targets(root: &Path) -> Result<Vec<String>> {
    let (file, text) = read_project_file(root)?;
    let doc = yaml::parse(&file, &text)?;
    let target_path = doc
        .get("target-path")
        .and_then(yaml::as_string)
        .unwrap_or_else(|| "target".into());
    path_list(&doc, &["clean-targets"], &target_path, &file, &text)
}

fn read_project_file(root: &Path) -> Result<(String, Arc<str>)> {
    PROJECT_FILES
        .iter()
        .find_map(|f| {
            std::fs::read_to_string(root.join(f))
                .ok()
                .map(|t| (f.to_string(), Arc::<str>::from(t)))
        })
        .ok_or_else(|| {
            Problems::from(
                Problem::new(
                    Code::ProjectNotFound,
                    format!("cannot read a project file in {}", root.display()),
                )
                .help("create pm_project.yml (or dbt_project.yml) with at least `name:`"),
            )
        })
}

/// The project's `vars:`; `vars: {project_name: {...}}` scopes vars to a
/// package, and ours apply.
fn project_vars(doc: &Json, name: &str) -> serde_json::Map<String, Json> {
    let mut vars = serde_json::Map::new();
    if let Some(Json::Object(v)) = doc.get("vars") {
        for (k, val) in v {
            if k == name {
                if let Json::Object(inner) = val {
                    for (ik, iv) in inner {
                        vars.insert(ik.clone(), iv.clone());
                    }
                    continue;
                }
            }
            vars.insert(k.clone(), val.clone());
        }
    }
    vars
}

/// What a file found under a resource path is.
enum Found {
    /// A YAML properties file.
    Properties,
    Resource(FileKind),
    Other,
}

/// `path` found under `base`, a folder of `kind` resources with extensions `exts`.
fn found_file(
    path: &Path,
    base: &Path,
    kind: FileKind,
    exts: &[&str],
    docs_anywhere: bool,
) -> Found {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if ext == "yml" || ext == "yaml" {
        Found::Properties
    } else if exts.contains(&ext.as_str()) {
        // A macro in tests/generic/ is a macro, and files in tests/fixtures/
        // are unit tests' rows, as in dbt.
        let in_tests = |folder: &str| kind == FileKind::Test && rel(path, base).starts_with(folder);
        if in_tests("fixtures/") {
            Found::Resource(FileKind::Fixture)
        } else if kind == FileKind::Test && ext == "csv" {
            Found::Other
        } else if in_tests("generic/") {
            Found::Resource(FileKind::Macro)
        } else {
            Found::Resource(kind)
        }
    } else if ext == "md"
        && docs_anywhere
        && matches!(
            kind,
            FileKind::Model | FileKind::Macro | FileKind::Seed | FileKind::Snapshot
        )
    {
        Found::Resource(FileKind::Docs)
    } else {
        Found::Other
    }
}

/// The values, the problems pushed to `problems`.
fn successes<T>(results: Vec<std::result::Result<T, Problem>>, problems: &mut Problems) -> Vec<T> {
    let mut ok = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(v) => ok.push(v),
            Err(p) => problems.push(p),
        }
    }
    ok
}

/// `selectors.yml` next to the project file, if there is one.
fn read_selectors(root: &Path) -> Result<Option<(Arc<str>, Json)>> {
    match std::fs::read_to_string(root.join("selectors.yml")) {
        Ok(t) => {
            let t: Arc<str> = t.into();
            let d = yaml::parse("selectors.yml", &t)?;
            Ok(Some((t, d)))
        }
        Err(_) => Ok(None),
    }
}

/// Reads one file under a resource path.
fn read_source(
    root: &Path,
    kind: FileKind,
    resource_path: String,
    abs: &Path,
) -> std::result::Result<SourceText, Problem> {
    // Large seeds are not read here: they are streamed when loaded, and
    // identified by path rather than content (as dbt does above 1 MiB).
    if kind == FileKind::Seed {
        let len = std::fs::metadata(abs).map(|m| m.len()).unwrap_or(0);
        if len > SEED_CHECKSUM_LIMIT {
            return Ok(SourceText {
                kind,
                path: rel(abs, root),
                resource_path,
                text: Arc::from(""),
            });
        }
    }
    let text = std::fs::read_to_string(abs).map_err(|e| {
        Problem::new(
            Code::ProjectRead,
            format!("cannot read {}: {e}", abs.display()),
        )
        .help("check the file's permissions and that it is UTF-8")
    })?;
    Ok(SourceText {
        kind,
        path: rel(abs, root),
        resource_path,
        text: Arc::from(text),
    })
}

fn rel(path: &Path, base: &Path) -> String {
    let r = path.strip_prefix(base).unwrap_or(path);
    r.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Parses `--vars` (a YAML mapping) into JSON.
pub fn parse_cli_vars(text: &str) -> Result<serde_json::Map<String, Json>> {
    let t: Arc<str> = Arc::from(text);
    match yaml::parse("--vars", &t)? {
        Json::Object(m) => Ok(m),
        Json::Null => Ok(Default::default()),
        _ => Err(Problem::new(Code::CliVars, "--vars must be a YAML mapping")
            .in_file("--vars", t.clone())
            .label(0..text.len(), "not a mapping")
            .help("write it like --vars '{key: value, other: 2}'")
            .into()),
    }
}
