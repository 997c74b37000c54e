//! Matching names, paths and values: shell-style globs in linear time, fqn prefixes.

use serde_json::Value as Json;

/// One element of a glob pattern.
pub(super) enum GlobToken {
    Char(char),
    AnyChar,
    AnyRun,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl GlobToken {
    pub(super) fn matches(&self, c: char) -> bool {
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

pub(super) fn glob_tokens(pattern: &str) -> Vec<GlobToken> {
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
pub(super) fn fqn_matches(fqn: &[String], selector: &str) -> bool {
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

pub(super) fn json_matches(v: &Json, want: &str) -> bool {
    match v {
        Json::Array(a) => a.iter().any(|x| json_matches(x, want)),
        Json::String(s) => glob_match(want, s),
        Json::Bool(b) => want.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
        Json::Number(n) => n.to_string() == want,
        Json::Null => want.eq_ignore_ascii_case("none") || want.eq_ignore_ascii_case("null"),
        Json::Object(_) => false,
    }
}
