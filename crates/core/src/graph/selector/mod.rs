//! dbt's node selection language: `name`, globs, `path:`, `tag:`,
//! `config.<key>:`, `resource_type:`, `source:`, `test_type:`, `state:`,
//! graph operators (`+sel`, `sel+`, `N+sel`, `sel+N`, `@sel`), union by space,
//! intersection by comma, `--exclude`, and selectors.yml definitions.

mod evaluate;
mod glob;
mod selectors_yml;
mod state;
use crate::error::Code;
pub use evaluate::{select, Request};
pub use glob::glob_match;
pub use selectors_yml::Selectors;
pub use state::PriorState;

use crate::error::{closest, did_you_mean, Problem};
use std::sync::Arc;

/// How tests attached to selected nodes are picked up (`--indirect-selection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndirectSelection {
    /// A test is selected when any of its parents is
    #[default]
    Eager,
    /// A test is selected when all of its parents are
    Cautious,
    /// A test is selected when all of its parents are selected or are ancestors of selected nodes
    Buildable,
    /// Only tests selected directly
    Empty,
}

const METHODS: &[&str] = &[
    "fqn",
    "tag",
    "path",
    "file",
    "config",
    "resource_type",
    "source",
    "test_type",
    "test_name",
    "package",
    "state",
    "exposure",
    "metric",
    "semantic_model",
    "saved_query",
    "unique_id",
];

/// A parsed selection expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Union(Vec<Expr>),
    Intersection(Vec<Expr>),
    Difference(Box<Expr>, Vec<Expr>),
    Atom(Atom),
    /// Every node.
    All,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Atom {
    pub method: String,
    pub args: Vec<String>,
    pub value: String,
    pub parents: bool,
    pub parents_depth: Option<usize>,
    pub children: bool,
    pub children_depth: Option<usize>,
    pub childrens_parents: bool,
    /// selectors.yml's `indirect_selection` for this atom.
    pub indirect: Option<IndirectSelection>,
    /// Where the atom was written, for errors: (source name, text, span).
    pub origin: Option<(String, Arc<str>, std::ops::Range<usize>)>,
}

impl Atom {
    fn plain(method: &str, value: &str) -> Atom {
        Atom {
            method: method.to_string(),
            args: Vec::new(),
            value: value.to_string(),
            parents: false,
            parents_depth: None,
            children: false,
            children_depth: None,
            childrens_parents: false,
            indirect: None,
            origin: None,
        }
    }

    fn problem(&self, code: Code, message: String, label: &str, help: String) -> Problem {
        let mut p = Problem::new(code, message).help(help);
        if let Some((name, text, span)) = &self.origin {
            p = p
                .in_file(name, text.clone())
                .label(span.clone(), label.to_string());
        }
        p
    }
}

fn syntax_problem(
    source: &str,
    text: &Arc<str>,
    span: std::ops::Range<usize>,
    message: String,
    help: &str,
) -> Problem {
    Problem::new(Code::SelectorSyntax, message)
        .in_file(source, text.clone())
        .label(span, "here")
        .help(help.to_string())
}

/// Parses one selection string as written after `--select` (`source` names it in errors).
pub fn parse(source: &str, text: &str) -> std::result::Result<Expr, Problem> {
    let shared: Arc<str> = Arc::from(text);
    let mut union = Vec::new();
    let mut offset = 0;
    for word in text.split(' ') {
        let word_start = offset;
        offset += word.len() + 1;
        if word.trim().is_empty() {
            continue;
        }
        let mut inter = Vec::new();
        let mut part_offset = word_start;
        for part in word.split(',') {
            let start = part_offset;
            part_offset += part.len() + 1;
            if part.is_empty() {
                return Err(syntax_problem(
                    source,
                    &shared,
                    start.saturating_sub(1)..start,
                    format!("empty selector in {source} `{text}`"),
                    "remove the extra comma; a comma joins two selectors that must both match",
                ));
            }
            inter.push(Expr::Atom(parse_atom(source, &shared, part, start)?));
        }
        union.push(if inter.len() == 1 {
            inter.remove(0)
        } else {
            Expr::Intersection(inter)
        });
    }
    Ok(if union.len() == 1 {
        union.remove(0)
    } else {
        Expr::Union(union)
    })
}

fn parse_atom(
    source: &str,
    text: &Arc<str>,
    raw: &str,
    start: usize,
) -> std::result::Result<Atom, Problem> {
    let span = start..start + raw.len();
    let mut s = raw;
    let mut atom = Atom::plain("", "");
    atom.origin = Some((source.to_string(), text.clone(), span.clone()));
    if let Some(r) = s.strip_prefix('@') {
        atom.childrens_parents = true;
        s = r;
    }
    // N+ prefix
    let digits = s.chars().take_while(|c| c.is_ascii_digit()).count();
    if s[digits..].starts_with('+') {
        atom.parents = true;
        if digits > 0 {
            atom.parents_depth = s[..digits].parse().ok();
        }
        s = &s[digits + 1..];
    }
    // +N suffix
    let trailing_digits = s.chars().rev().take_while(|c| c.is_ascii_digit()).count();
    let before_digits = &s[..s.len() - trailing_digits];
    if let Some(rest) = before_digits.strip_suffix('+') {
        atom.children = true;
        if trailing_digits > 0 {
            atom.children_depth = s[s.len() - trailing_digits..].parse().ok();
        }
        s = rest;
    }
    if atom.childrens_parents && (atom.parents || atom.children) {
        return Err(syntax_problem(
            source,
            text,
            span,
            format!("`@` cannot be combined with `+` in `{raw}`"),
            "write either @model (model, its descendants and their ancestors) or +model+",
        ));
    }
    let method_end = s.find(':').filter(|&i| {
        s[..i]
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
    });
    let (method, value) = match method_end {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => {
            let m = if s.contains('/')
                || s.contains('\\')
                || s.ends_with(".sql")
                || s.ends_with(".csv")
                || s.ends_with(".yml")
            {
                "path"
            } else {
                "fqn"
            };
            (m, s)
        }
    };
    let mut parts = method.split('.');
    let base = parts.next().unwrap_or("");
    atom.args = parts.map(str::to_string).collect();
    if !METHODS.contains(&base) {
        let method_span =
            start + (raw.len() - s.len())..start + (raw.len() - s.len()) + method.len();
        let suggestions = closest(base, METHODS.iter().copied());
        return Err(Problem::new(
            Code::SelectorMethod,
            format!("unknown selector method `{base}` in `{raw}`"),
        )
        .in_file(source, text.clone())
        .label(method_span, "unknown method")
        .help(did_you_mean(
            &suggestions,
            &format!("methods: {}", METHODS.join(", ")),
        )));
    }
    if base == "config" && atom.args.is_empty() {
        return Err(syntax_problem(
            source,
            text,
            span,
            format!("`config:` needs a key in `{raw}`"),
            "write config.<key>:<value>, e.g. config.materialized:table",
        ));
    }
    if value.is_empty() {
        return Err(syntax_problem(
            source,
            text,
            span,
            format!("selector `{raw}` has no value"),
            "write a value after the colon, e.g. tag:nightly",
        ));
    }
    atom.method = base.to_string();
    atom.value = value.to_string();
    Ok(atom)
}

/// Directly selected nodes and tests selected only indirectly (dbt's pair).
type Sets = (Vec<bool>, Vec<bool>);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::selector::glob::fqn_matches;

    #[test]
    fn parses_graph_operators() {
        let Expr::Atom(a) = parse("--select", "2+stg_users+3").unwrap() else {
            panic!()
        };
        assert_eq!(
            (a.parents, a.parents_depth, a.children, a.children_depth),
            (true, Some(2), true, Some(3))
        );
        assert_eq!((a.method.as_str(), a.value.as_str()), ("fqn", "stg_users"));
        let Expr::Atom(a) = parse("--select", "@config.materialized:table").unwrap() else {
            panic!()
        };
        assert!(a.childrens_parents);
        assert_eq!(a.args, vec!["materialized"]);
        let Expr::Atom(a) = parse("--select", "models/staging").unwrap() else {
            panic!()
        };
        assert_eq!(a.method, "path");
        assert!(
            matches!(parse("--select", "a b,c").unwrap(), Expr::Union(v) if matches!(&v[1], Expr::Intersection(_)))
        );
    }

    #[test]
    fn globs_match_as_fnmatch_does_in_linear_time() {
        for (p, t, want) in [
            ("stg_*", "stg_users", true),
            ("*users", "stg_users", true),
            ("s?g_*", "stg_users", true),
            ("stg_[a-m]*", "stg_users", false),
            ("stg_[!a-m]*", "stg_users", true),
            ("stg_[^a-m]*", "stg_users", true),
            ("models/*", "models/staging/a.sql", true),
            ("a[b", "a[b", true),
            ("*a*b*c", "xxaxxbxxc", true),
            ("*a*b*c", "xxaxxbxx", false),
            ("", "", true),
            ("*", "", true),
        ] {
            assert_eq!(glob_match(p, t), want, "{p} ~ {t}");
        }
        let started = std::time::Instant::now();
        assert!(!glob_match("*?*?*?*?*?*?*?*?*?*?*?*?*?#", &"a".repeat(200)));
        assert!(started.elapsed().as_secs_f64() < 0.5);
    }

    #[test]
    fn bad_method_points_at_it() {
        let e = parse("--select", "tag:x tga:y").unwrap_err();
        assert_eq!(e.message, "unknown selector method `tga` in `tga:y`");
        assert_eq!(e.labels[0].0.offset(), 6);
        assert_eq!(e.labels[0].0.len(), 3);
        assert_eq!(e.help.as_deref(), Some("did you mean `tag`?"));
    }

    #[test]
    fn globs_and_fqn() {
        assert!(glob_match("stg_*", "stg_users"));
        assert!(glob_match("s[a-u]g_?", "stg_x"));
        assert!(!glob_match("stg_*", "fct_x"));
        let fqn: Vec<String> = ["proj", "staging", "stg_users"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(fqn_matches(&fqn, "staging.*"));
        assert!(fqn_matches(&fqn, "proj.staging"));
        assert!(fqn_matches(&fqn, "stg_*"));
        assert!(!fqn_matches(&fqn, "marts.*"));
    }
}
