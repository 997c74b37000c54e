//! dbt's node selection language: `name`, globs, `path:`, `tag:`,
//! `config.<key>:`, `resource_type:`, `source:`, `test_type:`, `state:`,
//! graph operators (`+sel`, `sel+`, `N+sel`, `sel+N`, `@sel`), union by space,
//! intersection by comma, `--exclude`, and selectors.yml definitions.

use crate::error::{closest, did_you_mean, Problem, Problems, Result};
use crate::manifest::{Manifest, Node, ResourceType};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::Arc;

/// How tests attached to selected nodes are picked up (`--indirect-selection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
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

    fn problem(&self, code: &'static str, message: String, label: &str, help: String) -> Problem {
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
    Problem::new("selector::syntax", message)
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
            "selector::method",
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

// ---------------------------------------------------------------- selectors.yml

/// Named selectors from selectors.yml.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    pub definitions: HashMap<String, (Json, usize)>,
    pub default: Option<String>,
    pub text: Option<Arc<str>>,
}

impl Selectors {
    pub fn from_json(doc: Option<&(Arc<str>, Json)>) -> std::result::Result<Selectors, Problem> {
        let mut out = Selectors::default();
        let Some((text, doc)) = doc else {
            return Ok(out);
        };
        out.text = Some(text.clone());
        let list = doc
            .get("selectors")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        for item in list {
            let Some(name) = item.get("name").and_then(Json::as_str) else {
                return Err(Problem::new(
                    "selector::yml",
                    "every entry of selectors.yml needs a `name:`",
                )
                .in_file("selectors.yml", text.clone())
                .label(0..0, "here")
                .help("write entries as `- name: nightly` with a `definition:`"));
            };
            let line = crate::loader::yaml::line_of_entry(text, "name", name).unwrap_or(1);
            let def = item.get("definition").cloned().unwrap_or(Json::Null);
            if item.get("default").and_then(Json::as_bool) == Some(true) {
                out.default = Some(name.to_string());
            }
            out.definitions.insert(name.to_string(), (def, line));
        }
        Ok(out)
    }

    /// The expression of selector `name`.
    pub fn expr(
        &self,
        name: &str,
    ) -> std::result::Result<(Expr, Option<IndirectSelection>), Problem> {
        self.expr_inner(name, &mut Vec::new())
    }

    fn expr_inner(
        &self,
        name: &str,
        stack: &mut Vec<String>,
    ) -> std::result::Result<(Expr, Option<IndirectSelection>), Problem> {
        let Some((def, line)) = self.definitions.get(name) else {
            let suggestions = closest(name, self.definitions.keys().map(String::as_str));
            return Err(Problem::new(
                "selector::unknown",
                format!("no selector named `{name}` in selectors.yml"),
            )
            .help(did_you_mean(
                &suggestions,
                "define it under `selectors:` in selectors.yml next to the project file",
            )));
        };
        if stack.iter().any(|s| s == name) {
            return Err(self.yml_problem(*line, format!("selector `{name}` refers to itself")));
        }
        stack.push(name.to_string());
        let mut indirect = None;
        let e = self.definition(def, *line, stack, &mut indirect)?;
        stack.pop();
        Ok((e, indirect))
    }

    fn yml_problem(&self, line: usize, msg: String) -> Problem {
        let mut p = Problem::new("selector::yml", msg)
            .help("see dbt's selectors.yml syntax: method/value, union, intersection, exclude");
        if let Some(t) = &self.text {
            p = p
                .in_file("selectors.yml", t.clone())
                .label_line(line, "in this selector");
        }
        p
    }

    /// `union:` / `intersection:` lists, whose `exclude:` items are taken away.
    fn set_operation(
        &self,
        items: &[Json],
        intersect: bool,
        line: usize,
        stack: &mut Vec<String>,
        indirect: &mut Option<IndirectSelection>,
    ) -> std::result::Result<Expr, Problem> {
        let mut inc = Vec::new();
        let mut exc = Vec::new();
        for it in items {
            match it.get("exclude").and_then(Json::as_array) {
                Some(ex) => {
                    for e in ex {
                        exc.push(self.definition(e, line, stack, indirect)?);
                    }
                }
                None => inc.push(self.definition(it, line, stack, indirect)?),
            }
        }
        let set = if intersect {
            Expr::Intersection(inc)
        } else {
            Expr::Union(inc)
        };
        Ok(if exc.is_empty() {
            set
        } else {
            Expr::Difference(Box::new(set), exc)
        })
    }

    fn definition(
        &self,
        def: &Json,
        line: usize,
        stack: &mut Vec<String>,
        indirect: &mut Option<IndirectSelection>,
    ) -> std::result::Result<Expr, Problem> {
        match def {
            Json::String(s) => parse("selectors.yml", s),
            Json::Object(m) => {
                for (key, intersect) in [("union", false), ("intersection", true)] {
                    if let Some(items) = m.get(key).and_then(Json::as_array) {
                        return self.set_operation(items, intersect, line, stack, indirect);
                    }
                }
                let (method, value) = if let Some(method) = m.get("method").and_then(Json::as_str) {
                    (
                        method.to_string(),
                        m.get("value")
                            .map(|v| crate::loader::yaml::as_string(v).unwrap_or_default())
                            .unwrap_or_default(),
                    )
                } else if m.len() == 1 {
                    let (k, v) = m
                        .iter()
                        .next()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .unwrap_or_default();
                    (k, crate::loader::yaml::as_string(&v).unwrap_or_default())
                } else {
                    return Err(self.yml_problem(line, "a selector definition needs `method:` and `value:`, `union:` or `intersection:`".into()));
                };
                if method == "selector" {
                    let (e, ind) = self.expr_inner(&value, stack)?;
                    if ind.is_some() {
                        *indirect = ind;
                    }
                    return Ok(e);
                }
                let mut base = method.split('.');
                let mname = base.next().unwrap_or("").to_string();
                if !METHODS.contains(&mname.as_str()) {
                    return Err(
                        self.yml_problem(line, format!("unknown selector method `{mname}`"))
                    );
                }
                let mut atom = Atom::plain(&mname, &value);
                atom.args = base.map(str::to_string).collect();
                if mname == "config" && atom.args.is_empty() {
                    return Err(self.yml_problem(
                        line,
                        format!("`method: config` needs the config key, as in `method: config.materialized` (value `{value}`)"),
                    ));
                }
                let flag = |k: &str| m.get(k).and_then(Json::as_bool).unwrap_or(false);
                atom.parents = flag("parents");
                atom.children = flag("children");
                atom.childrens_parents = flag("childrens_parents");
                atom.parents_depth = m
                    .get("parents_depth")
                    .and_then(Json::as_u64)
                    .map(|d| d as usize);
                atom.children_depth = m
                    .get("children_depth")
                    .and_then(Json::as_u64)
                    .map(|d| d as usize);
                if atom.parents_depth.is_some() {
                    atom.parents = true;
                }
                if atom.children_depth.is_some() {
                    atom.children = true;
                }
                if let Some(ind) = m.get("indirect_selection").and_then(Json::as_str) {
                    atom.indirect = match ind {
                        "eager" => Some(IndirectSelection::Eager),
                        "cautious" => Some(IndirectSelection::Cautious),
                        "buildable" => Some(IndirectSelection::Buildable),
                        "empty" => Some(IndirectSelection::Empty),
                        _ => {
                            return Err(self
                                .yml_problem(line, format!("unknown indirect_selection `{ind}`")))
                        }
                    };
                    let _ = &indirect;
                }
                let e = Expr::Atom(atom);
                if let Some(ex) = m.get("exclude").and_then(Json::as_array) {
                    let mut exc = Vec::new();
                    for x in ex {
                        exc.push(self.definition(x, line, stack, indirect)?);
                    }
                    return Ok(Expr::Difference(Box::new(e), exc));
                }
                Ok(e)
            }
            _ => Err(self.yml_problem(
                line,
                "a selector definition must be a string or a mapping".into(),
            )),
        }
    }
}

// ---------------------------------------------------------------- evaluation

/// What an earlier run's manifest says about each node, for `state:`.
#[derive(Debug, Clone, Default)]
pub struct PriorState {
    /// unique id → (checksum, config)
    pub nodes: HashMap<String, (String, Json)>,
}

impl PriorState {
    pub fn load(dir: &std::path::Path) -> std::result::Result<PriorState, Problem> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Problem::new("state::read", format!("cannot read {}: {e}", path.display()))
                .help("point --state at the target/ folder of an earlier `pm compile` or run (keep a copy: the next run overwrites it)")
        })?;
        let doc: Json = serde_json::from_str(&text).map_err(|e| {
            Problem::new(
                "state::parse",
                format!("{} is not a manifest: {e}", path.display()),
            )
        })?;
        let mut nodes = HashMap::new();
        for key in ["nodes", "sources", "exposures"] {
            if let Some(m) = doc.get(key).and_then(Json::as_object) {
                for (id, n) in m {
                    let checksum = n
                        .pointer("/checksum/checksum")
                        .and_then(Json::as_str)
                        .unwrap_or("")
                        .to_string();
                    let config = n.get("config").cloned().unwrap_or(Json::Null);
                    nodes.insert(id.clone(), (checksum, config));
                }
            }
        }
        Ok(PriorState { nodes })
    }
}

/// One element of a glob pattern.
enum GlobToken {
    Char(char),
    AnyChar,
    AnyRun,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl GlobToken {
    fn matches(&self, c: char) -> bool {
        match self {
            GlobToken::Char(x) => *x == c,
            GlobToken::AnyChar => true,
            GlobToken::AnyRun => false,
            GlobToken::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

fn glob_tokens(pattern: &str) -> Vec<GlobToken> {
    let p: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' => out.push(GlobToken::AnyRun),
            '?' => out.push(GlobToken::AnyChar),
            '[' => match p[i + 1..].iter().position(|&c| c == ']') {
                // A `[` without its `]` is itself.
                None => out.push(GlobToken::Char('[')),
                Some(len) => {
                    let set = &p[i + 1..i + 1 + len];
                    let (negated, set) = match set.first() {
                        Some('!') | Some('^') => (true, &set[1..]),
                        _ => (false, set),
                    };
                    let mut ranges = Vec::new();
                    let mut k = 0;
                    while k < set.len() {
                        if k + 2 < set.len() && set[k + 1] == '-' {
                            ranges.push((set[k], set[k + 2]));
                            k += 3;
                        } else {
                            ranges.push((set[k], set[k]));
                            k += 1;
                        }
                    }
                    out.push(GlobToken::Class { negated, ranges });
                    i += len + 1;
                }
            },
            c => out.push(GlobToken::Char(c)),
        }
        i += 1;
    }
    out
}

/// Shell-style glob match (`*`, `?`, `[abc]`, `[!a-z]`), `*` matching `/`
/// too, as dbt's fnmatch does. Linear in the text for each `*` (it retries
/// from the last `*` only), never exponential.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    if !pattern.contains(['*', '?', '[']) {
        return pattern == text;
    }
    let p = glob_tokens(pattern);
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen and the text position it currently stands for.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(GlobToken::AnyRun) => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(tok) if tok.matches(t[ti]) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|tok| matches!(tok, GlobToken::AnyRun))
}

/// dbt's fqn matching: the leaf name, or a dotted prefix of the fqn (with or
/// without the package), `*` matching the rest.
fn fqn_matches(fqn: &[String], selector: &str) -> bool {
    let check = |fqn: &[String]| -> bool {
        if fqn.last().is_some_and(|leaf| glob_match(selector, leaf)) {
            return true;
        }
        let flat: Vec<&str> = fqn.iter().flat_map(|s| s.split('.')).collect();
        let parts: Vec<&str> = selector.split('.').collect();
        if flat.len() < parts.len() {
            return false;
        }
        for (i, part) in parts.iter().enumerate() {
            if *part == "*" {
                return true;
            }
            if !glob_match(part, flat[i]) {
                return false;
            }
        }
        true
    };
    !fqn.is_empty() && (check(fqn) || check(&fqn[1..]))
}

fn json_matches(v: &Json, want: &str) -> bool {
    match v {
        Json::Array(a) => a.iter().any(|x| json_matches(x, want)),
        Json::String(s) => glob_match(want, s),
        Json::Bool(b) => want.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
        Json::Number(n) => n.to_string() == want,
        Json::Null => want.eq_ignore_ascii_case("none") || want.eq_ignore_ascii_case("null"),
        Json::Object(_) => false,
    }
}

struct Evaluator<'a> {
    m: &'a Manifest,
    state: Option<&'a PriorState>,
    mode: IndirectSelection,
}

/// Directly selected nodes and tests selected only indirectly (dbt's pair).
type Sets = (Vec<bool>, Vec<bool>);

fn or(a: &[bool], b: &[bool]) -> Vec<bool> {
    a.iter().zip(b).map(|(x, y)| *x || *y).collect()
}

impl Evaluator<'_> {
    /// Evaluates like dbt: each atom pulls in the tests of what it selects
    /// (eager: any parent selected; otherwise held back as "indirect" until
    /// the whole expression is known), and set operations combine the direct
    /// and the indirect sets separately.
    fn eval(&self, e: &Expr) -> std::result::Result<Sets, Problem> {
        let n = self.m.nodes.len();
        let (parts, op): (Vec<Sets>, &str) = match e {
            Expr::All => return Ok(self.expand(vec![true; n], self.mode)),
            Expr::Atom(a) => {
                let collected = self.atom(a)?;
                return Ok(self.expand(collected, a.indirect.unwrap_or(self.mode)));
            }
            Expr::Union(items) => (
                items
                    .iter()
                    .map(|i| self.eval(i))
                    .collect::<std::result::Result<_, _>>()?,
                "union",
            ),
            Expr::Intersection(items) => (
                items
                    .iter()
                    .map(|i| self.eval(i))
                    .collect::<std::result::Result<_, _>>()?,
                "intersection",
            ),
            Expr::Difference(inc, exc) => {
                let mut v = vec![self.eval(inc)?];
                let ex: Vec<Sets> = exc
                    .iter()
                    .map(|i| self.eval(i))
                    .collect::<std::result::Result<_, _>>()?;
                let mut direct = vec![false; n];
                let mut indirect = vec![false; n];
                for (d, i) in &ex {
                    direct = or(&direct, d);
                    indirect = or(&indirect, &or(d, i));
                }
                v.push((direct, indirect));
                (v, "difference")
            }
        };
        let combine = |sets: Vec<Vec<bool>>| -> Vec<bool> {
            let mut it = sets.into_iter();
            let first = it.next().unwrap_or_else(|| vec![false; n]);
            it.fold(first, |acc, s| match op {
                "union" => or(&acc, &s),
                "intersection" => acc.iter().zip(&s).map(|(a, b)| *a && *b).collect(),
                _ => acc.iter().zip(&s).map(|(a, b)| *a && !*b).collect(),
            })
        };
        let directs: Vec<Vec<bool>> = parts.iter().map(|(d, _)| d.clone()).collect();
        let indirects: Vec<Vec<bool>> = parts.iter().map(|(d, i)| or(d, i)).collect();
        let direct = combine(directs);
        let indirect = combine(indirects);
        let direct = self.incorporate(direct, &indirect);
        Ok((direct, indirect))
    }

    /// dbt's expand_selection: tests whose parents were selected.
    fn expand(&self, selected: Vec<bool>, mode: IndirectSelection) -> Sets {
        let n = self.m.nodes.len();
        let mut direct = selected.clone();
        let mut indirect = vec![false; n];
        let start: Vec<usize> = selected
            .iter()
            .enumerate()
            .filter(|(_, &b)| b)
            .map(|(i, _)| i)
            .collect();
        let buildable = (mode == IndirectSelection::Buildable)
            .then(|| or(&selected, &self.m.dag.reach(&start, true, None)));
        for (i, node) in self.m.nodes.iter().enumerate() {
            if node.resource_type != ResourceType::Test || selected[i] {
                continue;
            }
            let parents = &self.m.dag.parents[i];
            if !parents.iter().any(|&p| selected[p]) {
                continue;
            }
            let all_selected = parents.iter().all(|&p| selected[p]);
            match mode {
                IndirectSelection::Eager => direct[i] = true,
                _ if all_selected && mode != IndirectSelection::Empty => direct[i] = true,
                IndirectSelection::Buildable
                    if buildable
                        .as_ref()
                        .is_some_and(|b| parents.iter().all(|&p| b[p])) =>
                {
                    direct[i] = true
                }
                IndirectSelection::Empty => {}
                _ => indirect[i] = true,
            }
        }
        (direct, indirect)
    }

    /// dbt's incorporate_indirect_nodes.
    fn incorporate(&self, direct: Vec<bool>, indirect: &[bool]) -> Vec<bool> {
        let mut selected = direct.clone();
        let with_parents = (self.mode == IndirectSelection::Buildable).then(|| {
            let start: Vec<usize> = direct
                .iter()
                .enumerate()
                .filter(|(_, &b)| b)
                .map(|(i, _)| i)
                .collect();
            or(&direct, &self.m.dag.reach(&start, true, None))
        });
        for (i, &ind) in indirect.iter().enumerate() {
            if !ind || direct[i] {
                continue;
            }
            let parents = &self.m.dag.parents[i];
            let ok = match (self.mode, &with_parents) {
                (IndirectSelection::Cautious, _) => parents.iter().all(|&p| direct[p]),
                (IndirectSelection::Buildable, Some(b)) => parents.iter().all(|&p| b[p]),
                _ => false,
            };
            if ok {
                selected[i] = true;
            }
        }
        selected
    }

    /// Nodes an atom matches, with its graph operators applied.
    fn atom(&self, a: &Atom) -> std::result::Result<Vec<bool>, Problem> {
        let mut base = Vec::with_capacity(self.m.nodes.len());
        for node in &self.m.nodes {
            base.push(self.node_matches(a, node)?);
        }
        let start: Vec<usize> = base
            .iter()
            .enumerate()
            .filter(|(_, &b)| b)
            .map(|(i, _)| i)
            .collect();
        let mut out = base;
        let dag = &self.m.dag;
        if a.parents {
            out = or(&out, &dag.reach(&start, true, a.parents_depth));
        }
        if a.children {
            out = or(&out, &dag.reach(&start, false, a.children_depth));
        }
        if a.childrens_parents {
            out = or(&out, &dag.reach(&start, false, None));
            let all: Vec<usize> = out
                .iter()
                .enumerate()
                .filter(|(_, &b)| b)
                .map(|(i, _)| i)
                .collect();
            out = or(&out, &dag.reach(&all, true, None));
        }
        Ok(out)
    }

    fn node_matches(&self, a: &Atom, node: &Node) -> std::result::Result<bool, Problem> {
        let v = a.value.as_str();
        Ok(match a.method.as_str() {
            "fqn" => v == "*" || fqn_matches(&node.fqn, v),
            "unique_id" => glob_match(v, &node.unique_id),
            "tag" => node.tags().iter().any(|t| glob_match(v, t)),
            "package" => glob_match(v, &node.package_name),
            "path" => {
                let p = node.original_file_path.as_str();
                let v = v.trim_end_matches('/').trim_start_matches("./");
                glob_match(v, p)
                    || p.starts_with(&format!("{v}/"))
                    || (v.contains('*') && glob_match(&format!("{v}/*"), p))
            }
            "file" => {
                let file = node.original_file_path.rsplit('/').next().unwrap_or("");
                let stem = file.rsplit_once('.').map(|(s, _)| s).unwrap_or(file);
                node.resource_type != ResourceType::Source
                    && (glob_match(v, file) || glob_match(v, stem))
            }
            "config" => {
                let mut keys = a.args.iter();
                let mut cur: Option<&Json> = keys.next().and_then(|k| node.config.get(k));
                for k in keys {
                    cur = cur.and_then(|c| c.get(k));
                }
                cur.is_some_and(|c| json_matches(c, v))
            }
            "resource_type" => {
                let Some(rt) = ResourceType::parse(v) else {
                    let names: Vec<&str> = ResourceType::ALL.iter().map(|r| r.as_str()).collect();
                    return Err(a.problem(
                        "selector::value",
                        format!("unknown resource type `{v}`"),
                        "unknown resource type",
                        format!("resource types: {}", names.join(", ")),
                    ));
                };
                node.resource_type == rt
            }
            "source" => match &node.source {
                Some(s) => {
                    let parts: Vec<&str> = v.split('.').collect();
                    let candidates: [&[&str]; 1] =
                        [&[&node.package_name, &s.source_name, &node.name]];
                    let full = candidates[0];
                    match parts.len() {
                        1 => glob_match(parts[0], &s.source_name),
                        2 => {
                            glob_match(parts[0], &s.source_name) && glob_match(parts[1], &node.name)
                        }
                        3 => {
                            glob_match(parts[0], full[0])
                                && glob_match(parts[1], full[1])
                                && glob_match(parts[2], full[2])
                        }
                        _ => false,
                    }
                }
                None => false,
            },
            "exposure" => node.resource_type == ResourceType::Exposure && glob_match(v, &node.name),
            "test_type" => {
                let generic = node.test.as_ref().is_some_and(|t| t.metadata.is_some());
                match v {
                    "generic" | "schema" => node.resource_type == ResourceType::Test && generic,
                    "singular" | "data" => node.resource_type == ResourceType::Test && !generic,
                    "unit" => false,
                    _ => {
                        return Err(a.problem(
                            "selector::value",
                            format!("unknown test type `{v}`"),
                            "unknown test type",
                            "test types: generic, singular".into(),
                        ))
                    }
                }
            }
            "test_name" => match &node.test {
                Some(t) => glob_match(
                    v,
                    t.metadata
                        .as_ref()
                        .map(|m| m.name.as_str())
                        .unwrap_or(&node.name),
                ),
                None => false,
            },
            "state" => {
                let Some(state) = self.state else {
                    return Err(a.problem(
                        "selector::state",
                        format!("`state:{v}` needs a previous manifest"),
                        "needs --state",
                        "pass --state DIR, where DIR holds the manifest.json of an earlier run"
                            .into(),
                    ));
                };
                let old = state.nodes.get(&node.unique_id);
                let body_changed = old.is_some_and(|(c, _)| c != &node.checksum);
                let config_changed = old.is_some_and(|(_, c)| !config_equal(c, &node.config));
                match v {
                    "new" => old.is_none(),
                    "old" => old.is_some(),
                    "modified" => old.is_none() || body_changed || config_changed,
                    "unmodified" => old.is_some() && !body_changed && !config_changed,
                    "modified.body" => old.is_none() || body_changed,
                    "modified.configs" => old.is_none() || config_changed,
                    _ => return Err(a.problem(
                        "selector::value",
                        format!("unknown state `{v}`"),
                        "unknown state",
                        "states: new, old, modified, unmodified, modified.body, modified.configs"
                            .into(),
                    )),
                }
            }
            _ => false,
        })
    }
}

fn config_equal(old: &Json, new: &crate::loader::config::Config) -> bool {
    let new = serde_json::to_value(new).unwrap_or(Json::Null);
    old == &new
}

/// The whole request: `--select`, `--exclude`, `--selector`, indirect selection.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub select: Vec<String>,
    pub exclude: Vec<String>,
    pub selector: Option<String>,
    pub indirect: IndirectSelection,
}

/// Selected node indexes of `m`, in manifest (unique id) order.
pub fn select(
    m: &Manifest,
    selectors: &Selectors,
    req: &Request,
    state: Option<&PriorState>,
) -> Result<Vec<usize>> {
    let mut problems = Problems::default();
    let mut mode = req.indirect;
    let include = if !req.select.is_empty() {
        let mut items = Vec::new();
        for s in &req.select {
            match parse("--select", s) {
                Ok(e) => items.push(e),
                Err(p) => problems.push(p),
            }
        }
        Expr::Union(items)
    } else if let Some(name) = req.selector.as_ref().or(selectors.default.as_ref()) {
        match selectors.expr(name) {
            Ok((e, ind)) => {
                if let Some(i) = ind {
                    mode = i;
                }
                e
            }
            Err(p) => {
                problems.push(p);
                Expr::All
            }
        }
    } else {
        Expr::All
    };
    let mut excludes = Vec::new();
    for s in &req.exclude {
        match parse("--exclude", s) {
            Ok(e) => excludes.push(e),
            Err(p) => problems.push(p),
        }
    }
    problems.into_result()?;
    let expr = if excludes.is_empty() {
        include
    } else {
        Expr::Difference(Box::new(include), excludes)
    };
    let ev = Evaluator { m, state, mode };
    let (direct, _) = ev.eval(&expr).map_err(Problems::from)?;
    Ok(direct
        .iter()
        .enumerate()
        .filter(|(_, &b)| b)
        .map(|(i, _)| i)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

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
