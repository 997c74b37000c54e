//! A unit test's render of the model it tests: `ref()`, `source()` and
//! `this` read the test's fixture CTEs instead of relations, and the
//! test's `overrides:` replace macros, vars and environment variables that
//! the model's own template calls (dbt applies them there only, not inside
//! the macros the model calls).

use crate::compile::context::objects::VarObj;
use crate::compile::context::{env_var, fail, json_to_value, with_state, MacroFn, NamedRelation};
use crate::compile::definitions::BUILTIN_NAMESPACE;
use crate::compile::Shared;
use crate::error::Code;
use minijinja::value::{Object, Rest, Value};
use minijinja::{Environment, Error, State};
use serde_json::{Map, Value as Json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The fixtures a unit test's render reads: node index → CTE name.
#[derive(Debug, Default)]
pub struct Fixtures {
    pub by_node: HashMap<usize, String>,
    /// The test names this node in `given:`, for the model's `ref()`s.
    pub unit_test: String,
}

/// Gives the current render a unit test's fixtures.
pub fn set_fixtures(fixtures: Arc<Fixtures>) {
    with_state(|s| s.fixtures = Some(fixtures));
}

/// What `ref()` or `source()` of node `target` (written `call`) gives in a
/// unit test's render: its fixture's CTE, or an error when the test gives
/// no rows for it. None outside unit tests.
pub(super) fn fixture_for(target: usize, call: &str) -> Option<Result<Value, Error>> {
    let fixtures = with_state(|s| s.fixtures.clone()).flatten()?;
    Some(match fixtures.by_node.get(&target) {
        Some(cte) => Ok(NamedRelation::cte(cte)),
        None => Err(fail(
            Code::UnitTestMissingInput,
            format!(
                "the model reads {call}, for which unit test `{}` gives no rows",
                fixtures.unit_test
            ),
            format!("add `- input: {call}` with its `rows:` under the test's `given:` (`rows: []` for none)"),
        )),
    })
}

/// The names a unit test's `overrides:` and `this` input put over the
/// environment's globals for the tested model's template.
pub fn overrides_context(
    env: &Environment<'static>,
    shared: &Arc<Shared>,
    overrides: &crate::loader::unit_tests::Overrides,
    this_cte: Option<&str>,
) -> BTreeMap<String, Value> {
    let mut ctx = BTreeMap::new();
    let global = |name: &str| env.globals().find(|(k, _)| *k == name).map(|(_, v)| v);
    let mut namespaces: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for (name, value) in &overrides.macros {
        let replacement = |original: Option<Value>| override_value(original, json_to_value(value));
        match name.split_once('.') {
            Some((package, macro_name)) => {
                let Some(space) = shared.namespaces.get(package) else {
                    continue;
                };
                let members = namespaces.entry(package.to_string()).or_insert_with(|| {
                    space
                        .try_iter()
                        .into_iter()
                        .flatten()
                        .filter_map(|k| {
                            let v = space.get_item(&k).ok()?;
                            Some((k.as_str()?.to_string(), v))
                        })
                        .collect()
                });
                let original = members.get(macro_name).cloned();
                members.insert(macro_name.to_string(), replacement(original.clone()));
                // As dbt: an override of a `dbt.` macro is also the global one.
                if package == BUILTIN_NAMESPACE && !overrides.macros.contains_key(macro_name) {
                    ctx.insert(macro_name.to_string(), replacement(original));
                }
            }
            None => {
                ctx.insert(name.clone(), replacement(global(name)));
            }
        }
    }
    for (package, members) in namespaces {
        ctx.insert(package, Value::from(members));
    }
    if !overrides.vars.is_empty() {
        ctx.insert(
            "var".into(),
            Value::from_object(VarOverride {
                vars: overrides.vars.clone(),
                inner: VarObj(shared.clone()),
            }),
        );
    }
    if !overrides.env_vars.is_empty() {
        let env_vars = overrides.env_vars.clone();
        ctx.insert(
            "env_var".into(),
            Value::from_function(move |name: &str, default: Option<Value>| {
                match env_vars.get(name) {
                    Some(v) => Ok(Value::from(
                        crate::loader::yaml::as_string(v).unwrap_or_else(|| v.to_string()),
                    )),
                    None => env_var(name, default),
                }
            }),
        );
    }
    if let Some(cte) = this_cte {
        ctx.insert("this".into(), NamedRelation::cte(cte));
    }
    ctx
}

/// What an overridden name becomes: a macro or function answers `value`
/// whatever its arguments; any other global (`invocation_id`) is `value`.
fn override_value(original: Option<Value>, value: Value) -> Value {
    let callable = original.is_some_and(|o| {
        o.kind() == minijinja::value::ValueKind::Plain
            || o.downcast_object_ref::<MacroFn>().is_some()
    });
    if callable {
        Value::from_function(move |_args: Rest<Value>| value.clone())
    } else {
        value
    }
}

/// `var()` with a unit test's `overrides: {vars: …}` over the project's.
#[derive(Debug)]
struct VarOverride {
    vars: Map<String, Json>,
    inner: VarObj,
}

impl Object for VarOverride {
    fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let name = args.first().and_then(|v| v.as_str().map(str::to_string));
        match name.and_then(|n| self.vars.get(&n)) {
            Some(v) => Ok(json_to_value(v)),
            None => Arc::new(VarObj(self.inner.0.clone())).call(state, args),
        }
    }

    fn call_method(
        self: &Arc<Self>,
        state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if method == "has_var" {
            if let Some(name) = args.first().and_then(Value::as_str) {
                if self.vars.contains_key(name) {
                    return Ok(Value::from(true));
                }
            }
        }
        Arc::new(VarObj(self.inner.0.clone())).call_method(state, method, args)
    }
}
