//! Every class of user error: exit code 2 and a diagnostic that names the
//! file, marks the span and says what to do. The text is snapshot-tested.

use crate::common::*;

const PROJECT: &str = "name: err\nprofile: err\n";

/// The profile `err` the projects name, as the embedded database would be.
const PROFILES: &str = "err:\n  target: dev\n  outputs:\n    dev: {type: postgres, host: localhost, user: postgres, dbname: pm, schema: public}\n";

/// A project with the profile it names.
fn err_project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = project(files);
    if !dir.path().join("profiles.yml").exists() {
        write(dir.path(), "profiles.yml", PROFILES);
    }
    dir
}

fn fails(files: &[(&str, &str)], args: &[&str]) -> String {
    let dir = err_project(files);
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
fn an_unknown_materialization_points_at_where_it_is_set() {
    let err = fails(
        &[
            ("dbt_project.yml", PROJECT),
            (
                "models/a.sql",
                "{{ config(materialized='tabel') }}\nselect 1 as x\n",
            ),
        ],
        &["compile"],
    );
    insta::assert_snapshot!(err);
    let err = fails(
        &[
            (
                "dbt_project.yml",
                "name: err\nprofile: err\nmodels:\n  err:\n    +materialized: incremantal\n",
            ),
            ("models/a.sql", "select 1 as x\n"),
        ],
        &["compile"],
    );
    insta::assert_snapshot!(err);
}

#[test]
fn a_config_value_of_the_wrong_type_points_at_where_it_is_set() {
    let err = fails(
        &[
            ("dbt_project.yml", PROJECT),
            (
                "models/a.sql",
                "{{ config(materialized='table', full_refresh='yes') }}\nselect 1 as x\n",
            ),
        ],
        &["compile"],
    );
    insta::assert_snapshot!(err);
    let err = fails(
        &[
            ("dbt_project.yml", PROJECT),
            ("models/a.sql", "select 1 as x\n"),
            (
                "models/a.yml",
                "models:\n  - name: a\n    columns:\n      - name: x\n        data_tests:\n          - not_null:\n              config:\n                limit: lots\n",
            ),
        ],
        &["compile"],
    );
    insta::assert_snapshot!(err);
    // A severity dbt does not know: at compile, where it is set (it was an
    // error at run time that named no file).
    let err = fails(
        &[
            ("dbt_project.yml", PROJECT),
            ("models/a.sql", "select 1 as x\n"),
            (
                "models/a.yml",
                "models:\n  - name: a\n    columns:\n      - name: x\n        data_tests:\n          - not_null:\n              config:\n                severity: bogus\n",
            ),
        ],
        &["compile"],
    );
    insta::assert_snapshot!(err);
}

#[test]
fn an_undefined_name_prints_as_nothing_and_its_attributes_fail() {
    // As in dbt: an undefined name prints as nothing and is false.
    let dir = err_project(&[
        ("dbt_project.yml", PROJECT),
        (
            "macros/m.sql",
            "{% macro opt(a, b) %}[{{ a }}|{{ b }}]{% endmacro %}\n",
        ),
        (
            "models/a.sql",
            "select\n    '{{ start_dat }}' as d, '{{ opt(1) }}' as o{% if not missing %}, 1 as n{% endif %}\n",
        ),
    ]);
    let r = pm(dir.path(), &["compile", "-s", "a"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "select\n    '' as d, '[1|]' as o, 1 as n");
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
    // Its attributes and calls are errors, pointing at the expression.
    let err = fails(
        &[
            ("dbt_project.yml", PROJECT),
            (
                "models/a.sql",
                "select\n    {{ start_dat.day }} as d\nfrom t\n",
            ),
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
                "{% macro money(col) %}\n  ({{ col }} / {{ divisor.rate }})\n{% endmacro %}\n",
            ),
            ("models/a.sql", "select {{ mony('x') }}\n"),
            ("models/b.sql", "select {{ money('x') }}\n"),
        ],
        &["compile"],
    );
    insta::assert_snapshot!(err);
}

#[test]
fn errors_show_the_template_as_written_with_mutable_literals() {
    // pm rewrites `{% set x = [...] %}` for mutable lists; the snippet and
    // the span are the file's own.
    let err = fails(
        &[
            ("dbt_project.yml", PROJECT),
            (
                "macros/m.sql",
                "{% macro cols() %}\n  {% set names = ['a'] %}{{ names.push('b') }}\n{% endmacro %}\n",
            ),
            (
                "models/a.sql",
                "{% set d = {'k': 1} %}select {{ d.zip() }}\n",
            ),
            ("models/b.sql", "select {{ cols() }}\n"),
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
    let dir = err_project(&[
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
    let dir = err_project(&[
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

/// A project whose profile points at `output`, and `pm debug`'s stderr.
fn debug_with_profile(profiles: &str) -> String {
    let dir = err_project(&[
        ("dbt_project.yml", PROJECT),
        ("models/a.sql", "select 1\n"),
        ("profiles.yml", profiles),
    ]);
    let r = pm(dir.path(), &["debug"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    unwrapped(&r.stderr)
}

#[test]
fn wrong_values_in_profiles_yml_are_errors_at_their_line() {
    let output = |extra: &str| {
        format!("err:\n  target: dev\n  outputs:\n    prod:\n      type: postgres\n      password: prodsecret\n      port: 5433\n    dev:\n      type: postgres\n      host: localhost\n{extra}")
    };
    for (extra, message) in [
        (
            "      port: 99999\n",
            "port `99999` is not a whole number from 1 to 65535",
        ),
        (
            "      port: -1\n",
            "port `-1` is not a whole number from 1 to 65535",
        ),
        (
            "      port: abc\n",
            "port `abc` is not a whole number from 1 to 65535",
        ),
        (
            "      threads: many\n",
            "threads `many` is not a whole number from 1 to 1024",
        ),
        ("      connect_timeout: soon\n", "connect_timeout `soon`"),
        ("      user: [a, b]\n", "user is a list, not a single value"),
        (
            "      schema: {a: 1}\n",
            "schema is a mapping, not a single value",
        ),
    ] {
        let err = debug_with_profile(&output(extra));
        assert!(err.contains(message), "{err}");
        assert!(
            err.contains("profiles.yml:11:"),
            "points at the dev output's line: {err}"
        );
        assert!(!err.contains("prodsecret"), "{err}");
    }
    // host: a list is not "localhost".
    let err = debug_with_profile(
        "err:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      host: [a, b]\n",
    );
    assert!(err.contains("host is a list, not a single value"), "{err}");
    assert!(err.contains("profiles.yml:6:"), "{err}");
    let err =
        debug_with_profile("err:\n  target: dev\n  outputs:\n    dev:\n      type: snowflake\n");
    assert!(err.contains("type `snowflake` is not supported"), "{err}");
    assert!(err.contains("profiles.yml:5:"), "{err}");
    for text in ["- err\n- other\n", "", "# nothing but a comment\n"] {
        let err = debug_with_profile(text);
        assert!(err.contains("holds no profiles"), "{text:?}: {err}");
    }
}

#[test]
fn error_snippets_of_profiles_yml_never_show_a_secret() {
    // A missing env_var in one target, next to another target's password.
    let err = debug_with_profile(
        "err:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      password: hunter2\n      user: \"{{ env_var('NOT_SET_ANYWHERE') }}\"\n    prod:\n      type: postgres\n      password: \"t0ps3cret\"\n",
    );
    assert!(err.contains("NOT_SET_ANYWHERE"), "{err}");
    assert!(err.contains("password: ****"), "{err}");
    assert!(
        !err.contains("hunter2") && !err.contains("t0ps3cret"),
        "{err}"
    );
}

#[test]
fn database_urls_that_do_not_parse_say_why() {
    let dir = err_project(&[("dbt_project.yml", PROJECT), ("models/a.sql", "select 1\n")]);
    for (url, why) in [
        (
            "postgresql://u:pw@db:99999/x",
            "invalid value for option `port`",
        ),
        ("postgresql://u@db/x?nosuch=1", "unknown option `nosuch`"),
        ("mysql://u:pw@db/x", "a URL must start with postgresql://"),
        (
            "host=db password='open",
            "unterminated quoted connection parameter value",
        ),
    ] {
        let r = pm_env(dir.path(), &["debug"], &[("PM_DATABASE_URL", url)]);
        assert_eq!(r.code, 2, "{url}: {}", r.stderr);
        let err = unwrapped(&r.stderr);
        assert!(err.contains(why), "{url}: {err}");
        assert!(!err.contains("pw@") && !err.contains("'open"), "{err}");
    }
}

#[test]
fn a_server_that_never_answers_times_out_naming_it() {
    // Accepts connections and says nothing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let dir = err_project(&[("dbt_project.yml", PROJECT), ("models/a.sql", "select 1\n")]);
    let started = std::time::Instant::now();
    let r = pm_env(
        dir.path(),
        &["run"],
        &[(
            "PM_DATABASE_URL",
            &format!("postgresql://u:pw@127.0.0.1:{port}/x?connect_timeout=2"),
        )],
    );
    let took = started.elapsed().as_secs_f64();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!((1.5..8.0).contains(&took), "took {took} s");
    let err = unwrapped(&r.stderr);
    assert!(
        err.contains(&format!(
            "the server at 127.0.0.1:{port} did not answer within 2 s"
        )),
        "{err}"
    );
    // From profiles.yml too.
    write(
        dir.path(),
        "profiles.yml",
        &format!("err:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      host: 127.0.0.1\n      port: {port}\n      user: u\n      connect_timeout: 1\n"),
    );
    let started = std::time::Instant::now();
    let r = pm(dir.path(), &["debug"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(started.elapsed().as_secs_f64() < 6.0);
    assert!(
        unwrapped(&r.stderr).contains("did not answer within 1 s"),
        "{}",
        r.stderr
    );
}

#[test]
fn two_resources_building_one_relation_or_a_name_too_long_are_refused() {
    let err = unwrapped(&fails(
        &[
            ("dbt_project.yml", PROJECT),
            (
                "models/a.sql",
                "{{ config(alias='orders') }}\nselect 1 as id\n",
            ),
            ("models/orders.sql", "select 2 as id\n"),
            (
                "models/eph.sql",
                "{{ config(materialized='ephemeral', alias='orders') }}\nselect 3 as id\n",
            ),
        ],
        &["compile"],
    ));
    assert!(
        err.contains("model.err.a and model.err.orders would both be built as \"pm\".\"public\".\"orders\" (models/a.sql and models/orders.sql)"),
        "{err}"
    );
    assert!(
        !err.contains("eph"),
        "an ephemeral model builds nothing: {err}"
    );
    let long = "x".repeat(70);
    let file = format!("models/{long}.sql");
    let err = unwrapped(&fails(
        &[
            ("dbt_project.yml", PROJECT),
            (file.as_str(), "select 1 as id\n"),
        ],
        &["compile"],
    ));
    assert!(err.contains(&format!("model `{long}`")), "{err}");
    assert!(err.contains("70 bytes long: PostgreSQL allows 63"), "{err}");
}

#[test]
fn wrong_arguments_of_built_in_tests_point_at_the_yaml_entry() {
    let err = unwrapped(&fails(
        &[
            ("dbt_project.yml", PROJECT),
            ("models/a.sql", "select 1 as id\n"),
            (
                "models/s.yml",
                "version: 2\nmodels:\n  - name: a\n    columns:\n      - name: id\n        data_tests:\n          - accepted_values:\n              values: 5\n          - relationships:\n              field: id\n",
            ),
        ],
        &["compile"],
    ));
    assert!(
        err.contains("accepted_values: `values:` must be a list, not `5`"),
        "{err}"
    );
    assert!(err.contains("[models/s.yml:7:1]"), "{err}");
    assert!(err.contains("relationships needs `to:`"), "{err}");
    assert!(err.contains("[models/s.yml:9:1]"), "{err}");
    assert!(!err.contains("pm/builtins.sql"), "{err}");
}

/// Files added to a project, the error they must cause and where it must point.
type BrokenCase<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str);

#[test]
fn broken_files_are_errors_at_their_line() {
    let base = [
        ("dbt_project.yml", PROJECT),
        ("models/a.sql", "select 1 as id\n"),
    ];
    let cases: Vec<BrokenCase> = vec![
        (
            vec![("snapshots/s.sql", "{% snapshot snap %}\nselect 1\n")],
            "`{% snapshot %}` is never closed (no `{% endsnapshot %}`)",
            "[snapshots/s.sql:1:1]",
        ),
        (
            vec![("macros/m.sql", "{% macro a() %}\n1\n{% endmacro %}\n{% test t(model) %}\nselect 1\n")],
            "`{% test %}` is never closed (no `{% endtest %}`)",
            "[macros/m.sql:4:1]",
        ),
        (
            vec![("macros/bad.sql", "{% macro unused() %}\n{{ 1 + }}\n{% endmacro %}\n")],
            "unexpected end of variable block",
            "[macros/bad.sql:2:8]",
        ),
        (
            vec![("macros/m.sql", "{% macro a() %}\n1\n{% endtest %}\n")],
            "`{% endtest %}` closes no `{% test %}`",
            "[macros/m.sql:3:1]",
        ),
        (
            vec![("models/d.md", "{% docs d %}\nhello\n")],
            "`{% docs %}` is never closed (no `{% enddocs %}`)",
            "[models/d.md:1:1]",
        ),
        (
            vec![("models/d.md", "{% docs d %}\nhello\n{% enddocs %}\n{% docs d %}\nagain\n{% enddocs %}\n")],
            "docs block `d` is defined twice",
            "[models/d.md:4:1]",
        ),
        (
            vec![("models/s.yml", "version: 2\nmodels:\n  - name: a\n    description: \"{{ doc('nope') }}\"\n")],
            "no docs block is named `nope`",
            "[models/s.yml:4:22]",
        ),
        (
            vec![("models/s.yml", "version: 2\nmodels:\n  - name: a\n    data_tests: 5\n")],
            "`data_tests:` in models/s.yml must be a list of tests, not `5`",
            "[models/s.yml:4:1]",
        ),
        (
            vec![("models/s.yml", "version: 2\nmodels:\n  - name: a\n    description: one\n    description: two\n")],
            "`description` appears twice in one mapping in models/s.yml",
            "[models/s.yml:5:5]",
        ),
        (
            vec![("models/s.yml", "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: t\n      - name: t\n")],
            "source `raw` lists table `t` twice in models/s.yml",
            "[models/s.yml:6:1]",
        ),
        (
            vec![
                ("models/s.yml", "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: t\n"),
                ("models/t.yml", "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: t\n"),
            ],
            "source table `raw.t` is declared twice: in models/s.yml and models/t.yml",
            "[models/t.yml:5:1]",
        ),
    ];
    for (extra, message, at) in cases {
        let mut files: Vec<(&str, &str)> = base.to_vec();
        files.extend(extra);
        let err = unwrapped(&fails(&files, &["parse"]));
        assert!(err.contains(message), "expected `{message}`:\n{err}");
        assert!(err.contains(at), "expected {at}:\n{err}");
    }
    // The project file: paths that are not lists, a materialization that is not a name.
    for (project, message) in [
        (
            "name: err\nprofile: err\nmodel-paths: 7\n",
            "`model-paths:` in dbt_project.yml must be a list of folders, not `7`",
        ),
        (
            "name: err\nprofile: err\nmodels:\n  err:\n    +materialized: 5\n",
            "model `a` is materialized as `5`, which is not a materialization",
        ),
    ] {
        let err = unwrapped(&fails(
            &[
                ("dbt_project.yml", project),
                ("models/a.sql", "select 1 as id\n"),
            ],
            &["parse"],
        ));
        assert!(err.contains(message), "expected `{message}`:\n{err}");
    }
}

#[test]
fn hostile_selectors_are_errors_not_panics_or_hangs() {
    let dir = err_project(&[
        ("dbt_project.yml", PROJECT),
        (
            "models/a_model_whose_name_goes_on_for_quite_a_while.sql",
            "select 1 as id\n",
        ),
        (
            "selectors.yml",
            "selectors:\n  - name: s\n    definition:\n      method: config\n      value: table\n",
        ),
    ]);
    let r = pm(dir.path(), &["ls", "--selector", "s"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let err = unwrapped(&r.stderr);
    assert!(
        err.contains("`method: config` needs the config key, as in `method: config.materialized`"),
        "{err}"
    );
    assert!(err.contains("[selectors.yml:"), "{err}");
    // A glob full of stars against a long name: matched in linear time.
    let started = std::time::Instant::now();
    let r = pm(
        dir.path(),
        &["ls", "-q", "-s", "*?*?*?*?*?*?*?*?*?*?*?*?*?#"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "");
    assert!(started.elapsed().as_secs_f64() < 10.0);
    let r = pm(
        dir.path(),
        &["ls", "-q", "-s", "*?*?*?*?*?*?*?*?*?*?*?*?*?e"],
    );
    assert_eq!(
        r.stdout.trim(),
        "err.a_model_whose_name_goes_on_for_quite_a_while"
    );
}

#[test]
fn a_model_or_test_with_a_second_statement_is_refused_and_runs_nothing() {
    let p = LocalProject::new(&[
        (
            "models/sneaky.sql",
            "{{ config(materialized='table') }}\nselect 1 as id\n; drop table victim\n",
        ),
        (
            "models/wrapped.sql",
            "select 1 as id) ; drop table victim; create view x as (select 1\n",
        ),
        (
            "tests/sneaky_test.sql",
            "select * from {{ ref('a') }} where false; drop table victim\n",
        ),
        (
            "models/fine.sql",
            "select ';' as a, $$;$$ as b -- ; not a statement\n;\n",
        ),
    ]);
    assert_eq!(pm(p.path(), &["db", "start", "-q"]).code, 0);
    sql(p.path(), "create table victim as select 1 as x");
    let r = pm(p.path(), &["build"]);
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 2, "refused before anything runs: {err}");
    assert!(
        err.contains("model `sneaky` holds more than one SQL statement: `;` ends its SELECT and `drop table victim` follows"),
        "{err}"
    );
    assert!(err.contains("models/sneaky.sql:3"), "{err}");
    assert!(
        err.contains("model `wrapped` holds more than one SQL statement"),
        "{err}"
    );
    assert!(
        err.contains("test `sneaky_test` holds more than one SQL statement"),
        "{err}"
    );
    assert_eq!(sql(p.path(), "select x from victim"), "1");
    std::fs::remove_file(p.path().join("models/sneaky.sql")).unwrap();
    std::fs::remove_file(p.path().join("models/wrapped.sql")).unwrap();
    std::fs::remove_file(p.path().join("tests/sneaky_test.sql")).unwrap();
    let r = pm(p.path(), &["build"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(sql(p.path(), "select a || b from fine"), ";;");
}

#[test]
fn misconfigurations_that_were_silently_accepted_are_errors_at_their_line() {
    for (file, text, says) in [
        ("pm_project.yml", "name: 5\n", "`5` is not a project name"),
        (
            "pm_project.yml",
            "name: my-shop\n",
            "`my-shop` is not a project name",
        ),
        (
            "pm_project.yml",
            "name: shop\nprofile: [a, b]\n",
            "profile is `[\"a\",\"b\"]`, not a profile's name",
        ),
    ] {
        let p = project(&[(file, text), ("models/a.sql", "select 1 as id\n")]);
        let r = pm(p.path(), &["compile"]);
        let err = unwrapped(&r.stderr);
        assert_eq!(r.code, 2, "{text}: {err}");
        assert!(err.contains(says), "{text}: {err}");
        assert!(err.contains("pm_project.yml:"), "{text}: {err}");
    }
}

/// A generator flag out of range is named before anything is loaded.
#[test]
#[cfg(feature = "generate")]
fn a_generator_flag_out_of_range_is_named_before_anything_starts() {
    let p = project(&[("pm_project.yml", "name: shop\n")]);
    let r = pm(
        p.path(),
        &["generate", "--start", "0026-01-01", "--days", "3"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("--start 0026-01-01 is out of range"),
        "{}",
        r.stderr
    );
    assert!(!p.path().join(".pm").exists(), "no server was started");
}
