//! Packages: an installed package (as `dbt deps` leaves it in
//! `dbt_packages/`) joins the project: its macros in their namespace, its
//! generic tests, its models and seeds in the DAG, its config and vars with
//! dbt's precedence, and `adapter.dispatch` with the project's search order.

use crate::common::*;

/// A package written for these tests: models, a seed, dispatched macros, a
/// generic test, vars and configs of its own.
pub const FIXTURE_PACKAGE: &[(&str, &str)] = &[
    (
        "dbt_project.yml",
        "name: fixture_pkg\nversion: '1.0.0'\nrequire-dbt-version: [\">=1.5.0\", \"<2.0.0\"]\n\
         vars:\n  pkg_threshold: 1\n  pkg_label: own\n\
         models:\n  fixture_pkg:\n    +materialized: view\n    +tags: [from_package]\n",
    ),
    (
        "macros/helpers.sql",
        "{% macro double(x) %}({{ x }} * 2){% endmacro %}\n\
         {% macro answer() %}{{ double(21) }}{% endmacro %}\n\
         {% macro greeting() %}{{ return(adapter.dispatch('greeting', 'fixture_pkg')()) }}{% endmacro %}\n\
         {% macro default__greeting() %}'package'{% endmacro %}\n",
    ),
    (
        "macros/tests.sql",
        "{% test is_positive(model, column_name) %}\n\
         select * from {{ model }} where {{ column_name }} <= 0\n{% endtest %}\n",
    ),
    (
        "models/pkg_model.sql",
        "select {{ var('pkg_threshold') }} as threshold, '{{ var('pkg_label') }}' as label,\n\
         {{ answer() }} as answer, {{ greeting() }} as greeting, count(*) as seeded\n\
         from {{ ref('pkg_seed') }}\n",
    ),
    ("seeds/pkg_seed.csv", "id\n1\n2\n3\n"),
    (
        "models/schema.yml",
        "models:\n  - name: pkg_model\n    columns:\n      - name: answer\n        data_tests: [is_positive, not_null]\n",
    ),
];

/// The root project using it.
fn root_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = vec![
        (
            "pm_project.yml".into(),
            "name: app\nvars:\n  fixture_pkg:\n    pkg_threshold: 5\n\
             models:\n  fixture_pkg:\n    +materialized: table\n\
             dispatch:\n  - macro_namespace: fixture_pkg\n    search_order: [app, fixture_pkg]\n"
                .into(),
        ),
        (
            "packages.yml".into(),
            "packages:\n  - local: ../fixture_pkg\n".into(),
        ),
        (
            "models/a.sql".into(),
            "select {{ fixture_pkg.double('threshold') }} as doubled, {{ app.shout('x') }} as shouted\n\
             from {{ ref('fixture_pkg', 'pkg_model') }}\n"
                .into(),
        ),
        (
            "models/b.sql".into(),
            "select label from {{ ref('pkg_model') }}\n".into(),
        ),
        (
            "macros/over.sql".into(),
            "{% macro default__greeting() %}'root'{% endmacro %}\n\
             {% macro shout(s) %}upper('{{ s }}'){% endmacro %}\n"
                .into(),
        ),
        (
            "models/schema.yml".into(),
            "models:\n  - name: a\n    columns:\n      - name: doubled\n        data_tests: [fixture_pkg.is_positive]\n"
                .into(),
        ),
    ];
    for (path, text) in FIXTURE_PACKAGE {
        files.push((format!("dbt_packages/fixture_pkg/{path}"), text.to_string()));
    }
    files
}

fn root_project() -> LocalProject {
    let files = root_files();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    LocalProject::new(&refs)
}

#[test]
fn an_installed_package_builds_with_its_macros_tests_configs_and_vars() {
    let p = root_project();
    let r = pm(p.path(), &["build"]);
    let out = unwrapped(&r.stderr);
    assert_eq!(r.code, 0, "{out}");
    // The root's `models: fixture_pkg:` config goes over the package's own.
    assert!(out.contains("table model public.pkg_model"), "{out}");
    // Its var: the root's `vars: {fixture_pkg: ...}` over the package's own,
    // the package's own where the root says nothing; its local macro and the
    // dispatch search order that puts the root first.
    assert_eq!(
        sql(
            p.path(),
            "select threshold, label, answer, greeting, seeded from pkg_model"
        ),
        "5|own|42|root|3"
    );
    assert_eq!(sql(p.path(), "select doubled, shouted from a"), "10|X");
    assert_eq!(sql(p.path(), "select label from b"), "own");
    // Tests from the package (its own YAML, unqualified) and used in the
    // root's YAML through the namespace.
    assert!(out.contains("test not_null_pkg_model_answer"), "{out}");
    assert!(out.contains("test is_positive_pkg_model_answer"), "{out}");
    assert!(
        out.contains("test fixture_pkg_is_positive_a_doubled"),
        "{out}"
    );
    let m = manifest(p.path());
    let node = &m["nodes"]["model.fixture_pkg.pkg_model"];
    assert_eq!(node["package_name"], "fixture_pkg");
    assert_eq!(node["tags"], serde_json::json!(["from_package"]));
    assert!(m["macros"]["macro.fixture_pkg.double"].is_object());
    // Selecting by package.
    let ls = pm(
        p.path(),
        &[
            "ls",
            "-s",
            "package:fixture_pkg",
            "--resource-type",
            "model",
        ],
    );
    assert_eq!(ls.stdout.trim(), "fixture_pkg.pkg_model", "{}", ls.stderr);
}

#[test]
fn package_problems_are_errors_that_say_what_to_do() {
    // Declared but not installed.
    let p = LocalProject::new(&[(
        "packages.yml",
        "packages:\n  - package: dbt-labs/dbt_utils\n    version: [\">=1.0.0\", \"<2.0.0\"]\n",
    )]);
    let r = pm(p.path(), &["compile"]);
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 2, "{err}");
    assert!(
        err.contains(
            "1 package(s) are declared in packages.yml, but 0 are installed in dbt_packages/"
        ),
        "{err}"
    );
    assert!(err.contains("run `pm deps`"), "{err}");

    // A package made for another dbt.
    let p = root_project();
    write(
        p.path(),
        "dbt_packages/fixture_pkg/dbt_project.yml",
        "name: fixture_pkg\nrequire-dbt-version: \">=2.0.0\"\n",
    );
    let r = pm(p.path(), &["compile"]);
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 2, "{err}");
    assert!(
        err.contains("`fixture_pkg` requires dbt >=2.0.0, and pm runs projects as dbt 1.11.0"),
        "{err}"
    );
    assert!(
        err.contains("dbt_packages/fixture_pkg/dbt_project.yml:2"),
        "{err}"
    );

    // A ref to a package that is not installed, and a test in one.
    let p = LocalProject::new(&[("models/b.sql", "select * from {{ ref('nopkg', 'a') }}\n")]);
    let err = unwrapped(&pm(p.path(), &["compile"]).stderr);
    assert!(
        err.contains("ref('nopkg', 'a') names package `nopkg`, which is neither this project nor an installed package"),
        "{err}"
    );
}
