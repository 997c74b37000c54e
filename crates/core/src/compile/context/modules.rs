//! `modules.re` and `modules.itertools`: the parts of
//! Python's modules that dbt projects and packages call.

use minijinja::value::{Kwargs, Object, Value};
use minijinja::{Error, ErrorKind, State};
use std::sync::Arc;

fn unknown(module: &str, method: &str) -> Error {
    super::no_method(&format!("modules.{module}"), method)
}

// ---- re ---------------------------------------------------------------------

/// Python's flag values.
const IGNORECASE: i64 = 2;
const MULTILINE: i64 = 8;
const DOTALL: i64 = 16;
const VERBOSE: i64 = 64;

#[derive(Debug)]
pub(super) struct ReModule;

/// A pattern, as Rust's `regex` reads Python's syntax (named groups
/// `(?P<name>…)` included; look-around and backreferences are refused).
fn compile(pattern: &str, flags: i64) -> Result<regex::Regex, Error> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(flags & IGNORECASE != 0)
        .multi_line(flags & MULTILINE != 0)
        .dot_matches_new_line(flags & DOTALL != 0)
        .ignore_whitespace(flags & VERBOSE != 0)
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("modules.re: pattern `{pattern}` is not supported: {e}"),
            )
        })
}

/// `\1` and `\g<name>` in a Python replacement, as `regex` spells them.
fn replacement(repl: &str) -> String {
    let mut out = String::new();
    let mut chars = repl.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    let mut n = String::new();
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        n.push(d);
                        chars.next();
                    }
                    out.push_str(&format!("${{{n}}}"));
                }
                Some('g') => {
                    chars.next();
                    let mut name = String::new();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        for c in chars.by_ref() {
                            if c == '>' {
                                break;
                            }
                            name.push(c);
                        }
                    }
                    out.push_str(&format!("${{{name}}}"));
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

/// Runs `method` of a compiled pattern on the rest of the arguments.
fn apply(re: &regex::Regex, method: &str, args: &[Value]) -> Result<Value, Error> {
    match method {
        "match" | "search" | "fullmatch" => {
            let (text, _): (&str, Kwargs) = minijinja::value::from_args(args)?;
            let found = re.captures(text).filter(|c| {
                let m = c.get(0).map_or(0..0, |m| m.range());
                match method {
                    "match" => m.start == 0,
                    "fullmatch" => m.start == 0 && m.end == text.len(),
                    _ => true,
                }
            });
            Ok(found.map_or(Value::from(()), |c| {
                Value::from_object(MatchObj::new(re, &c))
            }))
        }
        "findall" => {
            let (text, _): (&str, Kwargs) = minijinja::value::from_args(args)?;
            let groups = re.captures_len() - 1;
            Ok(Value::from(
                re.captures_iter(text)
                    .map(|c| match groups {
                        0 => Value::from(c.get(0).map_or("", |m| m.as_str())),
                        1 => Value::from(c.get(1).map_or("", |m| m.as_str())),
                        _ => Value::from(
                            (1..=groups)
                                .map(|i| Value::from(c.get(i).map_or("", |m| m.as_str())))
                                .collect::<Vec<_>>(),
                        ),
                    })
                    .collect::<Vec<_>>(),
            ))
        }
        "sub" => {
            let (repl, text, kwargs): (&str, &str, Kwargs) = minijinja::value::from_args(args)?;
            let count: usize = kwargs.get::<Option<usize>>("count")?.unwrap_or(0);
            Ok(Value::from(
                re.replacen(text, count, replacement(repl).as_str())
                    .into_owned(),
            ))
        }
        "split" => {
            let (text, kwargs): (&str, Kwargs) = minijinja::value::from_args(args)?;
            let max: usize = kwargs.get::<Option<usize>>("maxsplit")?.unwrap_or(0);
            let parts: Vec<Value> = if max == 0 {
                re.split(text).map(Value::from).collect()
            } else {
                re.splitn(text, max + 1).map(Value::from).collect()
            };
            Ok(Value::from(parts))
        }
        _ => Err(unknown("re", method)),
    }
}

/// Splits `(pattern, rest…, flags=)` off the arguments of a module function.
fn pattern_args(args: &[Value]) -> Result<(String, i64, Vec<Value>), Error> {
    let (positional, kwargs): (&[Value], Kwargs) = minijinja::value::from_args(args)?;
    let pattern = positional
        .first()
        .and_then(Value::as_str)
        .ok_or_else(|| Error::new(ErrorKind::MissingArgument, "modules.re needs a pattern"))?
        .to_string();
    let flags: i64 = kwargs.get::<Option<i64>>("flags")?.unwrap_or(0);
    let mut rest: Vec<Value> = positional[1..].to_vec();
    let keep: Vec<(String, Value)> = ["count", "maxsplit"]
        .iter()
        .filter_map(|k| kwargs.peek::<Value>(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    rest.push(Value::from(keep.into_iter().collect::<Kwargs>()));
    Ok((pattern, flags, rest))
}

impl Object for ReModule {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(Value::from(match key.as_str()? {
            "I" | "IGNORECASE" => IGNORECASE,
            "M" | "MULTILINE" => MULTILINE,
            "S" | "DOTALL" => DOTALL,
            "X" | "VERBOSE" => VERBOSE,
            _ => return None,
        }))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "escape" => {
                let (text,): (&str,) = minijinja::value::from_args(args)?;
                Ok(Value::from(regex::escape(text)))
            }
            "compile" => {
                let (pattern, flags, _) = pattern_args(args)?;
                Ok(Value::from_object(CompiledRe(compile(&pattern, flags)?)))
            }
            _ => {
                let (pattern, flags, rest) = pattern_args(args)?;
                apply(&compile(&pattern, flags)?, method, &rest)
            }
        }
    }
}

#[derive(Debug)]
struct CompiledRe(regex::Regex);

impl Object for CompiledRe {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        (key.as_str()? == "pattern").then(|| Value::from(self.0.as_str()))
    }
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        apply(&self.0, method, args)
    }
}

/// What `re.match` and friends return: groups by number and by name.
#[derive(Debug)]
struct MatchObj {
    groups: Vec<Option<(String, usize, usize)>>,
    names: Vec<(String, usize)>,
}

impl MatchObj {
    fn new(re: &regex::Regex, c: &regex::Captures) -> MatchObj {
        MatchObj {
            groups: (0..c.len())
                .map(|i| {
                    c.get(i)
                        .map(|m| (m.as_str().to_string(), m.start(), m.end()))
                })
                .collect(),
            names: re
                .capture_names()
                .enumerate()
                .filter_map(|(i, n)| n.map(|n| (n.to_string(), i)))
                .collect(),
        }
    }

    fn index(&self, v: Option<&Value>) -> Result<usize, Error> {
        match v {
            None => Ok(0),
            Some(v) => match v.as_str() {
                Some(name) => self
                    .names
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, i)| *i)
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::InvalidOperation,
                            format!("no group named `{name}`"),
                        )
                    }),
                None => usize::try_from(v.clone())
                    .ok()
                    .filter(|i| *i < self.groups.len())
                    .ok_or_else(|| {
                        Error::new(ErrorKind::InvalidOperation, format!("no group {v}"))
                    }),
            },
        }
    }

    fn text(&self, i: usize) -> Value {
        self.groups
            .get(i)
            .and_then(|g| g.as_ref())
            .map_or(Value::from(()), |(t, _, _)| Value::from(t.clone()))
    }
}

impl Object for MatchObj {
    /// A match is true, as in Python: `{% if modules.re.match(…) %}`.
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let span = |i: usize| {
            self.groups
                .get(i)
                .and_then(|g| g.as_ref())
                .map(|(_, s, e)| (*s, *e))
        };
        match method {
            "group" => {
                if args.len() > 1 {
                    let parts: Result<Vec<Value>, Error> = args
                        .iter()
                        .map(|a| Ok(self.text(self.index(Some(a))?)))
                        .collect();
                    return Ok(Value::from(parts?));
                }
                Ok(self.text(self.index(args.first())?))
            }
            "groups" => Ok(Value::from(
                (1..self.groups.len())
                    .map(|i| self.text(i))
                    .collect::<Vec<_>>(),
            )),
            "groupdict" => Ok(Value::from(
                self.names
                    .iter()
                    .map(|(n, i)| (n.clone(), self.text(*i)))
                    .collect::<std::collections::BTreeMap<String, Value>>(),
            )),
            "start" | "end" | "span" => {
                let (s, e) = span(self.index(args.first())?).unwrap_or((usize::MAX, usize::MAX));
                Ok(match method {
                    "start" => Value::from(s),
                    "end" => Value::from(e),
                    _ => Value::from(vec![Value::from(s), Value::from(e)]),
                })
            }
            _ => Err(unknown("re", method)),
        }
    }
}

// ---- itertools ----------------------------------------------------------------

#[derive(Debug)]
pub(super) struct ItertoolsModule;

fn items(v: &Value) -> Result<Vec<Value>, Error> {
    Ok(v.try_iter()?.collect())
}

/// Every way to pick `r` of `pool` in order (`permutations`) or not.
fn choose(pool: &[Value], r: usize, ordered: bool, out: &mut Vec<Value>, picked: &mut Vec<usize>) {
    if picked.len() == r {
        out.push(Value::from(
            picked.iter().map(|&i| pool[i].clone()).collect::<Vec<_>>(),
        ));
        return;
    }
    let start = if ordered {
        0
    } else {
        picked.last().map_or(0, |&l| l + 1)
    };
    for i in start..pool.len() {
        if ordered && picked.contains(&i) {
            continue;
        }
        picked.push(i);
        choose(pool, r, ordered, out, picked);
        picked.pop();
    }
}

impl Object for ItertoolsModule {
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let (positional, kwargs): (&[Value], Kwargs) = minijinja::value::from_args(args)?;
        match method {
            "chain" => {
                let mut out = Vec::new();
                for a in positional {
                    out.extend(items(a)?);
                }
                Ok(Value::from(out))
            }
            "product" => {
                let repeat: usize = kwargs.get::<Option<usize>>("repeat")?.unwrap_or(1);
                let pools: Vec<Vec<Value>> =
                    positional.iter().map(items).collect::<Result<_, _>>()?;
                let pools: Vec<&Vec<Value>> = (0..repeat).flat_map(|_| pools.iter()).collect();
                let mut acc: Vec<Vec<Value>> = vec![Vec::new()];
                for pool in pools {
                    acc = acc
                        .into_iter()
                        .flat_map(|prefix| {
                            pool.iter().map(move |x| {
                                let mut p = prefix.clone();
                                p.push(x.clone());
                                p
                            })
                        })
                        .collect();
                }
                Ok(Value::from(
                    acc.into_iter().map(Value::from).collect::<Vec<_>>(),
                ))
            }
            "combinations" | "permutations" => {
                let pool = items(positional.first().unwrap_or(&Value::from(())))?;
                let r = match positional.get(1) {
                    Some(v) => usize::try_from(v.clone())?,
                    None => pool.len(),
                };
                let mut out = Vec::new();
                choose(
                    &pool,
                    r,
                    method == "permutations",
                    &mut out,
                    &mut Vec::new(),
                );
                Ok(Value::from(out))
            }
            _ => Err(unknown("itertools", method)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::replacement;

    #[test]
    fn python_replacements() {
        assert_eq!(replacement(r"\1-\g<name>$"), "${1}-${name}$$");
    }
}
