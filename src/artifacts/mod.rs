//! Files under `target/`: `manifest.json` and `compiled/**.sql`, with dbt's
//! field names where the meaning is the same.

use crate::error::{Problem, Result};
use crate::manifest::{Manifest, Node, ResourceType};
use rayon::prelude::*;
use serde_json::{json, Map, Value as Json};
use std::path::{Path, PathBuf};

pub const MANIFEST_SCHEMA: &str = "https://schemas.getdbt.com/dbt/manifest/v12.json";

/// Where a node's compiled SQL goes, relative to the target folder.
pub fn compiled_path(m: &Manifest, n: &Node) -> String {
    let base = if n.test.as_ref().is_some_and(|t| t.metadata.is_some()) {
        // Generic tests: next to the YAML that declares them, one file each.
        format!("{}/{}.sql", n.original_file_path, n.name)
    } else {
        n.original_file_path.clone()
    };
    format!("compiled/{}/{}", m.project_name, base)
}

fn node_json(m: &Manifest, n: &Node, with_compiled: bool) -> Json {
    let mut o = Map::new();
    let columns: Map<String, Json> = n
        .columns
        .iter()
        .map(|(k, c)| (k.clone(), serde_json::to_value(c).unwrap_or(Json::Null)))
        .collect();
    o.insert("unique_id".into(), json!(n.unique_id));
    o.insert("resource_type".into(), json!(n.resource_type.as_str()));
    o.insert("package_name".into(), json!(n.package_name));
    o.insert("name".into(), json!(n.name));
    o.insert("path".into(), json!(n.path));
    o.insert("original_file_path".into(), json!(n.original_file_path));
    o.insert(
        "patch_path".into(),
        json!(n
            .patch_path
            .as_ref()
            .map(|p| format!("{}://{}", n.package_name, p))),
    );
    o.insert("fqn".into(), json!(n.fqn));
    o.insert("database".into(), json!(n.database));
    o.insert("schema".into(), json!(n.schema));
    o.insert("description".into(), json!(n.description));
    o.insert("columns".into(), Json::Object(columns));
    o.insert("meta".into(), Json::Object(n.meta.clone()));
    o.insert("tags".into(), json!(n.tags()));
    o.insert(
        "config".into(),
        serde_json::to_value(&n.config).unwrap_or(Json::Null),
    );
    o.insert("relation_name".into(), json!(n.relation_name()));
    match n.resource_type {
        ResourceType::Source => {
            if let Some(s) = &n.source {
                o.insert("source_name".into(), json!(s.source_name));
                o.insert("source_description".into(), json!(s.source_description));
                o.insert("loader".into(), json!(s.loader));
                o.insert("identifier".into(), json!(s.identifier));
                o.insert("loaded_at_field".into(), json!(s.loaded_at_field));
                o.insert("freshness".into(), s.freshness.clone());
                o.insert("external".into(), s.external.clone());
                o.insert("source_meta".into(), Json::Object(s.source_meta.clone()));
            }
        }
        ResourceType::Exposure => {
            if let Some(e) = &n.exposure {
                o.insert("type".into(), json!(e.kind));
                o.insert("label".into(), json!(e.label));
                o.insert("url".into(), json!(e.url));
                o.insert("maturity".into(), json!(e.maturity));
                o.insert("owner".into(), e.owner.clone());
            }
            o.insert("refs".into(), json!(refs_json(n)));
            o.insert("sources".into(), json!(n.sources));
            o.insert(
                "depends_on".into(),
                json!({"macros": [], "nodes": n.depends_on}),
            );
        }
        _ => {
            o.insert("alias".into(), json!(n.alias));
            o.insert(
                "checksum".into(),
                json!({"name": "sha256", "checksum": n.checksum}),
            );
            o.insert("language".into(), json!("sql"));
            o.insert("raw_code".into(), json!(&*n.raw_code));
            o.insert(
                "docs".into(),
                if n.docs.is_null() {
                    json!({"show": true, "node_color": null})
                } else {
                    n.docs.clone()
                },
            );
            o.insert("refs".into(), json!(refs_json(n)));
            o.insert("sources".into(), json!(n.sources));
            o.insert(
                "depends_on".into(),
                json!({"macros": n.depends_on_macros, "nodes": n.depends_on}),
            );
            if with_compiled && n.compiled_code.is_some() {
                o.insert(
                    "compiled_path".into(),
                    json!(format!("{}/{}", m_target(m), compiled_path(m, n))),
                );
                o.insert("compiled".into(), json!(true));
                o.insert("compiled_code".into(), json!(n.compiled_code));
                o.insert("extra_ctes_injected".into(), json!(true));
                o.insert(
                    "extra_ctes".into(),
                    json!(n
                        .extra_ctes
                        .iter()
                        .map(|(id, sql)| json!({"id": id, "sql": sql}))
                        .collect::<Vec<_>>()),
                );
            }
            if let Some(t) = &n.test {
                if let Some(md) = &t.metadata {
                    o.insert(
                        "test_metadata".into(),
                        serde_json::to_value(md).unwrap_or(Json::Null),
                    );
                }
                o.insert("column_name".into(), json!(t.column_name));
                o.insert("attached_node".into(), json!(t.attached_node));
                o.insert("file_key_name".into(), json!(t.file_key_name));
            }
        }
    }
    for (k, v) in &n.extra {
        o.entry(k.clone()).or_insert(v.clone());
    }
    Json::Object(o)
}

fn m_target(_m: &Manifest) -> &'static str {
    "target"
}

fn refs_json(n: &Node) -> Vec<Json> {
    n.refs
        .iter()
        .map(|r| json!({"name": r.name, "package": r.package, "version": r.version}))
        .collect()
}

/// Serialises the manifest. Nodes are serialised in parallel and joined in
/// unique-id order, so the output is deterministic.
pub fn manifest_json(m: &Manifest, with_compiled: bool) -> String {
    let parts: Vec<(ResourceType, String, String)> = m
        .nodes
        .par_iter()
        .map(|n| {
            let body = serde_json::to_string(&node_json(m, n, with_compiled))
                .unwrap_or_else(|_| "null".into());
            (
                n.resource_type,
                serde_json::to_string(&n.unique_id).unwrap_or_default(),
                body,
            )
        })
        .collect();
    let mut out = String::with_capacity(
        parts
            .iter()
            .map(|p| p.2.len() + p.1.len() + 2)
            .sum::<usize>()
            + 4096,
    );
    let metadata = json!({
        "dbt_schema_version": MANIFEST_SCHEMA,
        "dbt_version": format!("pm-{}", env!("CARGO_PKG_VERSION")),
        "generated_at": m.generated_at,
        "invocation_id": m.invocation_id,
        "env": {},
        "project_name": m.project_name,
        "adapter_type": m.target.kind,
    });
    out.push_str("{\"metadata\":");
    out.push_str(&metadata.to_string());
    for (key, kinds) in [
        (
            "nodes",
            &[
                ResourceType::Model,
                ResourceType::Seed,
                ResourceType::Snapshot,
                ResourceType::Analysis,
                ResourceType::Test,
            ][..],
        ),
        ("sources", &[ResourceType::Source][..]),
        ("exposures", &[ResourceType::Exposure][..]),
    ] {
        out.push_str(&format!(",\"{key}\":{{"));
        let mut first = true;
        for (rt, id, body) in &parts {
            if kinds.contains(rt) {
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(id);
                out.push(':');
                out.push_str(body);
            }
        }
        out.push('}');
    }
    let macros: Map<String, Json> = m
        .macros
        .iter()
        .map(|mac| {
            let mut v = serde_json::to_value(mac).unwrap_or(Json::Null);
            if let Json::Object(o) = &mut v {
                o.insert("resource_type".into(), json!("macro"));
                o.insert(
                    "arguments".into(),
                    json!(mac
                        .arguments
                        .iter()
                        .map(|a| json!({"name": a, "type": null, "description": ""}))
                        .collect::<Vec<_>>()),
                );
            }
            (mac.unique_id.clone(), v)
        })
        .collect();
    out.push_str(",\"macros\":");
    out.push_str(&Json::Object(macros).to_string());
    let docs: Map<String, Json> = m
        .docs
        .iter()
        .map(|d| {
            (
                d.unique_id.clone(),
                serde_json::to_value(d).unwrap_or(Json::Null),
            )
        })
        .collect();
    out.push_str(",\"docs\":");
    out.push_str(&Json::Object(docs).to_string());
    let mut disabled: Map<String, Json> = Map::new();
    for n in &m.disabled {
        let entry = disabled
            .entry(n.unique_id.clone())
            .or_insert_with(|| json!([]));
        if let Json::Array(a) = entry {
            a.push(node_json(m, n, false));
        }
    }
    out.push_str(",\"disabled\":");
    out.push_str(&Json::Object(disabled).to_string());
    let mut parent_map = Map::new();
    let mut child_map = Map::new();
    for (i, n) in m.nodes.iter().enumerate() {
        parent_map.insert(
            n.unique_id.clone(),
            json!(m.dag.parents[i]
                .iter()
                .map(|&p| &m.nodes[p].unique_id)
                .collect::<Vec<_>>()),
        );
        let mut kids: Vec<&String> = m.dag.children[i]
            .iter()
            .map(|&c| &m.nodes[c].unique_id)
            .collect();
        kids.sort();
        child_map.insert(n.unique_id.clone(), json!(kids));
    }
    out.push_str(",\"parent_map\":");
    out.push_str(&Json::Object(parent_map).to_string());
    out.push_str(",\"child_map\":");
    out.push_str(&Json::Object(child_map).to_string());
    let selectors: Map<String, Json> = m
        .selectors
        .get("selectors")
        .and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| Some((s.get("name")?.as_str()?.to_string(), s.clone())))
                .collect()
        })
        .unwrap_or_default();
    out.push_str(",\"selectors\":");
    out.push_str(&Json::Object(selectors).to_string());
    out.push_str(",\"metrics\":{},\"groups\":{},\"group_map\":{},\"semantic_models\":{},\"saved_queries\":{},\"unit_tests\":{}}");
    out
}

fn io_problem(path: &Path, e: std::io::Error) -> Problem {
    Problem::new(
        "artifacts::write",
        format!("cannot write {}: {e}", path.display()),
    )
    .help("check that the target folder is writable and the disk is not full")
}

/// Writes `target/manifest.json`, through a temporary file so a reader never
/// sees half a manifest.
pub fn write_manifest(target_dir: &Path, m: &Manifest, with_compiled: bool) -> Result<PathBuf> {
    std::fs::create_dir_all(target_dir).map_err(|e| io_problem(target_dir, e))?;
    let path = target_dir.join("manifest.json");
    let tmp = target_dir.join(".manifest.json.tmp");
    std::fs::write(&tmp, manifest_json(m, with_compiled)).map_err(|e| io_problem(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io_problem(&path, e))?;
    Ok(path)
}

/// Writes the compiled SQL of the given nodes under `target/compiled/`.
pub fn write_compiled(target_dir: &Path, m: &Manifest, nodes: &[usize]) -> Result<usize> {
    let files: Vec<(PathBuf, &str)> = nodes
        .iter()
        .filter_map(|&i| {
            let n = &m.nodes[i];
            n.compiled_code
                .as_deref()
                .map(|sql| (target_dir.join(compiled_path(m, n)), sql))
        })
        .collect();
    let mut dirs: Vec<&Path> = files.iter().filter_map(|(p, _)| p.parent()).collect();
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        std::fs::create_dir_all(d).map_err(|e| io_problem(d, e))?;
    }
    files
        .par_iter()
        .map(|(p, sql)| {
            // Leave unchanged files alone: cheaper than rewriting, and keeps mtimes meaningful.
            if std::fs::read(p).is_ok_and(|old| old == sql.as_bytes()) {
                return Ok(());
            }
            std::fs::write(p, sql).map_err(|e| io_problem(p, e))
        })
        .collect::<std::result::Result<Vec<()>, Problem>>()?;
    Ok(files.len())
}
