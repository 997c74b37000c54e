//! The last phase: drafts become the manifest's nodes, with their relation,
//! edges, hooks and final SQL (ephemeral models injected as CTEs).

use super::context::{ResolvedRelation, Shared};
use crate::compile::{ephemeral, Draft, Rendered};
use crate::dag::Dag;
use crate::manifest::{Hook, Node, ResourceType};
use rayon::iter::{IndexedParallelIterator, IntoParallelIterator, ParallelIterator};
use std::collections::{HashMap, HashSet};

/// The nodes, in draft order.
pub(super) fn nodes(
    drafts: Vec<Draft>,
    compiled: Vec<Option<String>>,
    states: &[Rendered],
    hooks: &[(Vec<Hook>, Vec<Hook>)],
    rels: &[ResolvedRelation],
    dag: &Dag,
    shared: &Shared,
) -> Vec<Node> {
    let eph: Vec<bool> = rels.iter().map(ResolvedRelation::ephemeral).collect();
    let ctes = ephemeral::collect_ctes(dag, &eph);
    // Ephemeral bodies are copied into their consumers; everything else moves.
    let bodies: HashMap<usize, String> = ctes
        .iter()
        .flatten()
        .filter_map(|&e| compiled[e].clone().map(|b| (e, b)))
        .collect();
    drafts
        .into_par_iter()
        .zip(compiled.into_par_iter())
        .enumerate()
        .map(|(i, (d, sql))| {
            let mut node = d.node;
            let rel = &rels[i];
            if node.resource_type != ResourceType::Source {
                node.database = rel.database.clone();
                node.schema = rel.schema.clone();
                node.alias = rel.identifier.clone();
            }
            if let Some((_, st)) = &states[i] {
                node.refs = st.refs.clone();
                node.sources = st.sources.clone();
                node.depends_on_macros = st.macros.iter().cloned().collect();
            }
            (node.pre_hooks, node.post_hooks) = hooks[i].clone();
            node.depends_on = dag.parents[i]
                .iter()
                .map(|&p| shared.metas[p].unique_id.clone())
                .collect();
            if node.resource_type != ResourceType::Exposure {
                if let Some(sql) = sql {
                    set_compiled_code(&mut node, sql, &ctes[i], &bodies, rels, shared);
                }
            }
            *node
        })
        .collect()
}

/// The node's final SQL, with the ephemeral models it reads as CTEs.
fn set_compiled_code(
    node: &mut Node,
    sql: String,
    ctes: &[usize],
    bodies: &HashMap<usize, String>,
    rels: &[ResolvedRelation],
    shared: &Shared,
) {
    let sql = if node.resource_type == ResourceType::Snapshot {
        sql.trim().to_string()
    } else {
        sql
    };
    if ctes.is_empty() {
        node.compiled_code = Some(sql);
        return;
    }
    let body = |e: usize| bodies.get(&e).cloned().unwrap_or_default();
    let named: Vec<(String, String)> = ctes
        .iter()
        .map(|&e| (format!("__dbt__cte__{}", rels[e].identifier), body(e)))
        .collect();
    node.compiled_code = Some(ephemeral::inject(&sql, &named));
    node.extra_ctes = ctes
        .iter()
        .map(|&e| (shared.metas[e].unique_id.clone(), body(e)))
        .collect();
}

/// Moves the nodes that disabled themselves (`config(enabled=false)`) to
/// `disabled`; indexes shift, so the DAG is rebuilt on what is left.
pub(super) fn without_self_disabled(
    built: Vec<Node>,
    dag: Dag,
    self_disabled: &HashSet<usize>,
    disabled: &mut Vec<Node>,
) -> (Vec<Node>, Dag) {
    if self_disabled.is_empty() {
        return (built, dag);
    }
    let mut nodes = Vec::with_capacity(built.len());
    for (i, node) in built.into_iter().enumerate() {
        if self_disabled.contains(&i) {
            disabled.push(node);
        } else {
            nodes.push(node);
        }
    }
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.unique_id.as_str(), i))
        .collect();
    let edges: Vec<(usize, usize)> = nodes
        .iter()
        .enumerate()
        .flat_map(|(i, n)| {
            n.depends_on
                .iter()
                .filter_map(|p| index.get(p.as_str()).map(|&p| (p, i)))
                .collect::<Vec<_>>()
        })
        .collect();
    let dag = Dag::build(nodes.len(), edges);
    (nodes, dag)
}
