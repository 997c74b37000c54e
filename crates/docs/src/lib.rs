//! `pm docs`: a static site under `target/docs/`, opened from disk: the
//! lineage graph (laid out here, drawn as SVG in the page), a panel per node,
//! search, and a project overview. `site_data` is pure; `write_site` writes
//! `index.html` (page and script) and `pm-docs-data.js` (the project).

pub mod layout;

use pm_core::manifest::{Manifest, Node, ResourceType};
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

const PAGE: &str = include_str!("page.html");

/// Column types from the warehouse: (schema, relation) → [(column, type)].
pub type Catalog = HashMap<(String, String), Vec<(String, String)>>;

/// What the last run said about each node: unique id → status, and the run.
#[derive(Debug, Default, Clone)]
pub struct LastRun {
    pub status: HashMap<String, String>,
    pub doc: Option<Json>,
}

impl LastRun {
    /// Reads `target/run_results.json` when there is one.
    pub fn read(target_dir: &Path) -> LastRun {
        let Ok(text) = std::fs::read_to_string(target_dir.join("run_results.json")) else {
            return LastRun::default();
        };
        let Ok(doc) = serde_json::from_str::<Json>(&text) else {
            return LastRun::default();
        };
        let status = doc["results"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .filter_map(|r| {
                        Some((
                            r["unique_id"].as_str()?.to_string(),
                            r["status"].as_str()?.to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        LastRun {
            status,
            doc: Some(doc),
        }
    }
}

/// Whether a node is drawn in the lineage graph.
pub fn in_graph(n: &Node) -> bool {
    matches!(
        n.resource_type,
        ResourceType::Model
            | ResourceType::Source
            | ResourceType::Seed
            | ResourceType::Snapshot
            | ResourceType::Exposure
            | ResourceType::SemanticModel
            | ResourceType::Metric
            | ResourceType::SavedQuery
    )
}

/// What the page says of a metric: its label, type, what it reads, and
/// what `pm query` can group it by.
fn metric_json(n: &Node, layer: &pm_core::semantic::Layer) -> Json {
    use pm_core::semantic::definition::Definition;
    let Some(Definition::Metric(m)) = n.semantic.as_deref() else {
        return Json::Null;
    };
    let p = &m.type_params;
    let mut reads: Vec<String> = m.metric_inputs().iter().map(|i| i.name.clone()).collect();
    reads.extend(
        m.own_measures()
            .iter()
            .map(|x| format!("measure {}", x.name)),
    );
    json!({
        "label": m.label,
        "type": m.metric_type.as_str(),
        "expr": p.expr,
        "reads": reads,
        "filter": m.filter.iter().flat_map(|f| f.templates().map(String::from)).collect::<Vec<_>>(),
        "dimensions": pm_core::semantic::query::group_by_names(layer, &m.name).unwrap_or_default(),
    })
}

/// `{{ doc("name") }}` in a description replaced by the docs block's text.
pub fn resolve_docs(text: &str, blocks: &HashMap<&str, &str>) -> String {
    pm_core::text::resolve_doc_refs(text, |name| blocks.get(name).copied())
}

/// Markdown to HTML that is safe to show: the only tags are those Markdown
/// itself makes (raw HTML in a description is shown as text, not run), and
/// links and images may only point at http(s), mailto, or relative places.
pub fn markdown(text: &str) -> String {
    use pulldown_cmark::{CowStr, Event, Tag};
    let safe = |url: CowStr<'static>| -> CowStr<'static> {
        if is_safe_url(&url) {
            url
        } else {
            CowStr::Borrowed("#")
        }
    };
    let parser = pulldown_cmark::Parser::new_ext(text, pulldown_cmark::Options::ENABLE_TABLES).map(
        |event| match event.into_static() {
            Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => Event::Start(Tag::Link {
                link_type,
                dest_url: safe(dest_url),
                title,
                id,
            }),
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }) => Event::Start(Tag::Image {
                link_type,
                dest_url: safe(dest_url),
                title,
                id,
            }),
            other => other,
        },
    );
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, parser);
    html
}

/// A link target that cannot run script: http(s), mailto, or no scheme at all.
fn is_safe_url(url: &str) -> bool {
    let url = url.trim();
    let scheme_end = url.find(':');
    let path_start = url.find(['/', '?', '#']);
    match (scheme_end, path_start) {
        (None, _) => true,
        (Some(c), Some(p)) if p < c => true,
        (Some(c), _) => matches!(
            url[..c].to_ascii_lowercase().as_str(),
            "http" | "https" | "mailto"
        ),
    }
}

/// A path through `points` (an SVG `d`): a curve between each pair. An
/// edge that crosses many layers keeps at most eight of its points, evenly
/// spread: in a big graph such edges are most of the page's weight.
fn edge_path(points: &[(f64, f64)]) -> String {
    const MOST: usize = 8;
    let kept: Vec<(f64, f64)>;
    let points = if points.len() > MOST {
        let last = points.len() - 1;
        kept = (0..MOST).map(|k| points[k * last / (MOST - 1)]).collect();
        &kept[..]
    } else {
        points
    };
    let mut d = String::with_capacity(points.len() * 40);
    if let Some(&(x, y)) = points.first() {
        d.push_str(&format!("M{x:.0},{y:.0}"));
    }
    for w in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        let mx = (x0 + x1) / 2.0;
        d.push_str(&format!("C{mx:.0},{y0:.0} {mx:.0},{y1:.0} {x1:.0},{y1:.0}"));
    }
    d
}

/// Everything the page shows, for the nodes `shown` (indexes into the manifest).
pub fn site_data(m: &Manifest, shown: &[usize], catalog: &Catalog, last: &LastRun) -> Json {
    let blocks: HashMap<&str, &str> = m
        .docs
        .iter()
        .map(|d| (d.name.as_str(), d.block_contents.as_str()))
        .collect();
    let pos_of: HashMap<usize, usize> = shown.iter().enumerate().map(|(k, &i)| (i, k)).collect();
    let (tests_of, tested_models) = tests_by_attachment(m, last);
    let edges: Vec<(usize, usize)> = shown
        .iter()
        .enumerate()
        .flat_map(|(k, &i)| {
            m.dag.children[i]
                .iter()
                .filter_map(|c| pos_of.get(c).map(|&kc| (k, kc)))
                .collect::<Vec<_>>()
        })
        .collect();
    let lay = layout::layout(shown.len(), &edges, 8);
    let mut columns_total = 0usize;
    let mut columns_tested = 0usize;
    let layer = pm_core::manifest::layer::semantic_layer(&m.nodes);
    let nodes: Vec<Json> = shown
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let n = &m.nodes[i];
            let desc_text = resolve_docs(&n.description, &blocks);
            let warehouse = catalog.get(&(n.schema.clone(), n.alias.clone()));
            let (cols, total, tested) = node_columns(n, warehouse, &tests_of, &blocks);
            if n.resource_type == ResourceType::Model {
                columns_total += total;
                columns_tested += tested;
            }
            let owner = owner_of(n);
            let parents: Vec<usize> = m.dag.parents[i]
                .iter()
                .filter_map(|p| pos_of.get(p).copied())
                .collect();
            let children: Vec<usize> = m.dag.children[i]
                .iter()
                .filter_map(|c| pos_of.get(c).copied())
                .collect();
            json!({
                "id": n.unique_id,
                "name": n.name,
                "type": n.resource_type.as_str(),
                "mat": n.materialized_name(),
                "rel": n.relation_name(),
                "file": n.original_file_path,
                "desc": markdown(&desc_text),
                "text": desc_text,
                "tags": n.tags(),
                "meta": n.meta,
                "owner": owner,
                "cols": cols,
                "tests": tests_of.get(&(n.unique_id.as_str(), None)).cloned().unwrap_or_default(),
                "has_sql": match n.resource_type {
                    ResourceType::Source | ResourceType::SemanticModel | ResourceType::Metric => false,
                    // A saved query has SQL when it is exported.
                    ResourceType::SavedQuery => n.compiled_code.is_some(),
                    _ => true,
                },
                "metric": metric_json(n, &layer),
                "parents": parents,
                "children": children,
                "x": lay.pos[k].0,
                "y": lay.pos[k].1,
            })
        })
        .collect();
    let edges_json: Vec<Json> = lay
        .edges
        .iter()
        .map(|(p, c, pts)| json!([p, c, edge_path(pts)]))
        .collect();

    let counts = Counts::of(m, &tested_models);
    let last_run = last.doc.as_ref().map(last_run_summary);
    json!({
        "project": m.project_name,
        "generated_at": m.generated_at,
        "node_w": layout::NODE_W,
        "sql_chunk": SQL_CHUNK,
        "node_h": layout::NODE_H,
        "width": lay.width,
        "height": lay.height,
        "nodes": nodes,
        "edges": edges_json,
        "overview": {
            "by_type": counts.by_type,
            "by_layer": counts.by_layer,
            "by_materialization": counts.by_materialization,
            "models": counts.models,
            "models_tested": counts.models_tested,
            "columns": columns_total,
            "columns_tested": columns_tested,
            "last_run": last_run,
        },
    })
}

/// A node's columns as the page lists them (described ones first, then
/// those only the warehouse has), with how many there are and how many are
/// tested.
fn node_columns(
    n: &Node,
    warehouse: Option<&Vec<(String, String)>>,
    tests_of: &TestsOf<'_>,
    blocks: &HashMap<&str, &str>,
) -> (Vec<Json>, usize, usize) {
    let mut tested = 0usize;
    let mut cols: Vec<Json> = Vec::new();
    let mut listed: Vec<&str> = Vec::new();
    for (name, c) in &n.columns {
        listed.push(name);
        let tests = tests_of
            .get(&(n.unique_id.as_str(), Some(name.as_str())))
            .cloned()
            .unwrap_or_default();
        if !tests.is_empty() {
            tested += 1;
        }
        let ty = warehouse
            .and_then(|w| w.iter().find(|(cn, _)| cn == name).map(|(_, t)| t.clone()))
            .or_else(|| c.data_type.clone());
        cols.push(json!({
            "name": name,
            "desc": markdown(&resolve_docs(&c.description, blocks)),
            "type": ty,
            "tests": tests,
        }));
    }
    // Columns the warehouse has that YAML does not describe.
    if let Some(w) = warehouse {
        for (cn, ty) in w {
            if !listed.contains(&cn.as_str()) {
                cols.push(json!({"name": cn, "desc": "", "type": ty, "tests": []}));
            }
        }
    }
    let described = n.columns.len();
    (cols, described, tested)
}

/// The overview's counts: nodes by type, models by layer and materialization.
struct Counts {
    by_type: BTreeMap<String, usize>,
    by_layer: BTreeMap<String, usize>,
    by_materialization: BTreeMap<String, usize>,
    models: usize,
    models_tested: usize,
}

impl Counts {
    fn of(m: &Manifest, tested_models: &HashSet<&str>) -> Counts {
        let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
        let mut by_layer: BTreeMap<String, usize> = BTreeMap::new();
        let mut by_materialization: BTreeMap<String, usize> = BTreeMap::new();
        let (mut models, mut models_tested) = (0, 0);
        for n in m.nodes.iter().filter(|n| {
            in_graph(n) || matches!(n.resource_type, ResourceType::Test | ResourceType::UnitTest)
        }) {
            *by_type
                .entry(n.resource_type.as_str().to_string())
                .or_default() += 1;
            if n.resource_type == ResourceType::Model {
                models += 1;
                if tested_models.contains(n.unique_id.as_str()) {
                    models_tested += 1;
                }
                let layer = if n.fqn.len() > 2 {
                    n.fqn[1].clone()
                } else {
                    "(top level)".into()
                };
                *by_layer.entry(layer).or_default() += 1;
                *by_materialization
                    .entry(n.materialized_name().to_string())
                    .or_default() += 1;
            }
        }
        Counts {
            by_type,
            by_layer,
            by_materialization,
            models,
            models_tested,
        }
    }
}

/// Data tests by the node and column they are attached to, and unit tests
/// by their model, with their last status; and the nodes that have any test.
type TestsOf<'m> = HashMap<(&'m str, Option<&'m str>), Vec<Json>>;

fn tests_by_attachment<'m>(
    m: &'m Manifest,
    last: &LastRun,
) -> (TestsOf<'m>, std::collections::HashSet<&'m str>) {
    let mut tests_of: HashMap<(&str, Option<&str>), Vec<Json>> = HashMap::new();
    let mut tested_models: std::collections::HashSet<&str> = Default::default();
    for n in &m.nodes {
        // A data test is attached to its node (and column); a unit test to its model.
        let (kind, attached, column): (String, Vec<&str>, Option<&str>) =
            match (&n.test, &n.unit_test) {
                (Some(t), _) => (
                    t.metadata
                        .as_ref()
                        .map(|md| md.name.clone())
                        .unwrap_or_else(|| "singular".into()),
                    match &t.attached_node {
                        Some(a) => vec![a.as_str()],
                        None => n.depends_on.iter().map(String::as_str).collect(),
                    },
                    t.column_name.as_deref(),
                ),
                (None, Some(u)) => (
                    format!("unit test {}", n.name),
                    vec![u.model.as_str()],
                    None,
                ),
                (None, None) => continue,
            };
        let entry = json!({
            "name": n.name,
            "kind": kind,
            "status": last.status.get(&n.unique_id),
        });
        for a in attached {
            tested_models.insert(a);
            tests_of.entry((a, column)).or_default().push(entry.clone());
        }
    }
    (tests_of, tested_models)
}

/// A node's owner: `meta.owner`, or an exposure's owner's name or email.
fn owner_of(n: &pm_core::manifest::Node) -> Option<String> {
    n.meta
        .get("owner")
        .or_else(|| n.typed_config.meta.get("owner"))
        .and_then(Json::as_str)
        .map(str::to_string)
        .or_else(|| {
            n.exposure
                .as_ref()
                .and_then(|e| e.owner.get("name").or_else(|| e.owner.get("email")))
                .and_then(Json::as_str)
                .map(str::to_string)
        })
}

/// The last run's statuses and slowest nodes, from run_results.json.
fn last_run_summary(doc: &Json) -> Json {
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let mut slow: Vec<(String, f64)> = Vec::new();
    for r in doc["results"].as_array().into_iter().flatten() {
        if let Some(s) = r["status"].as_str() {
            *statuses.entry(s.to_string()).or_default() += 1;
        }
        if let (Some(id), Some(t)) = (r["unique_id"].as_str(), r["execution_time"].as_f64()) {
            slow.push((id.to_string(), t));
        }
    }
    slow.sort_by(|a, b| b.1.total_cmp(&a.1));
    slow.truncate(5);
    json!({
        "generated_at": doc["metadata"]["generated_at"],
        "elapsed": doc["elapsed_time"].as_f64().unwrap_or(0.0),
        "statuses": statuses,
        "slowest": slow,
    })
}

/// Nodes per SQL file: the page loads a node's SQL when it is opened, so
/// opening the site never parses every model's SQL.
pub const SQL_CHUNK: usize = 500;

/// The raw and compiled SQL of the shown nodes, in `shown` order.
pub fn sql_data(m: &Manifest, shown: &[usize]) -> Vec<Json> {
    shown
        .iter()
        .map(|&i| {
            let n = &m.nodes[i];
            if n.resource_type == ResourceType::Source {
                json!([null, null])
            } else {
                json!([&*n.raw_code, n.compiled_code])
            }
        })
        .collect()
}

/// Writes the site; returns the path of `index.html`.
pub fn write_site(
    dir: &Path,
    project: &str,
    data: &Json,
    sql: &[Json],
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let title: String = project
        .chars()
        .map(|c| match c {
            '<' | '>' | '&' | '"' => '_',
            c => c,
        })
        .collect();
    let index = dir.join("index.html");
    std::fs::write(&index, PAGE.replace("__TITLE__", &title))?;
    // A script, not fetched JSON: pages opened from disk may not fetch.
    let mut js = Vec::with_capacity(1 << 20);
    js.extend_from_slice(b"window.PM_DATA = ");
    serde_json::to_writer(&mut js, data)?;
    js.extend_from_slice(b";\n");
    std::fs::write(dir.join("pm-docs-data.js"), js)?;
    // Stale chunks of a bigger project would never be loaded, but go anyway.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("pm-docs-sql-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    for (k, chunk) in sql.chunks(SQL_CHUNK).enumerate() {
        let mut js = Vec::with_capacity(1 << 16);
        js.extend_from_slice(format!("PM_SQL_CHUNK({k}, ").as_bytes());
        serde_json::to_writer(&mut js, chunk)?;
        js.extend_from_slice(b");\n");
        std::fs::write(dir.join(format!("pm-docs-sql-{k}.js")), js)?;
    }
    Ok(index)
}

/// The columns of the catalog query's rows.
pub fn catalog_from_rows(
    rows: impl IntoIterator<Item = (String, String, String, String)>,
) -> Catalog {
    let mut c: Catalog = HashMap::new();
    for (schema, table, column, ty) in rows {
        c.entry((schema, table)).or_default().push((column, ty));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_blocks_and_markdown() {
        // Block contents are trimmed when read (compile::blocks), as dbt trims them.
        let blocks: HashMap<&str, &str> = [("status", "One of *placed*, *shipped*.")].into();
        assert_eq!(
            resolve_docs("{{ doc(\"status\") }} More.", &blocks),
            "One of *placed*, *shipped*. More."
        );
        assert_eq!(
            resolve_docs("{{ doc('nope') }}", &blocks),
            "{{ doc('nope') }}"
        );
        assert_eq!(
            markdown("One of *placed*."),
            "<p>One of <em>placed</em>.</p>\n"
        );
    }

    #[test]
    fn markdown_never_lets_script_through() {
        let html = markdown(
            "Hi <script>alert(1)</script> <img src=x onerror=alert(2)>\n\n<iframe src=\"javascript:alert(3)\"></iframe>\n\n\
             [a](javascript:alert(4)) [b](JavaScript:alert(5)) ![c](data:text/html,x) [d](https://example.com/x) [e](../x.html#y) [f](mailto:a@b.c)",
        );
        for bad in [
            "<script",
            "<img src=x",
            "<iframe",
            "href=\"javascript:",
            "href=\"JavaScript:",
            "src=\"data:",
        ] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
        for kept in [
            "&lt;script&gt;",
            "href=\"https://example.com/x\"",
            "href=\"../x.html#y\"",
            "href=\"mailto:a@b.c\"",
            "href=\"#\"",
        ] {
            assert!(html.contains(kept), "{kept} not in {html}");
        }
    }

    #[test]
    fn edge_paths_are_curves_through_their_points() {
        assert_eq!(
            edge_path(&[(0.0, 10.0), (100.0, 50.0)]),
            "M0,10C50,10 50,50 100,50"
        );
        // A long edge keeps eight points, its ends among them.
        let long: Vec<(f64, f64)> = (0..30).map(|k| (k as f64 * 10.0, 0.0)).collect();
        let d = edge_path(&long);
        assert_eq!(d.matches('C').count(), 7);
        assert!(d.starts_with("M0,0") && d.ends_with(" 290,0"), "{d}");
    }
}
