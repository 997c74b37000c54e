//! The rest of dbt's context: `config`, `var`, `env_var`, `model`, `adapter`, `exceptions`.

use crate::compile::context::relation::This;
use crate::compile::context::{
    current_node, fail, json_to_value, to_value, value_to_json, with_state,
};
use crate::compile::Shared;
use crate::error::Code;
use crate::loader::config;
use crate::text::quote_ident;
use minijinja::value::{Kwargs, Object, Value};
use minijinja::{Error, ErrorKind, State};
use serde_json::{Map, Value as Json};
use std::fmt;
use std::sync::Arc;

/// `config(...)`, `config.get()`, `config.require()`.
#[derive(Debug)]
pub(super) struct ConfigObj(pub(super) Arc<Shared>);

impl ConfigObj {
    pub(super) fn lookup(&self, key: &str) -> Option<Json> {
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
                        Code::CompileConfigArgs,
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
                        Code::CompileConfigRequired,
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
            "persist_relation_docs" | "persist_column_docs" => {
                let key = if method == "persist_relation_docs" {
                    "relation"
                } else {
                    "columns"
                };
                let on = with_state(|s| {
                    s.config
                        .get("persist_docs")
                        .and_then(|p| p.get(key))
                        .and_then(Json::as_bool)
                })
                .flatten()
                .unwrap_or(false);
                Ok(Value::from(on))
            }
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

#[derive(Debug)]
pub(super) struct VarObj(pub(super) Arc<Shared>);

/// The vars the node being rendered sees: its package's, or the root's.
fn current_vars(shared: &Shared) -> &Map<String, Json> {
    current_node()
        .and_then(|n| shared.package_vars.get(&shared.metas[n].package_name))
        .unwrap_or(&shared.vars)
}

impl Object for VarObj {
    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (name, _): (&str, Option<Value>) = minijinja::value::from_args(args)?;
        // A default of `none` is a default (dbt: `var('x', none)` is None).
        let default = args.get(1).cloned();
        let vars = current_vars(&self.0);
        match vars.get(name) {
            Some(v) => Ok(json_to_value(v)),
            None => default.ok_or_else(|| {
                let suggestions = crate::error::closest(name, vars.keys().map(String::as_str));
                fail(
                    Code::CompileMissingVar,
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
                Ok(Value::from(current_vars(&self.0).contains_key(name)))
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
                Code::CompileMissingEnvVar,
                format!("env_var('{name}') is not set and has no default"),
                format!(
                    "export {name}=… before running pm, or give a default: env_var('{name}', '…')"
                ),
            )
        }),
    }
}

/// `model`: the node being rendered (name, unique_id, config, …).
#[derive(Debug)]
pub(super) struct ModelObj(pub(super) Arc<Shared>);

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

#[derive(Debug)]
pub(super) struct AdapterObj(pub(super) Arc<Shared>);

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
            "dispatch" => dispatch(&self.0, state, args),
            "type" => Ok(Value::from("postgres")),
            // The catalog: answered by the warehouse at run time; while
            // compiling (no warehouse) nothing exists yet, as in dbt's parse.
            "get_relation" => super::warehouse::get_relation(args),
            "load_relation" => {
                let (relation,): (Value,) = minijinja::value::from_args(args)?;
                super::warehouse::get_relation_of(&relation)
            }
            "get_columns_in_relation" => {
                let (relation,): (Value,) = minijinja::value::from_args(args)?;
                super::warehouse::get_columns_in_relation(&relation)
            }
            "list_relations_without_caching" => {
                let (relation,): (Value,) = minijinja::value::from_args(args)?;
                super::warehouse::list_relations(&relation)
            }
            "already_exists" => {
                let (schema, name): (String, String) = minijinja::value::from_args(args)?;
                let found = super::warehouse::get_relation(&[
                    Value::from(()),
                    Value::from(schema),
                    Value::from(name),
                ])?;
                Ok(Value::from(!found.is_none()))
            }
            "drop_relation" | "rename_relation" | "truncate_relation" | "create_schema"
            | "drop_schema" => super::warehouse::change(method, args),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("adapter has no method `{method}`"),
            )),
        }
    }
}

/// `adapter.dispatch(name, macro_namespace)`: the first of `postgres__name`
/// and `default__name` in each package of the search order: the root
/// project's `dispatch:` entry for the namespace, else the root project then
/// the namespace's package, else (no namespace) what the template reaches.
fn dispatch(shared: &Shared, state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
    let (positional, kwargs): (&[Value], Kwargs) = minijinja::value::from_args(args)?;
    let name = positional.first().and_then(Value::as_str).ok_or_else(|| {
        Error::new(
            ErrorKind::MissingArgument,
            "adapter.dispatch() needs the macro name",
        )
    })?;
    let namespace: Option<String> = match positional.get(1) {
        Some(v) if !v.is_none() && !v.is_undefined() => Some(v.to_string()),
        _ => kwargs
            .get::<Option<String>>("macro_namespace")?
            .or(kwargs.get::<Option<String>>("packages").ok().flatten()),
    };
    let (_, name) = name.rsplit_once('.').unwrap_or(("", name));
    let search: Vec<Option<&str>> = match namespace.as_deref() {
        None => vec![None],
        Some(ns) => match shared.dispatch.get(ns) {
            Some(order) => order.iter().map(|p| Some(p.as_str())).collect(),
            None if shared.namespaces.contains_key(ns) && ns != shared.project_name => {
                vec![Some(shared.project_name.as_str()), Some(ns)]
            }
            None => vec![None],
        },
    };
    let candidates = [format!("postgres__{name}"), format!("default__{name}")];
    for package in &search {
        for candidate in &candidates {
            let found = match package {
                None => state.lookup(candidate),
                Some(p) => shared
                    .namespaces
                    .get(*p)
                    .and_then(|m| m.get_attr(candidate).ok())
                    .filter(|v| !v.is_undefined()),
            };
            if let Some(v) = found {
                return Ok(v);
            }
        }
    }
    // pm's built-ins answer for dbt's namespace, and a macro named plainly
    // answers last (lenient where dbt would fail).
    let builtins = shared.namespaces.get(super::BUILTIN_NAMESPACE);
    for candidate in candidates.iter().chain([&name.to_string()]) {
        let found = builtins
            .and_then(|m| m.get_attr(candidate).ok())
            .filter(|v| !v.is_undefined())
            .or_else(|| state.lookup(candidate));
        if let Some(v) = found {
            return Ok(v);
        }
    }
    let searched: Vec<&str> = search
        .iter()
        .map(|p| p.unwrap_or("(unqualified)"))
        .collect();
    Err(fail(
        Code::CompileDispatch,
        format!(
            "adapter.dispatch('{name}'{}) found no macro postgres__{name} or default__{name} in {}",
            namespace.as_deref().map(|n| format!(", '{n}'")).unwrap_or_default(),
            searched.join(", ")
        ),
        format!("define a macro named default__{name}, or set the search order under `dispatch:` in the project file"),
    ))
}

#[derive(Debug)]
pub(super) struct ExceptionsObj;

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
                Code::CompileRaised,
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

/// `api`: `api.Column` and `api.Relation`, as dbt's macros use them.
#[derive(Debug)]
pub(super) struct ApiObj;

impl Object for ApiObj {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "Column" => Some(Value::from_object(ColumnApi)),
            "Relation" => Some(Value::from_object(RelationApi)),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct ColumnApi;

/// dbt's portable type names as dbt-postgres spells them: its column class
/// maps only `string` (to `TEXT`) and passes every other name through, as
/// measured side by side with dbt-postgres 1.11.
fn translate_type(dtype: &str) -> String {
    match dtype.to_ascii_lowercase().as_str() {
        "string" => "TEXT".into(),
        _ => dtype.to_string(),
    }
}

impl Object for ColumnApi {
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "translate_type" => {
                let (dtype,): (&str,) = minijinja::value::from_args(args)?;
                Ok(Value::from(translate_type(dtype)))
            }
            "create" => {
                let (name, dtype): (&str, &str) = minijinja::value::from_args(args)?;
                Ok(super::warehouse::column_value(name, &translate_type(dtype)))
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("api.Column has no `{method}`"),
            )),
        }
    }
}

#[derive(Debug)]
struct RelationApi;

impl Object for RelationApi {
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if method != "create" {
            return Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("api.Relation has no `{method}`"),
            ));
        }
        let (_, kwargs): (&[Value], Kwargs) = minijinja::value::from_args(args)?;
        let part = |k: &str| -> Result<Option<String>, Error> {
            Ok(kwargs
                .get::<Option<Value>>(k)?
                .filter(|v| !v.is_none())
                .map(|v| v.to_string()))
        };
        Ok(Value::from_object(super::relation::NamedRelation {
            database: part("database")?,
            schema: part("schema")?,
            identifier: part("identifier")?,
            kind: part("type")?.unwrap_or_else(|| "table".into()),
        }))
    }
}
