//! Finding dbt's block tags in raw files without a Jinja parser:
//! `{% macro %}`, `{% test %}`, `{% materialization %}`, `{% snapshot %}`,
//! `{% docs %}`. Rewrites keep every line where it was, so errors reported
//! against the rewritten text point at the right line of the file.

/// One `{% … %}` tag.
#[derive(Debug, Clone, PartialEq)]
pub struct Tag {
    pub start: usize,
    pub end: usize,
    /// The first word inside the tag (`macro`, `endmacro`, …).
    pub keyword: String,
    /// The rest of the tag's content, trimmed.
    pub rest: String,
}

/// All block tags of a text, skipping `{# comments #}`.
pub fn scan_tags(text: &str) -> Vec<Tag> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'{' && bytes[i + 1] == b'#' {
            match text[i + 2..].find("#}") {
                Some(e) => {
                    i = i + 2 + e + 2;
                    continue;
                }
                None => break,
            }
        }
        if bytes[i] == b'{' && bytes[i + 1] == b'%' {
            let Some(e) = text[i + 2..].find("%}") else {
                break;
            };
            let end = i + 2 + e + 2;
            let inner = text[i + 2..end - 2]
                .trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
            let (keyword, rest) = match inner.find(|c: char| !(c.is_alphanumeric() || c == '_')) {
                Some(p) => (&inner[..p], inner[p..].trim()),
                None => (inner, ""),
            };
            out.push(Tag {
                start: i,
                end,
                keyword: keyword.to_string(),
                rest: rest.to_string(),
            });
            i = end;
            continue;
        }
        i += 1;
    }
    out
}

/// Replaces a byte range by spaces, keeping newlines.
fn blank(text: &mut String, range: std::ops::Range<usize>) {
    let replaced: String = text[range.clone()]
        .chars()
        .map(|c| if c == '\n' { '\n' } else { ' ' })
        .collect();
    text.replace_range(range, &replaced);
}

/// dbt code mutates lists and dicts (`{% do cols.append(c) %}`,
/// `{% do d.update({...}) %}`), also ones it was given by another template
/// (a macro that appends to its argument) or that a filter made
/// (`'a,b'.split(',')`, `x | list`); minijinja's values are immutable.
/// `{% set x = [...] %}` and `{% set x = {...} %}` become
/// `{% set x = __pm_list([...]) %}` / `__pm_dict({...})`, objects with
/// Python's list and dict methods, and any other `{% set x = expr %}`
/// becomes `{% set x = __pm_mutable(expr) %}`, which makes a plain list or
/// dict such an object (and leaves everything else as it is). Lines stay
/// where they were.
pub fn mutable_literals(text: &str) -> Option<String> {
    if !(text.contains("{%") && text.contains("set ")) {
        return None;
    }
    let mut out = text.to_string();
    let mut edits = Vec::new();
    for t in scan_tags(text) {
        if t.keyword != "set" {
            continue;
        }
        let Some((lhs, rhs)) = t.rest.split_once('=') else {
            continue;
        };
        let (lhs, rhs) = (lhs.trim(), rhs.trim());
        let plain_name = lhs.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && lhs.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        // `{% set x == y %}` is no assignment; `{% set a, b = … %}` and
        // `{% set ns.x = … %}` are left alone.
        if !plain_name || rhs.is_empty() || rhs.starts_with('=') {
            continue;
        }
        let func = if rhs.starts_with('[') && rhs.ends_with(']') {
            "__pm_list"
        } else if rhs.starts_with('{') && rhs.ends_with('}') {
            "__pm_dict"
        } else if is_scalar_literal(rhs) {
            continue;
        } else {
            "__pm_mutable"
        };
        let raw = &text[t.start..t.end];
        let open = if raw.starts_with("{%-") { "{%-" } else { "{%" };
        let close = if raw.ends_with("-%}") { "-%}" } else { "%}" };
        edits.push((
            t.start..t.end,
            format!("{open} set {lhs} = {func}({rhs}) {close}"),
        ));
    }
    if edits.is_empty() {
        return None;
    }
    for (range, rep) in edits.into_iter().rev() {
        out.replace_range(range, &rep);
    }
    Some(out)
}

/// A number, a boolean, `none` or one quoted string: never a list or dict.
fn is_scalar_literal(rhs: &str) -> bool {
    let quoted = |q: char| {
        rhs.len() >= 2
            && rhs.starts_with(q)
            && rhs.ends_with(q)
            && !rhs[1..rhs.len() - 1].contains(q)
            && !rhs.contains('\\')
    };
    rhs.parse::<f64>().is_ok()
        || matches!(rhs, "true" | "false" | "none" | "True" | "False" | "None")
        || quoted('\'')
        || quoted('"')
}

/// One template per macro of a prepared macro file: the file with every other
/// macro blanked out, so evaluating it defines just that macro and every
/// offset and line still matches the file. Returns `(macro name, template)`.
pub fn split_macros(prepared: &str) -> Vec<(String, String)> {
    let (_, defs) = prepare_macro_file(prepared);
    defs.iter()
        .enumerate()
        .map(|(i, d)| {
            let mut t = prepared.to_string();
            for (j, other) in defs.iter().enumerate().rev() {
                if j != i {
                    blank(&mut t, other.start..other.end);
                }
            }
            (d.name.clone(), t)
        })
        .collect()
}

/// One macro's template of a prepared macro file (see [`split_macros`]).
pub fn macro_source(prepared: &str, name: &str) -> Option<String> {
    let (_, defs) = prepare_macro_file(prepared);
    defs.iter().position(|d| d.name == name)?;
    let mut t = prepared.to_string();
    for other in defs.iter().rev().filter(|d| d.name != name) {
        blank(&mut t, other.start..other.end);
    }
    Some(t)
}

/// Whether a macro's text uses `varargs` or `kwargs` (Jinja's catch-all
/// parameters; see `macro_header`).
pub fn catches_all(macro_text: &str) -> bool {
    uses_name(macro_text, "varargs") || uses_name(macro_text, "kwargs")
}

/// A macro found in a macro file.
#[derive(Debug, Clone, PartialEq)]
pub struct MacroDef {
    pub name: String,
    pub arguments: Vec<String>,
    pub line: usize,
    pub start: usize,
    pub end: usize,
}

/// The names of a macro file's `{% materialization name, adapter='…' %}` blocks.
pub fn materialization_names(text: &str) -> Vec<String> {
    scan_tags(text)
        .into_iter()
        .filter(|t| t.keyword == "materialization")
        .filter_map(|t| {
            let name = t.rest.split(',').next()?.trim();
            (!name.is_empty()).then(|| name.to_string())
        })
        .collect()
}

/// Rewrites a macro file for minijinja: `{% test x(…) %}` becomes
/// `{% macro test_x(…) %}`, `{% materialization %}` blocks are blanked out.
/// Returns the rewritten text and the macros it defines.
pub fn prepare_macro_file(text: &str) -> (String, Vec<MacroDef>) {
    let tags = scan_tags(text);
    let mut out = text.to_string();
    // Apply edits back to front so earlier offsets stay valid.
    let mut edits: Vec<(std::ops::Range<usize>, Option<String>)> = Vec::new();
    let mut materialization_start: Option<usize> = None;
    let mut defs = Vec::new();
    let mut open: Option<(String, Vec<String>, usize, &Tag)> = None;
    for t in &tags {
        match t.keyword.as_str() {
            "macro" | "test" => {
                let (name, args) = signature(&t.rest);
                let name = if t.keyword == "test" {
                    format!("test_{name}")
                } else {
                    name
                };
                let line = text[..t.start].matches('\n').count() + 1;
                open = Some((name, args, line, t));
            }
            "endmacro" | "endtest" => {
                if t.keyword == "endtest" {
                    let raw = &text[t.start..t.end];
                    let open_delim = if raw.starts_with("{%-") { "{%-" } else { "{%" };
                    let close_delim = if raw.ends_with("-%}") { "-%}" } else { "%}" };
                    edits.push((
                        t.start..t.end,
                        Some(format!("{open_delim} endmacro {close_delim}")),
                    ));
                }
                if let Some((name, arguments, line, header)) = open.take() {
                    let body = &text[header.end..t.start];
                    let catch_all = uses_name(body, "varargs") || uses_name(body, "kwargs");
                    if header.keyword == "test" || catch_all {
                        edits.push((
                            header.start..header.end,
                            Some(macro_header(text, header, &name, catch_all)),
                        ));
                    }
                    defs.push(MacroDef {
                        name,
                        arguments,
                        line,
                        start: header.start,
                        end: t.end,
                    });
                }
            }
            "materialization" => materialization_start = Some(t.start),
            "endmaterialization" => {
                if let Some(s) = materialization_start.take() {
                    edits.push((s..t.end, None));
                }
            }
            _ => {}
        }
    }
    edits.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    for (range, replacement) in edits {
        match replacement {
            Some(r) => out.replace_range(range, &r),
            None => blank(&mut out, range),
        }
    }
    (out, defs)
}

/// A macro's opening tag for minijinja: `{% test x(…) %}` as
/// `{% macro test_x(…) %}`, and with `varargs` and `kwargs` parameters when
/// its body uses them (Jinja gives every macro those two; minijinja does
/// not, and the macro's caller packs extra arguments into them).
fn macro_header(text: &str, tag: &Tag, name: &str, catch_all: bool) -> String {
    let raw = &text[tag.start..tag.end];
    let open_delim = if raw.starts_with("{%-") { "{%-" } else { "{%" };
    let close_delim = if raw.ends_with("-%}") { "-%}" } else { "%}" };
    let inner = tag
        .rest
        .split_once('(')
        .and_then(|(_, r)| r.rsplit_once(')'))
        .map_or("", |(a, _)| a);
    let extra = match (catch_all, inner.trim().is_empty()) {
        (false, _) => "",
        (true, true) => "varargs=none, kwargs=none",
        (true, false) => ", varargs=none, kwargs=none",
    };
    format!("{open_delim} macro {name}({inner}{extra}) {close_delim}")
}

/// Whether `text` uses `name` as a whole identifier.
fn uses_name(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !ident(before) && !ident(after)
    })
}

/// `name(a, b=1)` → ("name", ["a", "b"]).
fn signature(rest: &str) -> (String, Vec<String>) {
    let (name, args) = rest.split_once('(').unwrap_or((rest, ""));
    let args = args.rsplit_once(')').map(|(a, _)| a).unwrap_or(args);
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in args.chars() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            cur.push(c);
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    let args = out
        .into_iter()
        .map(|a| a.split('=').next().unwrap_or("").trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    (name.trim().to_string(), args)
}

/// A `{% snapshot name %}` block: its name and the file with the block tags
/// blanked (so only the body renders, on its original lines).
pub fn snapshot_blocks(text: &str) -> Vec<(String, String)> {
    let tags = scan_tags(text);
    let mut out = Vec::new();
    let mut start: Option<(String, usize, usize)> = None;
    for t in &tags {
        match t.keyword.as_str() {
            "snapshot" => start = Some((t.rest.trim().to_string(), t.start, t.end)),
            "endsnapshot" => {
                if let Some((name, s, body_start)) = start.take() {
                    let mut body = String::with_capacity(text.len());
                    let mut masked = text.to_string();
                    let len = masked.len();
                    blank(&mut masked, t.start..len);
                    blank(&mut masked, 0..body_start);
                    let _ = s;
                    body.push_str(&masked);
                    out.push((name, body));
                }
            }
            _ => {}
        }
    }
    out
}

/// `{% docs name %}…{% enddocs %}` blocks of a Markdown file.
pub fn docs_blocks(text: &str) -> Vec<(String, String)> {
    let tags = scan_tags(text);
    let mut out = Vec::new();
    let mut start: Option<(String, usize)> = None;
    for t in &tags {
        match t.keyword.as_str() {
            "docs" => start = Some((t.rest.trim().to_string(), t.end)),
            "enddocs" => {
                if let Some((name, s)) = start.take() {
                    out.push((name, text[s..t.start].trim().to_string()));
                }
            }
            _ => {}
        }
    }
    out
}

/// Block tags of `pairs` (opening, closing keyword) that are opened and
/// never closed, or closed without being opened: (offset of the tag, what
/// is wrong). A block left open would silently swallow the rest of the file.
pub fn unbalanced(text: &str, pairs: &[(&str, &str)]) -> Vec<(usize, String)> {
    let mut open: Vec<(&str, usize)> = Vec::new();
    let mut out = Vec::new();
    for t in scan_tags(text) {
        if let Some(&(opening, _)) = pairs.iter().find(|(o, _)| *o == t.keyword) {
            if let Some(&(kind, at)) = open.last() {
                out.push((
                    at,
                    format!("`{{% {kind} %}}` is not closed before the next `{{% {opening} %}}`"),
                ));
                open.pop();
            }
            open.push((opening, t.start));
        } else if let Some(&(opening, closing)) = pairs.iter().find(|(_, c)| *c == t.keyword) {
            match open.last() {
                Some(&(kind, _)) if kind == opening => {
                    open.pop();
                }
                _ => out.push((
                    t.start,
                    format!("`{{% {closing} %}}` closes no `{{% {opening} %}}`"),
                )),
            }
        }
    }
    for (kind, at) in open {
        let closing = pairs
            .iter()
            .find(|(o, _)| *o == kind)
            .map_or("end", |p| p.1);
        out.push((
            at,
            format!("`{{% {kind} %}}` is never closed (no `{{% {closing} %}}`)"),
        ));
    }
    out
}

/// The names `{{ doc('name') }}` refers to in a text, with their offsets.
pub fn doc_references(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("doc(") {
        let at = from + i;
        from = at + 4;
        // `doc(` as a word, inside {{ }}.
        if text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let before = &text[..at];
        let in_expression = before
            .rfind("{{")
            .is_some_and(|o| before.rfind("}}").is_none_or(|c| c < o));
        if !in_expression {
            continue;
        }
        let rest = text[from..].trim_start();
        let Some(quote) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') else {
            continue;
        };
        if let Some(end) = rest[1..].find(quote) {
            out.push((at, rest[1..1 + end].to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_unclosed_and_stray_blocks() {
        let pairs = [("macro", "endmacro"), ("test", "endtest")];
        assert!(unbalanced(
            "{% macro a() %}x{% endmacro %}{% test t(model) %}{% endtest %}",
            &pairs
        )
        .is_empty());
        let text = "{% macro a() %}\nx\n{% macro b() %}y{% endmacro %}\n{% endtest %}\n{% test t(model) %}";
        let found: Vec<String> = unbalanced(text, &pairs)
            .into_iter()
            .map(|(at, m)| format!("{at}: {m}"))
            .collect();
        assert_eq!(
            found,
            vec![
                "0: `{% macro %}` is not closed before the next `{% macro %}`".to_string(),
                "49: `{% endtest %}` closes no `{% test %}`".to_string(),
                "63: `{% test %}` is never closed (no `{% endtest %}`)".to_string(),
            ]
        );
    }

    #[test]
    fn finds_doc_references() {
        assert_eq!(
            doc_references("a: \"{{ doc('x') }} and {{doc(\"y\")}}\"\nb: a doc('z') outside"),
            vec![(7, "x".to_string()), (25, "y".to_string())]
        );
    }

    #[test]
    fn finds_macros_and_rewrites_tests() {
        let text = "{% macro a(x, y='1,2') -%}\n{{ x }}\n{%- endmacro %}\n{% test is_even(model, column_name) %}\nselect 1\n{% endtest %}\n";
        let (out, defs) = prepare_macro_file(text);
        assert_eq!(defs.len(), 2);
        assert_eq!(defs[0].name, "a");
        assert_eq!(defs[0].arguments, vec!["x", "y"]);
        assert_eq!(defs[1].name, "test_is_even");
        assert_eq!(defs[1].line, 4);
        assert!(out.contains("{% macro test_is_even(model, column_name) %}"));
        assert!(out.contains("{% endmacro %}"));
        assert_eq!(out.lines().count(), text.lines().count());
    }

    #[test]
    fn splits_macros_keeping_offsets() {
        let (prepared, _) = prepare_macro_file(
            "{% macro a() %}A{% endmacro %}\n{% test b(model) %}B{% endtest %}\n",
        );
        let parts = split_macros(&prepared);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].0, "a");
        assert!(
            parts[0].1.starts_with("{% macro a() %}A{% endmacro %}\n") && !parts[0].1.contains('B')
        );
        assert_eq!(parts[1].0, "test_b");
        assert_eq!(parts[1].1.len(), prepared.len());
        assert!(parts[1]
            .1
            .trim_start()
            .starts_with("{% macro test_b(model) %}B"));
    }

    #[test]
    fn rewrites_mutable_literals() {
        let t =
            "{%- set cols = [] -%}\n{% set d = {'a': 1} %}{% set n = 1 %}{% do cols.append(1) %}";
        let out = mutable_literals(t).unwrap();
        assert!(out.starts_with(
            "{%- set cols = __pm_list([]) -%}\n{% set d = __pm_dict({'a': 1}) %}{% set n = 1 %}"
        ));
        // Also when another template mutates it (a macro given it as an argument).
        assert_eq!(
            mutable_literals("{% set x = [] %}").as_deref(),
            Some("{% set x = __pm_list([]) %}")
        );
        assert!(mutable_literals("select 1").is_none());
        // Any other value: a filter's list becomes one with Python's methods.
        assert_eq!(
            mutable_literals("{% set p = 'a,b'.split(',') %}{% set s = 'x' %}{% set a, b = 1, 2 %}{% set ns.x = y %}").as_deref(),
            Some("{% set p = __pm_mutable('a,b'.split(',')) %}{% set s = 'x' %}{% set a, b = 1, 2 %}{% set ns.x = y %}")
        );
        assert!(mutable_literals("{% set n = 1 %}").is_none());
    }

    #[test]
    fn blanks_materializations() {
        let text = "{% materialization x, adapter='postgres' %}\nfoo\n{% endmaterialization %}\n{% macro b() %}{% endmacro %}";
        let (out, defs) = prepare_macro_file(text);
        assert_eq!(defs.len(), 1);
        assert!(!out.contains("materialization"));
        assert_eq!(out.lines().count(), text.lines().count());
    }

    #[test]
    fn snapshot_and_docs() {
        let s = snapshot_blocks("{% snapshot snap %}\nselect 1\n{% endsnapshot %}\n");
        assert_eq!(s[0].0, "snap");
        assert_eq!(s[0].1.trim(), "select 1");
        assert_eq!(s[0].1.lines().count(), 3);
        let d = docs_blocks("{% docs users %}\nThe **users**.\n{% enddocs %}");
        assert_eq!(d, vec![("users".to_string(), "The **users**.".to_string())]);
    }
}
