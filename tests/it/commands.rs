//! dbt's smaller commands: `pm show`, `pm clean`, `pm retry`, `pm init`.

use crate::common::*;

#[test]
fn show_runs_a_node_or_inline_sql_and_prints_its_first_rows() {
    let p = LocalProject::new(&[
        (
            "models/people.sql",
            "select * from (values (1, 'ann'), (2, 'bob'), (3, 'cy')) t(id, name)\n",
        ),
        (
            "models/adults.sql",
            "select * from {{ ref('people') }} where id > 1\n",
        ),
        (
            "models/initials.sql",
            "{{ config(materialized='ephemeral') }}\nselect id, left(name, 1) as initial from {{ ref('people') }}\n",
        ),
        (
            "models/shouted.sql",
            "{{ config(materialized='ephemeral') }}\nselect id, upper(initial) as initial from {{ ref('initials') }}\n",
        ),
    ]);
    // A node's SQL runs without building it (people is built first, as a parent).
    let r = pm(p.path(), &["run", "-s", "people"]);
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    let r = pm(p.path(), &["show", "-s", "adults", "--limit", "1"]);
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    assert_eq!(
        r.stdout.trim(),
        "| id | name |\n|----|------|\n|  2 | bob  |"
    );
    assert_eq!(sql(p.path(), "select to_regclass('adults') is null"), "t");

    let r = pm(
        p.path(),
        &[
            "show",
            "--inline",
            "select count(*) as n from {{ ref('people') }}",
            "--output",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    let rows: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(rows, serde_json::json!([{"n": 3}]));
    // Ephemeral models the inline SQL reads (and the ones they read) come
    // along as CTEs, next to its own `with`.
    let r = pm(
        p.path(),
        &[
            "show",
            "--inline",
            "with picked as (select 2 as id) \
             select s.initial, i.initial as lower from picked \
             join {{ ref('shouted') }} s using (id) join {{ ref('initials') }} i using (id)",
        ],
    );
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    assert_eq!(
        r.stdout.trim(),
        "| initial | lower |\n|---------|-------|\n| B       | b     |"
    );

    // Several nodes, or a query that fails, are said so.
    let r = pm(p.path(), &["show", "-s", "people", "adults"]);
    assert_eq!(r.code, 2);
    assert!(
        unwrapped(&r.stderr).contains("names 2 nodes"),
        "{}",
        r.stderr
    );
    let r = pm(
        p.path(),
        &["show", "--inline", "select nope from {{ ref('people') }}"],
    );
    assert_eq!(r.code, 1);
    assert!(
        unwrapped(&r.stderr).contains("column \"nope\" does not exist"),
        "{}",
        r.stderr
    );
}

#[test]
fn clean_deletes_the_clean_targets_inside_the_project_only() {
    let dir = project(&[
        (
            "pm_project.yml",
            "name: tidy\nclean-targets: [target, dbt_packages]\n",
        ),
        ("target/manifest.json", "{}"),
        ("dbt_packages/x/pm_project.yml", "name: x\n"),
        ("models/a.sql", "select 1\n"),
    ]);
    let r = pm(dir.path(), &["clean"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!dir.path().join("target").exists());
    assert!(!dir.path().join("dbt_packages").exists());
    assert!(dir.path().join("models/a.sql").exists());

    write(
        dir.path(),
        "pm_project.yml",
        "name: tidy\nclean-targets: [target, ../elsewhere]\n",
    );
    let r = pm(dir.path(), &["clean"]);
    assert_eq!(r.code, 2);
    assert!(
        unwrapped(&r.stderr).contains("`../elsewhere`, which is not a folder inside the project"),
        "{}",
        r.stderr
    );
}

#[test]
fn retry_runs_again_what_failed_or_was_skipped_with_the_same_flags() {
    let p = LocalProject::new(&[
        (
            "models/bad.sql",
            "{{ config(materialized='table') }}select 1 / 0 as x\n",
        ),
        ("models/child.sql", "select x from {{ ref('bad') }}\n"),
    ]);
    let r = pm(p.path(), &["run", "--empty"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    // The fix, and the retry.
    write(
        p.path(),
        "models/bad.sql",
        "{{ config(materialized='table') }}select 2 as x\n",
    );
    let r = pm(p.path(), &["retry"]);
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    assert!(
        r.stderr.contains("Retrying 2 node(s) of the last `pm run`"),
        "{}",
        r.stderr
    );
    let results = read(p.path(), "target/run_results.json");
    let doc: serde_json::Value = serde_json::from_str(&results).unwrap();
    let ids: Vec<&str> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["unique_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["model.local.bad", "model.local.child"]);
    // The retried run kept --empty: child read no rows from bad.
    assert_eq!(doc["args"]["empty"], true);
    assert_eq!(sql(p.path(), "select count(*) from child"), "0");

    let r = pm(p.path(), &["retry"]);
    assert_eq!(r.code, 0);
    assert!(r.stderr.contains("Nothing to retry"), "{}", r.stderr);
}

#[test]
fn init_makes_a_project_that_builds_on_the_embedded_database() {
    let p = LocalProject::new(&[]);
    let r = pm(p.path(), &["init", "my_shop"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let shop = p.path().join("my_shop");
    let r = pm(&shop, &["build"]);
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    assert!(
        r.stderr.contains("PASS=6 WARN=0 ERROR=0 SKIP=0 TOTAL=6"),
        "{}",
        r.stderr
    );
    // The profile names the embedded database: no "profile not found" line.
    assert!(!r.stderr.contains("is in no profiles.yml"), "{}", r.stderr);
    assert!(!r.stderr.contains("is not in"), "{}", r.stderr);
    assert_eq!(sql(&shop, "select * from my_second_model"), "1|FIRST");
    let r = pm(&shop, &["db", "stop"]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // Not over an existing project, not with a name that is not one.
    let r = pm(p.path(), &["init", "my_shop"]);
    assert_eq!(r.code, 2);
    assert!(
        unwrapped(&r.stderr).contains("already exists and is not empty"),
        "{}",
        r.stderr
    );
    let r = pm(p.path(), &["init", "my-shop"]);
    assert_eq!(r.code, 2);
    assert!(
        unwrapped(&r.stderr).contains("`my-shop` is not a project name"),
        "{}",
        r.stderr
    );
}

#[test]
fn defer_reads_the_state_environments_relation_for_nodes_not_selected() {
    let p = LocalProject::new(&[
        (
            "pm_project.yml",
            "name: local\nprofile: local\n",
        ),
        (
            "profiles.yml",
            "local:\n  target: dev\n  outputs:\n    dev: {type: embedded, schema: dev}\n    prod: {type: embedded, schema: prod}\n",
        ),
        ("models/base.sql", "{{ config(materialized='table') }}select '{{ target.name }}' as env\n"),
        ("models/top.sql", "select env from {{ ref('base') }}\n"),
    ]);
    let r = pm(p.path(), &["build", "--target", "prod"]);
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    std::fs::rename(p.path().join("target"), p.path().join("prod_state")).unwrap();

    // Without --defer, dev has no base to read.
    let r = pm(p.path(), &["run", "-s", "top"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let r = pm(
        p.path(),
        &["run", "-s", "top", "--defer", "--state", "prod_state"],
    );
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    assert!(r.stderr.contains("Deferring 2 node(s)"), "{}", r.stderr);
    assert_eq!(sql(p.path(), "select env from dev.top"), "prod");
    assert!(read(p.path(), "target/compiled/local/models/top.sql").contains("\"prod\".\"base\""));
    // The manifest keeps base's own relation, and the one read, as dbt does.
    let base = &manifest(p.path())["nodes"]["model.local.base"];
    assert_eq!(base["schema"], "dev");
    assert_eq!(base["relation_name"], "\"pm\".\"dev\".\"base\"");
    assert_eq!(base["defer_relation"]["schema"], "prod");
    assert_eq!(
        base["defer_relation"]["relation_name"],
        "\"pm\".\"prod\".\"base\""
    );
    // A unit test types its input's rows from the relation read: prod's base.
    write(
        p.path(),
        "models/unit.yml",
        "unit_tests:\n  - name: top_keeps_env\n    model: top\n    given:\n      - input: ref('base')\n        rows: [{env: x}]\n    expect:\n      rows: [{env: x}]\n",
    );
    let r = pm(
        p.path(),
        &["test", "-s", "top", "--defer", "--state", "prod_state"],
    );
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    assert!(r.stderr.contains("PASS=1"), "{}", r.stderr);
    std::fs::remove_file(p.path().join("models/unit.yml")).unwrap();

    // Once dev has its own base, --defer reads it; --favor-state still reads prod's.
    let r = pm(p.path(), &["run", "-s", "base"]);
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    let r = pm(
        p.path(),
        &["run", "-s", "top", "--defer", "--state", "prod_state"],
    );
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    assert_eq!(sql(p.path(), "select env from dev.top"), "dev");
    let r = pm(
        p.path(),
        &[
            "run",
            "-s",
            "top",
            "--defer",
            "--favor-state",
            "--state",
            "prod_state",
        ],
    );
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    assert_eq!(sql(p.path(), "select env from dev.top"), "prod");

    // pm retry keeps --defer, --favor-state and --state.
    write(
        p.path(),
        "models/top.sql",
        "{{ config(materialized='table') }}select env, 1 / 0 as x from {{ ref('base') }}\n",
    );
    let r = pm(
        p.path(),
        &[
            "run",
            "-s",
            "top",
            "--defer",
            "--favor-state",
            "--state",
            "prod_state",
        ],
    );
    assert_eq!(r.code, 1, "{}", unwrapped(&r.stderr));
    write(
        p.path(),
        "models/top.sql",
        "{{ config(materialized='table') }}select env from {{ ref('base') }}\n",
    );
    let r = pm(p.path(), &["retry"]);
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    assert_eq!(
        sql(p.path(), "select env from dev.top"),
        "prod",
        "the retry deferred as the run did"
    );

    let r = pm(p.path(), &["run", "-s", "top", "--defer"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--state"), "{}", r.stderr);
}
