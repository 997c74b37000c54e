//! Rendering at run time: the nodes whose templates use the warehouse
//! (`execute`, `run_query`, `statement`, the adapter's catalog methods) are
//! rendered again right before they run, with `execute` true and a
//! [`RenderWarehouse`] answering, as dbt renders every node again at run time.
//! Every other node keeps the one render of `pm compile`.

use super::context::{RenderState, RenderWarehouse, Shared};
use crate::compile::{
    context, empty, ephemeral, errors, render, Draft, MacroSet, Rendered, Renderer, Template,
};
use crate::error::Code;
use crate::error::Problem;
use crate::loader::Project;
use crate::manifest::Node;
use serde_json::{Map, Value as Json};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// One node to render at run time.
struct RunNode {
    /// Its index among the compile's drafts (what the render context knows it by).
    draft_index: usize,
    draft: Draft,
    /// The unique ids its template names, with their draft indexes (the
    /// relation a generic test checks; a unit test's model and inputs).
    lookups: Vec<(String, usize)>,
    /// The ephemeral models it reads, as (CTE name, body), as compiled.
    ctes: Vec<(String, String)>,
    /// The draft indexes it depends on, as compiling found them.
    depends: HashSet<usize>,
}

/// What rendering at run time needs of the compile.
pub struct RunRenderer {
    env: minijinja::Environment<'static>,
    shared: Arc<Shared>,
    macro_texts: HashMap<String, Arc<str>>,
    macro_names: BTreeSet<String>,
    yaml_texts: HashMap<String, Arc<str>>,
    nodes: HashMap<String, RunNode>,
}

/// Every ephemeral model by unique id: its CTE's name and its compiled SQL
/// (with the ephemeral models it reads), for `--inline` SQL.
pub type EphemeralCtes = HashMap<String, (String, String)>;

/// The ephemeral models among `nodes`, for [`RunRenderer::render_inline`].
pub fn ephemeral_ctes(nodes: &[Node]) -> EphemeralCtes {
    nodes
        .iter()
        .filter(|n| n.is_ephemeral())
        .map(|n| {
            (
                n.unique_id.clone(),
                (
                    format!("__dbt__cte__{}", n.alias),
                    n.compiled_code.clone().unwrap_or_default(),
                ),
            )
        })
        .collect()
}

impl std::fmt::Debug for RunRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunRenderer")
            .field("nodes", &self.nodes.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl RunRenderer {
    /// Whether node `unique_id` renders again at run time.
    pub fn renders(&self, unique_id: &str) -> bool {
        self.nodes.contains_key(unique_id)
    }

    /// The unique ids of the nodes that render at run time.
    pub fn unique_ids(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(String::as_str)
    }

    /// Node `unique_id`'s SQL rendered with `warehouse`; None when the node
    /// does not render at run time.
    pub fn render(
        &self,
        unique_id: &str,
        warehouse: Arc<dyn RenderWarehouse>,
    ) -> Option<std::result::Result<String, Problem>> {
        let run = self.nodes.get(unique_id)?;
        let files = errors::FileIndex {
            macro_texts: &self.macro_texts,
            macro_names: &self.macro_names,
            yaml_texts: self
                .yaml_texts
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect(),
        };
        let index = run
            .lookups
            .iter()
            .map(|(id, i)| (id.as_str(), *i))
            .collect();
        let renderer = Renderer {
            env: &self.env,
            shared: &self.shared,
            files: &files,
            index,
            generated: HashMap::new(),
            warehouse: Some(warehouse),
        };
        Some(
            renderer
                .render(run.draft_index, &run.draft)
                .and_then(|out| {
                    let Some((sql, state)) = out else {
                        return Ok(String::new());
                    };
                    self.check_dependencies(run, &state)?;
                    let sql = empty::settle_aliases(sql);
                    Ok(if run.ctes.is_empty() {
                        sql
                    } else {
                        ephemeral::inject(&sql, &run.ctes)
                    })
                }),
        )
    }

    /// Node `unique_id`'s pre- and post-hooks rendered with `warehouse`; None
    /// when the node does not render at run time.
    pub fn render_hooks(
        &self,
        unique_id: &str,
        warehouse: Arc<dyn RenderWarehouse>,
    ) -> Option<std::result::Result<crate::manifest::PrePostHooks, Problem>> {
        let run = self.nodes.get(unique_id)?;
        Some(
            render::node_hooks(&self.env, &run.draft, run.draft_index, Some(warehouse))
                .map(|(pair, _)| pair)
                .map_err(|ps| {
                    ps.into_iter().next().unwrap_or_else(|| {
                        Problem::new(Code::RunHook, format!("the hooks of {unique_id} failed"))
                    })
                }),
        )
    }

    /// Calls macro `name` (`macro` or `package.macro`) with `args` as keyword
    /// arguments, the warehouse at hand (`pm run-operation`). Returns the
    /// lines it logged.
    pub fn operation(
        &self,
        name: &str,
        args: &Map<String, Json>,
        warehouse: Arc<dyn RenderWarehouse>,
    ) -> std::result::Result<Vec<String>, Problem> {
        self.check_macro_name(name)?;
        let source = format!("{{{{ {name}(**__pm_args) }}}}");
        let (result, state) = context::with_render_state(context::NO_NODE, || {
            context::set_warehouse(Some(warehouse));
            self.env.render_named_str(
                "<run-operation>",
                &source,
                minijinja::context! { __pm_args => context::json_kwargs(args) },
            )
        });
        match result {
            Ok(_) => Ok(state.logs),
            Err(e) => {
                let file = context::template_file(e.name().unwrap_or("<run-operation>"));
                let text = self
                    .macro_texts
                    .get(file)
                    .cloned()
                    .unwrap_or_else(|| Arc::from(source.as_str()));
                Err(errors::jinja_problem(
                    &e,
                    state.failure.as_ref(),
                    file,
                    &text,
                    &self.macro_names,
                ))
            }
        }
    }

    /// Renders `source` (`pm show --inline`) as a node of the root project
    /// would render, `ref()` and `source()` naming built relations and the
    /// ephemeral models it reads put in front as CTEs.
    pub fn render_inline(
        &self,
        source: &str,
        ephemerals: &EphemeralCtes,
        warehouse: Arc<dyn RenderWarehouse>,
    ) -> std::result::Result<String, Problem> {
        let (result, state) = context::with_render_state(context::NO_NODE, || {
            context::set_warehouse(Some(warehouse));
            self.env.render_named_str("<inline>", source, ())
        });
        let ctes: Vec<(String, String)> = state
            .depends
            .iter()
            .filter_map(|&i| self.shared.metas.get(i))
            .filter_map(|meta| ephemerals.get(&meta.unique_id))
            .fold(Vec::new(), |mut ctes, cte| {
                if !ctes.contains(cte) {
                    ctes.push(cte.clone());
                }
                ctes
            });
        result
            .map(|sql| ephemeral::inject(&empty::settle_aliases(sql), &ctes))
            .map_err(|e| {
                let file = context::template_file(e.name().unwrap_or("<inline>"));
                let text = self
                    .macro_texts
                    .get(file)
                    .cloned()
                    .unwrap_or_else(|| Arc::from(source));
                errors::jinja_problem(&e, state.failure.as_ref(), file, &text, &self.macro_names)
            })
    }

    /// `name` is a macro of the project, a package (`package.macro`) or pm's.
    fn check_macro_name(&self, name: &str) -> std::result::Result<(), Problem> {
        let (namespace, bare) = match name.split_once('.') {
            Some((ns, m)) => (Some(ns), m),
            None => (None, name),
        };
        let well_formed = !bare.is_empty()
            && bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && namespace.is_none_or(|ns| ns.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        let exists = well_formed
            && match namespace {
                None => self.macro_names.contains(bare),
                Some(ns) => self
                    .shared
                    .namespaces
                    .get(ns)
                    .and_then(|v| v.get_attr(bare).ok())
                    .is_some_and(|v| !v.is_undefined()),
            };
        if exists {
            return Ok(());
        }
        let suggestions = crate::error::closest(name, self.macro_names.iter().map(String::as_str));
        Err(Problem::new(
            Code::RunOperationUnknownMacro,
            format!("there is no macro named `{name}`"),
        )
        .help(crate::error::did_you_mean(
            &suggestions,
            "define it in a file under macro-paths (macros/ by default), or name a package's as package.macro",
        )))
    }

    /// A `ref()` made only at run time (inside `{% if execute %}` or a
    /// `statement` block) names a node compiling did not see, so nothing made
    /// it wait for that node: refused as dbt refuses it.
    fn check_dependencies(
        &self,
        run: &RunNode,
        state: &RenderState,
    ) -> std::result::Result<(), Problem> {
        let unseen: Vec<&str> = state
            .depends
            .iter()
            .filter(|d| !run.depends.contains(d))
            .map(|&d| self.shared.metas[d].name.as_str())
            .collect();
        if unseen.is_empty() {
            return Ok(());
        }
        let node = &run.draft.node;
        let mut problem =
            Problem::new(
                Code::RunUnseenDependency,
                format!(
                "{} `{}` refers to {} only while rendering at run time, so it was not built first",
                node.resource_type.as_str(),
                node.name,
                unseen.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
            ),
            )
            .help(format!(
                "declare it where compiling sees it: add `-- depends_on: {}` to {}",
                unseen
                    .iter()
                    .map(|n| format!("{{{{ ref('{n}') }}}}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                node.original_file_path
            ));
        if let Template::File(text) = &run.draft.template {
            problem = problem.in_file(node.original_file_path.clone(), text.clone());
        }
        Err(problem)
    }
}

/// The drafts of the nodes whose templates used the warehouse, taken before
/// assembly consumes the drafts.
pub(super) fn uses_warehouse(
    drafts: &[Draft],
    states: &[Rendered],
    hooks_use_it: &HashSet<usize>,
) -> Vec<Flagged> {
    let flagged: Vec<usize> = states
        .iter()
        .enumerate()
        .filter(|(i, st)| {
            hooks_use_it.contains(i) || st.as_ref().is_some_and(|(_, s)| s.uses_warehouse)
        })
        .map(|(i, _)| i)
        .collect();
    if flagged.is_empty() {
        return Vec::new();
    }
    let draft_index: HashMap<&str, usize> = drafts
        .iter()
        .enumerate()
        .map(|(i, d)| (d.node.unique_id.as_str(), i))
        .collect();
    flagged
        .into_iter()
        .map(|i| {
            let d = &drafts[i];
            let named: Vec<&str> = match &d.template {
                Template::Generated { model: Some(m), .. } => vec![m.as_str()],
                Template::UnitTest(t) => std::iter::once(t.model.as_str())
                    .chain(t.inputs.iter().map(|(id, _)| id.as_str()))
                    .collect(),
                _ => Vec::new(),
            };
            let lookups = named
                .into_iter()
                .filter_map(|id| draft_index.get(id).map(|&i| (id.to_string(), i)))
                .collect();
            let draft = Draft {
                node: d.node.clone(),
                template: d.template.clone(),
            };
            let depends = states[i]
                .as_ref()
                .map(|(_, st)| st.depends.iter().copied().collect())
                .unwrap_or_default();
            Flagged {
                draft_index: i,
                draft,
                lookups,
                depends,
            }
        })
        .collect()
}

/// A node whose template used the warehouse, as compiling left it.
pub(super) struct Flagged {
    draft_index: usize,
    draft: Draft,
    lookups: Vec<(String, usize)>,
    depends: HashSet<usize>,
}

/// The run renderer: the compile's environment, kept for the nodes that
/// render at run time and for `pm run-operation`.
pub(super) fn run_renderer(
    env: minijinja::Environment<'static>,
    shared: &Arc<Shared>,
    macros: &MacroSet,
    project: &Project,
    flagged: Vec<Flagged>,
    nodes: &[Node],
) -> RunRenderer {
    let by_id: HashMap<&str, &Node> = if flagged.is_empty() {
        HashMap::new()
    } else {
        nodes.iter().map(|n| (n.unique_id.as_str(), n)).collect()
    };
    let run_nodes = flagged
        .into_iter()
        .filter_map(|f| {
            // A node that disabled itself is not run.
            let node = by_id.get(f.draft.node.unique_id.as_str())?;
            let ctes = node
                .extra_ctes
                .iter()
                .map(|(id, body)| {
                    let alias = by_id.get(id.as_str()).map_or("", |n| n.alias.as_str());
                    (format!("__dbt__cte__{alias}"), body.clone())
                })
                .collect();
            Some((
                f.draft.node.unique_id.clone(),
                RunNode {
                    draft_index: f.draft_index,
                    draft: f.draft,
                    lookups: f.lookups,
                    ctes,
                    depends: f.depends,
                },
            ))
        })
        .collect();
    RunRenderer {
        env,
        shared: shared.clone(),
        macro_texts: macros.texts.clone(),
        macro_names: macros.names.clone(),
        yaml_texts: project
            .properties
            .iter()
            .map(|p| (p.path.clone(), p.text.clone()))
            .collect(),
        nodes: run_nodes,
    }
}
