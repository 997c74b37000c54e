//! Unit tests (dbt 1.8's `unit_tests:`): one node per test, whose SQL is the
//! tested model's template rendered with each `given:` input as a CTE and
//! the test's `overrides:`. Fixture rows are read here (inline, CSV, files
//! under `tests/fixtures/`, a seed's file); they are turned into SQL at run
//! time, when the warehouse gives the inputs' column types.

use crate::compile::nodes::{new_node, yml_folders};
use crate::compile::{Draft, FolderConfigs, Template};
use crate::error::{Code, Problem, Problems, Result};
use crate::loader::unit_tests::{FixtureDef, FixtureFormat, FixtureRows, UnitTestDef};
use crate::loader::{config, FileKind, Project, SourceText};
use crate::manifest::{
    FixtureData, Materialization, Node, ResourceType, UnitTestInfo, UnitTestInput,
};
use crate::text::sha256_hex;
use serde_json::{Map, Value as Json};
use std::collections::HashMap;
use std::sync::Arc;

/// How a unit test's node renders: the tested model's template, with the
/// inputs' CTEs and the overrides.
#[derive(Debug)]
pub(super) struct UnitTestTemplate {
    /// The tested model's template and path.
    pub(super) text: Arc<str>,
    pub(super) model_path: String,
    /// The model file's text as written (`text` is the template prepared from it).
    pub(super) model_file_text: Arc<str>,
    /// The tested model's unique id.
    pub(super) model: String,
    /// (unique id of the node an input stands for, its CTE name).
    pub(super) inputs: Vec<(String, String)>,
    /// The CTE `this` names, when `this` is an input.
    pub(super) this_cte: Option<String>,
    pub(super) overrides: crate::loader::unit_tests::Overrides,
}

/// An input as written: `ref(...)`, `source(...)` or `this`.
#[derive(Debug, PartialEq)]
enum Input {
    Ref {
        package: Option<String>,
        name: String,
        version: Option<String>,
    },
    Source(String, String),
    This,
}

/// Parses `ref('a')`, `ref('pkg', 'a', v=2)`, `source('s', 't')` or `this`.
fn parse_input(text: &str) -> Option<Input> {
    let t = text.trim();
    if t == "this" {
        return Some(Input::This);
    }
    let (func, rest) = t.split_once('(')?;
    let args = rest.trim_end().strip_suffix(')')?;
    let mut strings = Vec::new();
    let mut version = None;
    for arg in split_args(args)? {
        match arg.split_once('=') {
            Some((k, v)) if matches!(k.trim(), "v" | "version") => {
                let v = v.trim();
                version = Some(unquote(v).unwrap_or(v).to_string());
            }
            _ => strings.push(unquote(arg.trim())?.to_string()),
        }
    }
    match (func.trim(), strings.as_slice()) {
        ("ref", [name]) => Some(Input::Ref {
            package: None,
            name: name.clone(),
            version,
        }),
        ("ref", [package, name]) => Some(Input::Ref {
            package: Some(package.clone()),
            name: name.clone(),
            version,
        }),
        ("source", [s, t]) if version.is_none() => Some(Input::Source(s.clone(), t.clone())),
        _ => None,
    }
}

/// Arguments split at the commas outside quotes.
fn split_args(args: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let mut quote: Option<char> = None;
    let mut start = 0;
    for (i, c) in args.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ',') => {
                out.push(&args[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quote.is_some() {
        return None;
    }
    if !args[start..].trim().is_empty() {
        out.push(&args[start..]);
    }
    Some(out)
}

fn unquote(s: &str) -> Option<&str> {
    let s = s.trim();
    ['\'', '"']
        .into_iter()
        .find_map(|q| s.strip_prefix(q).and_then(|r| r.strip_suffix(q)))
}

/// What a unit test's definition needs of the compile's drafts.
struct Lookup<'a> {
    drafts: &'a [Draft],
    root: &'a Project,
}

impl Lookup<'_> {
    /// The draft `package` (or, unnamed, the test's own package, then the
    /// root project, then the only one) means among `matching` drafts.
    fn pick(
        &self,
        own: &str,
        package: Option<&str>,
        matching: impl Fn(&Node) -> bool,
    ) -> Option<usize> {
        let found: Vec<usize> = self
            .drafts
            .iter()
            .enumerate()
            .filter(|(_, d)| matching(&d.node))
            .map(|(i, _)| i)
            .collect();
        let in_package = |p: &str| {
            found
                .iter()
                .copied()
                .find(|&i| self.drafts[i].node.package_name == p)
        };
        match package {
            Some(p) => in_package(p),
            None => in_package(own)
                .or_else(|| in_package(&self.root.name))
                .or_else(|| (found.len() == 1).then(|| found[0])),
        }
    }

    fn model(&self, own: &str, name: &str) -> Option<usize> {
        self.pick(own, None, |n| {
            n.resource_type == ResourceType::Model && n.name == name
        })
    }

    fn input(&self, own: &str, input: &Input, model: usize) -> Option<usize> {
        match input {
            Input::This => Some(model),
            Input::Ref { package, name, .. } => self.pick(own, package.as_deref(), |n| {
                n.resource_type.is_refable() && n.name == *name
            }),
            Input::Source(source, table) => self.pick(own, None, |n| {
                n.source.as_ref().is_some_and(|s| s.source_name == *source) && n.name == *table
            }),
        }
    }
}

/// One project's (root or package) unit tests as drafts.
pub(super) fn unit_test_drafts(
    root: &Project,
    unit: &Project,
    drafts: &[Draft],
    problems: &mut Problems,
) -> Vec<Draft> {
    let lookup = Lookup { drafts, root };
    let folder_configs = FolderConfigs::new(unit, root);
    let mut out = Vec::new();
    let mut seen: HashMap<String, (String, usize)> = HashMap::new();
    for props in &unit.properties {
        for def in &props.unit_tests {
            let at = |line: usize, code: Code, msg: String, help: String| {
                Problem::new(code, msg)
                    .in_file(&props.path, props.text.clone())
                    .label_line(line, "here")
                    .help(help)
            };
            match unit_test_draft(&lookup, unit, props, def, &folder_configs) {
                Ok(d) => {
                    if let Some((path, line)) = seen.get(&d.node.unique_id) {
                        problems.push(at(
                            def.line,
                            Code::ProjectDuplicateUnitTest,
                            format!(
                                "unit test `{}` of model `{}` is declared twice",
                                def.name, def.model
                            ),
                            format!("the first is in {path} line {line}; rename one"),
                        ));
                        continue;
                    }
                    seen.insert(d.node.unique_id.clone(), (props.path.clone(), def.line));
                    out.push(d);
                }
                Err((line, code, msg, help)) => problems.push(at(line, code, msg, help)),
            }
        }
    }
    out
}

/// A problem in a unit test's definition: line, code, message, help.
type DefProblem = (usize, Code, String, String);

fn unit_test_draft(
    lookup: &Lookup,
    unit: &Project,
    props: &crate::loader::properties::PropertiesFile,
    def: &UnitTestDef,
    folder_configs: &FolderConfigs,
) -> Result<Draft, DefProblem> {
    let what = format!("unit test `{}`", def.name);
    let model_name = def.model.split_whitespace().next().unwrap_or_default();
    let Some(model) = lookup.model(&unit.name, model_name) else {
        let names = lookup
            .drafts
            .iter()
            .filter(|d| d.node.resource_type == ResourceType::Model)
            .map(|d| d.node.name.as_str());
        return Err((
            def.line,
            Code::UnitTestUnknownModel,
            format!("{what} tests model `{}`, which does not exist", def.model),
            crate::error::did_you_mean(
                &crate::error::closest(model_name, names),
                "name a model of this project under `model:`",
            ),
        ));
    };
    check_versions(def, &what)?;
    let model_node = &lookup.drafts[model].node;
    let Template::File(text) = &lookup.drafts[model].template else {
        return Err((
            def.line,
            Code::UnitTestModel,
            format!("{what}: model `{}` has no SQL to test", def.model),
            "unit tests test SQL models".into(),
        ));
    };
    let Given {
        given,
        inputs,
        this_cte,
    } = given_inputs(lookup, unit, def, model, &what)?;
    let expect = fixture_rows(unit, &def.expect, None, &what)?;
    let mut fqn = vec![unit.name.clone()];
    fqn.extend(yml_folders(unit, &props.path));
    fqn.push(model_name.to_string());
    fqn.push(def.name.clone());
    let mut cfg = folder_configs.get(FileKind::UnitTest, &fqn);
    if !def.config.is_empty() {
        config::merge(Arc::make_mut(&mut cfg), &def.config);
    }
    if !config::enabled(&model_node.config) {
        Arc::make_mut(&mut cfg).insert("enabled".into(), Json::Bool(false));
    }
    let file = SourceText {
        kind: FileKind::UnitTest,
        path: props.path.clone(),
        resource_path: props.path.clone(),
        text: Arc::from(""),
    };
    let mut node = new_node(
        ResourceType::UnitTest,
        unit,
        def.name.clone(),
        &file,
        fqn,
        cfg,
    );
    node.unique_id = format!("unit_test.{}.{model_name}.{}", unit.name, def.name);
    node.line = def.line;
    node.description = def.description.clone();
    node.patch_path = Some(props.path.clone());
    node.checksum = sha256_hex(&format!("{def:?}"));
    node.unit_test = Some(Box::new(UnitTestInfo {
        model: model_node.unique_id.clone(),
        given,
        expect,
        expect_format: def.expect.format.as_str(),
        overrides: def.overrides.to_json(),
    }));
    Ok(Draft {
        node: Box::new(node),
        template: Template::UnitTest(Arc::new(UnitTestTemplate {
            text: text.clone(),
            model_path: model_node.original_file_path.clone(),
            model_file_text: model_node.raw_code.clone(),
            model: model_node.unique_id.clone(),
            inputs,
            this_cte,
            overrides: def.overrides.clone(),
        })),
    })
}

/// A unit test's `given:` rows, each with the CTE that stands for its
/// relation.
struct Given {
    given: Vec<UnitTestInput>,
    /// The inputs other than `this`: node id and CTE.
    inputs: Vec<(String, String)>,
    this_cte: Option<String>,
}

fn given_inputs(
    lookup: &Lookup,
    unit: &Project,
    def: &UnitTestDef,
    model: usize,
    what: &str,
) -> Result<Given, DefProblem> {
    let mut given = Vec::with_capacity(def.given.len());
    let mut inputs = Vec::new();
    let mut this_cte = None;
    for g in &def.given {
        let (input, node) = resolve_input(lookup, unit, g, model, what)?;
        let target = &lookup.drafts[node].node;
        let cte = match &input {
            Input::Source(s, t) => format!("__dbt__cte__{s}__{t}"),
            _ => format!("__dbt__cte__{}", target.name),
        };
        if given
            .iter()
            .any(|x: &UnitTestInput| x.node == target.unique_id)
        {
            return Err((
                g.line,
                Code::UnitTestDuplicateInput,
                format!(
                    "{what} gives rows for {} twice",
                    g.input.as_deref().unwrap_or_default()
                ),
                "keep one `- input:` entry per relation".into(),
            ));
        }
        let rows = fixture_rows(unit, g, Some(target), what)?;
        if input == Input::This {
            this_cte = Some(cte.clone());
        } else {
            inputs.push((target.unique_id.clone(), cte.clone()));
        }
        given.push(UnitTestInput {
            input: g.input.clone().unwrap_or_default(),
            node: target.unique_id.clone(),
            cte,
            rows,
            format: g.format.as_str(),
        });
    }
    Ok(Given {
        given,
        inputs,
        this_cte,
    })
}

/// pm has no versioned models: `versions:` that include or exclude some is
/// an error, as dbt's for a model that is not versioned.
fn check_versions(def: &UnitTestDef, what: &str) -> Result<(), DefProblem> {
    let names_some = |key: &str| {
        def.versions
            .as_ref()
            .and_then(|v| v.get(key))
            .is_some_and(|l| !l.is_null() && l.as_array().is_none_or(|a| !a.is_empty()))
    };
    if def.model.split_whitespace().nth(1).is_some()
        || names_some("include")
        || names_some("exclude")
    {
        return Err((
            def.line,
            Code::UnitTestVersions,
            format!("{what} names versions of model `{}`, which is not versioned", def.model),
            "pm does not support model versions: remove `versions:` (and any version after the model's name)".into(),
        ));
    }
    Ok(())
}

/// The node an input stands for.
fn resolve_input(
    lookup: &Lookup,
    unit: &Project,
    g: &FixtureDef,
    model: usize,
    what: &str,
) -> Result<(Input, usize), DefProblem> {
    let written = g.input.as_deref().unwrap_or_default();
    let Some(input) = parse_input(written) else {
        return Err((
            g.line,
            Code::UnitTestInput,
            format!("input `{written}` of {what} is not a ref(), a source() or `this`"),
            "write `input: ref('model')`, `input: source('source', 'table')` or `input: this`"
                .into(),
        ));
    };
    if let Input::Ref {
        version: Some(v), ..
    } = &input
    {
        return Err((
            g.line,
            Code::UnitTestVersions,
            format!("input `{written}` of {what} names version {v}"),
            "pm does not support model versions: refer to the model without a version".into(),
        ));
    }
    match lookup.input(&unit.name, &input, model) {
        Some(node) => Ok((input, node)),
        None => Err((
            g.line,
            Code::UnitTestUnknownInput,
            format!("input `{written}` of {what} names no model, seed, snapshot or source of the project"),
            "check the spelling: the input is written as the model writes the ref() or source()".into(),
        )),
    }
}

/// A fixture's rows, read: dict rows as written, CSV parsed (an empty value
/// is null), SQL as text; from a fixture file or a seed's file when named so.
fn fixture_rows(
    unit: &Project,
    f: &FixtureDef,
    input: Option<&Node>,
    what: &str,
) -> Result<FixtureData, DefProblem> {
    let part = match &f.input {
        Some(i) => format!("input {i} of {what}"),
        None => format!("`expect:` of {what}"),
    };
    let text = match &f.rows {
        FixtureRows::Inline(Json::Array(rows)) => {
            return Ok(FixtureData::Rows(
                rows.iter().filter_map(|r| r.as_object().cloned()).collect(),
            ))
        }
        FixtureRows::Inline(Json::String(text)) => Arc::from(text.as_str()),
        FixtureRows::Inline(_) => Arc::from(""),
        FixtureRows::File(name) => fixture_file(unit, name, f, &part)?,
        FixtureRows::FromSeed => seed_text(input, f, &part)?,
    };
    match f.format {
        FixtureFormat::Sql => Ok(FixtureData::Sql(text.to_string())),
        FixtureFormat::Csv | FixtureFormat::Dict => {
            csv_rows(&text).map(FixtureData::Rows).map_err(|e| {
                (
                    f.line,
                    Code::UnitTestCsv,
                    format!("the CSV rows of {part} cannot be read: {e}"),
                    "write a header line, then one line per row, each with as many values".into(),
                )
            })
        }
    }
}

/// The text of fixture file `name` (`.csv` or `.sql`, as the format says).
fn fixture_file(
    unit: &Project,
    name: &str,
    f: &FixtureDef,
    part: &str,
) -> Result<Arc<str>, DefProblem> {
    let ext = f.format.as_str();
    let fixtures: Vec<&SourceText> = unit
        .files
        .iter()
        .filter(|s| s.kind == FileKind::Fixture)
        .collect();
    if let Some(file) = fixtures
        .iter()
        .find(|s| s.stem() == name && s.path.ends_with(&format!(".{ext}")))
    {
        return Ok(file.text.clone());
    }
    let names = fixtures.iter().map(|s| s.stem());
    Err((
        f.line,
        Code::UnitTestFixtureFile,
        format!("{part} names fixture `{name}`, but there is no {name}.{ext} under a test path's fixtures/ folder"),
        crate::error::did_you_mean(
            &crate::error::closest(name, names),
            &format!("put the rows in tests/fixtures/{name}.{ext}"),
        ),
    ))
}

/// The CSV text of the seed an input without rows stands for.
fn seed_text(input: Option<&Node>, f: &FixtureDef, part: &str) -> Result<Arc<str>, DefProblem> {
    match input {
        Some(n) if n.resource_type == ResourceType::Seed && !n.raw_code.is_empty() => {
            Ok(n.raw_code.clone())
        }
        Some(n) if n.resource_type == ResourceType::Seed => Err((
            f.line,
            Code::UnitTestSeedRows,
            format!(
                "{part} has no rows, and seed `{}` is too large to read as rows",
                n.name
            ),
            "give the rows the test needs under `rows:`".into(),
        )),
        _ => Err((
            f.line,
            Code::UnitTestNoRows,
            format!("{part} has no `rows:`"),
            "give the rows (`rows: []` for none); only a seed's rows can be left out".into(),
        )),
    }
}

/// CSV text as rows: the header names the columns; an empty value is null.
fn csv_rows(text: &str) -> std::result::Result<Vec<Map<String, Json>>, csv::Error> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.trim().as_bytes());
    let headers = reader.headers()?.clone();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record?;
        rows.push(
            headers
                .iter()
                .zip(record.iter())
                .map(|(h, v)| {
                    let value = if v.is_empty() {
                        Json::Null
                    } else {
                        Json::from(v)
                    };
                    (h.to_string(), value)
                })
                .collect(),
        );
    }
    Ok(rows)
}

/// Checks that need every node's final materialization: what dbt refuses
/// when it parses unit tests.
pub(super) fn check(project: &Project, drafts: &[Draft], problems: &mut Problems) {
    let index: HashMap<&str, usize> = drafts
        .iter()
        .enumerate()
        .map(|(i, d)| (d.node.unique_id.as_str(), i))
        .collect();
    for d in drafts {
        let (Some(info), Template::UnitTest(t)) = (&d.node.unit_test, &d.template) else {
            continue;
        };
        let Some(&m) = index.get(info.model.as_str()) else {
            continue;
        };
        let model = &drafts[m].node;
        let problem = |msg: String, help: &str| {
            Problem::new(Code::UnitTestModel, msg)
                .in_file(
                    &d.node.original_file_path,
                    project.text_of(&d.node.original_file_path),
                )
                .label_line(d.node.line, "this unit test")
                .help(help.to_string())
        };
        let incremental = t.overrides.macros.get("is_incremental");
        match model.materialized {
            Some(Materialization::Ephemeral) => problems.push(problem(
                format!("unit test `{}` tests ephemeral model `{}`", d.node.name, model.name),
                "unit tests test models that are built: test the models that read it, giving its rows as their input",
            )),
            Some(Materialization::Incremental) if !incremental.is_some_and(Json::is_boolean) => {
                problems.push(problem(
                    format!(
                        "unit test `{}` tests incremental model `{}`, but does not say whether is_incremental() is true",
                        d.node.name, model.name
                    ),
                    "add `overrides: {macros: {is_incremental: true}}` (with a `this` input: the rows already there) or `false`",
                ))
            }
            Some(Materialization::Incremental)
                if incremental == Some(&Json::Bool(true)) && t.this_cte.is_none() =>
            {
                problems.push(problem(
                    format!(
                        "unit test `{}` of incremental model `{}` overrides is_incremental to true without a `this` input",
                        d.node.name, model.name
                    ),
                    "add `- input: this` under `given:` with the rows the model's table holds already",
                ))
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_parse_as_written() {
        assert_eq!(
            parse_input("ref('stg_users')"),
            Some(Input::Ref {
                package: None,
                name: "stg_users".into(),
                version: None
            })
        );
        assert_eq!(
            parse_input(" ref(\"pkg\", 'm', v=2) "),
            Some(Input::Ref {
                package: Some("pkg".into()),
                name: "m".into(),
                version: Some("2".into())
            })
        );
        assert_eq!(
            parse_input("source('raw', 'a, b')"),
            Some(Input::Source("raw".into(), "a, b".into()))
        );
        assert_eq!(parse_input("this"), Some(Input::This));
        assert_eq!(parse_input("ref(x)"), None);
        assert_eq!(parse_input("model('x')"), None);
    }

    #[test]
    fn csv_rows_have_nulls_for_empty_values() {
        let rows = csv_rows("id, name\n1, a\n2,\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["name"], Json::from("a"));
        assert_eq!(rows[1]["name"], Json::Null);
    }
}
