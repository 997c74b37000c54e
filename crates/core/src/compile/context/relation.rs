//! Relations in templates: `ref()`, `source()`, `this`, and the relation objects they return (placeholders until every relation is resolved).

use crate::compile::context::{
    current_node, fail, unit_test, with_state, PLACEHOLDER_END, PLACEHOLDER_START, READS_NO_ROWS,
};
use crate::compile::{ResolvedRelation, Shared};
use crate::error::Code;
use crate::manifest::{Materialization, RefCall};
use crate::text::quote_ident;
use minijinja::value::{Kwargs, Object, ObjectRepr, Value};
use minijinja::{Error, ErrorKind, State};
use std::fmt;
use std::sync::Arc;

/// A relation as templates see it (`ref()`, `source()`, `this`).
#[derive(Debug)]
pub struct Relation {
    pub(super) shared: Arc<Shared>,
    pub(super) target: usize,
    /// Which parts to render: 4 database, 2 schema, 1 identifier.
    pub(super) parts: u8,
}

impl Relation {
    pub(super) fn rel(&self) -> ResolvedRelation {
        match self.shared.resolved.get() {
            Some(r) => r[self.target].clone(),
            None => {
                with_state(|s| s.needs_rerender = true);
                self.shared.metas[self.target].provisional.clone()
            }
        }
    }
}

/// `{key: value, …}` as a template mapping.
pub(super) fn mapping<const N: usize>(items: [(&str, Value); N]) -> Value {
    Value::from(
        items
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<std::collections::BTreeMap<String, Value>>(),
    )
}

/// What dbt's relations say they are (`_is_relation` in dbt_utils checks it).
fn metadata() -> Value {
    mapping([("type", Value::from("PostgresRelation"))])
}

/// Python's `mapping.get(key, default)` over an object's values.
fn mapping_get(value_of: impl Fn(&Value) -> Option<Value>, args: &[Value]) -> Result<Value, Error> {
    let (key, default): (Value, Option<Value>) = minijinja::value::from_args(args)?;
    Ok(value_of(&key).or(default).unwrap_or(Value::from(())))
}

/// The keys a relation has as a mapping (dbt's relations are mappings:
/// packages test `obj is mapping and obj.get('metadata')...`).
const RELATION_KEYS: &[&str] = &[
    "path",
    "type",
    "quote_policy",
    "include_policy",
    "quote_character",
    "metadata",
];

impl Object for Relation {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Str(RELATION_KEYS)
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        let rel = self.rel();
        let flags = |d: bool, s: bool, i: bool| {
            mapping([
                ("database", Value::from(d)),
                ("schema", Value::from(s)),
                ("identifier", Value::from(i)),
            ])
        };
        Some(match key {
            "path" => mapping([
                ("database", Value::from(rel.database.clone())),
                ("schema", Value::from(rel.schema.clone())),
                ("identifier", Value::from(rel.identifier.clone())),
            ]),
            "metadata" => metadata(),
            "quote_policy" => flags(true, true, true),
            "include_policy" => flags(
                self.parts & 4 != 0,
                self.parts & 2 != 0,
                self.parts & 1 != 0,
            ),
            "quote_character" => Value::from("\""),
            "database" => Value::from(rel.database),
            "schema" => Value::from(rel.schema),
            "identifier" | "name" | "table" | "alias" => Value::from(rel.identifier),
            "type" => Value::from(rel.materialized.relation_type()),
            "is_table" => Value::from(rel.materialized.relation_type() == "table"),
            "is_view" => Value::from(rel.materialized == Materialization::View),
            "is_cte" => Value::from(rel.ephemeral()),
            "is_materialized_view" => {
                Value::from(rel.materialized == Materialization::MaterializedView)
            }
            "unique_id" => Value::from(self.shared.metas[self.target].unique_id.clone()),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "render" => Ok(Value::from(
                Value::from_dyn_object(self.clone()).to_string(),
            )),
            "include" => {
                let (_, kwargs): (&[Value], Kwargs) = minijinja::value::from_args(args)?;
                let mut parts = self.parts;
                for (bit, key) in [(4u8, "database"), (2, "schema"), (1, "identifier")] {
                    if let Some(on) = kwargs.get::<Option<bool>>(key)? {
                        if on {
                            parts |= bit
                        } else {
                            parts &= !bit
                        }
                    }
                }
                Ok(Value::from_object(Relation {
                    shared: self.shared.clone(),
                    target: self.target,
                    parts,
                }))
            }
            "quote" | "incorporate" | "without_identifier" => {
                Ok(Value::from_dyn_object(self.clone()))
            }
            "information_schema" => {
                information_schema(self.get_value(&Value::from("database")), args)
            }
            "get" => mapping_get(|k| self.get_value(k), args),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("relations have no method `{method}`"),
            )),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.shared.resolved.get() {
            Some(r) => f.write_str(&r[self.target].render(self.parts)),
            None => write!(
                f,
                "{PLACEHOLDER_START}{}:{}{PLACEHOLDER_END}",
                self.target, self.parts
            ),
        }
    }
}

/// A relation named by its parts (`api.Relation.create(...)`), not a node's.
#[derive(Debug)]
pub struct NamedRelation {
    pub database: Option<String>,
    pub schema: Option<String>,
    pub identifier: Option<String>,
    pub kind: String,
}

impl NamedRelation {
    /// A CTE of the query being rendered (a unit test's fixture): named by
    /// its bare name, as dbt names ephemeral models' CTEs.
    pub fn cte(name: &str) -> Value {
        Value::from_object(NamedRelation {
            database: None,
            schema: None,
            identifier: Some(name.to_string()),
            kind: "cte".into(),
        })
    }
}

impl Object for NamedRelation {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }
    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Str(RELATION_KEYS)
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let text = |v: &Option<String>| v.clone().map_or(Value::from(()), Value::from);
        Some(match key.as_str()? {
            "database" => text(&self.database),
            "schema" => text(&self.schema),
            "identifier" | "name" | "table" => text(&self.identifier),
            "type" => Value::from(self.kind.clone()),
            "is_cte" => Value::from(self.kind == "cte"),
            "metadata" => metadata(),
            _ => return None,
        })
    }
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "render" => Ok(Value::from(
                Value::from_dyn_object(self.clone()).to_string(),
            )),
            "get" => mapping_get(|k| self.get_value(k), args),
            "quote" | "include" | "incorporate" => Ok(Value::from_dyn_object(self.clone())),
            "information_schema" => {
                information_schema(self.get_value(&Value::from("database")), args)
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("relations have no method `{method}`"),
            )),
        }
    }
    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == "cte" {
            return f.write_str(self.identifier.as_deref().unwrap_or_default());
        }
        let parts: Vec<String> = [&self.database, &self.schema, &self.identifier]
            .into_iter()
            .flatten()
            .map(|p| quote_ident(p))
            .collect();
        f.write_str(&parts.join("."))
    }
}

/// `relation.information_schema('columns')`: the view of the relation's
/// database's information schema (`"db".information_schema."columns"`).
fn information_schema(database: Option<Value>, args: &[Value]) -> Result<Value, Error> {
    let (view,): (Option<&str>,) = minijinja::value::from_args(args)?;
    let database = database
        .filter(|d| !d.is_none() && !d.is_undefined())
        .map(|d| format!("{}.", quote_ident(&d.to_string())))
        .unwrap_or_default();
    Ok(Value::from(match view {
        Some(v) => format!("{database}information_schema.{}", quote_ident(v)),
        None => format!("{database}information_schema"),
    }))
}

/// The relation of node `target`, as `ref()` would return it.
pub fn relation_value(shared: &Arc<Shared>, target: usize) -> Value {
    Value::from_object(Relation {
        shared: shared.clone(),
        target,
        parts: 7,
    })
}

/// The parts a `ref()` or `source()` renders: all three, read as no rows under `--empty`.
fn read_parts(shared: &Shared) -> u8 {
    if shared.empty {
        7 | READS_NO_ROWS
    } else {
        7
    }
}

/// Records that the node being rendered depends on node `target`.
pub fn record_dependency(target: usize) {
    with_state(|s| s.depends.push(target));
}

/// `this`: the relation of the node being rendered.
#[derive(Debug)]
pub(super) struct This(pub(super) Arc<Shared>);

impl This {
    pub(super) fn relation(&self) -> Option<Arc<Relation>> {
        current_node().map(|n| {
            Arc::new(Relation {
                shared: self.0.clone(),
                target: n,
                parts: 7,
            })
        })
    }
}

impl Object for This {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }
    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Str(RELATION_KEYS)
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.relation()?.get_value(key)
    }
    fn call_method(
        self: &Arc<Self>,
        state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match self.relation() {
            Some(r) => r.call_method(state, method, args),
            None => Err(Error::new(
                ErrorKind::InvalidOperation,
                "`this` outside a node",
            )),
        }
    }
    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.relation() {
            Some(r) => Object::render(&r, f),
            None => Ok(()),
        }
    }
}

pub(super) fn ref_fn(shared: &Arc<Shared>, args: &[Value]) -> Result<Value, Error> {
    let (pos, kwargs): (&[Value], Kwargs) = minijinja::value::from_args(args)?;
    let version = kwargs
        .get::<Option<Value>>("version")?
        .or(kwargs.get::<Option<Value>>("v")?)
        .map(|v| v.to_string());
    let strs: Vec<String> = pos
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .collect();
    let (package, name) = match strs.as_slice() {
        [name] => (None, name.clone()),
        [pkg, name] => (Some(pkg.clone()), name.clone()),
        _ => {
            return Err(fail(
                Code::CompileRefArgs,
                format!(
                    "ref() takes a model name, or a package and a model name; got {} arguments",
                    strs.len()
                ),
                "write ref('model_name') or ref('package', 'model_name')",
            ))
        }
    };
    if let Some(p) = &package {
        if !shared.package_names.contains(p) {
            let known: Vec<&str> = shared.package_names.iter().map(String::as_str).collect();
            return Err(fail(
                Code::CompileUnknownPackage,
                format!(
                    "ref('{p}', '{name}') names package `{p}`, which is neither this project nor an installed package"
                ),
                crate::error::did_you_mean(
                    &crate::error::closest(p, known.iter().copied()),
                    "declare the package in packages.yml and run `pm deps`",
                ),
            ));
        }
    }
    let candidates = shared.by_name.get(&name).map_or(&[][..], Vec::as_slice);
    let target = match pick(shared, candidates, package.as_deref()) {
        Some(i) => i,
        None if candidates.len() > 1 && package.is_none() => {
            let packages: Vec<String> = candidates
                .iter()
                .map(|&i| format!("ref('{}', '{name}')", shared.metas[i].package_name))
                .collect();
            return Err(fail(
                Code::CompileAmbiguousRef,
                format!("ref('{name}') could mean nodes of several packages"),
                format!("name the package: {}", packages.join(" or ")),
            ));
        }
        None => {
            if shared.disabled.contains(&name) {
                return Err(fail(
                    Code::CompileDisabledRef,
                    format!("ref('{name}') points at a disabled node"),
                    format!("enable `{name}` (enabled: true) or remove this ref"),
                ));
            }
            let suggestions =
                crate::error::closest(&name, shared.by_name.keys().map(String::as_str));
            return Err(fail(
                Code::CompileUnknownRef,
                format!("ref('{name}') names no model, seed or snapshot"),
                crate::error::did_you_mean(
                    &suggestions,
                    "check the spelling, or add the model under a model path",
                ),
            ));
        }
    };
    let call = match &package {
        Some(p) => format!("ref('{p}', '{name}')"),
        None => format!("ref('{name}')"),
    };
    if let Some(fixture) = unit_test::fixture_for(target, &call) {
        return fixture;
    }
    with_state(|s| {
        let call = RefCall {
            name,
            package,
            version,
        };
        if !s.refs.contains(&call) {
            s.refs.push(call);
        }
        s.depends.push(target);
    });
    Ok(Value::from_object(Relation {
        shared: shared.clone(),
        target,
        parts: read_parts(shared),
    }))
}

/// Of the nodes with one name, the one a reference from the node being
/// rendered means: in the named package; else in the node's own package,
/// then in the root project, then the only one (dbt's lookup).
pub(super) fn pick(shared: &Shared, candidates: &[usize], package: Option<&str>) -> Option<usize> {
    let in_package = |p: &str| {
        candidates
            .iter()
            .copied()
            .find(|&i| shared.metas[i].package_name == p)
    };
    if let Some(p) = package {
        return in_package(p);
    }
    let own = current_node().map(|n| shared.metas[n].package_name.as_str());
    own.and_then(in_package)
        .or_else(|| in_package(&shared.project_name))
        .or_else(|| (candidates.len() == 1).then(|| candidates[0]))
}

pub(super) fn source_fn(shared: &Arc<Shared>, source: &str, table: &str) -> Result<Value, Error> {
    let candidates = shared
        .by_source
        .get(&(source.to_string(), table.to_string()))
        .map_or(&[][..], Vec::as_slice);
    let Some(target) = pick(shared, candidates, None) else {
        let want = format!("{source}.{table}");
        let names: Vec<String> = shared
            .by_source
            .keys()
            .map(|(s, t)| format!("{s}.{t}"))
            .collect();
        let suggestions = crate::error::closest(&want, names.iter().map(String::as_str));
        let help = if suggestions.is_empty() {
            "declare it in a YAML file under `sources:` with its `tables:`".to_string()
        } else {
            let s: Vec<String> = suggestions
                .iter()
                .map(|x| {
                    let (a, b) = x.split_once('.').unwrap_or((x, ""));
                    format!("source('{a}', '{b}')")
                })
                .collect();
            format!("did you mean {}?", s.join(", "))
        };
        return Err(fail(
            Code::CompileUnknownSource,
            format!("source('{source}', '{table}') is not declared"),
            help,
        ));
    };
    if let Some(fixture) = unit_test::fixture_for(target, &format!("source('{source}', '{table}')"))
    {
        return fixture;
    }
    with_state(|s| {
        let pair = [source.to_string(), table.to_string()];
        if !s.sources.contains(&pair) {
            s.sources.push(pair);
        }
        s.depends.push(target);
    });
    Ok(Value::from_object(Relation {
        shared: shared.clone(),
        target,
        parts: read_parts(shared),
    }))
}
