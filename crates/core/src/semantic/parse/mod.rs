//! The semantic layer's YAML entries (`semantic_models:`, `metrics:`,
//! `saved_queries:` in a properties file) read into definitions, as strictly
//! as dbt reads them: an unknown key, a missing one or a value of the wrong
//! kind is an error at its line, with the keys that would do.

use super::definition::{ElementConfig, Grain, TimeWindow, WhereFilters};
use crate::error::{closest, did_you_mean, Code, Problem};
use crate::loader::yaml::{as_string, EntryFinder};
use serde_json::{Map, Value as Json};
use std::sync::Arc;

type Entry = Map<String, Json>;

mod metric;
mod model;
mod saved_query;

pub use metric::metric;
pub use model::semantic_model;
pub use saved_query::saved_query;

/// Reads one properties file's semantic entries; each problem is at its line.
pub struct Reader<'a> {
    path: &'a str,
    text: &'a Arc<str>,
    finder: EntryFinder<'a>,
}

impl<'a> Reader<'a> {
    pub fn new(path: &'a str, text: &'a Arc<str>) -> Reader<'a> {
        Reader {
            path,
            text,
            finder: EntryFinder::new(text),
        }
    }

    pub(super) fn problem(&self, line: usize, message: String, help: String) -> Problem {
        Problem::new(Code::SemanticDefinition, message)
            .in_file(self.path, self.text.clone())
            .label_line(line, "here")
            .help(help)
    }

    /// The line of `key:` at or after `from` (`from` when not found).
    pub(super) fn key_line(&self, from: usize, key: &str) -> usize {
        let lines = self.finder.lines();
        let start = from.saturating_sub(1).min(lines.len());
        // An entry written as a flow mapping (`- {name: x, agg: sum}`) has its keys on its line.
        if lines.get(start).is_some_and(|l| {
            l.contains('{') && (l.contains(&format!("{{{key}:")) || l.contains(&format!(" {key}:")))
        }) {
            return from;
        }
        lines[start..]
            .iter()
            .position(|l| crate::loader::yaml::is_key_line(l, key))
            .map_or(from, |i| start + i + 1)
    }

    /// The line of `name: <name>` at or after `from`.
    pub fn name_line(&self, from: usize, name: &str) -> usize {
        // The nearer of a block entry (`- name: x`) and a flow one (`- {name: x}`).
        match (
            self.finder.find(from, "name", name),
            self.flow_name_line(from, name),
        ) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(from),
        }
    }

    /// The line of `name: <name>` inside a flow mapping (`- {name: x, ...}`).
    fn flow_name_line(&self, from: usize, name: &str) -> Option<usize> {
        let lines = self.finder.lines();
        let start = from.saturating_sub(1).min(lines.len());
        lines[start..]
            .iter()
            .position(|l| {
                l.match_indices("name:").any(|(i, m)| {
                    let rest = l[i + m.len()..].trim_start();
                    let rest = rest.trim_start_matches(['\'', '"']);
                    rest.strip_prefix(name).is_some_and(|after| {
                        after.is_empty() || after.starts_with([',', '}', '\'', '"', ' '])
                    })
                })
            })
            .map(|i| start + i + 1)
    }

    pub(super) fn only_keys(
        &self,
        m: &Entry,
        known: &[&str],
        what: &str,
        line: usize,
    ) -> Result<(), Problem> {
        for key in m.keys() {
            if !known.contains(&key.as_str()) {
                let suggestions = closest(key, known.iter().copied());
                return Err(self.problem(
                    self.key_line(line, key),
                    format!("{what} has an unknown key `{key}`"),
                    did_you_mean(
                        &suggestions,
                        &format!("the keys it takes are {}", known.join(", ")),
                    ),
                ));
            }
        }
        Ok(())
    }

    pub(super) fn text_of(
        &self,
        m: &Entry,
        key: &str,
        what: &str,
        line: usize,
    ) -> Result<Option<String>, Problem> {
        match m.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Object(_)) | Some(Json::Array(_)) => Err(self.problem(
                self.key_line(line, key),
                format!("`{key}` of {what} must be a text"),
                format!("write it as `{key}: <text>`"),
            )),
            Some(v) => Ok(as_string(v)),
        }
    }

    pub(super) fn required(
        &self,
        m: &Entry,
        key: &str,
        what: &str,
        line: usize,
    ) -> Result<String, Problem> {
        self.text_of(m, key, what, line)?.ok_or_else(|| {
            self.problem(
                line,
                format!("{what} has no `{key}:`"),
                format!("add `{key}:` to it"),
            )
        })
    }

    pub(super) fn flag(
        &self,
        m: &Entry,
        key: &str,
        what: &str,
        line: usize,
    ) -> Result<bool, Problem> {
        match m.get(key) {
            None | Some(Json::Null) => Ok(false),
            Some(Json::Bool(b)) => Ok(*b),
            Some(other) => Err(self.problem(
                self.key_line(line, key),
                format!("`{key}` of {what} is `{other}`, not true or false"),
                format!("write `{key}: true` or `{key}: false`"),
            )),
        }
    }

    pub(super) fn object<'j>(
        &self,
        m: &'j Entry,
        key: &str,
        what: &str,
        line: usize,
    ) -> Result<Option<&'j Entry>, Problem> {
        match m.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Object(o)) => Ok(Some(o)),
            Some(_) => Err(self.problem(
                self.key_line(line, key),
                format!("`{key}` of {what} must be a mapping of keys to values"),
                format!("write `{key}:` followed by its keys, indented"),
            )),
        }
    }

    /// The entries of a list of mappings, each with its `name:` line.
    pub(super) fn named_list<'j>(
        &self,
        m: &'j Entry,
        key: &str,
        what: &str,
        line: usize,
    ) -> Result<Vec<(&'j Entry, String, usize)>, Problem> {
        let items = match m.get(key) {
            None | Some(Json::Null) => return Ok(Vec::new()),
            Some(Json::Array(items)) => items,
            Some(_) => {
                return Err(self.problem(
                    self.key_line(line, key),
                    format!("`{key}` of {what} must be a list"),
                    format!("write each of its entries as `- name: ...` under `{key}:`"),
                ))
            }
        };
        let mut from = self.key_line(line, key);
        let mut out = Vec::new();
        for item in items {
            let Some((o, name)) = item
                .as_object()
                .and_then(|o| o.get("name").and_then(as_string).map(|n| (o, n)))
            else {
                return Err(self.problem(
                    from,
                    format!("every entry of `{key}` of {what} needs a `name:`"),
                    "write each entry as `- name: <name>` followed by its keys".into(),
                ));
            };
            let at = self.name_line(from, &name);
            from = at + 1;
            out.push((o, name, at));
        }
        Ok(out)
    }

    pub(super) fn meta(&self, m: &Entry) -> Map<String, Json> {
        let from_config = m
            .get("config")
            .and_then(|c| c.get("meta"))
            .and_then(Json::as_object);
        let own = m.get("meta").and_then(Json::as_object);
        let mut out = own.cloned().unwrap_or_default();
        if let Some(c) = from_config {
            out.extend(c.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        out
    }

    pub(super) fn element_config(&self, m: &Entry) -> ElementConfig {
        ElementConfig { meta: self.meta(m) }
    }

    pub(super) fn filters(
        &self,
        value: Option<&Json>,
        what: &str,
        line: usize,
    ) -> Result<Option<WhereFilters>, Problem> {
        let templates = match value {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::String(s)) => vec![s.clone()],
            Some(Json::Array(items)) => {
                let mut out = Vec::new();
                for item in items {
                    match item {
                        Json::String(s) => out.push(s.clone()),
                        other => {
                            return Err(self.problem(
                                line,
                                format!("a filter of {what} is `{other}`, not a text"),
                                "write each filter as a text, e.g. \"{{ Dimension('customer__region') }} = 'north'\"".into(),
                            ))
                        }
                    }
                }
                out
            }
            Some(other) => {
                return Err(self.problem(
                    line,
                    format!("the filter of {what} is `{other}`, not a text or a list of texts"),
                    "write it as a text, e.g. \"{{ Dimension('customer__region') }} = 'north'\""
                        .into(),
                ))
            }
        };
        Ok(WhereFilters::of(templates))
    }

    pub(super) fn grain(
        &self,
        value: &str,
        key: &str,
        what: &str,
        line: usize,
    ) -> Result<Grain, Problem> {
        Grain::parse(value).ok_or_else(|| {
            let names: Vec<&str> = Grain::ALL.iter().map(|g| g.as_str()).collect();
            self.problem(
                self.key_line(line, key),
                format!("`{key}` of {what} is `{value}`, not a time granularity"),
                did_you_mean(
                    &closest(value, names.iter().copied()),
                    &format!("use one of {}", names.join(", ")),
                ),
            )
        })
    }

    pub(super) fn window(
        &self,
        m: &Entry,
        key: &str,
        what: &str,
        line: usize,
    ) -> Result<Option<TimeWindow>, Problem> {
        let Some(text) = self.text_of(m, key, what, line)? else {
            return Ok(None);
        };
        TimeWindow::parse(&text).map(Some).ok_or_else(|| {
            self.problem(
                self.key_line(line, key),
                format!("`{key}` of {what} is `{text}`, not a count and a granularity"),
                "write it as `<count> <granularity>`, e.g. `7 days` or `1 month`".into(),
            )
        })
    }
}
