//! The Jinja context of dbt: `ref`, `source`, `config`, `var`, `env_var`,
//! `this`, `model`, `target`, `is_incremental`, `return`, `log`,
//! `exceptions`, `adapter`, `run_started_at`, `modules` and project macros.
//!
//! The environment is built once per compilation and shared by all rendering
//! threads. What belongs to the node being rendered (its recorded refs, its
//! `config()` calls, the macro return stack) lives in a thread-local
//! [`RenderState`]: a render runs on one thread from start to end, and a macro
//! called from any template sees the same state.

use crate::loader::config::{self, Config};
use crate::manifest::{quote_ident, Materialization, RefCall, ResourceType};
use minijinja::value::{Kwargs, Object, ObjectRepr, Value};
use minijinja::{Environment, Error, ErrorKind, State};
use serde_json::{Map, Value as Json};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, OnceLock};

/// Where a node's relation lives once its config is known.
#[derive(Debug, Clone, Default)]
pub struct Rel {
    pub database: String,
    pub schema: String,
    pub identifier: String,
    /// A source's relation is read as a table.
    pub materialized: Materialization,
}

impl Rel {
    pub fn ephemeral(&self) -> bool {
        self.materialized == Materialization::Ephemeral
    }

    pub fn render(&self, parts: u8) -> String {
        if self.ephemeral() {
            return format!("__dbt__cte__{}", self.identifier);
        }
        let mut out = Vec::with_capacity(3);
        if parts & 4 != 0 && !self.database.is_empty() {
            out.push(quote_ident(&self.database));
        }
        if parts & 2 != 0 && !self.schema.is_empty() {
            out.push(quote_ident(&self.schema));
        }
        if parts & 1 != 0 {
            out.push(quote_ident(&self.identifier));
        }
        out.join(".")
    }
}

/// What the renderer knows of every node before rendering any.
#[derive(Debug, Clone)]
pub struct NodeMeta {
    pub unique_id: String,
    pub name: String,
    pub resource_type: ResourceType,
    pub fqn: Vec<String>,
    pub original_file_path: String,
    pub path: String,
    /// Project + YAML config (before the file's own `config()`).
    pub config: Arc<Config>,
    /// The relation computed from `config` (may change once `config()` calls are applied).
    pub provisional: Rel,
    pub description: String,
    pub source_name: Option<String>,
}

/// Read-only data shared by all renders of one compilation.
#[derive(Debug)]
pub struct Shared {
    pub project_name: String,
    pub target: Json,
    pub vars: Map<String, Json>,
    pub metas: Vec<NodeMeta>,
    /// `ref()` names → node indexes (models, seeds, snapshots).
    pub by_name: HashMap<String, Vec<usize>>,
    pub by_source: HashMap<(String, String), usize>,
    /// Names of disabled nodes that `ref()` might point at.
    pub disabled: HashSet<String>,
    /// Final relations, set once every node's config is known.
    pub resolved: OnceLock<Vec<Rel>>,
    /// Project and built-in macro names (for `adapter.dispatch` and "did you mean").
    pub macro_names: BTreeSet<String>,
    pub run_started_at: chrono::DateTime<chrono::Utc>,
    pub invocation_id: String,
    pub which: String,
    pub full_refresh: bool,
    pub store_failures: bool,
    pub existing_incremental: HashSet<String>,
}

/// Why a render failed, in terms a user can act on.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: &'static str,
    pub message: String,
    pub help: String,
}

/// The per-render mutable state of the node being rendered.
#[derive(Debug, Default)]
pub struct RenderState {
    pub node: usize,
    pub config: Config,
    pub refs: Vec<RefCall>,
    pub sources: Vec<[String; 2]>,
    pub depends: Vec<usize>,
    pub macros: BTreeSet<String>,
    /// A relation's attributes were read before relations were final.
    pub needs_rerender: bool,
    pub returns: Vec<Option<Value>>,
    pub failure: Option<Failure>,
    pub logs: Vec<String>,
}

thread_local! {
    static CURRENT: RefCell<Option<RenderState>> = const { RefCell::new(None) };
}

/// Runs `f` with a fresh render state for node `node`, returning the state.
pub fn with_render_state<R>(node: usize, f: impl FnOnce() -> R) -> (R, RenderState) {
    CURRENT.with(|c| {
        *c.borrow_mut() = Some(RenderState {
            node,
            ..Default::default()
        })
    });
    let r = f();
    let st = CURRENT.with(|c| c.borrow_mut().take()).unwrap_or_default();
    (r, st)
}

fn with_state<R>(f: impl FnOnce(&mut RenderState) -> R) -> Option<R> {
    CURRENT.with(|c| c.borrow_mut().as_mut().map(f))
}

fn current_node() -> Option<usize> {
    with_state(|s| s.node)
}

fn fail(code: &'static str, message: String, help: impl Into<String>) -> Error {
    let help = help.into();
    with_state(|s| {
        if s.failure.is_none() {
            s.failure = Some(Failure {
                code,
                message: message.clone(),
                help,
            })
        }
    });
    Error::new(ErrorKind::InvalidOperation, message)
}

/// A serde value as a template value.
pub fn to_value<T: serde::Serialize>(x: &T) -> Value {
    Value::from(minijinja::value::Serde(x))
}

fn json_to_value(j: &Json) -> Value {
    to_value(j)
}

fn value_to_json(v: &Value) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

// ---------------------------------------------------------------- relations

/// A relation as templates see it (`ref()`, `source()`, `this`).
#[derive(Debug)]
pub struct Relation {
    shared: Arc<Shared>,
    target: usize,
    /// Which parts to render: 4 database, 2 schema, 1 identifier.
    parts: u8,
}

/// Marks a relation in phase-one output; replaced once relations are final.
pub const PLACEHOLDER_START: char = '\u{1}';
pub const PLACEHOLDER_END: char = '\u{2}';

impl Relation {
    fn rel(&self) -> Rel {
        match self.shared.resolved.get() {
            Some(r) => r[self.target].clone(),
            None => {
                with_state(|s| s.needs_rerender = true);
                self.shared.metas[self.target].provisional.clone()
            }
        }
    }
}

impl Object for Relation {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        let rel = self.rel();
        Some(match key {
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

/// The relation of node `target`, as `ref()` would return it.
pub fn relation_value(shared: &Arc<Shared>, target: usize) -> Value {
    Value::from_object(Relation {
        shared: shared.clone(),
        target,
        parts: 7,
    })
}

/// Records that the node being rendered depends on node `target`.
pub fn record_dependency(target: usize) {
    with_state(|s| s.depends.push(target));
}

/// `this`: the relation of the node being rendered.
#[derive(Debug)]
struct This(Arc<Shared>);

impl This {
    fn relation(&self) -> Option<Arc<Relation>> {
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
        ObjectRepr::Plain
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

fn ref_fn(shared: &Arc<Shared>, args: &[Value]) -> Result<Value, Error> {
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
                "compile::ref_args",
                format!(
                    "ref() takes a model name, or a package and a model name; got {} arguments",
                    strs.len()
                ),
                "write ref('model_name') or ref('package', 'model_name')",
            ))
        }
    };
    if let Some(p) = &package {
        if p != &shared.project_name {
            return Err(fail(
                "compile::unknown_package",
                format!(
                    "ref('{p}', '{name}') names package `{p}`, which is not part of this project"
                ),
                format!(
                    "pm compiles a single project; use ref('{name}') or ref('{}', '{name}')",
                    shared.project_name
                ),
            ));
        }
    }
    let target = match shared.by_name.get(&name).and_then(|v| v.first()) {
        Some(&i) => i,
        None => {
            if shared.disabled.contains(&name) {
                return Err(fail(
                    "compile::disabled_ref",
                    format!("ref('{name}') points at a disabled node"),
                    format!("enable `{name}` (enabled: true) or remove this ref"),
                ));
            }
            let suggestions =
                crate::error::closest(&name, shared.by_name.keys().map(String::as_str));
            return Err(fail(
                "compile::unknown_ref",
                format!("ref('{name}') names no model, seed or snapshot"),
                crate::error::did_you_mean(
                    &suggestions,
                    "check the spelling, or add the model under a model path",
                ),
            ));
        }
    };
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
        parts: 7,
    }))
}

fn source_fn(shared: &Arc<Shared>, source: &str, table: &str) -> Result<Value, Error> {
    let Some(&target) = shared
        .by_source
        .get(&(source.to_string(), table.to_string()))
    else {
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
            "compile::unknown_source",
            format!("source('{source}', '{table}') is not declared"),
            help,
        ));
    };
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
        parts: 7,
    }))
}

// ---------------------------------------------------------------- config

/// `config(...)`, `config.get()`, `config.require()`.
#[derive(Debug)]
struct ConfigObj(Arc<Shared>);

impl ConfigObj {
    fn lookup(&self, key: &str) -> Option<Json> {
        let key = config::canonical_key(key);
        let node = current_node()?;
        if let Some(v) = with_state(|s| s.config.get(&key).cloned()).flatten() {
            return Some(v);
        }
        self.0.metas.get(node)?.config.get(&key).cloned()
    }
}

impl Object for ConfigObj {
    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (pos, kwargs): (&[Value], Kwargs) = minijinja::value::from_args(args)?;
        let mut items: Vec<(String, Json)> = Vec::new();
        for p in pos {
            match value_to_json(p) {
                Json::Object(m) => items.extend(m),
                _ => {
                    return Err(fail(
                        "compile::config_args",
                        "config() takes keyword arguments".into(),
                        "write config(materialized='table', tags=['daily'])",
                    ))
                }
            }
        }
        for k in kwargs.args() {
            let v: Value = kwargs.get(k)?;
            items.push((k.to_string(), value_to_json(&v)));
        }
        with_state(|s| {
            for (k, v) in &items {
                config::merge_key(&mut s.config, k, v);
            }
        });
        Ok(Value::from(""))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "get" => {
                let (key, default): (&str, Option<Value>) = minijinja::value::from_args(args)?;
                Ok(self
                    .lookup(key)
                    .map(|j| json_to_value(&j))
                    .or(default)
                    .unwrap_or(Value::from(())))
            }
            "require" => {
                let (key,): (&str,) = minijinja::value::from_args(args)?;
                self.lookup(key).map(|j| json_to_value(&j)).ok_or_else(|| {
                    fail(
                        "compile::config_required",
                        format!("config `{key}` is required here but not set"),
                        format!("set it with {{{{ config({key}=...) }}}} in the model or under `config:` in its YAML"),
                    )
                })
            }
            "set" => {
                let (key, value): (&str, Value) = minijinja::value::from_args(args)?;
                let j = value_to_json(&value);
                with_state(|s| config::merge_key(&mut s.config, key, &j));
                Ok(Value::from(""))
            }
            "persist_relation_docs" | "persist_column_docs" => Ok(Value::from(false)),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("config has no method `{method}`"),
            )),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("")
    }
}

// ---------------------------------------------------------------- var

#[derive(Debug)]
struct VarObj(Arc<Shared>);

impl Object for VarObj {
    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (name, _): (&str, Option<Value>) = minijinja::value::from_args(args)?;
        // A default of `none` is a default (dbt: `var('x', none)` is None).
        let default = args.get(1).cloned();
        match self.0.vars.get(name) {
            Some(v) => Ok(json_to_value(v)),
            None => default.ok_or_else(|| {
                let suggestions = crate::error::closest(name, self.0.vars.keys().map(String::as_str));
                fail(
                    "compile::missing_var",
                    format!("var('{name}') is not set and has no default"),
                    if suggestions.is_empty() {
                        format!("set it under `vars:` in the project file, pass --vars '{{{name}: ...}}', or give a default: var('{name}', ...)")
                    } else {
                        crate::error::did_you_mean(&suggestions, "")
                    },
                )
            }),
        }
    }
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "has_var" => {
                let (name,): (&str,) = minijinja::value::from_args(args)?;
                Ok(Value::from(self.0.vars.contains_key(name)))
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("var has no method `{method}`"),
            )),
        }
    }
}

/// `env_var('X', default)`.
pub fn env_var(name: &str, default: Option<Value>) -> Result<Value, Error> {
    match std::env::var(name) {
        Ok(v) => Ok(Value::from(v)),
        Err(_) => default.ok_or_else(|| {
            fail(
                "compile::missing_env_var",
                format!("env_var('{name}') is not set and has no default"),
                format!(
                    "export {name}=… before running pm, or give a default: env_var('{name}', '…')"
                ),
            )
        }),
    }
}

// ---------------------------------------------------------------- model

/// `model`: the node being rendered (name, unique_id, config, …).
#[derive(Debug)]
struct ModelObj(Arc<Shared>);

impl Object for ModelObj {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let n = current_node()?;
        let m = self.0.metas.get(n)?;
        let key = key.as_str()?;
        Some(match key {
            "name" => Value::from(m.name.clone()),
            "unique_id" => Value::from(m.unique_id.clone()),
            "resource_type" => Value::from(m.resource_type.as_str()),
            "package_name" => Value::from(self.0.project_name.clone()),
            "original_file_path" => Value::from(m.original_file_path.clone()),
            "path" => Value::from(m.path.clone()),
            "fqn" => to_value(&m.fqn),
            "description" => Value::from(m.description.clone()),
            "alias" | "identifier" => {
                Value::from(This(self.0.clone()).relation()?.rel().identifier)
            }
            "schema" => Value::from(This(self.0.clone()).relation()?.rel().schema),
            "database" => Value::from(This(self.0.clone()).relation()?.rel().database),
            "config" => {
                let mut c = (*m.config).clone();
                if let Some(extra) = with_state(|s| s.config.clone()) {
                    config::merge(&mut c, &extra);
                }
                to_value(&c)
            }
            "tags" => {
                let mut c = (*m.config).clone();
                if let Some(extra) = with_state(|s| s.config.clone()) {
                    config::merge(&mut c, &extra);
                }
                to_value(&config::tags(&c))
            }
            _ => return None,
        })
    }
}

// ---------------------------------------------------------------- dates

/// A timestamp with Python's datetime methods that dbt projects use.
#[derive(Debug)]
struct DateTimeObj(chrono::DateTime<chrono::FixedOffset>);

impl Object for DateTimeObj {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        use chrono::{Datelike, Timelike};
        let d = &self.0;
        Some(Value::from(match key.as_str()? {
            "year" => d.year() as i64,
            "month" => d.month() as i64,
            "day" => d.day() as i64,
            "hour" => d.hour() as i64,
            "minute" => d.minute() as i64,
            "second" => d.second() as i64,
            "microsecond" => (d.nanosecond() / 1000) as i64,
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
            "strftime" => {
                let (fmt,): (&str,) = minijinja::value::from_args(args)?;
                let mut out = String::new();
                use std::fmt::Write;
                write!(out, "{}", self.0.format(fmt)).map_err(|_| {
                    Error::new(
                        ErrorKind::InvalidOperation,
                        format!("bad strftime format `{fmt}`"),
                    )
                })?;
                Ok(Value::from(out))
            }
            "isoformat" => Ok(Value::from(
                self.0.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
            )),
            "date" => Ok(Value::from(self.0.format("%Y-%m-%d").to_string())),
            "timestamp" => Ok(Value::from(self.0.timestamp() as f64)),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("datetime has no method `{method}`"),
            )),
        }
    }
    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d %H:%M:%S%.6f%:z"))
    }
}

/// `modules.datetime`: `datetime.now()`, `datetime.utcnow()`, `date.today()`.
#[derive(Debug)]
struct DatetimeModule(&'static str);

impl Object for DatetimeModule {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if self.0 == "module" {
            return match key.as_str()? {
                "datetime" => Some(Value::from_object(DatetimeModule("datetime"))),
                "date" => Some(Value::from_object(DatetimeModule("date"))),
                _ => None,
            };
        }
        None
    }
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        let now = chrono::Utc::now();
        match (self.0, method) {
            ("datetime", "now") => Ok(Value::from_object(DateTimeObj(
                chrono::Local::now().fixed_offset(),
            ))),
            ("datetime", "utcnow") => Ok(Value::from_object(DateTimeObj(now.fixed_offset()))),
            ("date", "today") => Ok(Value::from(
                chrono::Local::now().format("%Y-%m-%d").to_string(),
            )),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("modules.datetime.{} has no `{method}`", self.0),
            )),
        }
    }
}

// ---------------------------------------------------------------- adapter, exceptions

#[derive(Debug)]
struct AdapterObj;

impl Object for AdapterObj {
    fn call_method(
        self: &Arc<Self>,
        state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "quote" => {
                let (s,): (&str,) = minijinja::value::from_args(args)?;
                Ok(Value::from(quote_ident(s)))
            }
            "dispatch" => {
                let (name, _kwargs): (&str, Kwargs) = minijinja::value::from_args(args)?;
                let (_, name) = name.rsplit_once('.').unwrap_or(("", name));
                for candidate in [
                    format!("postgres__{name}"),
                    format!("default__{name}"),
                    name.to_string(),
                ] {
                    if let Some(v) = state.lookup(&candidate) {
                        return Ok(v);
                    }
                }
                Err(fail(
                    "compile::dispatch",
                    format!("adapter.dispatch('{name}') found no macro postgres__{name}, default__{name} or {name}"),
                    format!("define a macro named default__{name}"),
                ))
            }
            "type" => Ok(Value::from("postgres")),
            // Catalog lookups need the database; at compile time nothing exists yet.
            "get_relation" | "load_relation" => Ok(Value::from(())),
            "get_columns_in_relation" | "list_relations_without_caching" => {
                Ok(Value::from(Vec::<Value>::new()))
            }
            "already_exists" => Ok(Value::from(false)),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("adapter has no method `{method}`"),
            )),
        }
    }
}

#[derive(Debug)]
struct ExceptionsObj;

impl Object for ExceptionsObj {
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let msg = args.first().map(|v| v.to_string()).unwrap_or_default();
        match method {
            "raise_compiler_error" | "raise_not_implemented" => Err(fail(
                "compile::raised",
                msg,
                "the project's own code raised this error; read the message and the marked call",
            )),
            "warn" => {
                with_state(|s| s.logs.push(format!("warning: {msg}")));
                Ok(Value::from(""))
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("exceptions has no `{method}`"),
            )),
        }
    }
}

// ---------------------------------------------------------------- macros

/// A project or built-in macro, callable by name from every template.
#[derive(Debug)]
pub struct MacroFn {
    pub template: String,
    pub name: String,
    pub unique_id: String,
}

/// Stands in for `caller` when a `{% call %}` block calls a project macro:
/// the block is rendered once in its own template and its text returned.
#[derive(Debug)]
struct RenderedCaller(String);

impl Object for RenderedCaller {
    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        if !args.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "caller() with arguments is not supported when the {% call %} block calls a project macro",
            ));
        }
        Ok(Value::from_safe_string(self.0.clone()))
    }
}

impl Object for MacroFn {
    fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let mut args = args.to_vec();
        if let Some(last) = args.last() {
            if last.is_kwargs() {
                if let Ok(caller) = last.get_attr("caller") {
                    if !caller.is_undefined() {
                        let body = caller.call(state, &[])?.to_string();
                        let kw = Kwargs::try_from(last.clone())?;
                        let rebuilt: Kwargs = kw
                            .args()
                            .map(|k| {
                                let v = if k == "caller" {
                                    Value::from_object(RenderedCaller(body.clone()))
                                } else {
                                    kw.peek::<Value>(k).unwrap_or_default()
                                };
                                (k.to_string(), v)
                            })
                            .collect();
                        let n = args.len();
                        args[n - 1] = Value::from(rebuilt);
                    }
                }
            }
        }
        with_state(|s| {
            if !s.macros.contains(&self.unique_id) {
                s.macros.insert(self.unique_id.clone());
            }
            s.returns.push(None);
        });
        let result = (|| {
            let tmpl = state.env().get_template(&self.template)?;
            let mut module = tmpl.render_captured(())?;
            let m = module.state().lookup(&self.name).ok_or_else(|| {
                Error::new(
                    ErrorKind::UnknownFunction,
                    format!("macro `{}` went missing", self.name),
                )
            })?;
            module.with_state_mut(|st| m.call(st, &args))
        })();
        let returned = with_state(|s| s.returns.pop()).flatten().flatten();
        let out = result?;
        Ok(returned.unwrap_or(out))
    }
}

// ---------------------------------------------------------------- mutable containers

/// A list with Python's mutating methods (see `blocks::mutable_literals`).
#[derive(Debug, Default)]
pub struct MutList(std::sync::Mutex<Vec<Value>>);

impl MutList {
    fn items(&self) -> Vec<Value> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Object for MutList {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let items = self.items();
        let i = key.as_i64()?;
        let i = if i < 0 { items.len() as i64 + i } else { i };
        items.get(usize::try_from(i).ok()?).cloned()
    }
    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Values(self.items())
    }
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let mut v = self
            .0
            .lock()
            .map_err(|_| Error::new(ErrorKind::InvalidOperation, "list poisoned"))?;
        match method {
            "append" => {
                let (x,): (Value,) = minijinja::value::from_args(args)?;
                v.push(x);
                Ok(Value::from(()))
            }
            "extend" => {
                let (x,): (Value,) = minijinja::value::from_args(args)?;
                v.extend(x.try_iter()?);
                Ok(Value::from(()))
            }
            "insert" => {
                let (i, x): (usize, Value) = minijinja::value::from_args(args)?;
                let i = i.min(v.len());
                v.insert(i, x);
                Ok(Value::from(()))
            }
            "pop" => {
                let (i,): (Option<i64>,) = minijinja::value::from_args(args)?;
                let len = v.len() as i64;
                let i = i
                    .map(|i| if i < 0 { len + i } else { i })
                    .unwrap_or(len - 1);
                if i < 0 || i >= len {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "pop index out of range",
                    ));
                }
                Ok(v.remove(i as usize))
            }
            "remove" => {
                let (x,): (Value,) = minijinja::value::from_args(args)?;
                match v.iter().position(|y| y == &x) {
                    Some(p) => {
                        v.remove(p);
                        Ok(Value::from(()))
                    }
                    None => Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "list.remove(x): x not in list",
                    )),
                }
            }
            "clear" => {
                v.clear();
                Ok(Value::from(()))
            }
            "index" => {
                let (x,): (Value,) = minijinja::value::from_args(args)?;
                v.iter()
                    .position(|y| y == &x)
                    .map(Value::from)
                    .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "value not in list"))
            }
            "count" => {
                let (x,): (Value,) = minijinja::value::from_args(args)?;
                Ok(Value::from(v.iter().filter(|y| *y == &x).count()))
            }
            "copy" => Ok(Value::from_object(MutList(std::sync::Mutex::new(
                v.clone(),
            )))),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("list has no method `{method}`"),
            )),
        }
    }
}

/// A dict with Python's mutating methods.
#[derive(Debug, Default)]
pub struct MutDict(std::sync::Mutex<indexmap::IndexMap<Value, Value>>);

impl MutDict {
    fn items(&self) -> indexmap::IndexMap<Value, Value> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Object for MutDict {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.items().get(key).cloned()
    }
    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Values(self.items().keys().cloned().collect())
    }
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let mut m = self
            .0
            .lock()
            .map_err(|_| Error::new(ErrorKind::InvalidOperation, "dict poisoned"))?;
        match method {
            "update" => {
                for a in args {
                    let iter = a.try_iter()?;
                    for k in iter {
                        let v = a.get_item(&k)?;
                        m.insert(k, v);
                    }
                }
                Ok(Value::from(()))
            }
            "get" => {
                let (k, d): (Value, Option<Value>) = minijinja::value::from_args(args)?;
                Ok(m.get(&k).cloned().or(d).unwrap_or(Value::from(())))
            }
            "pop" => {
                let (k, d): (Value, Option<Value>) = minijinja::value::from_args(args)?;
                m.shift_remove(&k).or(d).ok_or_else(|| {
                    Error::new(ErrorKind::InvalidOperation, format!("key {k} not in dict"))
                })
            }
            "setdefault" => {
                let (k, d): (Value, Option<Value>) = minijinja::value::from_args(args)?;
                Ok(m.entry(k).or_insert(d.unwrap_or(Value::from(()))).clone())
            }
            "clear" => {
                m.clear();
                Ok(Value::from(()))
            }
            "keys" => Ok(Value::from(m.keys().cloned().collect::<Vec<_>>())),
            "values" => Ok(Value::from(m.values().cloned().collect::<Vec<_>>())),
            "items" => Ok(Value::from(
                m.iter()
                    .map(|(k, v)| Value::from(vec![k.clone(), v.clone()]))
                    .collect::<Vec<_>>(),
            )),
            "copy" => Ok(Value::from_object(MutDict(std::sync::Mutex::new(
                m.clone(),
            )))),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("dict has no method `{method}`"),
            )),
        }
    }
}

// ---------------------------------------------------------------- environment

/// Names every template can use without defining them (for "did you mean").
pub const BUILTIN_NAMES: &[&str] = &[
    "ref",
    "source",
    "config",
    "var",
    "env_var",
    "this",
    "model",
    "target",
    "is_incremental",
    "return",
    "log",
    "print",
    "exceptions",
    "adapter",
    "run_started_at",
    "modules",
    "execute",
    "flags",
    "invocation_id",
    "project_name",
    "dbt_version",
    "fromjson",
    "tojson",
    "fromyaml",
    "toyaml",
    "set",
    "zip",
    "local_md5",
    "run_query",
    "statement",
    "load_result",
    "builtins",
    "graph",
    "doc",
    "api",
];

/// The template of one macro: `<file>::<macro>`.
pub fn macro_template_name(file: &str, name: &str) -> String {
    format!("{file}::{name}")
}

/// The file a template name stands for (`macros/x.sql::m` → `macros/x.sql`).
pub fn template_file(template: &str) -> &str {
    template
        .split_once("::")
        .map(|(f, _)| f)
        .unwrap_or(template)
}

/// Builds the environment: globals bound to `shared`, and one template per
/// macro, given as `(file, prepared file text)`.
pub fn environment(
    shared: &Arc<Shared>,
    macro_files: Vec<(String, String)>,
) -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    env.set_debug(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
    env.set_recursion_limit(200);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    minijinja_contrib::add_to_environment(&mut env);

    let s = shared.clone();
    env.add_function("ref", move |args: minijinja::value::Rest<Value>| {
        ref_fn(&s, &args.0)
    });
    let s = shared.clone();
    env.add_function("source", move |a: &str, b: &str| source_fn(&s, a, b));
    env.add_global("config", Value::from_object(ConfigObj(shared.clone())));
    env.add_global("var", Value::from_object(VarObj(shared.clone())));
    env.add_function("env_var", env_var);
    env.add_global("this", Value::from_object(This(shared.clone())));
    env.add_global("model", Value::from_object(ModelObj(shared.clone())));
    env.add_global("target", json_to_value(&shared.target));
    let s = shared.clone();
    env.add_function("is_incremental", move || {
        // dbt: the model is incremental, its relation exists, and no full refresh.
        !s.full_refresh
            && current_node().is_some_and(|n| {
                let meta = &s.metas[n];
                s.existing_incremental.contains(&meta.unique_id)
                    && with_state(|st| st.config.get("materialized").cloned())
                        .flatten()
                        .or_else(|| meta.config.get("materialized").cloned())
                        .is_some_and(|m| {
                            m.as_str().and_then(Materialization::for_model)
                                == Some(Materialization::Incremental)
                        })
            })
    });
    env.add_function("return", |v: Value| {
        with_state(|s| {
            if let Some(top) = s.returns.last_mut() {
                if top.is_none() {
                    *top = Some(v);
                }
            }
        });
        Value::from("")
    });
    env.add_function(
        "log",
        |msg: Value, kwargs: Kwargs| -> Result<Value, Error> {
            let info: Option<bool> = kwargs.get("info")?;
            if info.unwrap_or(false) {
                with_state(|s| s.logs.push(msg.to_string()));
            }
            Ok(Value::from(""))
        },
    );
    env.add_function("print", |msg: Value| {
        with_state(|s| s.logs.push(msg.to_string()));
        Value::from("")
    });
    env.add_function("__pm_list", |v: Value| -> Result<Value, Error> {
        Ok(Value::from_object(MutList(std::sync::Mutex::new(
            v.try_iter()?.collect(),
        ))))
    });
    env.add_function("__pm_dict", |v: Value| -> Result<Value, Error> {
        let mut m = indexmap::IndexMap::new();
        for k in v.try_iter()? {
            let val = v.get_item(&k)?;
            m.insert(k, val);
        }
        Ok(Value::from_object(MutDict(std::sync::Mutex::new(m))))
    });
    let s = shared.clone();
    env.add_function(
        "get_where_subquery",
        move |relation: Value| match ConfigObj(s.clone()).lookup("where") {
            Some(Json::String(w)) if !w.trim().is_empty() => {
                Value::from(format!("(select * from {relation} where {w}) dbt_subquery"))
            }
            _ => relation,
        },
    );
    env.add_global("exceptions", Value::from_object(ExceptionsObj));
    env.add_global("adapter", Value::from_object(AdapterObj));
    env.add_global(
        "run_started_at",
        Value::from_object(DateTimeObj(shared.run_started_at.fixed_offset())),
    );
    env.add_global(
        "modules",
        Value::from_iter(
            [(
                "datetime".to_string(),
                Value::from_object(DatetimeModule("module")),
            )]
            .into_iter()
            .collect::<std::collections::BTreeMap<String, Value>>(),
        ),
    );
    env.add_global("execute", false);
    env.add_global(
        "flags",
        to_value(&serde_json::json!({
            "FULL_REFRESH": shared.full_refresh,
            "WHICH": shared.which,
            "STORE_FAILURES": shared.store_failures,
        })),
    );
    env.add_global("invocation_id", shared.invocation_id.clone());
    env.add_global("project_name", shared.project_name.clone());
    // Macros compare it with dbt releases (`dbt_version >= '1.8'`): the dbt
    // version whose project format pm implements, not pm's own.
    env.add_global("dbt_version", crate::DBT_VERSION);
    env.add_function(
        "fromjson",
        |s: &str, default: Option<Value>| -> Result<Value, Error> {
            match serde_json::from_str::<Json>(s) {
                Ok(j) => Ok(json_to_value(&j)),
                Err(e) => default.ok_or_else(|| {
                    Error::new(ErrorKind::InvalidOperation, format!("fromjson: {e}"))
                }),
            }
        },
    );
    env.add_function("tojson", |v: Value| -> Result<Value, Error> {
        serde_json::to_string(&v)
            .map(Value::from)
            .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("tojson: {e}")))
    });
    env.add_function("fromyaml", |s: &str| -> Result<Value, Error> {
        serde_yaml::from_str::<Json>(s)
            .map(|j| json_to_value(&j))
            .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("fromyaml: {e}")))
    });
    env.add_function("toyaml", |v: Value| -> Result<Value, Error> {
        serde_yaml::to_string(&value_to_json(&v))
            .map(Value::from)
            .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("toyaml: {e}")))
    });
    env.add_function("set", |v: Value| -> Result<Value, Error> {
        let mut seen = Vec::new();
        for item in v.try_iter()? {
            if !seen.contains(&item) {
                seen.push(item);
            }
        }
        Ok(Value::from(seen))
    });
    env.add_function("zip", |a: Value, b: Value| -> Result<Value, Error> {
        Ok(Value::from(
            a.try_iter()?
                .zip(b.try_iter()?)
                .map(|(x, y)| Value::from(vec![x, y]))
                .collect::<Vec<_>>(),
        ))
    });
    env.add_function("local_md5", |s: &str| {
        use md5::Digest;
        Value::from(hex(&md5::Md5::digest(s.as_bytes())))
    });
    // Warehouse calls need a database; while compiling they return nothing, as
    // dbt's do while `execute` is false.
    env.add_function("run_query", |_sql: Value| Value::from(()));
    env.add_function("load_result", |_name: Value| Value::from(()));
    env.add_function("statement", |_args: minijinja::value::Rest<Value>| {
        Value::from("")
    });
    env.add_function("doc", |name: &str| {
        Value::from(format!("{{{{ doc('{name}') }}}}"))
    });
    // Project and built-in macros last: a project macro named like a
    // built-in function (get_where_subquery, say) replaces it, as in dbt.
    let project = shared.project_name.clone();
    for (file, prepared) in macro_files {
        let package = if file.starts_with("pm/") {
            "pm".to_string()
        } else {
            project.clone()
        };
        for (name, source) in super::blocks::split_macros(&prepared) {
            let template = macro_template_name(&file, &name);
            env.add_global(
                name.clone(),
                Value::from_object(MacroFn {
                    template: template.clone(),
                    unique_id: format!("macro.{package}.{name}"),
                    name,
                }),
            );
            env.add_template_owned(template, source)?;
        }
    }

    Ok(env)
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}
