//! Turning render failures into diagnostics that point at the template line.

use super::context::{Failure, BUILTIN_NAMES};
use crate::error::{closest, did_you_mean, line_range, Code, Problem};
use crate::loader::Project;
use crate::manifest::{Node, ResourceType};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Texts of macro files, by template name, for errors raised inside macros.
pub struct FileIndex<'a> {
    pub macro_texts: &'a HashMap<String, Arc<str>>,
    pub macro_names: &'a BTreeSet<String>,
    /// YAML files by path, for nodes generated from them (tests, exposures).
    pub yaml_texts: HashMap<&'a str, Arc<str>>,
}

/// A render error of `node`.
pub fn node_problem(
    e: &minijinja::Error,
    failure: Option<Failure>,
    node: &Node,
    node_source: &str,
    files: &FileIndex,
) -> Problem {
    let template =
        super::context::template_file(e.name().unwrap_or(&node.original_file_path)).to_string();
    // Shared templates of generated nodes are named `<generated>`.
    let in_node = template == node.original_file_path || template == "<generated>";
    // Generic tests, exposures and the semantic layer come from YAML: point
    // at their entry there.
    let from_yaml =
        node.original_file_path.ends_with(".yml") || node.original_file_path.ends_with(".yaml");
    let generated = node.resource_type == ResourceType::Exposure
        || node.semantic.is_some()
        || (node.resource_type == ResourceType::Snapshot && from_yaml)
        || node.test.as_ref().is_some_and(|t| t.metadata.is_some());
    // An error inside pm's own test macros is the YAML entry's (a missing or
    // wrong argument): the user cannot change those macros.
    if generated && (in_node || template == super::BUILTIN_MACROS_FILE) {
        let text = files
            .yaml_texts
            .get(node.original_file_path.as_str())
            .cloned();
        let (mut code, mut message, mut help) =
            describe(e, failure.as_ref(), node_source, files.macro_names);
        if let Some((m, h)) = node
            .test
            .as_ref()
            .and_then(|t| t.metadata.as_ref())
            .filter(|_| template == super::BUILTIN_MACROS_FILE)
            .and_then(|meta| super::generic_tests::explain_arguments(&meta.name, &meta.kwargs))
        {
            (code, message, help) = (Code::YamlTestArguments, m, h);
        }
        let mut p = Problem::new(
            code,
            format!(
                "{message} (in {} `{}`)",
                node.resource_type.as_str(),
                node.name
            ),
        )
        .help(help);
        if let Some(t) = text {
            p = p
                .in_file(&node.original_file_path, t)
                .label_line(node.line, "declared here");
        }
        return p;
    }
    let text = template_text(
        &template,
        in_node.then_some((&*node.raw_code, node_source)),
        files,
    );
    let mut p = jinja_problem(e, failure.as_ref(), &template, &text, files.macro_names);
    if !in_node {
        let mut context = Problem::new(
            Code::CompileWhile,
            format!(
                "while compiling {} `{}` ({})",
                node.resource_type.as_str(),
                node.name,
                node.original_file_path
            ),
        );
        if let Some(t) = generated
            .then(|| files.yaml_texts.get(node.original_file_path.as_str()))
            .flatten()
        {
            context = context
                .in_file(&node.original_file_path, t.clone())
                .label_line(node.line, "declared here");
        }
        p = p.related(context);
    }
    p
}

/// The text an error's template stands for: the node's own file (`own`:
/// its text and the template prepared from it, when the error is in it) or
/// a macro file's. Shown as the user wrote it: spans of the prepared
/// template are moved onto it by [`jinja_problem`].
fn template_text(template: &str, own: Option<(&str, &str)>, files: &FileIndex) -> Arc<str> {
    match own {
        Some((file_text, source))
            if super::blocks::mutable_literals(file_text).as_deref() == Some(source) =>
        {
            Arc::from(file_text)
        }
        Some((_, source)) => Arc::from(source),
        None => files
            .macro_texts
            .get(template)
            .cloned()
            .unwrap_or_else(|| Arc::from("")),
    }
}

/// A unit test's render of its model failed: the error in the model (or
/// the macro it called), with the test's YAML entry beside it.
pub fn unit_test_problem(
    e: &minijinja::Error,
    failure: Option<Failure>,
    unit_test: &Node,
    model: (&str, &str, &str),
    files: &FileIndex,
) -> Problem {
    let (model_path, model_file_text, model_source) = model;
    let template = super::context::template_file(e.name().unwrap_or(model_path)).to_string();
    let text = template_text(
        &template,
        (template == model_path).then_some((model_file_text, model_source)),
        files,
    );
    let mut context = Problem::new(
        Code::CompileWhile,
        format!(
            "while rendering {model_path} for unit test `{}`",
            unit_test.name
        ),
    );
    if let Some(t) = files.yaml_texts.get(unit_test.original_file_path.as_str()) {
        context = context
            .in_file(&unit_test.original_file_path, t.clone())
            .label_line(unit_test.line, "declared here");
    }
    let queried = failure
        .as_ref()
        .is_some_and(|f| f.code == Code::RunRenderQuery);
    let mut p = jinja_problem(e, failure.as_ref(), &template, &text, files.macro_names);
    if queried {
        // As in dbt: the fixtures are CTEs of the test's query, not relations.
        p.help = Some(format!(
            "{}; in a unit test, ref() and source() name the given rows' CTEs, which a query run while rendering cannot read: override the macro that runs it (`overrides: {{macros: {{name: value}}}}`)",
            p.help.unwrap_or_default()
        ));
    }
    p.related(context)
}

fn describe(
    e: &minijinja::Error,
    failure: Option<&Failure>,
    source: &str,
    macro_names: &BTreeSet<String>,
) -> (Code, String, String) {
    if let Some(f) = failure {
        return (f.code, f.message.clone(), f.help.clone());
    }
    let detail = e.detail().unwrap_or("").to_string();
    let span_text = e
        .range()
        .and_then(|r| source.get(r))
        .unwrap_or("")
        .trim()
        .to_string();
    use minijinja::ErrorKind as K;
    match e.kind() {
        K::SyntaxError => (
            Code::JinjaSyntax,
            format!("Jinja syntax error: {detail}"),
            "check that every {% … %} block is closed ({% endif %}, {% endfor %}, {% endmacro %}) and every {{ … }} is complete".into(),
        ),
        K::UndefinedError => {
            let name = if span_text.is_empty() { "a name".to_string() } else { format!("`{span_text}`") };
            let bare = span_text.split(['.', '[', '(']).next().unwrap_or("");
            let known = macro_names.iter().map(String::as_str).chain(BUILTIN_NAMES.iter().copied());
            let suggestions = closest(bare, known);
            (
                Code::JinjaUndefined,
                format!("{name} is undefined"),
                did_you_mean(
                    &suggestions,
                    "define it with {% set %}, read a variable with var('name'), or check the spelling",
                ),
            )
        }
        K::UnknownFunction => {
            let name = span_text.split('(').next().unwrap_or("").trim().to_string();
            let known = macro_names.iter().map(String::as_str).chain(BUILTIN_NAMES.iter().copied());
            let suggestions = closest(&name, known);
            (
                Code::JinjaUnknownFunction,
                format!("unknown function or macro `{name}`"),
                did_you_mean(&suggestions, "define it as a macro in a file under macro-paths (macros/ by default)"),
            )
        }
        K::UnknownFilter => (
            Code::JinjaUnknownFilter,
            format!("unknown filter: {detail}"),
            "see the filters minijinja and pm provide in the README".into(),
        ),
        K::UnknownMethod => (Code::JinjaUnknownMethod, format!("unknown method: {detail}"), "check the method name and the type of the value it is called on".into()),
        K::InvalidOperation if detail.contains("operator on unsupported types") => (
            Code::JinjaOperator,
            detail,
            "`+`, `-`, `*` and `/` take numbers (and `+` strings and lists); dates and datetimes take `+`/`-` with a timedelta (modules.datetime.timedelta(days=1)), and `-` with their own kind".into(),
        ),
        _ => (
            Code::JinjaRender,
            if detail.is_empty() { e.to_string() } else { detail },
            "fix the template at the marked position".into(),
        ),
    }
}

/// A Jinja error in `file` (whose text is `text`).
pub fn jinja_problem(
    e: &minijinja::Error,
    failure: Option<&Failure>,
    file: &str,
    text: &Arc<str>,
    macro_names: &BTreeSet<String>,
) -> Problem {
    let (code, message, help) = describe(e, failure, text, macro_names);
    let mut p = Problem::new(
        code,
        format!(
            "{message} in {file}{}",
            e.line().map(|l| format!(" line {l}")).unwrap_or_default()
        ),
    )
    .in_file(file, text.clone())
    .help(help);
    let label = match code {
        Code::JinjaSyntax => e.detail().unwrap_or("here").to_string(),
        Code::CompileUnknownRef => "unknown ref".into(),
        Code::CompileUnknownSource => "unknown source".into(),
        _ => "here".into(),
    };
    let range = e.range().map(|r| span_in_file(text, r));
    match (range, e.line()) {
        (Some(r), Some(line)) if r.end <= text.len() && line_range(text, line).start <= r.start => {
            p = p.label(r, label);
        }
        (_, Some(line)) => p = p.label_line(line, label),
        _ => {}
    }
    p
}

/// A span of the template prepared from `file_text` (its mutable list and
/// dict literals rewritten, see `blocks::mutable_literals`) moved onto
/// `file_text`. The rewrite keeps every line, so each offset keeps its
/// line; on a rewritten line, a column before or after the rewritten part
/// keeps its distance from that end, and one inside it points at the part.
fn span_in_file(file_text: &str, r: std::ops::Range<usize>) -> std::ops::Range<usize> {
    match super::blocks::mutable_literals(file_text) {
        Some(prepared) if prepared != file_text => {
            let start = offset_in_file(&prepared, file_text, r.start);
            start..offset_in_file(&prepared, file_text, r.end).max(start)
        }
        _ => r,
    }
}

fn offset_in_file(prepared: &str, file_text: &str, at: usize) -> usize {
    let mut at = at.min(prepared.len());
    while !prepared.is_char_boundary(at) {
        at -= 1;
    }
    let line_start = prepared[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = prepared[..line_start].matches('\n').count() + 1;
    let column = at - line_start;
    let theirs = &prepared[line_start
        ..line_start
            + prepared[line_start..]
                .find('\n')
                .unwrap_or(prepared.len() - line_start)];
    let ours_range = line_range(file_text, line);
    let ours = &file_text[ours_range.clone()];
    let common = |a: &mut dyn Iterator<Item = (char, char)>| {
        a.take_while(|(x, y)| x == y)
            .map(|(c, _)| c.len_utf8())
            .sum::<usize>()
    };
    let prefix = common(&mut theirs.chars().zip(ours.chars()));
    let suffix = common(&mut theirs.chars().rev().zip(ours.chars().rev()))
        .min(theirs.len().min(ours.len()) - prefix);
    ours_range.start
        + if column <= prefix {
            column.min(ours.len())
        } else if column >= theirs.len() - suffix {
            ours.len() - (theirs.len() - column).min(ours.len())
        } else {
            prefix
        }
}

/// A dependency cycle, naming every member with its file.
pub fn cycle_problem(cycle: &[usize], nodes: &[&Node], project: &Project) -> Problem {
    let names: Vec<&str> = cycle.iter().map(|&i| nodes[i].name.as_str()).collect();
    let mut ring = names.join(" → ");
    ring.push_str(&format!(" → {}", names[0]));
    let text_of = |n: &Node| project.text_of(&n.original_file_path);
    let mut p = Problem::new(Code::GraphCycle, format!("dependency cycle: {ring}"))
        .help(if cycle.iter().all(|&i| nodes[i].semantic.is_some()) {
            "a metric cannot read itself, directly or through other metrics: remove one of these inputs"
        } else {
            "a model cannot depend on itself, directly or through others: remove one of these ref() calls"
        });
    for (k, &i) in cycle.iter().enumerate() {
        let n = nodes[i];
        let next = nodes[cycle[(k + 1) % cycle.len()]];
        // Point at the ref() in the *next* member that closes the edge n → next
        // (for a metric, where it names the metric it reads).
        let next_text = text_of(next);
        let span = if next.semantic.is_some() {
            let line = crate::semantic::validate::line_naming(&next_text, next.line + 1, &n.name);
            crate::error::line_range(&next_text, line)
        } else {
            find_ref(&next_text, &n.name).unwrap_or(0..0)
        };
        let member = Problem::new(
            Code::GraphCycleMember,
            format!(
                "{} is in the cycle ({})",
                next.unique_id, next.original_file_path
            ),
        )
        .in_file(&next.original_file_path, next_text)
        .label(span, format!("depends on {}", n.name));
        p = p.related(member);
    }
    p
}

/// Byte range of `ref('name')` (any quotes and spacing) in a text.
fn find_ref(text: &str, name: &str) -> Option<std::ops::Range<usize>> {
    let mut from = 0;
    while let Some(pos) = text[from..].find("ref(") {
        let start = from + pos;
        let end = text[start..].find(')').map(|e| start + e + 1)?;
        let inner = &text[start + 4..end - 1];
        if inner
            .split(',')
            .next_back()
            .map(|s| s.trim().trim_matches(|c| c == '\'' || c == '"'))
            == Some(name)
        {
            return Some(start..end);
        }
        from = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_of_the_prepared_template_land_on_the_file_as_written() {
        let file = "-- ünï\n{% set xs = [1] %}{% set d = {'k': 1} %} {{ d.zip() }}\nselect {{ xs.nope() }}\n";
        let prepared = super::super::blocks::mutable_literals(file).unwrap();
        let at = |text: &str, needle: &str| text.find(needle).unwrap();
        // After the rewritten literals on their line, and on a later line.
        for needle in [".zip()", ".nope()"] {
            let r = at(&prepared, needle)..at(&prepared, needle) + needle.len();
            let start = at(file, needle);
            assert_eq!(
                span_in_file(file, r),
                start..start + needle.len(),
                "{needle}"
            );
        }
        // Before them, and inside one (the literal is pointed at).
        let r = at(&prepared, "set xs")..at(&prepared, "set xs") + 3;
        assert_eq!(
            span_in_file(file, r),
            at(file, "set xs")..at(file, "set xs") + 3
        );
        let inside = at(&prepared, "__pm_list") + 4;
        let literal = at(file, "[1]");
        assert_eq!(span_in_file(file, inside..inside + 1), literal..literal);
        // A file without literals keeps its spans.
        assert_eq!(span_in_file("select {{ x }}", 7..14), 7..14);
    }
}
