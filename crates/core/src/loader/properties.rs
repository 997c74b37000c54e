//! YAML properties files (`schema.yml` and friends): models, seeds, snapshots,
//! analyses, sources, exposures, unit tests. Unknown keys are kept in `extra`.

use super::config::{self, Config};
use super::yaml::{as_string, string_list, EntryFinder};
use crate::error::{Code, Problem};
use serde_json::{Map, Value as Json};
use std::cell::Cell;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct PropertiesFile {
    /// Path relative to the project root.
    pub path: String,
    pub text: Arc<str>,
    pub models: Vec<ResourcePatch>,
    pub seeds: Vec<ResourcePatch>,
    pub snapshots: Vec<ResourcePatch>,
    pub analyses: Vec<ResourcePatch>,
    pub sources: Vec<SourceDef>,
    pub exposures: Vec<ExposureDef>,
    pub unit_tests: Vec<super::unit_tests::UnitTestDef>,
    /// The semantic layer's entries, read by `semantic::parse`.
    pub semantic: Vec<SemanticEntry>,
    /// `groups:` (dbt 1.5): who owns the models that say `group: <name>`.
    pub groups: Vec<GroupDef>,
}

/// A group a model belongs to (`group:`), which a private model may be
/// referenced from only.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupDef {
    pub name: String,
    pub owner: Json,
    pub description: String,
    pub line: usize,
}

/// Which list of the semantic layer an entry is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SemanticKind {
    SemanticModel,
    Metric,
    SavedQuery,
}

impl SemanticKind {
    pub const KEYS: [(&'static str, SemanticKind); 3] = [
        ("semantic_models", SemanticKind::SemanticModel),
        ("metrics", SemanticKind::Metric),
        ("saved_queries", SemanticKind::SavedQuery),
    ];
}

/// An entry of `semantic_models:`, `metrics:` or `saved_queries:`, with the
/// line of its `name:`.
#[derive(Debug, Clone)]
pub struct SemanticEntry {
    pub kind: SemanticKind,
    pub value: Map<String, Json>,
    pub line: usize,
}

/// The YAML entry for a model, seed, snapshot or analysis.
#[derive(Debug, Clone)]
pub struct ResourcePatch {
    pub name: String,
    pub description: String,
    pub config: Config,
    pub columns: Vec<ColumnDef>,
    pub tests: Vec<TestDef>,
    pub meta: Map<String, Json>,
    pub docs: Json,
    pub line: usize,
    pub extra: Map<String, Json>,
}

#[derive(Debug, Clone)]
pub struct ColumnDef {
    pub name: String,
    pub description: String,
    pub data_type: Option<String>,
    pub meta: Map<String, Json>,
    pub tags: Vec<String>,
    pub quote: Option<bool>,
    pub tests: Vec<TestDef>,
    pub extra: Map<String, Json>,
}

/// A generic test as written in YAML, with the line it stands on.
#[derive(Debug, Clone)]
pub struct TestDef {
    pub value: Json,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct SourceDef {
    pub name: String,
    pub description: String,
    pub database: Option<String>,
    pub schema: Option<String>,
    pub loader: String,
    pub loaded_at_field: Option<String>,
    pub freshness: Json,
    pub meta: Map<String, Json>,
    pub tags: Vec<String>,
    pub config: Config,
    pub quoting: Json,
    pub tables: Vec<SourceTable>,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct SourceTable {
    pub name: String,
    pub identifier: Option<String>,
    pub description: String,
    pub loaded_at_field: Option<String>,
    pub freshness: Option<Json>,
    pub columns: Vec<ColumnDef>,
    pub tests: Vec<TestDef>,
    pub meta: Map<String, Json>,
    pub tags: Vec<String>,
    pub config: Config,
    pub quoting: Json,
    pub external: Json,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct ExposureDef {
    pub name: String,
    pub label: Option<String>,
    pub kind: String,
    pub description: String,
    pub url: Option<String>,
    pub maturity: Option<String>,
    pub owner: Json,
    pub depends_on: Vec<String>,
    pub meta: Map<String, Json>,
    pub tags: Vec<String>,
    pub config: Config,
    pub line: usize,
}

fn s(m: &Map<String, Json>, k: &str) -> Option<String> {
    m.get(k).and_then(as_string)
}

fn obj(m: &Map<String, Json>, k: &str) -> Map<String, Json> {
    match m.get(k) {
        Some(Json::Object(o)) => o.clone(),
        _ => Map::new(),
    }
}

fn extra(m: &Map<String, Json>, known: &[&str]) -> Map<String, Json> {
    m.iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

struct Ctx<'a> {
    path: &'a str,
    text: &'a Arc<str>,
    finder: EntryFinder<'a>,
    /// Lines are looked up in document order from here.
    cursor: Cell<usize>,
}

impl Ctx<'_> {
    /// The line of the next `key: value` entry (from the cursor), moving the cursor there.
    fn line(&self, key: &str, value: &str) -> usize {
        match self.finder.find(self.cursor.get(), key, value) {
            Some(l) => {
                // The next entry is further down (two entries may share a name).
                self.cursor.set(l + 1);
                l
            }
            None => self.cursor.get().max(1),
        }
    }

    /// Starts looking from the top-level section `key:` (a key of the
    /// document, not one nested under an entry).
    fn rewind_to_top(&self, key: &str) {
        let line = self
            .finder
            .lines()
            .iter()
            .position(|l| l.starts_with(key) && l[key.len()..].trim_start().starts_with(':'))
            .map_or(1, |i| i + 1);
        self.cursor.set(line);
    }

    /// Starts looking from the top of the section `key:`.
    fn rewind_to(&self, key: &str) {
        self.cursor
            .set(super::yaml::line_of_key(self.text, key).unwrap_or(1));
    }

    fn problem(&self, line: usize, msg: String, help: &str) -> Problem {
        Problem::new(Code::YamlProperties, msg)
            .in_file(self.path, self.text.clone())
            .label_line(line, "here")
            .help(help.to_string())
    }

    fn entries<'j>(
        &self,
        doc: &'j Map<String, Json>,
        key: &str,
    ) -> Result<Vec<&'j Map<String, Json>>, Problem> {
        match doc.get(key) {
            None | Some(Json::Null) => Ok(Vec::new()),
            Some(Json::Array(items)) => {
                let mut out = Vec::new();
                for item in items {
                    match item {
                        Json::Object(m) if m.get("name").and_then(as_string).is_some() => {
                            out.push(m)
                        }
                        _ => {
                            let line = super::yaml::line_of_key(self.text, key).unwrap_or(1);
                            return Err(self.problem(
                                line,
                                format!("every entry under `{key}:` in {} needs a `name:`", self.path),
                                "write each entry as `- name: <resource name>` followed by its properties",
                            ));
                        }
                    }
                }
                Ok(out)
            }
            Some(_) => {
                let line = super::yaml::line_of_key(self.text, key).unwrap_or(1);
                Err(self.problem(
                    line,
                    format!("`{key}:` in {} must be a list", self.path),
                    "write the entries as a YAML list, each starting with `- name:`",
                ))
            }
        }
    }

    fn tests(&self, m: &Map<String, Json>, near: usize) -> Result<Vec<TestDef>, Problem> {
        let mut out = Vec::new();
        for key in ["data_tests", "tests"] {
            let items = match m.get(key) {
                None | Some(Json::Null) => continue,
                Some(Json::Array(items)) => items,
                Some(other) => {
                    let line = self.find_text(near, &format!("{key}:")).unwrap_or(near);
                    return Err(self.problem(
                        line,
                        format!(
                            "`{key}:` in {} must be a list of tests, not `{other}`",
                            self.path
                        ),
                        "write the tests as a list: data_tests: [unique, not_null]",
                    ));
                }
            };
            for item in items {
                let name = test_name_hint(item);
                let line = name
                    .as_deref()
                    .and_then(|n| self.find_text(near, n))
                    .unwrap_or(near);
                out.push(TestDef {
                    value: item.clone(),
                    line,
                });
            }
        }
        Ok(out)
    }

    fn columns(&self, m: &Map<String, Json>) -> Result<Vec<ColumnDef>, Problem> {
        let mut out = Vec::new();
        for c in self.entries(m, "columns")? {
            let name = s(c, "name").unwrap_or_default();
            let line = self.line("name", &name);
            out.push(ColumnDef {
                description: s(c, "description").unwrap_or_default(),
                data_type: s(c, "data_type"),
                meta: obj(c, "meta"),
                tags: string_list(c.get("tags")),
                quote: c.get("quote").and_then(Json::as_bool),
                tests: self.tests(c, line)?,
                extra: extra(
                    c,
                    &[
                        "name",
                        "description",
                        "data_type",
                        "meta",
                        "tags",
                        "quote",
                        "tests",
                        "data_tests",
                    ],
                ),
                name,
            });
        }
        Ok(out)
    }

    /// The first line at or after `from` that contains `needle`.
    fn find_text(&self, from: usize, needle: &str) -> Option<usize> {
        let lines = self.finder.lines();
        let start = from.saturating_sub(1).min(lines.len());
        lines[start..]
            .iter()
            .take(64)
            .position(|l| l.contains(needle))
            .map(|i| start + i + 1)
    }

    fn patches(&self, doc: &Map<String, Json>, key: &str) -> Result<Vec<ResourcePatch>, Problem> {
        self.rewind_to(key);
        let mut out = Vec::new();
        for m in self.entries(doc, key)? {
            let name = s(m, "name").unwrap_or_default();
            let line = self.line("name", &name);
            if key == "snapshots" && m.get("relation").is_some_and(|r| !r.is_string()) {
                return Err(self.problem(
                    line,
                    format!("snapshot `{name}`: `relation:` must be ref('model') or source('source', 'table')"),
                    "write relation: ref('orders') or relation: source('shop', 'orders')",
                ));
            }
            if let Some(key) = ["versions", "latest_version"]
                .into_iter()
                .find(|k| m.contains_key(*k))
            {
                return Err(self.problem(
                    self.find_text(line, &format!("{key}:")).unwrap_or(line),
                    format!("`{name}` has `{key}:`, but pm does not support model versions"),
                    "keep one version of the model, without `versions:` and `latest_version:`",
                ));
            }
            let mut cfg = config::from_json(m.get("config"));
            // Top-level `tags:` and `meta:` on a resource act like config.
            for k in ["tags", "meta", "docs"] {
                if let Some(v) = m.get(k) {
                    config::merge_key(&mut cfg, k, v);
                }
            }
            out.push(ResourcePatch {
                description: s(m, "description").unwrap_or_default(),
                config: cfg,
                columns: self.columns(m)?,
                tests: self.tests(m, line)?,
                meta: obj(m, "meta"),
                docs: m.get("docs").cloned().unwrap_or(Json::Null),
                extra: extra(
                    m,
                    &[
                        "name",
                        "description",
                        "config",
                        "columns",
                        "tests",
                        "data_tests",
                        "meta",
                        "docs",
                        "tags",
                    ],
                ),
                line,
                name,
            });
        }
        Ok(out)
    }
}

/// The name of a test entry (`unique`, `{accepted_values: …}`, or a custom `name:`).
pub fn test_name_hint(item: &Json) -> Option<String> {
    match item {
        Json::String(s) => Some(s.clone()),
        Json::Object(m) => m.keys().next().cloned(),
        _ => None,
    }
}

pub fn parse(path: &str, text: &Arc<str>, doc: &Json) -> Result<PropertiesFile, Problem> {
    let cx = Ctx {
        path,
        text,
        finder: EntryFinder::new(text),
        cursor: Cell::new(1),
    };
    let empty = Map::new();
    let doc = match doc {
        Json::Object(m) => m,
        Json::Null => &empty,
        _ => {
            return Err(cx.problem(
                1,
                format!("{path} must be a YAML mapping (version:, models:, sources:, …)"),
                "start the file with `version: 2` and a `models:` or `sources:` list",
            ))
        }
    };
    let mut sources = Vec::new();
    cx.rewind_to("sources");
    for m in cx.entries(doc, "sources")? {
        let name = s(m, "name").unwrap_or_default();
        let line = cx.line("name", &name);
        let mut tables = Vec::new();
        for t in cx.entries(m, "tables")? {
            let tname = s(t, "name").unwrap_or_default();
            let tline = cx.line("name", &tname);
            if tables.iter().any(|x: &SourceTable| x.name == tname) {
                return Err(cx.problem(
                    tline,
                    format!("source `{name}` lists table `{tname}` twice in {path}"),
                    "keep one entry per table",
                ));
            }
            tables.push(SourceTable {
                identifier: s(t, "identifier"),
                description: s(t, "description").unwrap_or_default(),
                loaded_at_field: s(t, "loaded_at_field"),
                freshness: t.get("freshness").cloned(),
                columns: cx.columns(t)?,
                tests: cx.tests(t, tline)?,
                meta: obj(t, "meta"),
                tags: string_list(t.get("tags")),
                config: config::from_json(t.get("config")),
                quoting: t.get("quoting").cloned().unwrap_or(Json::Null),
                external: t.get("external").cloned().unwrap_or(Json::Null),
                line: tline,
                name: tname,
            });
        }
        sources.push(SourceDef {
            description: s(m, "description").unwrap_or_default(),
            database: s(m, "database"),
            schema: s(m, "schema"),
            loader: s(m, "loader").unwrap_or_default(),
            loaded_at_field: s(m, "loaded_at_field"),
            freshness: m.get("freshness").cloned().unwrap_or(Json::Null),
            meta: obj(m, "meta"),
            tags: string_list(m.get("tags")),
            config: config::from_json(m.get("config")),
            quoting: m.get("quoting").cloned().unwrap_or(Json::Null),
            tables,
            line,
            name,
        });
    }
    let mut exposures = Vec::new();
    cx.rewind_to("exposures");
    for m in cx.entries(doc, "exposures")? {
        let name = s(m, "name").unwrap_or_default();
        exposures.push(ExposureDef {
            label: s(m, "label"),
            kind: s(m, "type").unwrap_or_else(|| "dashboard".into()),
            description: s(m, "description").unwrap_or_default(),
            url: s(m, "url"),
            maturity: s(m, "maturity"),
            owner: m.get("owner").cloned().unwrap_or(Json::Null),
            depends_on: string_list(m.get("depends_on")),
            meta: obj(m, "meta"),
            tags: string_list(m.get("tags")),
            config: config::from_json(m.get("config")),
            line: cx.line("name", &name),
            name,
        });
    }
    Ok(PropertiesFile {
        path: path.to_string(),
        text: text.clone(),
        models: cx.patches(doc, "models")?,
        seeds: cx.patches(doc, "seeds")?,
        snapshots: cx.patches(doc, "snapshots")?,
        analyses: cx.patches(doc, "analyses")?,
        sources,
        exposures,
        unit_tests: super::unit_tests::parse(path, text, doc)?,
        semantic: semantic_entries(&cx, doc)?,
        groups: groups(&cx, doc)?,
    })
}

fn groups(cx: &Ctx, doc: &Map<String, Json>) -> Result<Vec<GroupDef>, Problem> {
    cx.rewind_to("groups");
    let mut out = Vec::new();
    for g in cx.entries(doc, "groups")? {
        let name = s(g, "name").unwrap_or_default();
        let line = cx.line("name", &name);
        let owner = g.get("owner").cloned().unwrap_or(Json::Null);
        if name.is_empty() || !owner.is_object() {
            return Err(cx.problem(
                line,
                format!("group `{name}` needs a `name` and an `owner` (with a name or an email)"),
                "groups:\n  - name: finance\n    owner: {name: Finance, email: finance@example.com}",
            ));
        }
        out.push(GroupDef {
            description: s(g, "description").unwrap_or_default(),
            owner,
            line,
            name,
        });
    }
    Ok(out)
}

fn semantic_entries(cx: &Ctx, doc: &Map<String, Json>) -> Result<Vec<SemanticEntry>, Problem> {
    let mut out = Vec::new();
    for (key, kind) in SemanticKind::KEYS {
        cx.rewind_to_top(key);
        for m in cx.entries(doc, key)? {
            let name = s(m, "name").unwrap_or_default();
            out.push(SemanticEntry {
                kind,
                value: m.clone(),
                line: cx.line("name", &name),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_models_and_sources() {
        let text: Arc<str> = Arc::from(
            "version: 2\nmodels:\n  - name: a\n    description: A\n    config: {materialized: table}\n    columns:\n      - name: id\n        data_tests: [unique, not_null]\n    owner_team: x\nsources:\n  - name: raw\n    tables:\n      - name: users\n        loaded_at_field: t\n",
        );
        let doc = super::super::yaml::parse("m.yml", &text).unwrap();
        let p = parse("m.yml", &text, &doc).unwrap();
        assert_eq!(p.models[0].name, "a");
        assert_eq!(p.models[0].line, 3);
        assert_eq!(p.models[0].columns[0].tests.len(), 2);
        assert_eq!(p.models[0].columns[0].tests[1].line, 8);
        assert_eq!(p.models[0].extra["owner_team"], "x");
        assert_eq!(p.sources[0].tables[0].loaded_at_field.as_deref(), Some("t"));
    }

    #[test]
    fn entry_without_name_is_an_error() {
        let text: Arc<str> = Arc::from("models:\n  - description: x\n");
        let doc = super::super::yaml::parse("m.yml", &text).unwrap();
        let e = parse("m.yml", &text, &doc).unwrap_err();
        assert!(e.message.contains("needs a `name:`"));
    }
}
