//! Every class of user error: exit code 2 and a diagnostic that names the
//! file, marks the span and says what to do. The text is snapshot-tested.

mod common;
use common::*;

const PROJECT: &str = "name: err\nprofile: err\n";

fn fails(files: &[(&str, &str)], args: &[&str]) -> String {
    let dir = project(files);
    let r = pm(dir.path(), args);
    assert_eq!(
        r.code, 2,
        "expected a project error, got {}:\n{}{}",
        r.code, r.stdout, r.stderr
    );
    r.stderr
}

#[test]
fn yaml_syntax_error_points_at_the_line() {
    let err = fails(
        &[
            ("dbt_project.yml", PROJECT),
            ("models/a.sql", "select 1\n"),
            ("models/schema.yml", "version: 2\nmodels:\n  - name: a\n    columns:\n      - name: id\n        data_tests: [unique\n"),
        ],
        &["compile"],
    );
    insta::assert_snapshot!(err);
}

#[test]
fn jinja_syntax_error_points_at_the_tag() {
    let err = fails(
        &[
            ("dbt_project.yml", PROJECT),
            (
                "models/a.sql",
                "select\n    {% if true %}\n    1 as x\nfrom t\n",
            ),
        ],
        &["compile"],
    );
    insta::assert_snapshot!(err);
}

#[test]
fn undefined_name_points_at_the_expression() {
    let err = fails(
        &[
            ("dbt_project.yml", PROJECT),
            ("models/a.sql", "select\n    {{ start_dat }} as d\nfrom t\n"),
        ],
        &["compile"],
    );
    insta::assert_snapshot!(err);
}

#[test]
fn unknown_ref_names_the_closest_models() {
    let err = fails(
        &[
            ("dbt_project.yml", PROJECT),
            ("models/stg_users.sql", "select 1 as id\n"),
            ("models/stg_sessions.sql", "select 1 as id\n"),
            ("models/fct.sql", "select *\nfrom {{ ref('stg_user') }}\n"),
        ],
        &["compile"],
    );
    insta::assert_snapshot!(err);
}

#[test]
fn unknown_source_names_the_declared_ones() {
    let err = fails(
        &[
            ("dbt_project.yml", PROJECT),
            (
                "models/src.yml",
                "sources:\n  - name: raw\n    tables:\n      - name: users\n",
            ),
            (
                "models/a.sql",
                "select * from {{ source('raw', 'user') }}\n",
            ),
        ],
        &["compile"],
    );
    insta::assert_snapshot!(err);
}

#[test]
fn unknown_macro_and_error_inside_a_macro() {
    let err = fails(
        &[
            ("dbt_project.yml", PROJECT),
            (
                "macros/m.sql",
                "{% macro money(col) %}\n  ({{ col }} / {{ divisor }})\n{% endmacro %}\n",
            ),
            ("models/a.sql", "select {{ mony('x') }}\n"),
            ("models/b.sql", "select {{ money('x') }}\n"),
        ],
        &["compile"],
    );
    insta::assert_snapshot!(err);
}

#[test]
fn duplicate_model_names() {
    let err = fails(
        &[
            ("dbt_project.yml", PROJECT),
            ("models/a/users.sql", "select 1\n"),
            ("models/b/users.sql", "select 2\n"),
        ],
        &["compile"],
    );
    insta::assert_snapshot!(err);
}

#[test]
fn cycle_lists_every_member_with_its_file() {
    let err = fails(
        &[
            ("dbt_project.yml", PROJECT),
            ("models/a.sql", "select * from {{ ref('c') }}\n"),
            ("models/b.sql", "select * from {{ ref('a') }}\n"),
            (
                "models/c.sql",
                "-- closes the loop\nselect * from {{ ref('b') }}\n",
            ),
            ("models/d.sql", "select * from {{ ref('a') }}\n"),
        ],
        &["compile"],
    );
    insta::assert_snapshot!(err);
}

#[test]
fn bad_selectors_mark_the_span_in_the_selector() {
    let files = [("dbt_project.yml", PROJECT), ("models/a.sql", "select 1\n")];
    let err = fails(&files, &["ls", "-s", "tag:x confg.materialized:table"]);
    insta::assert_snapshot!("bad_selector_method", err);
    let err = fails(&files, &["ls", "-s", "@a+"]);
    insta::assert_snapshot!("bad_selector_operators", err);
    let err = fails(&files, &["ls", "-s", "resource_type:modle"]);
    insta::assert_snapshot!("bad_selector_value", err);
    let err = fails(&files, &["ls", "--selector", "nightly"]);
    insta::assert_snapshot!("unknown_selector", err);
    let err = fails(&files, &["ls", "-s", "state:modified"]);
    assert!(err.contains("needs --state"), "{err}");
}

#[test]
fn missing_var_and_unknown_generic_test() {
    let err = fails(
        &[
            (
                "dbt_project.yml",
                "name: err\nvars:\n  start_date: '2024-01-01'\n",
            ),
            ("models/a.sql", "select '{{ var(\"start_dat\") }}' as d\n"),
        ],
        &["compile"],
    );
    insta::assert_snapshot!("missing_var", err);
    let err = fails(
        &[
            ("dbt_project.yml", PROJECT),
            ("models/a.sql", "select 1 as id\n"),
            ("models/schema.yml", "models:\n  - name: a\n    columns:\n      - name: id\n        data_tests:\n          - uniqe\n"),
        ],
        &["compile"],
    );
    insta::assert_snapshot!("unknown_generic_test", err);
}

#[test]
fn no_project_and_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let r = pm(dir.path(), &["compile"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("no pm_project.yml or dbt_project.yml in"),
        "{}",
        r.stderr
    );
    let dir = project(&[
        ("pm_project.yml", PROJECT),
        ("models/a.sql", "select {{ ref('zzz') }}\n"),
    ]);
    let r = pm(dir.path(), &["compile", "--log-format", "json"]);
    assert_eq!(r.code, 2);
    let e: serde_json::Value = serde_json::from_str(r.stderr.trim()).expect("one JSON line");
    assert_eq!(e["code"], "compile::unknown_ref");
    assert_eq!(e["file"], "models/a.sql");
    assert_eq!(e["line"], 1);
    assert_eq!(e["column"], 11);
}

#[test]
fn many_errors_are_reported_together_in_file_order() {
    let err = fails(
        &[
            ("dbt_project.yml", PROJECT),
            ("models/b.sql", "select {{ ref('nope_b') }}\n"),
            ("models/a.sql", "select {{ ref('nope_a') }}\n"),
        ],
        &["compile"],
    );
    let a = err.find("nope_a").expect("a reported");
    let b = err.find("nope_b").expect("b reported");
    assert!(a < b, "{err}");
}

#[test]
fn errors_in_yaml_declared_nodes_point_at_the_yaml_entry() {
    let dir = project(&[
        ("dbt_project.yml", PROJECT),
        ("models/orders.sql", "select 1 as customer_id\n"),
        (
            "models/schema.yml",
            "models:\n  - name: orders\n    columns:\n      - name: customer_id\n        data_tests:\n          - relationships:\n              to: ref('customer')\n              field: id\n",
        ),
    ]);
    // Run from a subfolder: the YAML is still found.
    let r = pm(&dir.path().join("models"), &["compile"]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(r.stderr);
}
