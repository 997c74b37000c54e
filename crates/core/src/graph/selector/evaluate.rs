//! Evaluating a selection against the manifest: each atom to a set of nodes, graph operators, union, intersection and exclusion.

use crate::error::{Code, Problem, Problems, Result};
use crate::graph::selector::glob::{fqn_matches, json_matches};
use crate::graph::selector::state::config_equal;
use crate::graph::selector::{
    glob_match, parse, Atom, Expr, IndirectSelection, PriorState, Selectors, Sets,
};
use crate::manifest::{Manifest, Node, ResourceType};
use serde_json::Value as Json;

pub(super) struct Evaluator<'a> {
    pub(super) m: &'a Manifest,
    pub(super) state: Option<&'a PriorState>,
    pub(super) mode: IndirectSelection,
}

pub(super) fn or(a: &[bool], b: &[bool]) -> Vec<bool> {
    a.iter().zip(b).map(|(x, y)| *x || *y).collect()
}

impl Evaluator<'_> {
    /// Evaluates like dbt: each atom pulls in the tests of what it selects
    /// (eager: any parent selected; otherwise held back as "indirect" until
    /// the whole expression is known), and set operations combine the direct
    /// and the indirect sets separately.
    pub(super) fn eval(&self, e: &Expr) -> std::result::Result<Sets, Problem> {
        let n = self.m.nodes.len();
        let (parts, op): (Vec<Sets>, &str) = match e {
            Expr::All => return Ok(self.expand(vec![true; n], self.mode)),
            Expr::Atom(a) => {
                let collected = self.atom(a)?;
                return Ok(self.expand(collected, a.indirect.unwrap_or(self.mode)));
            }
            Expr::Union(items) => (
                items
                    .iter()
                    .map(|i| self.eval(i))
                    .collect::<std::result::Result<_, _>>()?,
                "union",
            ),
            Expr::Intersection(items) => (
                items
                    .iter()
                    .map(|i| self.eval(i))
                    .collect::<std::result::Result<_, _>>()?,
                "intersection",
            ),
            Expr::Difference(inc, exc) => {
                let mut v = vec![self.eval(inc)?];
                let ex: Vec<Sets> = exc
                    .iter()
                    .map(|i| self.eval(i))
                    .collect::<std::result::Result<_, _>>()?;
                let mut direct = vec![false; n];
                let mut indirect = vec![false; n];
                for (d, i) in &ex {
                    direct = or(&direct, d);
                    indirect = or(&indirect, &or(d, i));
                }
                v.push((direct, indirect));
                (v, "difference")
            }
        };
        let combine = |sets: Vec<Vec<bool>>| -> Vec<bool> {
            let mut it = sets.into_iter();
            let first = it.next().unwrap_or_else(|| vec![false; n]);
            it.fold(first, |acc, s| match op {
                "union" => or(&acc, &s),
                "intersection" => acc.iter().zip(&s).map(|(a, b)| *a && *b).collect(),
                _ => acc.iter().zip(&s).map(|(a, b)| *a && !*b).collect(),
            })
        };
        let directs: Vec<Vec<bool>> = parts.iter().map(|(d, _)| d.clone()).collect();
        let indirects: Vec<Vec<bool>> = parts.iter().map(|(d, i)| or(d, i)).collect();
        let direct = combine(directs);
        let indirect = combine(indirects);
        let direct = self.incorporate(direct, &indirect);
        Ok((direct, indirect))
    }

    /// dbt's expand_selection: tests whose parents were selected.
    pub(super) fn expand(&self, selected: Vec<bool>, mode: IndirectSelection) -> Sets {
        let n = self.m.nodes.len();
        let mut direct = selected.clone();
        let mut indirect = vec![false; n];
        let start: Vec<usize> = selected
            .iter()
            .enumerate()
            .filter(|(_, &b)| b)
            .map(|(i, _)| i)
            .collect();
        let buildable = (mode == IndirectSelection::Buildable)
            .then(|| or(&selected, &self.m.dag.reach(&start, true, None)));
        for (i, node) in self.m.nodes.iter().enumerate() {
            if !matches!(
                node.resource_type,
                ResourceType::Test | ResourceType::UnitTest
            ) || selected[i]
            {
                continue;
            }
            let parents = &self.m.dag.parents[i];
            if !parents.iter().any(|&p| selected[p]) {
                continue;
            }
            let all_selected = parents.iter().all(|&p| selected[p]);
            match mode {
                IndirectSelection::Eager => direct[i] = true,
                _ if all_selected && mode != IndirectSelection::Empty => direct[i] = true,
                IndirectSelection::Buildable
                    if buildable
                        .as_ref()
                        .is_some_and(|b| parents.iter().all(|&p| b[p])) =>
                {
                    direct[i] = true
                }
                IndirectSelection::Empty => {}
                _ => indirect[i] = true,
            }
        }
        (direct, indirect)
    }

    /// dbt's incorporate_indirect_nodes.
    pub(super) fn incorporate(&self, direct: Vec<bool>, indirect: &[bool]) -> Vec<bool> {
        let mut selected = direct.clone();
        let with_parents = (self.mode == IndirectSelection::Buildable).then(|| {
            let start: Vec<usize> = direct
                .iter()
                .enumerate()
                .filter(|(_, &b)| b)
                .map(|(i, _)| i)
                .collect();
            or(&direct, &self.m.dag.reach(&start, true, None))
        });
        for (i, &ind) in indirect.iter().enumerate() {
            if !ind || direct[i] {
                continue;
            }
            let parents = &self.m.dag.parents[i];
            let ok = match (self.mode, &with_parents) {
                (IndirectSelection::Cautious, _) => parents.iter().all(|&p| direct[p]),
                (IndirectSelection::Buildable, Some(b)) => parents.iter().all(|&p| b[p]),
                _ => false,
            };
            if ok {
                selected[i] = true;
            }
        }
        selected
    }

    /// Nodes an atom matches, with its graph operators applied.
    pub(super) fn atom(&self, a: &Atom) -> std::result::Result<Vec<bool>, Problem> {
        let mut base = Vec::with_capacity(self.m.nodes.len());
        for node in &self.m.nodes {
            base.push(self.node_matches(a, node)?);
        }
        let start: Vec<usize> = base
            .iter()
            .enumerate()
            .filter(|(_, &b)| b)
            .map(|(i, _)| i)
            .collect();
        let mut out = base;
        let dag = &self.m.dag;
        if a.parents {
            out = or(&out, &dag.reach(&start, true, a.parents_depth));
        }
        if a.children {
            out = or(&out, &dag.reach(&start, false, a.children_depth));
        }
        if a.childrens_parents {
            out = or(&out, &dag.reach(&start, false, None));
            let all: Vec<usize> = out
                .iter()
                .enumerate()
                .filter(|(_, &b)| b)
                .map(|(i, _)| i)
                .collect();
            out = or(&out, &dag.reach(&all, true, None));
        }
        Ok(out)
    }

    /// `state:new`, `state:modified`…: the node against the previous manifest.
    fn state_matches(&self, a: &Atom, node: &Node) -> std::result::Result<bool, Problem> {
        let v = a.value.as_str();
        let Some(state) = self.state else {
            return Err(a.problem(
                Code::SelectorState,
                format!("`state:{v}` needs a previous manifest"),
                "needs --state",
                "pass --state DIR, where DIR holds the manifest.json of an earlier run".into(),
            ));
        };
        let old = state.nodes.get(&node.unique_id);
        let body_changed = old.is_some_and(|(c, _)| c != &node.checksum);
        let config_changed = old.is_some_and(|(_, c)| !config_equal(c, &node.config));
        Ok(match v {
            "new" => old.is_none(),
            "old" => old.is_some(),
            "modified" => old.is_none() || body_changed || config_changed,
            "unmodified" => old.is_some() && !body_changed && !config_changed,
            "modified.body" => old.is_none() || body_changed,
            "modified.configs" => old.is_none() || config_changed,
            _ => {
                return Err(a.problem(
                    Code::SelectorValue,
                    format!("unknown state `{v}`"),
                    "unknown state",
                    "states: new, old, modified, unmodified, modified.body, modified.configs"
                        .into(),
                ))
            }
        })
    }

    pub(super) fn node_matches(&self, a: &Atom, node: &Node) -> std::result::Result<bool, Problem> {
        let v = a.value.as_str();
        Ok(match a.method.as_str() {
            "fqn" => v == "*" || fqn_matches(&node.fqn, v),
            "unique_id" => glob_match(v, &node.unique_id),
            "tag" => node.tags().iter().any(|t| glob_match(v, t)),
            "package" => glob_match(v, &node.package_name),
            "path" => {
                let p = node.original_file_path.as_str();
                let v = v.trim_end_matches('/').trim_start_matches("./");
                glob_match(v, p)
                    || p.starts_with(&format!("{v}/"))
                    || (v.contains('*') && glob_match(&format!("{v}/*"), p))
            }
            "file" => {
                let file = node.original_file_path.rsplit('/').next().unwrap_or("");
                let stem = file.rsplit_once('.').map(|(s, _)| s).unwrap_or(file);
                node.resource_type != ResourceType::Source
                    && (glob_match(v, file) || glob_match(v, stem))
            }
            "config" => {
                let mut keys = a.args.iter();
                let mut cur: Option<&Json> = keys.next().and_then(|k| node.config.get(k));
                for k in keys {
                    cur = cur.and_then(|c| c.get(k));
                }
                cur.is_some_and(|c| json_matches(c, v))
            }
            "resource_type" => {
                let Some(rt) = ResourceType::parse(v) else {
                    let names: Vec<&str> = ResourceType::ALL.iter().map(|r| r.as_str()).collect();
                    return Err(a.problem(
                        Code::SelectorValue,
                        format!("unknown resource type `{v}`"),
                        "unknown resource type",
                        format!("resource types: {}", names.join(", ")),
                    ));
                };
                node.resource_type == rt
            }
            "source" => source_matches(v, node),
            "exposure" => node.resource_type == ResourceType::Exposure && glob_match(v, &node.name),
            "metric" => node.resource_type == ResourceType::Metric && glob_match(v, &node.name),
            "semantic_model" => {
                node.resource_type == ResourceType::SemanticModel && glob_match(v, &node.name)
            }
            "saved_query" => {
                node.resource_type == ResourceType::SavedQuery && glob_match(v, &node.name)
            }
            "test_type" => {
                let generic = node.test.as_ref().is_some_and(|t| t.metadata.is_some());
                match v {
                    "generic" | "schema" => node.resource_type == ResourceType::Test && generic,
                    "singular" => node.resource_type == ResourceType::Test && !generic,
                    // dbt 1.8: data tests are generic and singular ones.
                    "data" => node.resource_type == ResourceType::Test,
                    "unit" => node.resource_type == ResourceType::UnitTest,
                    _ => {
                        return Err(a.problem(
                            Code::SelectorValue,
                            format!("unknown test type `{v}`"),
                            "unknown test type",
                            "test types: data (generic and singular), generic, singular, unit"
                                .into(),
                        ))
                    }
                }
            }
            "test_name" => match &node.test {
                Some(t) => glob_match(
                    v,
                    t.metadata
                        .as_ref()
                        .map(|m| m.name.as_str())
                        .unwrap_or(&node.name),
                ),
                None => false,
            },
            "state" => self.state_matches(a, node)?,
            _ => false,
        })
    }
}

/// `source:name`, `source:name.table`, `source:package.name.table`.
fn source_matches(v: &str, node: &Node) -> bool {
    match &node.source {
        Some(s) => {
            let parts: Vec<&str> = v.split('.').collect();
            let candidates: [&[&str]; 1] = [&[&node.package_name, &s.source_name, &node.name]];
            let full = candidates[0];
            match parts.len() {
                1 => glob_match(parts[0], &s.source_name),
                2 => glob_match(parts[0], &s.source_name) && glob_match(parts[1], &node.name),
                3 => {
                    glob_match(parts[0], full[0])
                        && glob_match(parts[1], full[1])
                        && glob_match(parts[2], full[2])
                }
                _ => false,
            }
        }
        None => false,
    }
}

/// The whole request: `--select`, `--exclude`, `--selector`, indirect selection.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub select: Vec<String>,
    pub exclude: Vec<String>,
    pub selector: Option<String>,
    pub indirect: IndirectSelection,
}

/// Selected node indexes of `m`, in manifest (unique id) order.
pub fn select(
    m: &Manifest,
    selectors: &Selectors,
    req: &Request,
    state: Option<&PriorState>,
) -> Result<Vec<usize>> {
    let mut problems = Problems::default();
    let mut mode = req.indirect;
    let include = if !req.select.is_empty() {
        let mut items = Vec::new();
        for s in &req.select {
            match parse("--select", s) {
                Ok(e) => items.push(e),
                Err(p) => problems.push(p),
            }
        }
        Expr::Union(items)
    } else if let Some(name) = req.selector.as_ref().or(selectors.default.as_ref()) {
        match selectors.expr(name) {
            Ok((e, ind)) => {
                if let Some(i) = ind {
                    mode = i;
                }
                e
            }
            Err(p) => {
                problems.push(p);
                Expr::All
            }
        }
    } else {
        Expr::All
    };
    let mut excludes = Vec::new();
    for s in &req.exclude {
        match parse("--exclude", s) {
            Ok(e) => excludes.push(e),
            Err(p) => problems.push(p),
        }
    }
    problems.into_result()?;
    let expr = if excludes.is_empty() {
        include
    } else {
        Expr::Difference(Box::new(include), excludes)
    };
    let ev = Evaluator { m, state, mode };
    let (direct, _) = ev.eval(&expr).map_err(Problems::from)?;
    Ok(direct
        .iter()
        .enumerate()
        .filter(|(_, &b)| b)
        .map(|(i, _)| i)
        .collect())
}
