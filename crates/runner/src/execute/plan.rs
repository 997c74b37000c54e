//! Which jobs a run has and what each waits for: pure, tested without a database.

use pm_core::manifest::{Manifest, ResourceType};
use pm_core::materialize::test::{self as tests, Check, TestConfig};
use std::collections::{BTreeMap, HashMap, HashSet};

/// One unit of work.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// A model or seed.
    Build(usize),
    /// A data test, on its own query.
    Test(usize),
    /// A unit test: its model's SQL on fixture rows.
    UnitTest(usize),
    /// Tests of one relation counted by one scan (each reports its own result).
    Merged {
        from: String,
        tests: Vec<(usize, String, Check)>,
    },
}

impl Work {
    pub fn nodes(&self) -> Vec<usize> {
        match self {
            Work::Build(i) | Work::Test(i) | Work::UnitTest(i) => vec![*i],
            Work::Merged { tests, .. } => tests.iter().map(|t| t.0).collect(),
        }
    }

    pub(super) fn is_test(&self) -> bool {
        !matches!(self, Work::Build(_))
    }

    fn is_data_test(&self) -> bool {
        matches!(self, Work::Test(_) | Work::Merged { .. })
    }
}

/// The jobs of a run and the order among them.
#[derive(Debug, Clone)]
pub struct Plan {
    pub jobs: Vec<Work>,
    /// The jobs each job waits for.
    pub waits_for: Vec<Vec<usize>>,
    pub children: Vec<Vec<usize>>,
    /// Each job's expected time to the end of the run along its longest
    /// chain of waiting jobs, in microseconds: of the jobs ready, the one
    /// with the longest starts first, so that the slowest chain does not
    /// start last ([`Plan::estimate_remaining`]).
    pub remaining: Vec<u64>,
}

impl Plan {
    /// Sets each job's remaining time from `seconds`, the time each node
    /// took when it last ran (by unique id). A node never run counts as the
    /// median of those known (1 ms when none is), so that without any
    /// history the longest chain of jobs goes first.
    pub fn estimate_remaining(&mut self, m: &Manifest, seconds: &HashMap<String, f64>) {
        let mut known: Vec<f64> = self
            .jobs
            .iter()
            .flat_map(Work::nodes)
            .filter_map(|i| seconds.get(&m.nodes[i].unique_id).copied())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .collect();
        known.sort_by(f64::total_cmp);
        let default = known.get(known.len() / 2).copied().unwrap_or(0.001);
        let micros = |s: f64| (s.max(0.0) * 1e6) as u64;
        let own: Vec<u64> = self
            .jobs
            .iter()
            .map(|job| {
                let nodes = job.nodes();
                let times = nodes.iter().map(|&i| {
                    seconds
                        .get(&m.nodes[i].unique_id)
                        .copied()
                        .filter(|s| s.is_finite())
                        .unwrap_or(default)
                });
                // A merged scan takes about as long as its slowest test alone.
                micros(if matches!(job, Work::Merged { .. }) {
                    times.fold(0.0, f64::max)
                } else {
                    times.sum()
                })
            })
            .collect();
        self.remaining = longest_paths(&self.children, &own);
    }
}

/// For each job, its own time plus the longest of its children's (a DAG).
fn longest_paths(children: &[Vec<usize>], own: &[u64]) -> Vec<u64> {
    let n = children.len();
    let mut order = Vec::with_capacity(n);
    let mut waiting = vec![0usize; n];
    for cs in children {
        for &c in cs {
            waiting[c] += 1;
        }
    }
    let mut stack: Vec<usize> = (0..n).filter(|&k| waiting[k] == 0).collect();
    while let Some(k) = stack.pop() {
        order.push(k);
        for &c in &children[k] {
            waiting[c] -= 1;
            if waiting[c] == 0 {
                stack.push(c);
            }
        }
    }
    let mut remaining = own.to_vec();
    for &k in order.iter().rev() {
        let below = children[k].iter().map(|&c| remaining[c]).max().unwrap_or(0);
        remaining[k] = own[k].saturating_add(below);
    }
    remaining
}

/// Parents of `i` that are in the run, also those reached through ephemeral
/// models (their SQL is inlined into the node's).
pub(super) fn run_parents(m: &Manifest, i: usize, in_run: &HashSet<usize>) -> Vec<usize> {
    let mut found: Vec<usize> = Vec::new();
    let mut stack: Vec<usize> = m.dag.parents[i].clone();
    // An export reads the models its query joins to and the time spine
    // (join_to_timespine, offsets, cumulative windows), which its graph
    // does not show, as in dbt's: it waits for every semantic model's model
    // and the spine.
    if pm_core::materialize::export::has_exports(&m.nodes[i]) {
        stack.extend(semantic_inputs(m));
    }
    let mut seen = HashSet::new();
    while let Some(p) = stack.pop() {
        if !seen.insert(p) {
            continue;
        }
        if in_run.contains(&p) {
            if !found.contains(&p) {
                found.push(p);
            }
        } else if m.nodes[p].is_ephemeral()
            || matches!(
                m.nodes[p].resource_type,
                ResourceType::SemanticModel | ResourceType::Metric
            )
        {
            // Never built: what they read is what the node waits for.
            stack.extend(m.dag.parents[p].iter().copied());
        }
    }
    found
}

/// The semantic models (whose models an export's query may join) and the
/// models the semantic layer uses as its time spine.
fn semantic_inputs(m: &Manifest) -> Vec<usize> {
    m.nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            n.resource_type == ResourceType::SemanticModel
                || (n.resource_type == ResourceType::Model
                    && (n.extra.contains_key("time_spine")
                        || n.name == pm_core::manifest::layer::LEGACY_TIME_SPINE))
        })
        .map(|(i, _)| i)
        .collect()
}

/// A unit test runs once its model's parents are built (it reads their
/// column types), and, when the run builds its model, before it: a failing
/// unit test keeps the model from being built.
fn unit_test_waits(
    m: &Manifest,
    i: usize,
    k: usize,
    in_run: &HashSet<usize>,
    job_of: &HashMap<usize, usize>,
    waits: &mut [HashSet<usize>],
) {
    let Some(model) = m.nodes[i]
        .unit_test
        .as_ref()
        .and_then(|u| m.index.get(&u.model).copied())
    else {
        return;
    };
    for p in run_parents(m, model, in_run) {
        if let Some(&pj) = job_of.get(&p) {
            waits[k].insert(pj);
        }
    }
    if let Some(&mj) = job_of.get(&model) {
        waits[mj].insert(k);
    }
}

/// The nodes that wait for a test of `tested`, as in dbt: the children of a
/// tested node; for a test of several nodes (a relationships test, a
/// singular test reading several models), the nodes downstream of every one
/// of them, so that a test of a fact and a dimension holds back what is
/// built from both, not everything built from the dimension.
fn waiting_for_test(
    m: &Manifest,
    tested: &[usize],
    node_children: &HashMap<usize, Vec<usize>>,
) -> Vec<usize> {
    match tested {
        [] => Vec::new(),
        [p] => node_children.get(p).cloned().unwrap_or_default(),
        [first, rest @ ..] => {
            let mut common = m.dag.reach(&[*first], false, None);
            for &t in rest {
                let below = m.dag.reach(&[t], false, None);
                for (c, b) in common.iter_mut().zip(below) {
                    *c &= b;
                }
            }
            common
                .iter()
                .enumerate()
                .filter(|(_, &c)| c)
                .map(|(i, _)| i)
                .collect()
        }
    }
}

/// Orders `selected` into jobs. Tests wait for the nodes they test; with
/// `merge`, mergeable tests of one relation share a job. When the run also
/// builds (dbt's `build`), the children of a tested node wait for its tests,
/// so that a failing test keeps bad rows from flowing downstream (for a
/// test of several nodes, the nodes downstream of all of them, as in dbt).
pub fn plan(
    m: &Manifest,
    selected: &[usize],
    configs: &HashMap<usize, TestConfig>,
    merge: bool,
) -> Plan {
    let in_run: HashSet<usize> = selected.iter().copied().collect();
    let (jobs, job_of) = jobs_of(m, selected, configs, merge);
    let waits = waits_of(m, &jobs, &job_of, &in_run);
    let waits_for: Vec<Vec<usize>> = waits
        .into_iter()
        .map(|s| {
            let mut v: Vec<usize> = s.into_iter().collect();
            v.sort_unstable();
            v
        })
        .collect();
    let mut children = vec![Vec::new(); jobs.len()];
    for (k, w) in waits_for.iter().enumerate() {
        for &p in w {
            children[p].push(k);
        }
    }
    let remaining = longest_paths(&children, &vec![1; jobs.len()]);
    Plan {
        jobs,
        waits_for,
        children,
        remaining,
    }
}

/// The jobs of `selected`, in order, and the job of each node: a build or
/// a unit test each; a data test alone, or merged with the mergeable tests
/// of the same relation.
fn jobs_of(
    m: &Manifest,
    selected: &[usize],
    configs: &HashMap<usize, TestConfig>,
    merge: bool,
) -> (Vec<Work>, HashMap<usize, usize>) {
    let mut jobs: Vec<Work> = Vec::new();
    let mut job_of: HashMap<usize, usize> = HashMap::new();
    // Merge groups keyed by the scan they share, in first-seen order.
    let mut groups: BTreeMap<String, Vec<(usize, String, Check)>> = BTreeMap::new();
    let mut group_order: Vec<String> = Vec::new();
    for &i in selected {
        let n = &m.nodes[i];
        if n.resource_type == ResourceType::UnitTest {
            job_of.insert(i, jobs.len());
            jobs.push(Work::UnitTest(i));
            continue;
        }
        if n.resource_type != ResourceType::Test {
            job_of.insert(i, jobs.len());
            jobs.push(Work::Build(i));
            continue;
        }
        let merged = merge
            .then(|| {
                let parents = &m.dag.parents[i];
                let cfg = configs.get(&i)?;
                if parents.len() != 1
                    || cfg.warn_if.holds(0).is_none()
                    || cfg.error_if.holds(0).is_none()
                {
                    return None;
                }
                tests::mergeable(m, n, cfg, &m.nodes[parents[0]])
            })
            .flatten();
        match merged {
            Some(mg) => {
                if !groups.contains_key(&mg.from) {
                    group_order.push(mg.from.clone());
                }
                groups
                    .entry(mg.from)
                    .or_default()
                    .push((i, mg.column, mg.check));
            }
            None => {
                job_of.insert(i, jobs.len());
                jobs.push(Work::Test(i));
            }
        }
    }
    for from in group_order {
        let Some(members) = groups.remove(&from) else {
            continue;
        };
        let work = if members.len() == 1 {
            Work::Test(members[0].0)
        } else {
            Work::Merged {
                from,
                tests: members,
            }
        };
        let k = jobs.len();
        for i in work.nodes() {
            job_of.insert(i, k);
        }
        jobs.push(work);
    }
    (jobs, job_of)
}

/// What each job waits for: the jobs of its nodes' parents in the run (a
/// unit test's, see `unit_test_waits`); when the run also builds, a tested
/// node's children wait for its tests too.
fn waits_of(
    m: &Manifest,
    jobs: &[Work],
    job_of: &HashMap<usize, usize>,
    in_run: &HashSet<usize>,
) -> Vec<HashSet<usize>> {
    let mut waits: Vec<HashSet<usize>> = vec![HashSet::new(); jobs.len()];
    let mut node_children: HashMap<usize, Vec<usize>> = HashMap::new();
    for (k, job) in jobs.iter().enumerate() {
        if let Work::UnitTest(i) = job {
            unit_test_waits(m, *i, k, in_run, job_of, &mut waits);
            continue;
        }
        for i in job.nodes() {
            for p in run_parents(m, i, in_run) {
                node_children.entry(p).or_default().push(i);
                if let Some(&pj) = job_of.get(&p) {
                    if pj != k {
                        waits[k].insert(pj);
                    }
                }
            }
        }
    }
    // dbt build: a tested node's children also wait for its tests; for a
    // test of several nodes, the nodes downstream of all of them (which
    // never closes a cycle).
    let builds = jobs.iter().any(|j| !j.is_test());
    if builds {
        for (k, job) in jobs.iter().enumerate() {
            if !job.is_data_test() {
                continue;
            }
            let mut tested: Vec<usize> = Vec::new();
            for i in job.nodes() {
                for p in run_parents(m, i, in_run) {
                    if !tested.contains(&p) {
                        tested.push(p);
                    }
                }
            }
            for c in waiting_for_test(m, &tested, &node_children) {
                let Some(&cj) = job_of.get(&c) else { continue };
                if jobs[cj].is_test() || cj == k || tested.contains(&c) {
                    continue;
                }
                waits[cj].insert(k);
            }
        }
    }
    waits
}

#[cfg(test)]
mod order_tests {
    use super::*;

    #[test]
    fn the_longest_remaining_chain_is_counted_from_each_job() {
        // 0 -> 1 -> 2, and 3 alone: 3 is slow, the chain slower.
        let children = vec![vec![1], vec![2], vec![], vec![]];
        assert_eq!(
            longest_paths(&children, &[10, 20, 30, 50]),
            [60, 50, 30, 50]
        );
        // A diamond counts its slower branch: 0 -> {1, 2} -> 3.
        let children = vec![vec![1, 2], vec![3], vec![3], vec![]];
        assert_eq!(longest_paths(&children, &[1, 5, 9, 2]), [12, 7, 11, 2]);
    }

    /// The manifest of a project made of `files`, compiled without a database.
    fn manifest_of(files: &[(&str, &str)]) -> Manifest {
        let dir = tempfile::tempdir().unwrap();
        let all = [(
            "dbt_project.yml",
            "name: p\nversion: '1.0'\nconfig-version: 2\nprofile: p\n",
        )];
        for (path, text) in all.iter().chain(files) {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let project = pm_core::loader::load(dir.path()).unwrap();
        let options = pm_core::compile::CompileOptions {
            target: pm_core::loader::profile::Target::embedded("p"),
            cli_vars: Default::default(),
            which: "build".into(),
            full_refresh: false,
            store_failures: false,
            empty: false,
            deferred: Default::default(),
            existing_incremental: Default::default(),
        };
        pm_core::compile::compile(&project, &options)
            .unwrap()
            .manifest
    }

    /// The plan of a `pm build` of everything, and the job of each node by name.
    fn build_plan(m: &Manifest, merge: bool) -> (Plan, HashMap<String, usize>) {
        let selected: Vec<usize> = (0..m.nodes.len()).collect();
        let configs: HashMap<usize, TestConfig> = selected
            .iter()
            .filter(|&&i| m.nodes[i].resource_type == ResourceType::Test)
            .map(|&i| (i, TestConfig::of(m, &m.nodes[i], false).unwrap()))
            .collect();
        let p = plan(m, &selected, &configs, merge);
        let mut job = HashMap::new();
        for (k, w) in p.jobs.iter().enumerate() {
            for i in w.nodes() {
                job.insert(m.nodes[i].name.clone(), k);
            }
        }
        (p, job)
    }

    const SCHEMA: &str = "version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: id\n        data_tests: [not_null, unique]\n      - name: status\n        data_tests: [not_null]\n      - name: customer_id\n        data_tests:\n          - relationships:\n              arguments:\n                to: ref('customers')\n                field: id\n";

    fn shop() -> Manifest {
        manifest_of(&[
            ("models/customers.sql", "select 1 as id\n"),
            ("models/orders.sql", "select 1 as id, 'x' as status, 1 as customer_id\n"),
            ("models/revenue.sql", "select count(*) as n from {{ ref('orders') }}\n"),
            ("models/by_customer.sql", "select c.id from {{ ref('customers') }} c join {{ ref('orders') }} o on o.customer_id = c.id\n"),
            ("models/schema.yml", SCHEMA),
        ])
    }

    #[test]
    fn tests_wait_for_their_model_and_what_reads_it_waits_for_them() {
        let m = shop();
        let (p, job) = build_plan(&m, true);
        let waits = |name: &str| -> Vec<usize> { p.waits_for[job[name]].clone() };
        // The not_null tests of orders share one scan; unique runs alone.
        let not_null = job["not_null_orders_id"];
        assert_eq!(job["not_null_orders_status"], not_null);
        assert!(matches!(p.jobs[not_null], Work::Merged { .. }));
        assert_ne!(job["unique_orders_id"], not_null);
        assert_eq!(waits("not_null_orders_id"), [job["orders"]]);
        // revenue reads orders: it waits for orders' one-model tests, not
        // for the relationships test (it does not read customers).
        let revenue = waits("revenue");
        assert!(revenue.contains(&not_null) && revenue.contains(&job["unique_orders_id"]));
        let relationships = job["relationships_orders_customer_id__id__ref_customers_"];
        assert!(!revenue.contains(&relationships), "{revenue:?}");
        // by_customer reads both: it waits for that test too.
        assert!(waits("by_customer").contains(&relationships));
        // Without merging, each test is a job of its own.
        let (p, job) = build_plan(&m, false);
        assert_ne!(job["not_null_orders_id"], job["not_null_orders_status"]);
        assert_eq!(p.jobs.len(), m.nodes.len());
    }
}
