//! The `unit_tests:` section of a properties file (dbt 1.8): each test's
//! inputs (`given`), expected rows (`expect`) and `overrides`, checked for
//! shape here, with the line each entry stands on. Fixture rows are read
//! (CSV parsed, fixture files and seeds found) when the project compiles.

use super::config::{self, Config};
use super::yaml::{as_string, EntryFinder};
use crate::error::{Code, Problem};
use serde_json::{Map, Value as Json};
use std::sync::Arc;

/// A unit test as written in YAML.
#[derive(Debug, Clone)]
pub struct UnitTestDef {
    pub name: String,
    /// The model tested, by name.
    pub model: String,
    pub description: String,
    pub given: Vec<FixtureDef>,
    pub expect: FixtureDef,
    pub overrides: Overrides,
    pub config: Config,
    /// `versions: {include: [...]} | {exclude: [...]}`.
    pub versions: Option<Json>,
    pub line: usize,
}

/// How a fixture's rows are written (`format:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixtureFormat {
    /// A list of mappings, one per row (the default).
    Dict,
    /// CSV text with a header line.
    Csv,
    /// A `select` giving the rows, every column named.
    Sql,
}

impl FixtureFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            FixtureFormat::Dict => "dict",
            FixtureFormat::Csv => "csv",
            FixtureFormat::Sql => "sql",
        }
    }
}

/// Where a fixture's rows are.
#[derive(Debug, Clone)]
pub enum FixtureRows {
    /// `rows:`: a list of mappings (dict) or a text (csv, sql).
    Inline(Json),
    /// `fixture: name`: a file `name.csv` or `name.sql` under a test path's `fixtures/`.
    File(String),
    /// Neither, on an input that is a seed: the seed file's rows.
    FromSeed,
}

/// One `given:` input, or the `expect:` output (no input).
#[derive(Debug, Clone)]
pub struct FixtureDef {
    /// `ref('x')`, `source('a', 'b')` or `this`; None for `expect`.
    pub input: Option<String>,
    pub format: FixtureFormat,
    pub rows: FixtureRows,
    pub line: usize,
}

/// `overrides:`: what macros, vars and environment variables give while the
/// tested model renders.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub macros: Map<String, Json>,
    pub vars: Map<String, Json>,
    pub env_vars: Map<String, Json>,
}

impl Overrides {
    pub fn is_empty(&self) -> bool {
        self.macros.is_empty() && self.vars.is_empty() && self.env_vars.is_empty()
    }

    pub fn to_json(&self) -> Json {
        serde_json::json!({
            "macros": self.macros,
            "vars": self.vars,
            "env_vars": self.env_vars,
        })
    }
}

struct Reader<'a> {
    path: &'a str,
    text: &'a Arc<str>,
    finder: EntryFinder<'a>,
}

impl Reader<'_> {
    fn problem(&self, line: usize, msg: String, help: &str) -> Problem {
        Problem::new(Code::YamlUnitTest, msg)
            .in_file(self.path, self.text.clone())
            .label_line(line, "here")
            .help(help.to_string())
    }

    /// The first line at or after `from` whose key is `key`.
    fn key_line(&self, from: usize, key: &str) -> usize {
        let lines = self.finder.lines();
        let start = from.saturating_sub(1).min(lines.len());
        lines[start..]
            .iter()
            .position(|l| super::yaml::is_key_line(l, key))
            .map_or(from, |i| start + i + 1)
    }

    fn only_keys(
        &self,
        m: &Map<String, Json>,
        known: &[&str],
        what: &str,
        line: usize,
    ) -> Result<(), Problem> {
        match m.keys().find(|k| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some(k) => Err(self.problem(
                self.key_line(line, k),
                format!("{what} has an unknown key `{k}`"),
                &format!("the keys of {what} are: {}", known.join(", ")),
            )),
        }
    }

    fn mapping(
        &self,
        m: &Map<String, Json>,
        key: &str,
        what: &str,
        line: usize,
    ) -> Result<Map<String, Json>, Problem> {
        match m.get(key) {
            None | Some(Json::Null) => Ok(Map::new()),
            Some(Json::Object(o)) => Ok(o.clone()),
            Some(_) => Err(self.problem(
                self.key_line(line, key),
                format!("`{key}:` of {what} must be a mapping"),
                &format!("write `{key}:` followed by indented `name: value` lines"),
            )),
        }
    }

    fn unit_test(&self, m: &Map<String, Json>, from: usize) -> Result<UnitTestDef, Problem> {
        let name = m.get("name").and_then(as_string).unwrap_or_default();
        let line = self.finder.find(from, "name", &name).unwrap_or(from);
        let what = format!("unit test `{name}`");
        self.only_keys(
            m,
            &[
                "name",
                "model",
                "description",
                "given",
                "expect",
                "overrides",
                "config",
                "versions",
            ],
            &what,
            line,
        )?;
        let Some(model) = m.get("model").and_then(as_string) else {
            return Err(self.problem(
                line,
                format!("{what} names no `model:`"),
                "add `model: <the model it tests>`",
            ));
        };
        let given = match m.get("given") {
            Some(Json::Array(items)) => {
                let mut at = line;
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let fixture = self.fixture(item, true, &what, at)?;
                    at = fixture.line + 1;
                    out.push(fixture);
                }
                out
            }
            None | Some(Json::Null) => {
                return Err(self.problem(
                    line,
                    format!("{what} has no `given:`"),
                    "list the model's inputs under `given:` (`given: []` when it reads none)",
                ))
            }
            Some(_) => {
                return Err(self.problem(
                    self.key_line(line, "given"),
                    format!("`given:` of {what} must be a list of inputs"),
                    "write each input as `- input: ref('model')` followed by its `rows:`",
                ))
            }
        };
        let expect_line = self.key_line(line, "expect");
        let expect = match m.get("expect") {
            Some(e @ Json::Object(_)) => self.fixture(e, false, &what, expect_line)?,
            _ => {
                return Err(self.problem(
                    line,
                    format!("{what} has no `expect:` mapping"),
                    "add `expect:` with the `rows:` the model should give",
                ))
            }
        };
        let overrides_map = self.mapping(m, "overrides", &what, line)?;
        let overrides_line = self.key_line(line, "overrides");
        self.only_keys(
            &overrides_map,
            &["macros", "vars", "env_vars"],
            &format!("`overrides:` of {what}"),
            overrides_line,
        )?;
        let overrides = Overrides {
            macros: self.mapping(&overrides_map, "macros", &what, overrides_line)?,
            vars: self.mapping(&overrides_map, "vars", &what, overrides_line)?,
            env_vars: self.mapping(&overrides_map, "env_vars", &what, overrides_line)?,
        };
        Ok(UnitTestDef {
            model,
            description: m.get("description").and_then(as_string).unwrap_or_default(),
            given,
            expect,
            overrides,
            config: config::from_json(m.get("config")),
            versions: m.get("versions").filter(|v| !v.is_null()).cloned(),
            line,
            name,
        })
    }

    /// One input (`is_input`) or the expected output, found at or after `from`.
    fn fixture(
        &self,
        item: &Json,
        is_input: bool,
        what: &str,
        from: usize,
    ) -> Result<FixtureDef, Problem> {
        let Json::Object(m) = item else {
            return Err(self.problem(
                from,
                format!("an input of {what} is not a mapping"),
                "write each input as `- input: ref('model')` followed by its `rows:`",
            ));
        };
        let (input, line) = if is_input {
            let Some(input) = m.get("input").and_then(as_string) else {
                return Err(self.problem(
                    from,
                    format!("an input of {what} has no `input:`"),
                    "name what the rows stand for: `input: ref('model')`, `input: source('src', 'table')` or `input: this`",
                ));
            };
            let line = self.key_line(from, "input");
            (Some(input), line)
        } else {
            (None, from)
        };
        let part = match &input {
            Some(i) => format!("input {i} of {what}"),
            None => format!("`expect:` of {what}"),
        };
        let known: &[&str] = if is_input {
            &["input", "rows", "format", "fixture"]
        } else {
            &["rows", "format", "fixture"]
        };
        self.only_keys(m, known, &part, line)?;
        let format = match m.get("format").and_then(Json::as_str) {
            None | Some("dict") => FixtureFormat::Dict,
            Some("csv") => FixtureFormat::Csv,
            Some("sql") => FixtureFormat::Sql,
            Some(other) => {
                return Err(self.problem(
                    self.key_line(line, "format"),
                    format!("{part} has format `{other}`"),
                    "a fixture's format is dict (the default), csv or sql",
                ))
            }
        };
        let rows = match (m.get("rows"), m.get("fixture").and_then(as_string)) {
            (Some(_), Some(_)) => {
                return Err(self.problem(
                    line,
                    format!("{part} has both `rows:` and `fixture:`"),
                    "keep one: inline `rows:` or a `fixture:` file",
                ))
            }
            (None, Some(file)) if format == FixtureFormat::Dict => {
                return Err(self.problem(
                    self.key_line(line, "fixture"),
                    format!("{part} names fixture `{file}` without a format"),
                    "fixture files are CSV or SQL: add `format: csv` or `format: sql`",
                ))
            }
            (None, Some(file)) => FixtureRows::File(file),
            (Some(rows), None) => {
                let fits = match format {
                    FixtureFormat::Dict => {
                        rows.as_array()
                            .is_some_and(|a| a.iter().all(|r| r.is_object() || r.is_null()))
                            || rows.is_null()
                    }
                    FixtureFormat::Csv | FixtureFormat::Sql => rows.is_string(),
                };
                if !fits {
                    let help = match format {
                        FixtureFormat::Dict => {
                            "write the rows as a list of mappings: `- {id: 1, name: a}`"
                        }
                        _ => "write the rows as text after `rows: |`",
                    };
                    return Err(self.problem(
                        self.key_line(line, "rows"),
                        format!("the rows of {part} do not match format {}", format.as_str()),
                        help,
                    ));
                }
                FixtureRows::Inline(match rows {
                    Json::Null => Json::Array(Vec::new()),
                    r => r.clone(),
                })
            }
            (None, None) if is_input && format == FixtureFormat::Dict => FixtureRows::FromSeed,
            (None, None) => {
                return Err(self.problem(
                    line,
                    format!("{part} has no `rows:`"),
                    "give the rows (`rows: []` for none), or a `fixture:` file",
                ))
            }
        };
        Ok(FixtureDef {
            input,
            format,
            rows,
            line,
        })
    }
}

/// The unit tests of a properties file's `unit_tests:` section.
pub fn parse(
    path: &str,
    text: &Arc<str>,
    doc: &Map<String, Json>,
) -> Result<Vec<UnitTestDef>, Problem> {
    let reader = Reader {
        path,
        text,
        finder: EntryFinder::new(text),
    };
    let section = super::yaml::line_of_key(text, "unit_tests").unwrap_or(1);
    let items =
        match doc.get("unit_tests") {
            None | Some(Json::Null) => return Ok(Vec::new()),
            Some(Json::Array(items)) => items,
            Some(_) => return Err(reader.problem(
                section,
                format!("`unit_tests:` in {path} must be a list"),
                "write each unit test as `- name: <test name>` followed by model, given and expect",
            )),
        };
    let mut out: Vec<UnitTestDef> = Vec::with_capacity(items.len());
    let mut from = section;
    for item in items {
        let Some(m) = item
            .as_object()
            .filter(|m| m.get("name").and_then(as_string).is_some())
        else {
            return Err(reader.problem(
                from,
                format!("every entry under `unit_tests:` in {path} needs a `name:`"),
                "write each unit test as `- name: <test name>` followed by model, given and expect",
            ));
        };
        let def = reader.unit_test(m, from)?;
        from = def.line + 1;
        out.push(def);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(t: &str) -> Result<Vec<UnitTestDef>, Problem> {
        let text: Arc<str> = Arc::from(t);
        let doc = super::super::yaml::parse("m.yml", &text).unwrap();
        parse("m.yml", &text, doc.as_object().unwrap())
    }

    #[test]
    fn reads_inputs_expectations_and_overrides() {
        let tests = parse_text(
            "unit_tests:\n  - name: t\n    model: m\n    given:\n      - input: ref('a')\n        rows:\n          - {id: 1}\n      - input: source('s', 'b')\n        format: csv\n        rows: |\n          id\n          2\n      - input: ref('seed')\n    expect:\n      format: sql\n      rows: select 1 as id\n    overrides:\n      macros: {is_incremental: true}\n      vars: {x: 1}\n",
        )
        .unwrap();
        let t = &tests[0];
        assert_eq!((t.name.as_str(), t.model.as_str(), t.line), ("t", "m", 2));
        assert_eq!(t.given.len(), 3);
        assert_eq!(t.given[1].line, 8);
        assert_eq!(t.given[1].format, FixtureFormat::Csv);
        assert!(matches!(t.given[2].rows, FixtureRows::FromSeed));
        assert_eq!(t.expect.format, FixtureFormat::Sql);
        assert_eq!(t.overrides.macros["is_incremental"], Json::Bool(true));
    }

    #[test]
    fn unsupported_forms_are_errors_at_their_line() {
        let e = parse_text("unit_tests:\n  - name: t\n    model: m\n    given: []\n    expect:\n      format: parquet\n      rows: x\n")
            .unwrap_err();
        assert!(e.message.contains("format `parquet`"), "{}", e.message);
        assert_eq!(e.location().map(|l| l.0), Some(6));
        let e = parse_text("unit_tests:\n  - name: t\n    model: m\n    given: []\n    expect: {rows: []}\n    mocks: {}\n")
            .unwrap_err();
        assert!(e.message.contains("unknown key `mocks`"), "{}", e.message);
        let e = parse_text("unit_tests:\n  - name: t\n    model: m\n    given:\n      - input: ref('a')\n        format: csv\n        rows: [{id: 1}]\n    expect: {rows: []}\n")
            .unwrap_err();
        assert!(
            e.message.contains("do not match format csv"),
            "{}",
            e.message
        );
        let e = parse_text("unit_tests:\n  - name: t\n    model: m\n    given: []\n").unwrap_err();
        assert!(e.message.contains("no `expect:`"), "{}", e.message);
    }
}
