//! A layered, left-to-right DAG layout (Sugiyama's method, kept simple):
//! each node goes to the layer after its deepest parent; edges that skip
//! layers get a virtual point in every layer they cross; nodes are ordered
//! within their layer by repeated barycenter sweeps, which keeps crossings
//! low; coordinates come from layer and rank, so boxes never overlap.
//! Linear-ish in nodes plus edge length per sweep; pure.

/// Box size and gaps, in SVG units.
pub const NODE_W: f64 = 180.0;
pub const NODE_H: f64 = 28.0;
pub const GAP_X: f64 = 90.0;
pub const GAP_Y: f64 = 12.0;

/// An edge (parent, child) and the points it passes through.
pub type EdgePath = (usize, usize, Vec<(f64, f64)>);

/// Where everything goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Top-left corner of each node's box.
    pub pos: Vec<(f64, f64)>,
    /// Each node's layer (column).
    pub layer: Vec<usize>,
    /// Each edge (parent, child) with its points: from the parent's right
    /// side, through the virtual points, to the child's left side.
    pub edges: Vec<EdgePath>,
    pub width: f64,
    pub height: f64,
}

/// Lays out `n` nodes with `edges` (parent → child, a DAG; edges closing a
/// cycle are ignored).
pub fn layout(n: usize, edges: &[(usize, usize)], sweeps: usize) -> Layout {
    let layer = assign_layers(n, edges);
    let layers = layer.iter().copied().max().map_or(0, |m| m + 1);
    let Spanned {
        vlayer,
        up,
        down,
        chains,
    } = spanned(n, edges, &layer);
    let rows = order_rows(n, layers, &vlayer, &up, &down, sweeps);

    // Coordinates: each layer centred on the tallest.
    let tallest = rows.iter().map(Vec::len).max().unwrap_or(0) as f64;
    let mut xy = vec![(0f64, 0f64); vlayer.len()];
    for (l, row) in rows.iter().enumerate() {
        let offset = (tallest - row.len() as f64) / 2.0;
        for (k, &v) in row.iter().enumerate() {
            xy[v] = (
                l as f64 * (NODE_W + GAP_X),
                (offset + k as f64) * (NODE_H + GAP_Y),
            );
        }
    }
    let edges_out = chains
        .into_iter()
        .map(|(p, c, chain)| {
            let mut pts = Vec::with_capacity(chain.len() + 2);
            pts.push((xy[p].0 + NODE_W, xy[p].1 + NODE_H / 2.0));
            for v in chain {
                pts.push((xy[v].0 + NODE_W / 2.0, xy[v].1 + NODE_H / 2.0));
            }
            pts.push((xy[c].0, xy[c].1 + NODE_H / 2.0));
            (p, c, pts)
        })
        .collect();
    Layout {
        pos: xy[..n].to_vec(),
        layer: layer.clone(),
        edges: edges_out,
        width: (layers as f64 * (NODE_W + GAP_X) - GAP_X).max(0.0),
        height: tallest * (NODE_H + GAP_Y),
    }
}

/// Each node's layer: the longest path from the roots, in topological order
/// (Kahn); roots are pulled right, next to their first child, so sources sit
/// by their users. Nodes on a cycle keep the layer reached so far.
fn assign_layers(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut indegree = vec![0usize; n];
    for &(p, c) in edges {
        if p < n && c < n && p != c {
            children[p].push(c);
            indegree[c] += 1;
        }
    }
    let mut layer = vec![0usize; n];
    let mut queue: std::collections::VecDeque<usize> =
        (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut deg = indegree.clone();
    while let Some(i) = queue.pop_front() {
        for &c in &children[i] {
            layer[c] = layer[c].max(layer[i] + 1);
            deg[c] -= 1;
            if deg[c] == 0 {
                queue.push_back(c);
            }
        }
    }
    for i in 0..n {
        if indegree[i] == 0 {
            if let Some(min_child) = children[i].iter().map(|&c| layer[c]).min() {
                if min_child > 0 {
                    layer[i] = min_child - 1;
                }
            }
        }
    }
    layer
}

/// The graph with virtual points on edges spanning several layers.
/// Vertex ids: 0..n real, n.. virtual.
struct Spanned {
    vlayer: Vec<usize>,
    up: Vec<Vec<usize>>,
    down: Vec<Vec<usize>>,
    /// (parent, child, the virtual points between them).
    chains: Vec<(usize, usize, Vec<usize>)>,
}

fn spanned(n: usize, edges: &[(usize, usize)], layer: &[usize]) -> Spanned {
    let mut vlayer: Vec<usize> = layer.to_vec();
    let mut up: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut down: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut chains: Vec<(usize, usize, Vec<usize>)> = Vec::new();
    for &(p, c) in edges {
        if p >= n || c >= n || p == c || layer[c] <= layer[p] {
            continue;
        }
        let mut chain = Vec::new();
        let mut prev = p;
        for l in layer[p] + 1..layer[c] {
            let v = vlayer.len();
            vlayer.push(l);
            up.push(vec![prev]);
            down.push(Vec::new());
            down[prev].push(v);
            chain.push(v);
            prev = v;
        }
        down[prev].push(c);
        up[c].push(prev);
        chains.push((p, c, chain));
    }

    Spanned {
        vlayer,
        up,
        down,
        chains,
    }
}

/// Each layer's vertices in order: first appearance in a depth-first walk
/// from the roots, then barycenter sweeps, left to right then right to left.
fn order_rows(
    n: usize,
    layers: usize,
    vlayer: &[usize],
    up: &[Vec<usize>],
    down: &[Vec<usize>],
    sweeps: usize,
) -> Vec<Vec<usize>> {
    let total = vlayer.len();
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); layers];
    let mut placed = vec![false; total];
    let mut stack: Vec<usize> = (0..n).filter(|&i| up[i].is_empty()).rev().collect();
    while let Some(v) = stack.pop() {
        if placed[v] {
            continue;
        }
        placed[v] = true;
        rows[vlayer[v]].push(v);
        for &c in down[v].iter().rev() {
            if !placed[c] {
                stack.push(c);
            }
        }
    }
    for v in 0..total {
        if !placed[v] {
            rows[vlayer[v]].push(v);
        }
    }
    let mut rank = vec![0f64; total];
    let set_ranks = |rows: &Vec<Vec<usize>>, rank: &mut Vec<f64>| {
        for row in rows {
            for (k, &v) in row.iter().enumerate() {
                rank[v] = k as f64;
            }
        }
    };
    set_ranks(&rows, &mut rank);

    for sweep in 0..sweeps {
        let forward = sweep % 2 == 0;
        let order: Vec<usize> = if forward {
            (1..layers).collect()
        } else {
            (0..layers.saturating_sub(1)).rev().collect()
        };
        for l in order {
            let row = &mut rows[l];
            let mut keyed: Vec<(f64, usize)> = row
                .iter()
                .map(|&v| {
                    let nb = if forward { &up[v] } else { &down[v] };
                    let key = if nb.is_empty() {
                        rank[v]
                    } else {
                        nb.iter().map(|&u| rank[u]).sum::<f64>() / nb.len() as f64
                    };
                    (key, v)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
            *row = keyed.into_iter().map(|(_, v)| v).collect();
            for (k, &v) in row.iter().enumerate() {
                rank[v] = k as f64;
            }
        }
    }

    rows
}

/// Pairs of edges between adjacent layers that cross (for tests and tuning).
pub fn crossings(l: &Layout) -> usize {
    // Each edge as segments between consecutive points; compare segments
    // that span the same layer gap.
    let mut by_gap: std::collections::HashMap<i64, Vec<(f64, f64)>> = Default::default();
    for (_, _, pts) in &l.edges {
        for w in pts.windows(2) {
            let gap = (w[0].0 / (NODE_W + GAP_X)).floor() as i64;
            by_gap.entry(gap).or_default().push((w[0].1, w[1].1));
        }
    }
    let mut count = 0;
    for segs in by_gap.values() {
        for i in 0..segs.len() {
            for j in i + 1..segs.len() {
                let (a, b) = (segs[i], segs[j]);
                if (a.0 - b.0) * (a.1 - b.1) < 0.0 {
                    count += 1;
                }
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlaps(l: &Layout) -> bool {
        for i in 0..l.pos.len() {
            for j in i + 1..l.pos.len() {
                let (a, b) = (l.pos[i], l.pos[j]);
                if (a.0 - b.0).abs() < NODE_W && (a.1 - b.1).abs() < NODE_H {
                    return true;
                }
            }
        }
        false
    }

    #[test]
    fn boxes_never_overlap_and_edges_go_left_to_right() {
        // A diamond, a long edge and an isolated node.
        let edges = [(0, 1), (0, 2), (1, 3), (2, 3), (0, 3), (3, 4), (0, 4)];
        let l = layout(6, &edges, 8);
        assert!(!overlaps(&l));
        for (p, c, pts) in &l.edges {
            assert!(l.pos[*c].0 > l.pos[*p].0, "{p} -> {c}");
            for w in pts.windows(2) {
                assert!(w[1].0 > w[0].0, "edge {p} -> {c} goes back: {pts:?}");
            }
        }
        assert_eq!(l.layer, vec![0, 1, 1, 2, 3, 0]);
        assert_eq!(l.edges.len(), edges.len());
        // The long edge 0 -> 4 has a point in each layer it crosses.
        let long = l.edges.iter().find(|e| e.0 == 0 && e.1 == 4).unwrap();
        assert_eq!(long.2.len(), 4);
    }

    #[test]
    fn sweeps_remove_crossings() {
        // Two chains whose second layer starts crossed.
        let edges = [(0, 3), (1, 2), (2, 5), (3, 4)];
        let before = crossings(&layout(6, &edges, 0));
        let after = crossings(&layout(6, &edges, 4));
        assert!(after <= before);
        assert_eq!(after, 0);
    }

    #[test]
    fn scales_to_ten_thousand_nodes() {
        // 10 layers of 1,000, each node reading two of the layer before.
        let n = 10_000;
        let mut edges = Vec::new();
        for i in 1_000..n {
            edges.push((i - 1_000, i));
            edges.push(((i / 1_000 - 1) * 1_000 + (i * 7) % 1_000, i));
        }
        let l = layout(n, &edges, 4);
        assert_eq!(l.pos.len(), n);
        assert!(l.layer.iter().all(|&x| x < 10));
    }
}
