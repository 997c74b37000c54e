//! Macros and docs blocks: collected from their files, checked for
//! unbalanced blocks, duplicates and dangling `doc()` references.

use super::*;

/// The project's macros and pm's built-in ones.
pub(super) struct MacroSet {
    /// (file, prepared text) for the Jinja environment.
    pub(super) templates: Vec<(String, String)>,
    pub(super) infos: Vec<MacroInfo>,
    /// Original text of each macro file, for errors.
    pub(super) texts: HashMap<String, Arc<str>>,
    /// Every macro name, built-in or the project's.
    pub(super) names: BTreeSet<String>,
    /// Where each project macro is defined (file, line).
    pub(super) defined_at: HashMap<String, (String, usize)>,
    /// Names of the project's `{% materialization %}` blocks.
    pub(super) materializations: HashSet<String>,
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
pub(super) fn collect_docs(project: &Project, problems: &mut Problems) -> Vec<DocBlock> {
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
pub(super) fn collect_macros(project: &Project, problems: &mut Problems) -> MacroSet {
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

/// A block left open (or a stray end tag) in a file, as an error at the tag.
pub(super) fn unbalanced_blocks(f: &SourceText, pairs: &[(&str, &str)], problems: &mut Problems) {
    for (at, message) in blocks::unbalanced(&f.text, pairs) {
        problems.push(
            Problem::new("jinja::unclosed_block", message.clone())
                .in_file(&f.path, f.text.clone())
                .label(at..at + 2, message)
                .help("close every block with its end tag; what follows an unclosed block would be lost"),
        );
    }
}
