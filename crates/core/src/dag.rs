//! The dependency graph of a manifest: node `i` of the graph is
//! `manifest.nodes[i]`; an edge runs from a parent to its child. A leaf:
//! it knows indexes and edges, nothing of nodes.

use petgraph::graph::{DiGraph, NodeIndex};

#[derive(Debug, Clone, Default)]
pub struct Dag {
    pub parents: Vec<Vec<usize>>,
    pub children: Vec<Vec<usize>>,
}

impl Dag {
    /// A graph of `n` nodes with edges `(parent, child)`; duplicate edges are merged.
    pub fn build(n: usize, edges: impl IntoIterator<Item = (usize, usize)>) -> Dag {
        let mut parents = vec![Vec::new(); n];
        let mut children = vec![Vec::new(); n];
        for (p, c) in edges {
            if !parents[c].contains(&p) {
                parents[c].push(p);
                children[p].push(c);
            }
        }
        for v in parents.iter_mut().chain(children.iter_mut()) {
            v.sort_unstable();
        }
        Dag { parents, children }
    }

    pub fn len(&self) -> usize {
        self.parents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parents.is_empty()
    }

    /// Every cycle as the ordered list of its nodes (first node smallest),
    /// found through strongly connected components.
    pub fn cycles(&self) -> Vec<Vec<usize>> {
        // Kahn's algorithm: when every node can be taken in dependency
        // order there is no cycle, and nothing else needs building.
        let mut pending: Vec<usize> = self.parents.iter().map(Vec::len).collect();
        let mut ready: Vec<usize> = (0..self.len()).filter(|&i| pending[i] == 0).collect();
        let mut taken = 0;
        while let Some(n) = ready.pop() {
            taken += 1;
            for &c in &self.children[n] {
                pending[c] -= 1;
                if pending[c] == 0 {
                    ready.push(c);
                }
            }
        }
        if taken == self.len() {
            return Vec::new();
        }
        let mut graph: DiGraph<(), ()> = DiGraph::with_capacity(self.len(), self.len());
        for _ in 0..self.len() {
            graph.add_node(());
        }
        for (c, ps) in self.parents.iter().enumerate() {
            for &p in ps {
                graph.add_edge(NodeIndex::new(p), NodeIndex::new(c), ());
            }
        }
        let mut out = Vec::new();
        for scc in petgraph::algo::tarjan_scc(&graph) {
            let members: Vec<usize> = scc.iter().map(|i| i.index()).collect();
            if members.len() == 1 {
                let m = members[0];
                if self.children[m].contains(&m) {
                    out.push(vec![m]);
                }
                continue;
            }
            out.push(self.cycle_path(&members));
        }
        out.sort();
        out
    }

    /// A closed walk through the members of a strongly connected component,
    /// starting at its smallest member (shortest way back, by BFS).
    fn cycle_path(&self, members: &[usize]) -> Vec<usize> {
        let set: std::collections::HashSet<usize> = members.iter().copied().collect();
        let start = *members.iter().min().unwrap_or(&members[0]);
        let mut prev: std::collections::HashMap<usize, usize> = Default::default();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(n) = queue.pop_front() {
            for &c in &self.children[n] {
                if !set.contains(&c) {
                    continue;
                }
                if c == start {
                    let mut path = vec![n];
                    let mut cur = n;
                    while cur != start {
                        cur = prev[&cur];
                        path.push(cur);
                    }
                    path.reverse();
                    return path;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = prev.entry(c) {
                    e.insert(n);
                    queue.push_back(c);
                }
            }
        }
        members.to_vec()
    }

    /// Nodes reachable upwards (`up`) or downwards from `start`, within
    /// `depth` steps when given; the start nodes themselves are not included
    /// unless reached again.
    pub fn reach(&self, start: &[usize], up: bool, depth: Option<usize>) -> Vec<bool> {
        let mut seen = vec![false; self.len()];
        let mut frontier: Vec<usize> = start.to_vec();
        let mut level = 0;
        while !frontier.is_empty() && depth.is_none_or(|d| level < d) {
            let mut next = Vec::new();
            for n in frontier {
                let adj = if up {
                    &self.parents[n]
                } else {
                    &self.children[n]
                };
                for &m in adj {
                    if !seen[m] {
                        seen[m] = true;
                        next.push(m);
                    }
                }
            }
            frontier = next;
            level += 1;
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_whole_cycles() {
        let d = Dag::build(4, [(0, 1), (1, 2), (2, 0), (3, 3)]);
        assert_eq!(d.cycles(), vec![vec![0, 1, 2], vec![3]]);
    }

    #[test]
    fn reach_with_depth() {
        let d = Dag::build(4, [(0, 1), (1, 2), (2, 3)]);
        let r = d.reach(&[0], false, Some(2));
        assert_eq!(r, vec![false, true, true, false]);
        let r = d.reach(&[3], true, None);
        assert_eq!(r, vec![true, true, true, false]);
    }
}
