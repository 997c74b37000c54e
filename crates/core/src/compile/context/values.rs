//! Macros as callable values (with `caller()`), and lists and dicts that `.append`/`.update` change in place, as in dbt's Jinja.

use crate::compile::context::with_state;
use minijinja::value::{Kwargs, Object, ObjectRepr, Value};
use minijinja::{Error, ErrorKind, State};
use std::sync::Arc;

/// A project or built-in macro, callable by name from every template.
#[derive(Debug)]
pub struct MacroFn {
    pub template: String,
    pub name: String,
    pub unique_id: String,
    /// It takes `varargs`/`kwargs` (extra arguments are packed into them).
    pub catch_all: bool,
}

/// Stands in for `caller` when a `{% call %}` block calls a project macro:
/// the block is rendered once in its own template and its text returned.
#[derive(Debug)]
pub(super) struct RenderedCaller(pub(super) String);

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
            let mut module = match super::locals() {
                Some(locals) => tmpl.render_captured(locals)?,
                None => tmpl.render_captured(())?,
            };
            let m = module.state().lookup(&self.name).ok_or_else(|| {
                Error::new(
                    ErrorKind::UnknownFunction,
                    format!("macro `{}` went missing", self.name),
                )
            })?;
            let args = if self.catch_all {
                pack_extra_arguments(&m, args)?
            } else {
                args
            };
            module.with_state_mut(|st| m.call(st, &args))
        })();
        let returned = with_state(|s| s.returns.pop()).flatten().flatten();
        match (result, returned) {
            (_, Some(v)) => Ok(v),
            (Ok(out), None) => Ok(out),
            (Err(e), None) => Err(e),
        }
    }
}

/// For a macro that takes `varargs` and `kwargs` (see
/// `blocks::macro_header`): positional arguments past its own go into
/// `varargs`, keyword arguments it does not name into `kwargs`, as Jinja does.
fn pack_extra_arguments(m: &Value, args: Vec<Value>) -> Result<Vec<Value>, Error> {
    let names: Vec<String> = match m.get_attr("arguments") {
        Ok(v) if !v.is_undefined() => v
            .try_iter()?
            .map(|n| n.as_str().unwrap_or_default().to_string())
            .collect(),
        _ => return Ok(args),
    };
    if !names.iter().any(|n| n == "varargs") {
        return Ok(args);
    }
    let own: Vec<&String> = names
        .iter()
        .filter(|n| *n != "varargs" && *n != "kwargs")
        .collect();
    let (mut positional, kwargs) = match args.last() {
        Some(last) if last.is_kwargs() => {
            let kw = Kwargs::try_from(last.clone())?;
            (args[..args.len() - 1].to_vec(), Some(kw))
        }
        _ => (args, None),
    };
    let varargs: Vec<Value> = if positional.len() > own.len() {
        positional.split_off(own.len())
    } else {
        Vec::new()
    };
    let mut named: Vec<(String, Value)> = Vec::new();
    let mut extra: std::collections::BTreeMap<String, Value> = Default::default();
    if let Some(kw) = kwargs {
        for k in kw.args() {
            let v = kw.peek::<Value>(k).unwrap_or_default();
            if k == "caller" || own.iter().any(|n| *n == k) {
                named.push((k.to_string(), v));
            } else {
                extra.insert(k.to_string(), v);
            }
        }
    }
    named.push(("varargs".into(), Value::from(varargs)));
    named.push(("kwargs".into(), Value::from(extra)));
    positional.push(Value::from(named.into_iter().collect::<Kwargs>()));
    Ok(positional)
}

/// A list with Python's mutating methods (see `blocks::mutable_literals`).
#[derive(Debug, Default)]
pub struct MutList(pub(super) std::sync::Mutex<Vec<Value>>);

impl MutList {
    pub(super) fn items(&self) -> Vec<Value> {
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
                v.push(super::mutable(x));
                Ok(Value::from(()))
            }
            "extend" => {
                let (x,): (Value,) = minijinja::value::from_args(args)?;
                v.extend(x.try_iter()?.map(super::mutable));
                Ok(Value::from(()))
            }
            "insert" => {
                let (i, x): (usize, Value) = minijinja::value::from_args(args)?;
                let i = i.min(v.len());
                v.insert(i, super::mutable(x));
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
            "reverse" => {
                v.reverse();
                Ok(Value::from(()))
            }
            "sort" => {
                let kwargs: Option<Kwargs> =
                    args.last().and_then(|a| Kwargs::try_from(a.clone()).ok());
                let reverse: bool = kwargs
                    .as_ref()
                    .and_then(|k| k.get::<Option<bool>>("reverse").ok().flatten())
                    .unwrap_or(false);
                v.sort();
                if reverse {
                    v.reverse();
                }
                Ok(Value::from(()))
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("list has no method `{method}`"),
            )),
        }
    }
}

/// A dict with Python's mutating methods.
#[derive(Debug, Default)]
pub struct MutDict(pub(super) std::sync::Mutex<indexmap::IndexMap<Value, Value>>);

impl MutDict {
    pub(super) fn items(&self) -> indexmap::IndexMap<Value, Value> {
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
                        m.insert(k, super::mutable(v));
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
                Ok(m.entry(k)
                    .or_insert_with(|| super::mutable(d.unwrap_or(Value::from(()))))
                    .clone())
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
