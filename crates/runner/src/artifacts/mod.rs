//! Files under `target/`: `manifest.json` and `compiled/**.sql`, with dbt's
//! field names where the meaning is the same.

use pm_core::error::{Code, Problem, Result};
use pm_core::manifest::{Manifest, Node, ResourceType};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::{json, Map, Value as Json};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub mod semantic;

pub const MANIFEST_SCHEMA: &str = "https://schemas.getdbt.com/dbt/manifest/v12.json";

/// A node as the manifest writes it, borrowing from the node: serialised
/// straight to bytes, with dbt's field names.
#[derive(Serialize)]
struct NodeOut<'a> {
    unique_id: &'a str,
    resource_type: &'static str,
    package_name: &'a str,
    name: &'a str,
    path: &'a str,
    original_file_path: &'a str,
    // An exposure has no relation: none of these (dbt's schema).
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_path: Option<Option<String>>,
    fqn: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<&'a str>,
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    columns: Option<&'a indexmap::IndexMap<String, pm_core::manifest::Column>>,
    meta: &'a Map<String, Json>,
    tags: Vec<String>,
    config: std::borrow::Cow<'a, pm_core::loader::config::Config>,
    #[serde(skip_serializing_if = "Option::is_none")]
    relation_name: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    defer_relation: Option<Json>,
    #[serde(flatten)]
    source: Option<SourceOut<'a>>,
    #[serde(flatten)]
    exposure: Option<ExposureOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alias: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checksum: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    docs: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refs: Option<Vec<Json>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sources: Option<&'a [[String; 2]]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    depends_on: Option<Json>,
    #[serde(flatten)]
    compiled: Option<CompiledOut<'a>>,
    #[serde(flatten)]
    test: Option<TestOut<'a>>,
    #[serde(flatten)]
    extra: &'a Map<String, Json>,
}

#[derive(Serialize)]
struct SourceOut<'a> {
    source_name: &'a str,
    source_description: &'a str,
    loader: &'a str,
    identifier: &'a str,
    loaded_at_field: &'a Option<String>,
    freshness: &'a Json,
    external: &'a Json,
    source_meta: &'a Map<String, Json>,
}

#[derive(Serialize)]
struct ExposureOut<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    label: &'a Option<String>,
    url: &'a Option<String>,
    maturity: &'a Option<String>,
    owner: &'a Json,
}

#[derive(Serialize)]
struct CompiledOut<'a> {
    compiled_path: String,
    compiled: bool,
    compiled_code: &'a str,
    extra_ctes_injected: bool,
    extra_ctes: Vec<Json>,
}

#[derive(Serialize)]
struct TestOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    test_metadata: Option<&'a pm_core::manifest::TestMetadata>,
    column_name: &'a Option<String>,
    attached_node: &'a Option<String>,
    file_key_name: &'a Option<String>,
}

fn node_out<'a>(m: &Manifest, n: &'a Node, with_compiled: bool) -> NodeOut<'a> {
    let sql_node = !matches!(
        n.resource_type,
        ResourceType::Source | ResourceType::Exposure
    );
    let depends_on = match n.resource_type {
        ResourceType::Source => None,
        ResourceType::Exposure => Some(json!({"macros": [], "nodes": n.depends_on})),
        // A seed depends on macros only, and has no language, refs or sources (dbt's schema).
        ResourceType::Seed => Some(json!({"macros": n.depends_on_macros})),
        _ => Some(json!({"macros": n.depends_on_macros, "nodes": n.depends_on})),
    };
    let seed = n.resource_type == ResourceType::Seed;
    let relation = n.resource_type != ResourceType::Exposure;
    NodeOut {
        unique_id: &n.unique_id,
        resource_type: n.resource_type.as_str(),
        package_name: &n.package_name,
        name: &n.name,
        path: &n.path,
        original_file_path: &n.original_file_path,
        patch_path: relation.then(|| {
            n.patch_path
                .as_ref()
                .map(|p| format!("{}://{}", n.package_name, p))
        }),
        fqn: &n.fqn,
        database: relation.then_some(n.database.as_str()),
        schema: relation.then_some(n.schema.as_str()),
        description: &n.description,
        columns: relation.then_some(&n.columns),
        meta: &n.meta,
        tags: n.tags(),
        config: pm_core::loader::config::as_written_by_dbt(&n.config),
        relation_name: relation.then(|| n.relation_name()),
        defer_relation: n.defer_relation.as_ref().map(|r| {
            let [database, schema, alias] = &**r;
            json!({
                "database": database,
                "schema": schema,
                "alias": alias,
                "relation_name": format!("{}.{}.{}", pm_core::text::quote_ident(database), pm_core::text::quote_ident(schema), pm_core::text::quote_ident(alias)),
                "resource_type": n.resource_type.as_str(),
                "name": n.name,
            })
        }),
        source: n.source.as_ref().map(|s| SourceOut {
            source_name: &s.source_name,
            source_description: &s.source_description,
            loader: &s.loader,
            identifier: &s.identifier,
            loaded_at_field: &s.loaded_at_field,
            freshness: &s.freshness,
            external: &s.external,
            source_meta: &s.source_meta,
        }),
        exposure: n.exposure.as_ref().map(|e| ExposureOut {
            kind: &e.kind,
            label: &e.label,
            url: &e.url,
            maturity: &e.maturity,
            owner: &e.owner,
        }),
        alias: sql_node.then_some(n.alias.as_str()),
        checksum: sql_node.then(|| json!({"name": "sha256", "checksum": n.checksum})),
        language: (sql_node && !seed).then_some("sql"),
        raw_code: sql_node.then_some(&*n.raw_code),
        docs: sql_node.then(|| {
            if n.docs.is_null() {
                json!({"show": true, "node_color": null})
            } else {
                n.docs.clone()
            }
        }),
        refs: (n.resource_type != ResourceType::Source && !seed).then(|| refs_json(n)),
        sources: (n.resource_type != ResourceType::Source && !seed).then_some(n.sources.as_slice()),
        depends_on,
        compiled: match (&n.compiled_code, with_compiled && sql_node) {
            (Some(code), true) => Some(CompiledOut {
                compiled_path: format!("{}/{}", m_target(m), m.compiled_path(n)),
                compiled: true,
                compiled_code: code,
                extra_ctes_injected: true,
                extra_ctes: n
                    .extra_ctes
                    .iter()
                    .map(|(id, sql)| json!({"id": id, "sql": sql}))
                    .collect(),
            }),
            _ => None,
        },
        test: n.test.as_ref().map(|t| TestOut {
            test_metadata: t.metadata.as_ref(),
            column_name: &t.column_name,
            attached_node: &t.attached_node,
            file_key_name: &t.file_key_name,
        }),
        extra: &n.extra,
    }
}

/// A node as a JSON value (for `pm ls --output json` and disabled nodes).
pub fn node_json(m: &Manifest, n: &Node, with_compiled: bool) -> Json {
    serde_json::to_value(node_out(m, n, with_compiled)).unwrap_or(Json::Null)
}

fn m_target(m: &Manifest) -> &str {
    m.target_path.trim_end_matches('/')
}

fn refs_json(n: &Node) -> Vec<Json> {
    n.refs
        .iter()
        .map(|r| json!({"name": r.name, "package": r.package, "version": r.version}))
        .collect()
}

/// Writes the manifest as JSON. Nodes are serialised in parallel, each into
/// its own buffer, and written in unique-id order, so the output is
/// deterministic and never held in memory as one string.
pub fn write_manifest_json<W: Write>(
    w: &mut W,
    m: &Manifest,
    with_compiled: bool,
) -> std::io::Result<()> {
    let metadata = json!({
        "dbt_schema_version": MANIFEST_SCHEMA,
        "dbt_version": format!("pm-{}", env!("CARGO_PKG_VERSION")),
        "generated_at": m.generated_at,
        "invocation_id": m.invocation_id,
        "env": {},
        "project_name": m.project_name,
        "adapter_type": m.target.kind,
    });
    w.write_all(b"{\"metadata\":")?;
    serde_json::to_writer(&mut *w, &metadata)?;
    write_nodes(w, m, with_compiled)?;
    let macros = macros_json(m);
    w.write_all(b",\"macros\":")?;
    serde_json::to_writer(&mut *w, &macros)?;
    let docs: Map<String, Json> = m
        .docs
        .iter()
        .map(|d| {
            let mut v = serde_json::to_value(d).unwrap_or(Json::Null);
            if let Json::Object(o) = &mut v {
                o.insert("resource_type".into(), json!("doc"));
                // dbt's `path`: the file under its docs folder.
                let path = d
                    .original_file_path
                    .split_once('/')
                    .map_or(d.original_file_path.as_str(), |(_, rest)| rest);
                o.insert("path".into(), json!(path));
            }
            (d.unique_id.clone(), v)
        })
        .collect();
    w.write_all(b",\"docs\":")?;
    serde_json::to_writer(&mut *w, &docs)?;
    let mut disabled: Map<String, Json> = Map::new();
    for n in &m.disabled {
        let entry = disabled
            .entry(n.unique_id.clone())
            .or_insert_with(|| json!([]));
        if let Json::Array(a) = entry {
            a.push(node_json(m, n, false));
        }
    }
    w.write_all(b",\"disabled\":")?;
    serde_json::to_writer(&mut *w, &disabled)?;
    write_adjacency(w, m)?;
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
    w.write_all(b",\"selectors\":")?;
    serde_json::to_writer(&mut *w, &selectors)?;
    let groups: Map<String, Json> = m
        .groups
        .iter()
        .map(|g| {
            (
                g.unique_id(),
                json!({
                    "name": g.def.name,
                    "resource_type": "group",
                    "package_name": g.package_name,
                    "path": g.path,
                    "original_file_path": g.path,
                    "unique_id": g.unique_id(),
                    "owner": g.def.owner,
                    "description": g.def.description,
                }),
            )
        })
        .collect();
    // Group name → the nodes in it.
    let mut group_map: Map<String, Json> = Map::new();
    for n in &m.nodes {
        let group = n
            .config
            .get("group")
            .or_else(|| n.extra.get("group"))
            .and_then(Json::as_str);
        if let Some(g) = group {
            if let Json::Array(ids) = group_map.entry(g.to_string()).or_insert_with(|| json!([])) {
                ids.push(json!(n.unique_id));
            }
        }
    }
    w.write_all(b",\"groups\":")?;
    serde_json::to_writer(&mut *w, &groups)?;
    w.write_all(b",\"group_map\":")?;
    serde_json::to_writer(&mut *w, &group_map)?;
    for (key, entries) in semantic::manifest_maps(m) {
        write!(w, ",\"{key}\":")?;
        serde_json::to_writer(&mut *w, &entries)?;
    }
    let unit_tests: Map<String, Json> = m
        .nodes
        .iter()
        .filter_map(|n| Some((n.unique_id.clone(), unit_test_json(n)?)))
        .collect();
    w.write_all(b",\"unit_tests\":")?;
    serde_json::to_writer(&mut *w, &unit_tests)?;
    w.write_all(b"}")?;
    w.flush()
}

/// The manifest's nodes, sources and exposures, each kind an object of
/// unique id → node.
fn write_nodes<W: Write>(w: &mut W, m: &Manifest, with_compiled: bool) -> std::io::Result<()> {
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
        write!(w, ",\"{key}\":{{")?;
        let of_kind: Vec<&Node> = m
            .nodes
            .iter()
            .filter(|n| kinds.contains(&n.resource_type))
            .collect();
        let mut first = true;
        // Batches bound the memory held by serialised nodes waiting to be written.
        for batch in of_kind.chunks(1024) {
            let bodies: Vec<Vec<u8>> = batch
                .par_iter()
                .map(|n| {
                    let mut buf = Vec::with_capacity(n.raw_code.len() * 2 + 2048);
                    let _ = serde_json::to_writer(&mut buf, &n.unique_id);
                    buf.push(b':');
                    if serde_json::to_writer(&mut buf, &node_out(m, n, with_compiled)).is_err() {
                        buf.clear();
                    }
                    buf
                })
                .collect();
            for body in bodies.iter().filter(|b| !b.is_empty()) {
                if !first {
                    w.write_all(b",")?;
                }
                first = false;
                w.write_all(body)?;
            }
        }
        w.write_all(b"}")?;
    }
    Ok(())
}

/// The macros as dbt's manifest.json has them.
fn macros_json(m: &Manifest) -> Map<String, Json> {
    m.macros
        .iter()
        .map(|mac| {
            let mut v = serde_json::to_value(mac).unwrap_or(Json::Null);
            if let Json::Object(o) = &mut v {
                // pm's own (where diagnostics point); not in dbt's schema.
                o.remove("line");
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
        .collect()
}

/// parent_map and child_map: id → sorted ids, written without building maps.
fn write_adjacency<W: Write>(w: &mut W, m: &Manifest) -> std::io::Result<()> {
    for (key, adjacency) in [
        ("parent_map", &m.dag.parents),
        ("child_map", &m.dag.children),
    ] {
        write!(w, ",\"{key}\":{{")?;
        for (i, n) in m.nodes.iter().enumerate() {
            if i > 0 {
                w.write_all(b",")?;
            }
            serde_json::to_writer(&mut *w, &n.unique_id)?;
            w.write_all(b":")?;
            let ids: Vec<&str> = adjacency[i]
                .iter()
                .map(|&j| m.nodes[j].unique_id.as_str())
                .collect();
            serde_json::to_writer(&mut *w, &ids)?;
        }
        w.write_all(b"}")?;
    }
    Ok(())
}

/// A unit test as dbt's manifest.json has it.
fn unit_test_json(n: &Node) -> Option<Json> {
    let u = n.unit_test.as_deref()?;
    let model_name = u.model.rsplit('.').next().unwrap_or(&u.model);
    Some(json!({
        "name": n.name,
        "resource_type": "unit_test",
        "package_name": n.package_name,
        "path": n.path,
        "original_file_path": n.original_file_path,
        "unique_id": n.unique_id,
        "fqn": n.fqn,
        "model": model_name,
        "given": u.given.iter().map(|g| json!({
            "input": g.input,
            "rows": g.rows,
            "format": g.format,
        })).collect::<Vec<_>>(),
        "expect": {"rows": u.expect, "format": u.expect_format},
        "description": n.description,
        "overrides": u.overrides,
        "depends_on": {"macros": n.depends_on_macros, "nodes": n.depends_on},
        "config": {"tags": n.tags(), "meta": n.meta, "enabled": true},
        "checksum": n.checksum,
        "schema": n.schema,
        "versions": null,
        "version": null,
    }))
}

/// Writes a JSON artifact (run_results.json, sources.json), making its folder.
pub fn write_json(path: &Path, doc: &Json) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_problem(dir, e))?;
    }
    let text = serde_json::to_string_pretty(doc).map_err(|e| {
        Problem::new(
            Code::ArtifactsWrite,
            format!("cannot write {}: {e}", path.display()),
        )
    })?;
    write_atomically(path, text.as_bytes()).map_err(|e| io_problem(path, e).into())
}

/// A temporary file name next to `path` that no other process or thread
/// uses at the same time (several pm commands may share a project).
fn temporary_sibling(path: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// Writes a file whole or not at all: readers see the old or the new one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temporary_sibling(path);
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn io_problem(path: &Path, e: std::io::Error) -> Problem {
    Problem::new(
        Code::ArtifactsWrite,
        format!("cannot write {}: {e}", path.display()),
    )
    .help("check that the target folder is writable and the disk is not full")
}

/// Writes `target/manifest.json`, through a temporary file so a reader never
/// sees half a manifest.
pub fn write_manifest(target_dir: &Path, m: &Manifest, with_compiled: bool) -> Result<PathBuf> {
    std::fs::create_dir_all(target_dir).map_err(|e| io_problem(target_dir, e))?;
    let path = target_dir.join("manifest.json");
    let tmp = temporary_sibling(&path);
    let mut timer = pm_core::output::PhaseTimer::new("manifest");
    // Replacing a big manifest frees its blocks, which takes a while (20 ms
    // for 38 MB here). So the old file keeps a second name, and that name is
    // removed by the next run, on a thread of its own while it serialises.
    let old_prefix = ".manifest.json.old.";
    let leftovers: Vec<PathBuf> = std::fs::read_dir(target_dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(old_prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    let cleaner = (!leftovers.is_empty()).then(|| {
        std::thread::spawn(move || {
            for f in leftovers {
                let _ = std::fs::remove_file(f);
            }
        })
    });
    let _ = std::fs::hard_link(
        &path,
        target_dir.join(format!("{old_prefix}{}", std::process::id())),
    );
    let file = std::fs::File::create(&tmp).map_err(|e| io_problem(&tmp, e))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    timer.lap("serialise and write");
    write_manifest_json(&mut w, m, with_compiled).map_err(|e| io_problem(&tmp, e))?;
    drop(w);
    timer.lap("rename");
    std::fs::rename(&tmp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_problem(&path, e)
    })?;
    if let Some(c) = cleaner {
        let _ = c.join();
    }
    timer.lap("semantic manifest");
    write_semantic_manifest(target_dir, m)?;
    timer.lap("done");
    Ok(path)
}

/// `semantic_manifest.json`, as dbt writes it on every parse; none (and
/// an old one removed) when the project has no semantic layer.
fn write_semantic_manifest(target_dir: &Path, m: &Manifest) -> Result<()> {
    let path = target_dir.join("semantic_manifest.json");
    if !m.nodes.iter().any(|n| n.semantic.is_some()) {
        if path.exists() {
            std::fs::remove_file(&path).map_err(|e| io_problem(&path, e))?;
        }
        return Ok(());
    }
    let text = serde_json::to_vec(&semantic::semantic_manifest(m)).map_err(|e| {
        Problem::new(
            Code::ArtifactsWrite,
            format!("cannot write {}: {e}", path.display()),
        )
    })?;
    write_atomically(&path, &text).map_err(|e| io_problem(&path, e).into())
}

/// Where `write_compiled` remembers what it wrote: one `hash length path` line a file.
const COMPILED_INDEX: &str = "compiled/.pm_index";

/// FNV-1a (64 bits) of `text`: the same on every machine and Rust version,
/// as an index on disk needs (std's `DefaultHasher` may change between
/// releases), and fast enough to hash every compiled file of a large project.
fn content_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Writes the compiled SQL of the given nodes under `target/compiled/`.
///
/// A file is left alone when the index of the previous run says it holds this
/// very text and the file is still there with that length: rewriting 15,000
/// unchanged files took 2 s on this machine, reading them back to compare
/// 0.1 s, and this check (one `stat` each) a fraction of that.
pub fn write_compiled(target_dir: &Path, m: &Manifest, nodes: &[usize]) -> Result<usize> {
    let index_path = target_dir.join(COMPILED_INDEX);
    let previous: HashMap<String, (u64, u64)> = std::fs::read_to_string(&index_path)
        .map(|t| {
            t.lines()
                .filter_map(|l| {
                    let mut parts = l.splitn(3, ' ');
                    let hash = u64::from_str_radix(parts.next()?, 16).ok()?;
                    let len = parts.next()?.parse().ok()?;
                    Some((parts.next()?.to_string(), (hash, len)))
                })
                .collect()
        })
        .unwrap_or_default();
    let files: Vec<(String, PathBuf, &str)> = nodes
        .iter()
        .filter_map(|&i| {
            let n = &m.nodes[i];
            n.compiled_code.as_deref().map(|sql| {
                let rel = m.compiled_path(n);
                (target_dir.join(&rel), rel, sql)
            })
        })
        .map(|(abs, rel, sql)| (rel, abs, sql))
        .collect();
    let mut dirs: Vec<&Path> = files.iter().filter_map(|(_, p, _)| p.parent()).collect();
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        std::fs::create_dir_all(d).map_err(|e| io_problem(d, e))?;
    }
    let entries: Vec<(String, u64, u64)> = files
        .par_iter()
        .map(|(rel, p, sql)| {
            let hash = content_hash(sql);
            let len = sql.len() as u64;
            let unchanged = previous.get(rel) == Some(&(hash, len))
                && std::fs::metadata(p).is_ok_and(|md| md.len() == len);
            if !unchanged {
                std::fs::write(p, sql).map_err(|e| io_problem(p, e))?;
            }
            Ok((rel.clone(), hash, len))
        })
        .collect::<std::result::Result<_, Problem>>()?;
    // Entries of files not written this time stay, so a partial compile
    // (`-s one_model`) keeps what it knows about the others.
    let mut index: std::collections::BTreeMap<String, (u64, u64)> = previous.into_iter().collect();
    for (rel, hash, len) in entries {
        index.insert(rel, (hash, len));
    }
    let mut text = String::with_capacity(index.len() * 96);
    for (rel, (hash, len)) in &index {
        text.push_str(&format!("{hash:016x} {len} {rel}\n"));
    }
    if let Some(dir) = index_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_problem(dir, e))?;
    }
    write_atomically(&index_path, text.as_bytes()).map_err(|e| io_problem(&index_path, e))?;
    Ok(files.len())
}

/// What `pm retry` needs of the last run_results.json.
#[derive(Debug)]
pub struct LastRun {
    /// The command (`run`, `seed`, `test`, `build`).
    pub which: String,
    /// The nodes that ended in error, fail or skipped, by unique id.
    pub unfinished: Vec<String>,
    args: Json,
}

impl LastRun {
    /// A boolean flag of the last command (false when absent).
    pub fn flag(&self, key: &str) -> bool {
        self.args.get(key).and_then(Json::as_bool).unwrap_or(false)
    }

    /// A text argument of the last command (None when absent).
    pub fn text(&self, key: &str) -> Option<String> {
        self.args
            .get(key)
            .and_then(Json::as_str)
            .map(str::to_string)
    }
}

/// Reads run_results.json; the error says what is wrong with it.
pub fn read_run_results(path: &Path) -> std::result::Result<LastRun, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let doc: Json = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let args = doc.get("args").cloned().unwrap_or(Json::Null);
    let which = args
        .get("which")
        .and_then(Json::as_str)
        .ok_or("it does not say which command wrote it (args.which)")?
        .to_string();
    let unfinished = doc
        .get("results")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter(|r| {
            matches!(
                r.get("status").and_then(Json::as_str),
                Some("error" | "fail" | "skipped")
            )
        })
        .filter_map(|r| {
            r.get("unique_id")
                .and_then(Json::as_str)
                .map(str::to_string)
        })
        .collect();
    Ok(LastRun {
        which,
        unfinished,
        args,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_index_hash_is_fnv_1a() {
        // Published FNV-1a 64 values: the index stays valid across builds of pm.
        assert_eq!(content_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(content_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(content_hash("foobar"), 0x8594_4171_f739_67e8);
    }
}
