//! pm's artifacts validate against the JSON schemas dbt publishes for the
//! versions they name (tests/fixtures/dbt_schemas, from dbt-core v1.11.14's
//! `schemas/dbt/`): manifest v12, run-results v6, sources v3. Tools of dbt's
//! ecosystem read them by these schemas.

use crate::common::*;
use serde_json::Value;
use std::path::Path;

fn schema(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dbt_schemas")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The first errors of `doc` against `schema`, with where they are.
fn problems(schema: &Value, doc: &Value) -> Vec<String> {
    let v = jsonschema::validator_for(schema).unwrap();
    v.iter_errors(doc)
        .take(10)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn artifact(p: &Path, name: &str) -> Value {
    serde_json::from_str(&read(p, &format!("target/{name}"))).unwrap()
}

#[test]
fn artifacts_validate_against_dbts_published_schemas() {
    // Seeds, models with hooks, a snapshot, tests that pass and a source
    // whose table is missing (errors), docs blocks, macros, an analysis.
    let p = LocalProject::fixture("shop");
    std::fs::remove_file(p.path().join("models/staging/stg_page_views.sql")).unwrap();
    write(
        p.path(),
        "models/marts/finance/revenue_daily.sql",
        &format!(
            "{{{{ config(pre_hook='select 1', post_hook=['select 2', {{'sql': 'select 3', 'transaction': false}}]) }}}}\n{}",
            read(p.path(), "models/marts/finance/revenue_daily.sql")
        ),
    );
    let r = pm(p.path(), &["build"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let manifest = artifact(p.path(), "manifest.json");
    assert_eq!(
        problems(&schema("manifest-v12.json"), &manifest),
        Vec::<String>::new()
    );
    let hooks = &manifest["nodes"]["model.shop.revenue_daily"]["config"];
    assert_eq!(hooks["pre-hook"][0]["sql"], "select 1");
    assert_eq!(hooks["post-hook"][1]["transaction"], false);
    let results = artifact(p.path(), "run_results.json");
    assert_eq!(
        problems(&schema("run-results-v6.json"), &results),
        Vec::<String>::new()
    );
    let statuses: std::collections::BTreeSet<&str> = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["status"].as_str())
        .collect();
    assert!(
        statuses.contains("success") && statuses.contains("pass") && statuses.contains("error"),
        "{statuses:?}"
    );
    pm(p.path(), &["source", "freshness"]);
    let sources = artifact(p.path(), "sources.json");
    assert_eq!(
        problems(&schema("sources-v3.json"), &sources),
        Vec::<String>::new()
    );
    // A state comparison reads the hooks back as unchanged.
    std::fs::create_dir_all(p.path().join("prior")).unwrap();
    std::fs::copy(
        p.path().join("target/manifest.json"),
        p.path().join("prior/manifest.json"),
    )
    .unwrap();
    let r = pm(
        p.path(),
        &[
            "ls",
            "-s",
            "state:modified",
            "--state",
            "prior",
            "--output",
            "name",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "", "nothing changed");
}

#[test]
fn a_semantic_layers_manifest_validates_too() {
    let p = LocalProject::fixture("metrics");
    let r = pm(p.path(), &["parse"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let manifest = artifact(p.path(), "manifest.json");
    assert!(!manifest["semantic_models"].as_object().unwrap().is_empty());
    assert_eq!(
        problems(&schema("manifest-v12.json"), &manifest),
        Vec::<String>::new()
    );
}
