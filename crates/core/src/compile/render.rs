//! Rendering nodes: the shared environment, plus generated templates
//! (generic tests) compiled once per distinct source.

use super::context::{RenderState, ResolvedRelation, Shared};
use crate::compile::{
    context, empty, ephemeral, errors, unit_tests, Draft, MacroSet, Rendered, Template,
};
use crate::error::Code;
use crate::error::{Problem, Problems, Result};
use crate::loader::Project;
use crate::manifest::Hook;
use rayon::iter::{
    IndexedParallelIterator, IntoParallelIterator, IntoParallelRefIterator, ParallelIterator,
};
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Renders nodes: the shared environment, plus generated templates (generic
/// tests) compiled once per distinct source.
pub(super) struct Renderer<'a> {
    pub(super) env: &'a minijinja::Environment<'static>,
    pub(super) shared: &'a Arc<Shared>,
    pub(super) files: &'a errors::FileIndex<'a>,
    /// unique id → node index, for the relation a generic test checks.
    pub(super) index: HashMap<&'a str, usize>,
    pub(super) generated: HashMap<&'a str, minijinja::Template<'a, 'a>>,
    /// The database, when rendering at run time.
    pub(super) warehouse: Option<Arc<dyn context::RenderWarehouse>>,
}

impl<'a> Renderer<'a> {
    pub(super) fn new(
        env: &'a minijinja::Environment<'static>,
        shared: &'a Arc<Shared>,
        files: &'a errors::FileIndex<'a>,
        drafts: &'a [Draft],
    ) -> Self {
        let index = drafts
            .iter()
            .enumerate()
            .map(|(i, d)| (d.node.unique_id.as_str(), i))
            .collect();
        let mut generated = HashMap::new();
        for d in drafts {
            if let Template::Generated { source, .. } = &d.template {
                if !generated.contains_key(source.as_str()) {
                    // A template that does not compile is compiled again per
                    // node when rendered, so its error names the node.
                    if let Ok(t) = env.template_from_named_str("<generated>", source) {
                        generated.insert(source.as_str(), t);
                    }
                }
            }
        }
        Renderer {
            env,
            shared,
            files,
            index,
            generated,
            warehouse: None,
        }
    }

    /// A generic test's arguments with the text of each string that holds
    /// Jinja (`"col = {{ var('x') }}"`) rendered.
    fn rendered_arguments(
        &self,
        args: &serde_json::Map<String, serde_json::Value>,
        locals: &Option<minijinja::Value>,
    ) -> std::result::Result<serde_json::Map<String, serde_json::Value>, minijinja::Error> {
        fn walk(
            v: &serde_json::Value,
            render: &dyn Fn(&str) -> std::result::Result<String, minijinja::Error>,
        ) -> std::result::Result<serde_json::Value, minijinja::Error> {
            use serde_json::Value as J;
            Ok(match v {
                J::String(t) if t.contains("{{") || t.contains("{%") => J::String(render(t)?),
                J::Array(items) => J::Array(
                    items
                        .iter()
                        .map(|x| walk(x, render))
                        .collect::<Result<_, _>>()?,
                ),
                J::Object(m) => J::Object(
                    m.iter()
                        .map(|(k, x)| Ok((k.clone(), walk(x, render)?)))
                        .collect::<std::result::Result<_, minijinja::Error>>()?,
                ),
                other => other.clone(),
            })
        }
        args.iter()
            .map(|(k, v)| {
                let name = format!("<argument `{k}` of the test>");
                let render = |text: &str| match locals {
                    Some(l) => self.env.render_named_str(&name, text, l),
                    None => self.env.render_named_str(&name, text, ()),
                };
                Ok((k.clone(), walk(v, &render)?))
            })
            .collect()
    }

    /// Renders node `i`; None for nodes without SQL (seeds, sources).
    pub(super) fn render(
        &self,
        i: usize,
        d: &Draft,
    ) -> std::result::Result<Option<(String, RenderState)>, Problem> {
        let name = &d.node.original_file_path;
        let locals = context::locals_of(self.shared, &d.node.package_name);
        let (source, result, state) = match &d.template {
            Template::None => return Ok(None),
            Template::File(text) => {
                let (r, st) = context::with_render_state(i, || {
                    context::set_locals(locals.clone());
                    context::set_warehouse(self.warehouse.clone());
                    self.env
                        .template_from_named_str(name, text)
                        .and_then(|t| match &locals {
                            Some(l) => t.render(l),
                            None => t.render(()),
                        })
                });
                (&**text, r, st)
            }
            Template::Generated {
                source,
                args,
                model,
            } => {
                let model_idx = model.as_deref().and_then(|m| self.index.get(m)).copied();
                let (r, st) = context::with_render_state(i, || {
                    context::set_locals(locals.clone());
                    context::set_warehouse(self.warehouse.clone());
                    if let Some(m) = model_idx {
                        context::record_dependency(m);
                    }
                    // Arguments written as Jinja are rendered in the test's
                    // context first, as dbt renders them.
                    let args = self.rendered_arguments(args, &locals)?;
                    let ctx = minijinja::context! {
                        __pm_test_args => context::json_kwargs(&args),
                        __pm_model => model_idx.map(|m| context::relation_value(self.shared, m)),
                        ..locals.clone().unwrap_or_default()
                    };
                    match self.generated.get(source.as_str()) {
                        Some(t) => t.render(ctx),
                        None => self
                            .env
                            .template_from_named_str(name, source)
                            .and_then(|t| t.render(ctx)),
                    }
                });
                (source.as_str(), r, st)
            }
            Template::UnitTest(t) => {
                let (r, st) = self.render_unit_test(t, &d.node.name, locals);
                (&*t.text, r, st)
            }
        };
        let files = self.files;
        if let Template::UnitTest(t) = &d.template {
            return match result {
                Ok(out) => Ok(Some((out, state))),
                Err(e) => Err(errors::unit_test_problem(
                    &e,
                    state.failure,
                    &d.node,
                    (&t.model_path, &t.model_file_text, source),
                    files,
                )),
            };
        }
        match result {
            Ok(out) => Ok(Some((out, state))),
            Err(e) => Err(errors::node_problem(
                &e,
                state.failure,
                &d.node,
                source,
                files,
            )),
        }
    }
}

impl Renderer<'_> {
    /// A unit test's render of its model: the model's own render (its
    /// `this`, config and package), reading the test's fixtures.
    fn render_unit_test(
        &self,
        t: &unit_tests::UnitTestTemplate,
        name: &str,
        locals: Option<minijinja::Value>,
    ) -> (std::result::Result<String, minijinja::Error>, RenderState) {
        let Some(&model) = self.index.get(t.model.as_str()) else {
            let e = minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("the model of unit test `{name}` is not in this compile"),
            );
            return (Err(e), RenderState::default());
        };
        let fixtures = Arc::new(context::Fixtures {
            by_node: t
                .inputs
                .iter()
                .filter_map(|(id, cte)| self.index.get(id.as_str()).map(|&i| (i, cte.clone())))
                .collect(),
            unit_test: name.to_string(),
        });
        let mut ctx =
            context::overrides_context(self.env, self.shared, &t.overrides, t.this_cte.as_deref());
        if let Some(l) = &locals {
            for key in l.try_iter().into_iter().flatten() {
                if let (Some(k), Ok(v)) = (key.as_str(), l.get_item(&key)) {
                    ctx.entry(k.to_string()).or_insert(v);
                }
            }
        }
        let (r, mut st) = context::with_render_state(model, || {
            context::set_locals(locals.clone());
            context::set_warehouse(self.warehouse.clone());
            context::set_fixtures(fixtures);
            self.env
                .template_from_named_str(&t.model_path, &t.text)
                .and_then(|tpl| tpl.render(ctx))
        });
        // The test's one parent is its model (its inputs are fixtures).
        st.depends = vec![model];
        (r, st)
    }
}

/// The Jinja environment with pm's and the project's macros.
pub(super) fn environment(
    shared: &Arc<Shared>,
    macros: &MacroSet,
) -> Result<minijinja::Environment<'static>> {
    context::environment(shared, macros.templates.clone()).map_err(|e| {
        let file = context::template_file(e.name().unwrap_or("macros")).to_string();
        let text = macros
            .texts
            .get(&file)
            .cloned()
            .unwrap_or_else(|| Arc::from(""));
        Problems::from(errors::jinja_problem(&e, None, &file, &text, &macros.names))
    })
}

/// Phase one: every node renders once, in parallel.
pub(super) fn render_all(renderer: &Renderer, drafts: &[Draft]) -> Result<Vec<Rendered>> {
    let rendered: Vec<std::result::Result<Rendered, Problem>> = drafts
        .par_iter()
        .enumerate()
        .map(|(i, d)| renderer.render(i, d))
        .collect();
    collect_all(rendered)
}

/// The values, or every problem.
fn collect_all<T: Default>(results: Vec<std::result::Result<T, Problem>>) -> Result<Vec<T>> {
    let mut problems = Problems::default();
    let mut values = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(v) => values.push(v),
            Err(p) => {
                problems.push(p);
                values.push(T::default());
            }
        }
    }
    problems.into_result()?;
    Ok(values)
}

/// Phase two: placeholders become relation names; nodes that read a
/// relation's attributes while rendering render again instead. Phase one's
/// output is taken from `states`, so it is not held alongside the final SQL.
pub(super) fn final_sql(
    renderer: &Renderer,
    states: &mut [Rendered],
    drafts: &[Draft],
    rels: &[ResolvedRelation],
) -> Result<Vec<Option<String>>> {
    let outputs: Vec<Option<String>> = states
        .iter_mut()
        .map(|s| s.as_mut().map(|(o, _)| std::mem::take(o)))
        .collect();
    let states: &[Rendered] = states;
    let finals: Vec<std::result::Result<Option<String>, Problem>> = outputs
        .into_par_iter()
        .zip(drafts.par_iter())
        .enumerate()
        .map(|(i, (out, d))| match (out, &states[i]) {
            (Some(_), Some((_, st))) if st.needs_rerender => renderer
                .render(i, d)
                .map(|r| r.map(|(o, _)| empty::settle_aliases(o))),
            (Some(out), _) => Ok(Some(empty::settle_aliases(ephemeral::substitute(
                out, rels,
            )))),
            (None, _) => Ok(None),
        })
        .collect();
    collect_all(finals)
}

/// Rendered hooks: each node's pre- and post-hooks, and the project's
/// on-run-start and on-run-end.
pub(super) struct Hooks {
    pub(super) per_node: Vec<(Vec<Hook>, Vec<Hook>)>,
    /// Nodes (draft indexes) whose hooks use the warehouse: rendered again at run time.
    pub(super) use_warehouse: HashSet<usize>,
    pub(super) on_run_start: Vec<String>,
    pub(super) on_run_end: Vec<String>,
}

/// Hooks are Jinja too: `grant select on {{ this }} to reporter`.
pub(super) fn hooks(
    env: &minijinja::Environment<'static>,
    project: &Project,
    drafts: &[Draft],
) -> Result<Hooks> {
    let mut problems = Problems::default();
    let mut per_node: Vec<(Vec<Hook>, Vec<Hook>)> = Vec::with_capacity(drafts.len());
    let mut use_warehouse = HashSet::new();
    for (i, d) in drafts.iter().enumerate() {
        match node_hooks(env, d, i, None) {
            Ok((pair, uses)) => {
                if uses {
                    use_warehouse.insert(i);
                }
                per_node.push(pair);
            }
            Err(ps) => {
                for p in ps {
                    problems.push(p);
                }
                per_node.push(Default::default());
            }
        }
    }
    let mut on_run = (Vec::new(), Vec::new());
    for (list, out) in [
        (&project.on_run_start, &mut on_run.0),
        (&project.on_run_end, &mut on_run.1),
    ] {
        for h in list {
            match render_hook(env, None, h, None) {
                Ok((sql, _)) => out.push(sql),
                Err(p) => problems.push(p),
            }
        }
    }
    problems.into_result()?;
    Ok(Hooks {
        per_node,
        use_warehouse,
        on_run_start: on_run.0,
        on_run_end: on_run.1,
    })
}

/// Node `i`'s pre- and post-hooks, rendered (with `warehouse` at run time),
/// and whether any used the warehouse.
pub(super) fn node_hooks(
    env: &minijinja::Environment<'static>,
    draft: &Draft,
    i: usize,
    warehouse: Option<Arc<dyn context::RenderWarehouse>>,
) -> std::result::Result<(crate::manifest::PrePostHooks, bool), Vec<Problem>> {
    let mut problems = Vec::new();
    let mut pair = (Vec::new(), Vec::new());
    let mut uses = false;
    let node = Some((i, draft.node.unique_id.as_str(), &*draft.node.config));
    for (key, out) in [("pre-hook", &mut pair.0), ("post-hook", &mut pair.1)] {
        if let Some(Json::Array(list)) = draft.node.config.get(key) {
            for (h, transaction) in list.iter().filter_map(hook_sql) {
                match render_hook(env, node, &h, warehouse.clone()) {
                    Ok((sql, used)) => {
                        uses |= used;
                        out.push(Hook { sql, transaction })
                    }
                    Err(p) => problems.push(p),
                }
            }
        }
    }
    if problems.is_empty() {
        Ok((pair, uses))
    } else {
        Err(problems)
    }
}

/// A hook's SQL and whether it runs inside the model's transaction
/// (dbt's `{"sql": ..., "transaction": false}`).
fn hook_sql(v: &Json) -> Option<(String, bool)> {
    match v {
        Json::String(s) => Some((s.clone(), true)),
        Json::Object(o) => o.get("sql").and_then(Json::as_str).map(|s| {
            let transaction = !matches!(o.get("transaction"), Some(Json::Bool(false)));
            (s.to_string(), transaction)
        }),
        _ => None,
    }
}

/// Renders one hook, and says whether it used the warehouse; on-run hooks
/// (`node` None) have no `this` or `config`.
fn render_hook(
    env: &minijinja::Environment<'static>,
    node: Option<(usize, &str, &crate::loader::config::Config)>,
    sql: &str,
    warehouse: Option<Arc<dyn context::RenderWarehouse>>,
) -> std::result::Result<(String, bool), Problem> {
    let (r, st) = match node {
        // `config.get()` sees the node's whole config, its own config() calls
        // included, as in dbt (hooks render after the model).
        Some((i, _, config)) => context::with_render_state_config(i, config.clone(), || {
            context::set_warehouse(warehouse);
            env.render_named_str("<hook>", sql, ())
        }),
        None => (
            env.render_named_str("<hook>", sql, ()),
            RenderState::default(),
        ),
    };
    let uses = st.uses_warehouse;
    // With --empty, a ref() in a hook reads no rows too, its alias settled.
    r.map(|sql| (empty::settle_aliases(sql), uses))
        .map_err(|e| {
            let what = node
                .map(|(_, id, _)| format!("a hook of {id}"))
                .unwrap_or_else(|| "an on-run hook".into());
            Problem::new(
                Code::CompileHook,
                format!(
                    "cannot render {what}: {}",
                    st.failure
                        .map(|f| f.message)
                        .unwrap_or_else(|| e.to_string())
                ),
            )
            .help(format!("fix the hook `{sql}`"))
        })
}
