//! The Jinja context of dbt: `ref`, `source`, `config`, `var`, `env_var`,
//! `this`, `model`, `target`, `is_incremental`, `return`, `log`,
//! `exceptions`, `adapter`, `run_started_at`, `modules` and project macros.
//!
//! The environment is built once per compilation and shared by all rendering
//! threads. What belongs to the node being rendered (its recorded refs, its
//! `config()` calls, the macro return stack) lives in a thread-local
//! [`RenderState`]: a render runs on one thread from start to end, and a macro
//! called from any template sees the same state.

use crate::compile::context::objects::{
    AdapterObj, ApiObj, ConfigObj, ExceptionsObj, ModelObj, VarObj,
};
use crate::compile::context::relation::{ref_fn, source_fn, This};
use crate::error::Code;
mod column;
mod datetime;
mod modules;
mod objects;
mod relation;
mod timezone;
mod unit_test;
mod values;
mod warehouse;
pub use objects::env_var;
pub use relation::{record_dependency, relation_value, NamedRelation, Relation};
pub use unit_test::{overrides_context, set_fixtures, Fixtures};
pub use values::{MacroFn, MutDict, MutList};
pub use warehouse::{QueryResult, RenderWarehouse, WarehouseChange};

use super::definitions::{MacroFile, BUILTIN_NAMESPACE, BUILTIN_PACKAGE};
use crate::loader::config::Config;
use crate::manifest::{Materialization, RefCall, ResourceType};
use crate::text::quote_ident;
use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error, ErrorKind};
use serde_json::{Map, Value as Json};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, OnceLock};

/// A relation's render bit (beside 4 database, 2 schema, 1 identifier) for
/// `ref()` and `source()` under `--empty`: read as a subquery of no rows.
pub const READS_NO_ROWS: u8 = 8;

/// Where a node's relation lives once its config is known.
#[derive(Debug, Clone, Default)]
pub struct ResolvedRelation {
    pub database: String,
    pub schema: String,
    pub identifier: String,
    /// A source's relation is read as a table.
    pub materialized: Materialization,
}

impl ResolvedRelation {
    pub fn ephemeral(&self) -> bool {
        self.materialized == Materialization::Ephemeral
    }

    pub fn render(&self, parts: u8) -> String {
        if self.ephemeral() {
            return format!("__dbt__cte__{}", self.identifier);
        }
        if parts & READS_NO_ROWS != 0 {
            // dbt's --empty: the same relation, read as a subquery of no rows.
            return crate::compile::empty::subquery(
                &self.render(parts & !READS_NO_ROWS),
                &self.identifier,
            );
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
    /// The project (root or package) that declares the node.
    pub package_name: String,
    /// Project + YAML config (before the file's own `config()`).
    pub config: Arc<Config>,
    /// The relation computed from `config` (may change once `config()` calls are applied).
    pub provisional: ResolvedRelation,
    pub description: String,
    pub source_name: Option<String>,
}

/// Read-only data shared by all renders of one compilation.
#[derive(Debug)]
pub struct Shared {
    /// The root project's name.
    pub project_name: String,
    pub target: Json,
    /// The root project's vars (with `--vars`).
    pub vars: Map<String, Json>,
    /// Each package's vars (with the root's and `--vars` over its own).
    pub package_vars: HashMap<String, Map<String, Json>>,
    /// Each package's macros by name, as `package.macro()` reaches them (the
    /// root project's under its name, the built-ins under `dbt`).
    pub namespaces: BTreeMap<String, Value>,
    /// The root project's name and its installed packages'.
    pub package_names: BTreeSet<String>,
    /// The root project's `dispatch:` search orders, by macro namespace.
    pub dispatch: HashMap<String, Vec<String>>,
    pub metas: Vec<NodeMeta>,
    /// `ref()` names → node indexes (models, seeds, snapshots).
    pub by_name: HashMap<String, Vec<usize>>,
    /// (source, table) → node indexes (one per package that declares it).
    pub by_source: HashMap<(String, String), Vec<usize>>,
    /// Names of disabled nodes that `ref()` might point at.
    pub disabled: HashSet<String>,
    /// Final relations, set once every node's config is known.
    pub resolved: OnceLock<Vec<ResolvedRelation>>,
    /// Project and built-in macro names (for `adapter.dispatch` and "did you mean").
    pub macro_names: BTreeSet<String>,
    pub run_started_at: chrono::DateTime<chrono::Utc>,
    pub invocation_id: String,
    pub which: String,
    pub full_refresh: bool,
    pub store_failures: bool,
    /// `--empty`: relations from `ref()` and `source()` read no rows.
    pub empty: bool,
    pub existing_incremental: HashSet<String>,
}

/// Why a render failed, in terms a user can act on.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: Code,
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
    /// A package node's own macros, which its templates and the macros they
    /// call reach unqualified (dbt's local namespace).
    pub locals: Option<Value>,
    pub failure: Option<Failure>,
    pub logs: Vec<String>,
    /// The template tested `execute` or called the warehouse (`run_query`,
    /// `statement`, the adapter's catalog methods): it renders again at run time.
    pub uses_warehouse: bool,
    /// The database of a render at run time (none while compiling).
    pub warehouse: Option<Arc<dyn RenderWarehouse>>,
    /// `statement` results by name, for `load_result`.
    pub statements: HashMap<String, Value>,
    /// A unit test's render: the CTEs that `ref()` and `source()` read.
    pub fixtures: Option<Arc<Fixtures>>,
}

thread_local! {
    static CURRENT: RefCell<Option<RenderState>> = const { RefCell::new(None) };
}

/// The current package node's own macros, for the macros it calls.
pub fn locals() -> Option<Value> {
    with_state(|s| s.locals.clone()).flatten()
}

/// Gives the current render a warehouse (a render at run time).
pub fn set_warehouse(warehouse: Option<Arc<dyn RenderWarehouse>>) {
    if warehouse.is_some() {
        with_state(|s| s.warehouse = warehouse);
    }
}

/// Runs `f` with a fresh render state for node `node`, returning the state.
pub fn with_render_state<R>(node: usize, f: impl FnOnce() -> R) -> (R, RenderState) {
    with_render_state_config(node, Config::default(), f)
}

/// [`with_render_state`] where `config.get()` already sees `config`: a
/// node's hooks, rendered after its `config()` calls were applied.
pub fn with_render_state_config<R>(
    node: usize,
    config: Config,
    f: impl FnOnce() -> R,
) -> (R, RenderState) {
    CURRENT.with(|c| {
        *c.borrow_mut() = Some(RenderState {
            node,
            config,
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

/// The node index of a render that is not a node's (`pm run-operation`).
pub const NO_NODE: usize = usize::MAX;

fn current_node() -> Option<usize> {
    with_state(|s| s.node).filter(|&n| n != NO_NODE)
}

/// `what` has no method `method` (pm's Python objects: datetimes, modules, tables).
fn no_method(what: &str, method: &str) -> Error {
    Error::new(
        ErrorKind::UnknownMethod,
        format!("{what} has no `{method}` in pm"),
    )
}

fn fail(code: Code, message: String, help: impl Into<String>) -> Error {
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

/// JSON as dbt's Jinja sees it: its lists and dicts have Python's mutating
/// methods (`append`, `update`, …), wherever they came from (`var()`,
/// `config.get()`, YAML test arguments, `fromjson`, a query's rows).
pub(crate) fn json_to_value(j: &Json) -> Value {
    match j {
        Json::Array(items) => Value::from_object(MutList(std::sync::Mutex::new(
            items.iter().map(json_to_value).collect(),
        ))),
        Json::Object(map) => Value::from_object(MutDict(std::sync::Mutex::new(
            map.iter()
                .map(|(k, v)| (Value::from(k.as_str()), json_to_value(v)))
                .collect(),
        ))),
        other => to_value(other),
    }
}

/// Keyword arguments (a plain map, for `**`) whose values are
/// [`json_to_value`]'s.
pub(crate) fn json_kwargs(args: &serde_json::Map<String, Json>) -> Value {
    Value::from(
        args.iter()
            .map(|(k, v)| (k.clone(), json_to_value(v)))
            .collect::<std::collections::BTreeMap<String, Value>>(),
    )
}

/// A plain list or dict as one with Python's methods (shallow: its items
/// stay as they are); anything else, a `MutList` or `MutDict` included
/// (the same object, as Python passes it), unchanged.
pub(crate) fn mutable(v: Value) -> Value {
    let Some(o) = v.as_object() else {
        return v;
    };
    // minijinja's own lists (literals, filters' results) and maps become
    // ours; any other object (a relation, a query's columns, `config`, our
    // own lists and dicts) stays the object it is.
    if let Some(items) = o.downcast_ref::<Vec<Value>>() {
        return Value::from_object(MutList(std::sync::Mutex::new(items.clone())));
    }
    let plain_map = o
        .downcast_ref::<std::collections::BTreeMap<Value, Value>>()
        .is_some()
        || o.downcast_ref::<indexmap::IndexMap<Value, Value>>()
            .is_some();
    if !plain_map {
        return v;
    }
    let mut m = indexmap::IndexMap::new();
    if let Ok(keys) = v.try_iter() {
        for k in keys {
            let item = v.get_item(&k).unwrap_or_default();
            m.insert(k, item);
        }
    }
    Value::from_object(MutDict(std::sync::Mutex::new(m)))
}

fn value_to_json(v: &Value) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

// ---------------------------------------------------------------- relations

/// Marks a relation in phase-one output; replaced once relations are final.
pub const PLACEHOLDER_START: char = '\u{1}';
pub const PLACEHOLDER_END: char = '\u{2}';

// ---------------------------------------------------------------- config

// ---------------------------------------------------------------- var

// ---------------------------------------------------------------- model

// ---------------------------------------------------------------- dates

// ---------------------------------------------------------------- adapter, exceptions

// ---------------------------------------------------------------- macros

// ---------------------------------------------------------------- mutable containers

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
    macro_files: Vec<MacroFile>,
) -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    env.set_debug(true);
    // As dbt (Jinja's default): an undefined name prints as nothing and is
    // false; its attributes and calls are errors. (No warning for printing
    // one: `{{ ',' if not loop.last }}` prints an undefined on purpose.)
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
    env.set_recursion_limit(200);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    minijinja_contrib::add_to_environment(&mut env);

    add_node_context(&mut env, shared);
    add_render_state_functions(&mut env);
    add_run_context(&mut env, shared);
    add_value_functions(&mut env);
    add_macros(&mut env, shared, macro_files)?;
    Ok(env)
}

/// The environment config values are rendered in (`+enabled: "{{ var('x') }}"`
/// in the project file or YAML): `var`, `env_var` and `target`, as dbt's
/// project and properties renderers have.
pub fn config_value_environment(vars: Map<String, Json>, target: Json) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    minijinja_contrib::add_to_environment(&mut env);
    env.add_function(
        "var",
        move |name: &str, default: Option<Value>| -> Result<Value, Error> {
            match vars.get(name) {
                Some(v) => Ok(json_to_value(v)),
                None => default.ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidOperation,
                        format!("var('{name}') is not set and has no default"),
                    )
                }),
            }
        },
    );
    env.add_function("env_var", env_var);
    env.add_global("target", json_to_value(&target));
    env
}

/// `ref`, `source`, `config`, `var`, `env_var`, `this`, `model`, `target`, `is_incremental`.
fn add_node_context(env: &mut Environment<'static>, shared: &Arc<Shared>) {
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
        // dbt: the model is incremental, its relation exists, and it is not
        // being rebuilt (--full-refresh, unless its full_refresh config says
        // otherwise): the run puts exactly those in `existing_incremental`,
        // from the node's final config. A render that sets another
        // materialization with config() is not incremental; a hook's render,
        // which sets none, is the node's.
        current_node().is_some_and(|n| {
            let meta = &s.metas[n];
            s.existing_incremental.contains(&meta.unique_id)
                && with_state(|st| st.config.get("materialized").cloned())
                    .flatten()
                    .is_none_or(|m| {
                        m.as_str().and_then(Materialization::for_model)
                            == Some(Materialization::Incremental)
                    })
        })
    });
}

/// The error `return()` unwinds a macro with.
pub(super) const RETURNED: &str = "pm: return() ended the macro";

/// Functions that write to the node's render state: `return`, `log`,
/// `print`, and the mutable list and dict literals.
fn add_render_state_functions(env: &mut Environment<'static>) {
    // `{{ return(x) }}` ends the macro there, as in dbt: the value is kept
    // and an error unwinds to the macro's call, which answers with it.
    env.add_function("return", |v: Value| -> Result<Value, Error> {
        let in_macro = with_state(|s| match s.returns.last_mut() {
            Some(top) => {
                *top = Some(v);
                true
            }
            None => false,
        })
        .unwrap_or(false);
        if in_macro {
            Err(Error::new(ErrorKind::InvalidOperation, RETURNED))
        } else {
            Ok(Value::from(""))
        }
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
    env.add_function("__pm_mutable", |v: Value| -> Value { mutable(v) });
    // Literals: their nested lists and dicts take Python's methods too.
    env.add_function("__pm_list", |v: Value| -> Result<Value, Error> {
        Ok(Value::from_object(MutList(std::sync::Mutex::new(
            v.try_iter()?.map(mutable).collect(),
        ))))
    });
    env.add_function("__pm_dict", |v: Value| -> Result<Value, Error> {
        let mut m = indexmap::IndexMap::new();
        for k in v.try_iter()? {
            let val = v.get_item(&k)?;
            m.insert(k, mutable(val));
        }
        Ok(Value::from_object(MutDict(std::sync::Mutex::new(m))))
    });
}

/// What dbt's context says of the run: `flags`, `run_started_at`,
/// `invocation_id`, `exceptions`, `adapter`, `modules`, …; and the
/// warehouse calls, which return nothing while compiling.
fn add_run_context(env: &mut Environment<'static>, shared: &Arc<Shared>) {
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
    env.add_global("api", Value::from_object(ApiObj));
    env.add_global("adapter", Value::from_object(AdapterObj(shared.clone())));
    env.add_global(
        "run_started_at",
        datetime::DateTimeObj::instant(shared.run_started_at.fixed_offset()),
    );
    env.add_global(
        "modules",
        Value::from(
            [
                (
                    "datetime".to_string(),
                    Value::from_object(datetime::DatetimeModule::Module),
                ),
                ("re".to_string(), Value::from_object(modules::ReModule)),
                (
                    "itertools".to_string(),
                    Value::from_object(modules::ItertoolsModule),
                ),
                ("pytz".to_string(), Value::from_object(timezone::PytzModule)),
            ]
            .into_iter()
            .collect::<std::collections::BTreeMap<String, Value>>(),
        ),
    );
    env.add_global(
        "flags",
        to_value(&serde_json::json!({
            "FULL_REFRESH": shared.full_refresh,
            "WHICH": shared.which,
            "STORE_FAILURES": shared.store_failures,
            "EMPTY": shared.empty,
        })),
    );
    env.add_global("invocation_id", shared.invocation_id.clone());
    env.add_global("project_name", shared.project_name.clone());
    // Macros compare it with dbt releases (`dbt_version >= '1.8'`): the dbt
    // version whose project format pm implements, not pm's own.
    env.add_global("dbt_version", crate::DBT_VERSION);
    warehouse::add_warehouse_functions(env);
    env.add_function("doc", |name: &str| {
        Value::from(format!("{{{{ doc('{name}') }}}}"))
    });
}

/// JSON, YAML, sets, zip and hashing.
fn add_value_functions(env: &mut Environment<'static>) {
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
    // Python's sets have no order: kept sorted, two sets of the same items
    // are equal (`set(a) != set(b)` as dbt_utils' equality test asks).
    env.add_function("set", |v: Value| -> Result<Value, Error> {
        let mut seen = Vec::new();
        for item in v.try_iter()? {
            if !seen.contains(&item) {
                seen.push(item);
            }
        }
        seen.sort();
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
        Value::from(crate::text::hex(&md5::Md5::digest(s.as_bytes())))
    });
}

/// Project and built-in macros last: a project macro named like a built-in
/// function (get_where_subquery, say) replaces it, as in dbt. Packages'
/// macros are reached through their namespace (`dbt_utils.star()`).
fn add_macros(
    env: &mut Environment<'static>,
    shared: &Arc<Shared>,
    macro_files: Vec<MacroFile>,
) -> Result<(), Error> {
    // pm's own macros (a hundred, known to parse) are parsed when first
    // called; the project's and packages' now, so that a broken macro file is
    // an error even when nothing calls it.
    let mut builtins: HashMap<String, Arc<str>> = HashMap::new();
    for file in macro_files {
        let builtin = file.package == BUILTIN_PACKAGE;
        if builtin || file.package == shared.project_name {
            for (name, catch_all) in &file.macros {
                env.add_global(name.clone(), macro_value(&file, name, *catch_all));
            }
        }
        if builtin {
            builtins.insert(file.path.clone(), Arc::from(file.prepared.as_str()));
            continue;
        }
        for (name, source) in super::blocks::split_macros(&file.prepared) {
            env.add_template_owned(macro_template_name(&file.path, &name), source)?;
        }
    }
    env.set_loader(move |template| {
        let Some((file, name)) = template.split_once("::") else {
            return Ok(None);
        };
        Ok(builtins
            .get(file)
            .and_then(|prepared| super::blocks::macro_source(prepared, name)))
    });
    for (package, macros) in &shared.namespaces {
        env.add_global(package.clone(), macros.clone());
    }
    Ok(())
}

fn macro_value(file: &MacroFile, name: &str, catch_all: bool) -> Value {
    Value::from_object(MacroFn {
        template: macro_template_name(&file.path, name),
        unique_id: format!("macro.{}.{name}", file.package),
        name: name.to_string(),
        catch_all,
    })
}

/// Each package's macros by name (the built-ins under `dbt`).
pub fn namespaces(macro_files: &[MacroFile]) -> BTreeMap<String, Value> {
    let mut out: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for file in macro_files {
        let namespace = if file.package == BUILTIN_PACKAGE {
            BUILTIN_NAMESPACE
        } else {
            file.package.as_str()
        };
        let macros = out.entry(namespace.to_string()).or_default();
        for (name, catch_all) in &file.macros {
            macros.insert(name.clone(), macro_value(file, name, *catch_all));
        }
    }
    out.into_iter().map(|(k, v)| (k, Value::from(v))).collect()
}

/// What a node of `package` reaches unqualified besides the root's and the
/// built-in macros: its own package's (None for the root project).
pub fn locals_of(shared: &Shared, package: &str) -> Option<Value> {
    (package != shared.project_name)
        .then(|| shared.namespaces.get(package).cloned())
        .flatten()
}

/// Sets the render state's locals (see [`locals_of`]).
pub fn set_locals(locals: Option<Value>) {
    with_state(|s| s.locals = locals);
}
