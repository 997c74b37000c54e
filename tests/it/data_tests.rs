//! `pm test` and tests inside `pm build`, against the embedded cluster.

use crate::common::*;
use serde_json::Value;

const USERS: &str = "id,email,status,plan_id
1,a@x.com,active,1
2,b@x.com,active,2
2,,churned,3
4,,paused,1
5,e@x.com,trial,9
";

const SCHEMA: &str = r#"version: 2
models:
  - name: stg_users
    columns:
      - name: id
        data_tests:
          - unique
          - not_null
          - is_even
      - name: email
        tests:
          - not_null
          - unique:
              config:
                where: "status = 'active'"
          - not_null:
              name: email_present_warn
              config:
                severity: warn
          - not_null:
              name: email_thresholds
              config:
                warn_if: ">1"
                error_if: ">5"
      - name: status
        data_tests:
          - accepted_values:
              arguments:
                values: [active, churned]
              config:
                store_failures: true
          - accepted_values:
              name: status_limited
              values: [active, churned]
              config:
                limit: 1
                tags: [finance]
      - name: plan_id
        data_tests:
          - relationships:
              to: ref('plans')
              field: id
          - accepted_values:
              values: [1, 2, 3, 9]
              quote: false
          - not_null:
              name: plan_disabled
              config:
                enabled: false
"#;

fn project() -> LocalProject {
    LocalProject::new(&[
        ("seeds/users.csv", USERS),
        ("seeds/plans.csv", "id,name\n1,basic\n2,pro\n"),
        (
            "models/stg_users.sql",
            "select id, nullif(email, '') as email, status, plan_id from {{ ref('users') }}\n",
        ),
        (
            "models/users_by_plan.sql",
            "{{ config(materialized='table') }}\nselect plan_id, count(*) as n from {{ ref('stg_users') }} group by 1\n",
        ),
        ("models/schema.yml", SCHEMA),
        (
            "tests/generic/is_even.sql",
            "{% test is_even(model, column_name) %}\nselect * from {{ model }} where {{ column_name }} % 2 = 1\n{% endtest %}\n",
        ),
        (
            "tests/assert_no_trials.sql",
            "{{ config(tags=['finance']) }}\nselect * from {{ ref('stg_users') }} where status = 'trial'\n",
        ),
    ])
}

/// (status, failures) of each node in run_results.json, by node name.
fn results(p: &std::path::Path) -> std::collections::BTreeMap<String, (String, Option<i64>)> {
    let doc: Value = serde_json::from_str(&read(p, "target/run_results.json")).unwrap();
    doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let id = r["unique_id"].as_str().unwrap();
            let name = id.split('.').nth(2).unwrap().to_string();
            (
                name,
                (
                    r["status"].as_str().unwrap().to_string(),
                    r["failures"].as_i64(),
                ),
            )
        })
        .collect()
}

fn expected() -> Vec<(&'static str, &'static str, i64)> {
    vec![
        ("unique_stg_users_id", "fail", 1),
        ("not_null_stg_users_id", "pass", 0),
        ("is_even_stg_users_id", "fail", 2),
        ("not_null_stg_users_email", "fail", 2),
        ("unique_stg_users_email", "pass", 0),
        ("email_present_warn", "warn", 2),
        ("email_thresholds", "warn", 2),
        (
            "accepted_values_stg_users_status__active__churned",
            "fail",
            2,
        ),
        ("status_limited", "fail", 1),
        ("relationships_stg_users_plan_id__id__ref_plans_", "fail", 2),
        (
            "accepted_values_stg_users_plan_id__False__1__2__3__9",
            "pass",
            0,
        ),
        ("assert_no_trials", "fail", 1),
    ]
}

#[test]
fn built_in_custom_and_singular_tests_count_their_failures() {
    let p = project();
    let r = pm(p.path(), &["build", "--exclude", "resource_type:test"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for merge in ["1", "0"] {
        // Merged scans and one query per test give the same counts.
        let r = pm_env(p.path(), &["test"], &[("PM_TEST_MERGE", merge)]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        let got = results(p.path());
        for (name, status, failures) in expected() {
            let (s, f) = got
                .get(name)
                .unwrap_or_else(|| panic!("{name} did not run: {got:?}"));
            assert_eq!(
                (s.as_str(), *f),
                (status, Some(failures)),
                "{name} (merge={merge})"
            );
        }
        assert!(!got.contains_key("plan_disabled"), "{got:?}");
        // Merged: one aggregate counted the not_null and accepted_values tests.
        let ran = read(
            p.path(),
            "target/run/local/models/schema.yml/not_null_stg_users_email.sql",
        );
        assert_eq!(
            ran.contains("count(*) filter (where email is null)"),
            merge == "1",
            "{ran}"
        );
        assert_eq!(got.len(), expected().len(), "{got:?}");
        assert!(
            r.stderr.contains("PASS=3 WARN=2 ERROR=7 SKIP=0 TOTAL=12"),
            "{}",
            r.stderr
        );
    }
    // Each failure is shown with its count, its SQL, its first rows and the
    // command that runs it again.
    let r = pm(p.path(), &["test", "-s", "stg_users,test_name:unique"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "Failure in test unique_stg_users_id (models/schema.yml)
  Got 1 result, configured to fail if != 0
  compiled SQL: target/compiled/local/models/schema.yml/unique_stg_users_id.sql
  first failing rows:
    | unique_field | n_records |
    |--------------|-----------|
    | 2            | 2         |
  rerun: pm test --select unique_stg_users_id"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("FAIL 1 unique_stg_users_id ["),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("PASS   unique_stg_users_email ["),
        "{}",
        r.stderr
    );
    assert!(p
        .path()
        .join("target/compiled/local/models/schema.yml/unique_stg_users_id.sql")
        .is_file());
}

#[test]
fn configs_change_outcomes_and_failures_can_be_kept() {
    let p = project();
    let r = pm(p.path(), &["seed", "-q"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = pm(p.path(), &["run", "-q"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Only warnings: exit code 0.
    let r = pm(
        p.path(),
        &[
            "test",
            "-s",
            "test_name:not_null,stg_users",
            "--exclude",
            "not_null_stg_users_email",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("PASS=1 WARN=2 ERROR=0"), "{}", r.stderr);
    assert!(
        r.stderr.contains("Warning in test email_thresholds"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("configured to warn if >1"),
        "{}",
        r.stderr
    );

    // store_failures: the failing rows in <schema>_pm_test_failures, replaced each run.
    let r = pm(p.path(), &["test", "-s", "test_name:accepted_values"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let stored = "public_pm_test_failures.accepted_values_stg_users_status__active__churned";
    assert_eq!(
        sql(
            p.path(),
            &format!("select string_agg(value_field, ',' order by value_field) from {stored}")
        ),
        "paused,trial"
    );
    assert!(
        r.stderr.contains("failing rows stored in \"public_pm_test_failures\".\"accepted_values_stg_users_status__active__churned\""),
        "{}",
        r.stderr
    );
    sql(
        p.path(),
        "update public.users set status = 'active' where status = 'trial'",
    );
    assert_eq!(
        pm(p.path(), &["test", "-q", "-s", "test_name:accepted_values"]).code,
        1
    );
    assert_eq!(
        sql(
            p.path(),
            &format!("select string_agg(value_field, ',') from {stored}")
        ),
        "paused"
    );
    // --store-failures keeps every test's rows.
    let r = pm(
        p.path(),
        &[
            "test",
            "-q",
            "--store-failures",
            "-s",
            "unique_stg_users_id",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(
        sql(p.path(), "select unique_field || ':' || n_records from public_pm_test_failures.unique_stg_users_id"),
        "2:2"
    );

    // Every test keeping its rows at once (4 threads): the failures schema
    // is made once, up front, so no test trips over another making it.
    sql(p.path(), "drop schema public_pm_test_failures cascade");
    let r = pm(p.path(), &["test", "-q", "--store-failures"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let got = results(p.path());
    assert!(got.values().all(|(s, _)| s != "error"), "{got:?}");
    assert_eq!(
        sql(
            p.path(),
            "select count(*) from pg_tables where schemaname = 'public_pm_test_failures'"
        ),
        "12"
    );

    // Tags select tests, singular ones too.
    let r = pm(p.path(), &["ls", "-s", "tag:finance", "--output", "name"]);
    assert_eq!(
        r.stdout, "assert_no_trials\nstatus_limited\n",
        "{}",
        r.stderr
    );
    let r = pm(p.path(), &["test", "-s", "test_type:singular"]);
    assert!(r.stderr.contains("TOTAL=1;"), "{}", r.stderr);
}

#[test]
fn indirect_selection_modes() {
    let p = project();
    let names = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["ls", "--resource-type", "test", "--output", "name"];
        a.extend_from_slice(args);
        let r = pm(p.path(), &a);
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.stdout.lines().map(str::to_string).collect()
    };
    // eager (default): every test touching stg_users, the relationships test included.
    let eager = names(&["-s", "stg_users"]);
    assert_eq!(eager.len(), 12, "{eager:?}");
    assert!(eager.contains(&"relationships_stg_users_plan_id__id__ref_plans_".to_string()));
    // cautious: only tests all of whose parents are selected.
    let cautious = names(&["-s", "stg_users", "--indirect-selection", "cautious"]);
    assert_eq!(cautious.len(), 11, "{cautious:?}");
    assert!(!cautious.contains(&"relationships_stg_users_plan_id__id__ref_plans_".to_string()));
    // buildable: parents selected or their ancestors.
    let buildable = names(&[
        "-s",
        "stg_users",
        "plans",
        "--indirect-selection",
        "buildable",
    ]);
    assert!(buildable.contains(&"relationships_stg_users_plan_id__id__ref_plans_".to_string()));
    // empty: no tests unless selected themselves.
    assert!(names(&["-s", "stg_users", "--indirect-selection", "empty"]).is_empty());
    // pm test --select model+ runs the tests of the model and of what is below it.
    assert_eq!(
        pm(
            p.path(),
            &["build", "-q", "--exclude", "resource_type:test"]
        )
        .code,
        0
    );
    let r = pm(p.path(), &["test", "-s", "plans+"]);
    assert!(
        r.stderr
            .contains("relationships_stg_users_plan_id__id__ref_plans_"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("TOTAL=1;"), "{}", r.stderr);
}

#[test]
fn build_skips_what_is_below_a_failing_test() {
    let p = project();
    let r = pm(p.path(), &["build"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let got = results(p.path());
    assert_eq!(got["users_by_plan"].0, "skipped", "{got:?}");
    assert_eq!(got["stg_users"].0, "success", "{got:?}");
    assert_eq!(got["users"].0, "success", "{got:?}");
    assert!(
        r.stderr
            .contains("SKIP   table model public.users_by_plan (test "),
        "{}",
        r.stderr
    );
    assert_eq!(
        sql(
            p.path(),
            "select to_regclass('public.users_by_plan') is null"
        ),
        "t"
    );

    // Fix the data (warnings only remain): everything builds.
    write(
        p.path(),
        "seeds/users.csv",
        "id,email,status,plan_id\n2,b@x.com,active,1\n4,d@x.com,churned,2\n",
    );
    let r = pm(p.path(), &["build", "--exclude", "assert_no_trials"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("ERROR=0 SKIP=0"), "{}", r.stderr);
    assert_eq!(sql(p.path(), "select sum(n) from users_by_plan"), "2");
    // Each test ran after its model and before the model's children.
    let order: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains(" PASS ") || l.contains(" OK ") || l.contains(" WARN "))
        .collect();
    let pos = |needle: &str| {
        order
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} missing: {order:?}"))
    };
    assert!(pos("view model public.stg_users") < pos("unique_stg_users_id"));
    assert!(pos("unique_stg_users_id") < pos("table model public.users_by_plan"));
    // pm_meta keeps test results with their failure counts.
    assert_eq!(
        sql(
            p.path(),
            "select status || ' ' || failures from pm_meta.run_results where node like '%email_present_warn%' order by started_at limit 1"
        ),
        "warn 2"
    );
}

#[test]
fn source_freshness_passes_warns_and_errors() {
    let p = LocalProject::new(&[(
        "models/sources.yml",
        r#"version: 2
sources:
  - name: raw
    schema: raw
    loaded_at_field: loaded_at
    freshness:
      warn_after: {count: 1, period: hour}
      error_after: {count: 1, period: day}
    tables:
      - name: fresh
      - name: late
      - name: stale
      - name: filtered
        freshness:
          warn_after: {count: 1, period: hour}
          filter: "kind = 'new'"
      - name: unchecked
        freshness: null
"#,
    )]);
    assert_eq!(pm(p.path(), &["db", "start", "-q"]).code, 0);
    sql(
        p.path(),
        "create schema raw;
         create table raw.fresh as select now() - interval '5 minutes' as loaded_at;
         create table raw.late as select (now() at time zone 'utc') - interval '2 hours' as loaded_at;
         create table raw.stale as select now() - interval '3 days' as loaded_at;
         create table raw.filtered as select now() as loaded_at, 'old' as kind
           union all select now() - interval '3 hours', 'new';
         create table raw.unchecked (loaded_at timestamptz);",
    );
    let r = pm(p.path(), &["source", "freshness"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("PASS   freshness of raw.fresh [newest row 5m"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("WARN   freshness of raw.late [newest row 2h 0m old"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("ERROR  freshness of raw.stale [newest row 3d 0h old"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("WARN   freshness of raw.filtered [newest row 3h"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("PASS=1 WARN=2 ERROR=1 TOTAL=4"),
        "{}",
        r.stderr
    );
    let doc: Value = serde_json::from_str(&read(p.path(), "target/sources.json")).unwrap();
    let late = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["unique_id"] == "source.local.raw.late")
        .unwrap();
    assert_eq!(late["status"], "warn");
    assert!(late["max_loaded_at_time_ago_in_s"].as_f64().unwrap() > 7199.0);
    assert_eq!(late["criteria"]["warn_after"]["period"], "hour");
    // Warnings only: exit code 0.
    let r = pm(
        p.path(),
        &[
            "source",
            "freshness",
            "-s",
            "source:raw.late",
            "source:raw.fresh",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("TOTAL=2"), "{}", r.stderr);
}

#[test]
fn a_broken_test_in_a_merged_scan_does_not_fail_its_siblings() {
    let p = LocalProject::new(&[
        ("models/t.sql", "select 1 as id, 'a' as kind union all select null, 'b'\n"),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: t\n    columns:\n      - name: id\n        data_tests: [not_null]\n      - name: kind\n        data_tests:\n          - not_null\n          - accepted_values:\n              arguments:\n                values: [a, b]\n      - name: kindd\n        data_tests: [not_null]\n",
        ),
    ]);
    let r = pm(p.path(), &["build"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let err = unwrapped(&r.stderr);
    assert!(err.contains("PASS   not_null_t_kind "), "{err}");
    assert!(
        err.contains("PASS   accepted_values_t_kind__a__b "),
        "{err}"
    );
    assert!(err.contains("FAIL 1 not_null_t_id "), "{err}");
    assert!(err.contains("ERROR  not_null_t_kindd "), "{err}");
    assert!(err.contains("PASS=4 WARN=0 ERROR=2"), "{err}");
    // The error is the broken test's own, once.
    assert_eq!(
        err.matches("column \"kindd\" does not exist").count(),
        1,
        "{err}"
    );
}

#[test]
fn a_projects_get_where_subquery_gives_a_tests_where_its_meaning() {
    // dbt documents overriding get_where_subquery (placeholders in `where`):
    // a test with a `where` then reads what the override returns (here: the
    // rows after the first, too), even where pm would otherwise count several
    // tests in one scan.
    let p = LocalProject::new(&[
        (
            "models/t.sql",
            "select 1 as id, null::text as kind union all select 2, 'b' union all select 3, null\n",
        ),
        (
            "macros/get_where_subquery.sql",
            "{% macro get_where_subquery(relation) -%}\n{%- set where = config.get('where') -%}\n{%- if where -%}\n{%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ' and id > 1) s') -%}\n{%- else -%}{%- do return(relation) -%}{%- endif -%}\n{%- endmacro %}\n",
        ),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: t\n    columns:\n      - name: kind\n        data_tests:\n          - not_null:\n              config: {where: \"id > 0\"}\n          - accepted_values:\n              arguments:\n                values: [b]\n              config: {where: \"id > 0\"}\n      - name: id\n        data_tests: [not_null]\n",
        ),
    ]);
    let r = pm(p.path(), &["build"]);
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 1, "{err}");
    // Rows 2 and 3: one null kind (row 1's is not read), no value outside [b].
    assert!(err.contains("FAIL 1 not_null_t_kind "), "{err}");
    assert!(err.contains("PASS   accepted_values_t_kind__b "), "{err}");
    assert!(err.contains("PASS   not_null_t_id "), "{err}");
    assert!(!err.contains("ERROR  "), "{err}");
}

#[test]
fn a_test_of_several_models_holds_back_only_what_is_built_from_all_of_them() {
    // dbt's rule for `build`: a node waits for a test of several nodes (a
    // relationships test) when it is downstream of every one of them.
    let p = LocalProject::new(&[
        ("models/a.sql", "select 1 as id union all select 2\n"),
        ("models/b.sql", "select 1 as id\n"),
        ("models/only_b.sql", "select id from {{ ref('b') }}\n"),
        (
            "models/both.sql",
            "select a.id from {{ ref('a') }} as a join {{ ref('b') }} as b on b.id = a.id\n",
        ),
        (
            "models/via_both.sql",
            "select id from {{ ref('only_b') }} where id in (select id from {{ ref('a') }})\n",
        ),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: a\n    columns:\n      - name: id\n        data_tests:\n          - relationships:\n              arguments:\n                to: ref('b')\n                field: id\n",
        ),
    ]);
    let r = pm(p.path(), &["build"]);
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 1, "{err}");
    assert!(
        err.contains("FAIL 1 relationships_a_id__id__ref_b_ "),
        "{err}"
    );
    assert!(err.contains("OK     view model public.only_b "), "{err}");
    assert!(err.contains("SKIP   view model public.both "), "{err}");
    assert!(err.contains("SKIP   view model public.via_both "), "{err}");
}

#[test]
fn quoted_columns_are_quoted_in_generic_tests() {
    let p = LocalProject::new(&[
        (
            "models/q.sql",
            "select 1 as \"we\"\"ird col\", null::int as \"Other\"\n",
        ),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: q\n    columns:\n      - name: 'we\"ird col'\n        quote: true\n        data_tests:\n          - not_null\n          - unique\n          - accepted_values:\n              arguments:\n                values: [1]\n                quote: false\n      - name: Other\n        quote: true\n        data_tests: [not_null]\n",
        ),
    ]);
    let r = pm(p.path(), &["build"]);
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 1, "{err}");
    assert!(err.contains("PASS=5 WARN=0 ERROR=1"), "{err}");
    assert!(err.contains("FAIL 1 not_null_q_Other "), "{err}");
    assert!(!err.contains("ERROR  "), "{err}");
}
