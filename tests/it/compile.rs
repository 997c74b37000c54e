//! `pm compile`, `pm parse` and `pm ls` on a dbt-shaped fixture project.

use crate::common::*;

#[test]
fn compiles_the_shop_project_unchanged_from_dbt_project_yml() {
    let dir = fixture("shop");
    let r = pm(dir.path(), &["compile"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Compiled 25 of 30 nodes"), "{}", r.stderr);
    let root = dir.path();
    for path in [
        "models/staging/stg_payments.sql",
        "models/staging/stg_page_views.sql",
        "models/marts/orders.sql",
        "models/marts/customers.sql",
        "models/marts/finance/revenue_daily.sql",
        "snapshots/orders_snapshot.sql",
        "tests/assert_revenue_not_negative.sql",
        "models/marts/schema.yml/relationships_orders_customer_id__customer_id__ref_customers_.sql",
        "models/marts/schema.yml/is_positive_orders_amount.sql",
        "models/staging/sources.yml/source_unique_web_page_views_view_id.sql",
    ] {
        let sql = read(root, &format!("target/compiled/shop/{path}"));
        insta::assert_snapshot!(path.replace('/', "__"), sql);
    }
    // Ephemeral models are not written as files of their own consumers' CTEs only.
    let orders = read(root, "target/compiled/shop/models/marts/orders.sql");
    assert!(orders.contains("with __dbt__cte__int_order_payments as ("));
}

#[test]
fn manifest_has_dbt_fields_and_edges() {
    let dir = fixture("shop");
    assert_eq!(pm(dir.path(), &["compile", "-q"]).code, 0);
    let m = manifest(dir.path());
    assert_eq!(m["metadata"]["project_name"], "shop");
    let parent_map = &m["parent_map"];
    insta::assert_json_snapshot!("parent_map", parent_map);
    let orders = &m["nodes"]["model.shop.orders"];
    assert_eq!(orders["config"]["materialized"], "table");
    assert_eq!(orders["schema"], "public_marts");
    assert_eq!(
        orders["relation_name"],
        "\"pm\".\"public_marts\".\"orders\""
    );
    assert_eq!(
        m["nodes"]["model.shop.int_order_payments"]["depends_on"]["macros"],
        serde_json::json!(["macro.shop.pivot_amounts"])
    );
    assert_eq!(
        m["nodes"]["model.shop.stg_payments"]["depends_on"]["macros"],
        serde_json::json!(["macro.shop.cents_to_dollars"])
    );
    assert_eq!(
        orders["extra_ctes"][0]["id"],
        "model.shop.int_order_payments"
    );
    let customers = &m["nodes"]["model.shop.customers"];
    assert_eq!(customers["alias"], "dim_customers");
    assert_eq!(customers["config"]["meta"]["owner"], "growth-team");
    assert_eq!(customers["config"]["tags"], serde_json::json!(["core"]));
    let revenue = &m["nodes"]["model.shop.revenue_daily"];
    assert_eq!(revenue["config"]["tags"], serde_json::json!(["finance"]));
    assert_eq!(revenue["config"]["meta"]["owner"], "finance-team");
    let stg_orders = &m["nodes"]["model.shop.stg_orders"];
    assert_eq!(
        stg_orders["description"],
        "One row per order, with its **status**."
    );
    let seed = &m["nodes"]["seed.shop.raw_payments"];
    assert_eq!(seed["schema"], "public_raw");
    assert_eq!(seed["config"]["column_types"]["amount"], "integer");
    let src = &m["sources"]["source.shop.web.page_views"];
    assert_eq!(src["relation_name"], "\"pm\".\"raw_web\".\"pageviews\"");
    assert_eq!(src["loaded_at_field"], "received_at");
    let exposure = &m["exposures"]["exposure.shop.weekly_revenue"];
    assert_eq!(
        exposure["depends_on"]["nodes"],
        serde_json::json!(["model.shop.customers", "model.shop.revenue_daily"])
    );
    let test = m["nodes"]
        .as_object()
        .unwrap()
        .values()
        .find(|n| n["name"] == "accepted_values_stg_payments_payment_method___var_payment_methods_")
        .expect("accepted_values test with a var() argument");
    assert_eq!(test["config"]["severity"], "warn");
    // Its full name is 64 characters or more: the shortened form is its alias.
    assert_eq!(
        test["alias"],
        "accepted_values_stg_payments_787d970bebfe4c4d43afd58438d554ea"
    );
    assert_eq!(test["attached_node"], "model.shop.stg_payments");
    assert_eq!(
        m["macros"]["macro.shop.test_is_positive"]["name"],
        "test_is_positive"
    );
    assert_eq!(m["selectors"]["nightly"]["name"], "nightly");
}

#[test]
fn ls_handles_every_selector_form() {
    let dir = fixture("shop");
    let st = tempfile::tempdir().unwrap();
    // A state to compare against: the project as it is now.
    assert_eq!(pm(dir.path(), &["parse", "-q"]).code, 0);
    std::fs::copy(
        dir.path().join("target/manifest.json"),
        st.path().join("manifest.json"),
    )
    .unwrap();
    let state = st.path().to_str().unwrap().to_string();
    // Then a change: one model edited, one model added.
    let p = dir.path().join("models/staging/stg_orders.sql");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, text.replace("status\n", "status,\n    1 as version\n")).unwrap();
    write(
        dir.path(),
        "models/marts/new_model.sql",
        "select * from {{ ref('customers') }}\n",
    );

    let cases: Vec<Vec<&str>> = vec![
        vec!["ls", "--resource-type", "model"],
        vec!["ls", "-s", "stg_orders"],
        vec!["ls", "-s", "stg_*", "--resource-type", "model"],
        vec!["ls", "-s", "staging.*", "--indirect-selection", "empty"],
        vec!["ls", "-s", "marts.finance"],
        vec!["ls", "-s", "path:models/marts", "--resource-type", "model"],
        vec!["ls", "-s", "models/staging/stg_orders.sql"],
        vec!["ls", "-s", "tag:finance"],
        vec![
            "ls",
            "-s",
            "config.materialized:table",
            "--resource-type",
            "model",
        ],
        vec![
            "ls",
            "-s",
            "config.meta.owner:growth-team",
            "--resource-type",
            "model",
        ],
        vec!["ls", "-s", "resource_type:seed"],
        vec![
            "ls",
            "-s",
            "source:web+",
            "--resource-type",
            "model",
            "source",
        ],
        vec!["ls", "-s", "test_type:singular"],
        vec!["ls", "-s", "test_type:generic,stg_orders"],
        vec!["ls", "-s", "test_name:accepted_values"],
        vec!["ls", "-s", "+orders", "--resource-type", "model", "seed"],
        vec!["ls", "-s", "1+orders", "--resource-type", "model"],
        vec![
            "ls",
            "-s",
            "stg_orders+",
            "--resource-type",
            "model",
            "snapshot",
            "exposure",
        ],
        vec!["ls", "-s", "stg_orders+1", "--resource-type", "model"],
        vec![
            "ls",
            "-s",
            "@stg_payments",
            "--resource-type",
            "model",
            "seed",
        ],
        vec![
            "ls",
            "-s",
            "stg_orders",
            "stg_customers",
            "--resource-type",
            "model",
        ],
        vec![
            "ls",
            "-s",
            "tag:staging,stg_orders+",
            "--resource-type",
            "model",
        ],
        vec![
            "ls",
            "-s",
            "staging",
            "--exclude",
            "stg_page_views",
            "--resource-type",
            "model",
        ],
        vec![
            "ls",
            "--selector",
            "nightly",
            "--resource-type",
            "model",
            "seed",
        ],
        vec![
            "ls",
            "--selector",
            "staging_only",
            "--resource-type",
            "model",
        ],
        vec!["ls", "-s", "orders", "--indirect-selection", "cautious"],
        vec![
            "ls",
            "-s",
            "orders",
            "--indirect-selection",
            "buildable",
            "--resource-type",
            "test",
        ],
        vec![
            "ls",
            "-s",
            "exposure:weekly_revenue+",
            "+exposure:weekly_revenue",
            "--resource-type",
            "exposure",
            "model",
        ],
        vec![
            "ls",
            "-s",
            "state:modified",
            "--state",
            &state,
            "--resource-type",
            "model",
        ],
        vec!["ls", "-s", "state:new", "--state", &state],
        vec![
            "ls",
            "-s",
            "state:modified+",
            "--state",
            &state,
            "--resource-type",
            "model",
        ],
        vec!["ls", "-s", "orders", "--output", "name"],
        vec![
            "ls",
            "-s",
            "orders",
            "--output",
            "path",
            "--resource-type",
            "model",
        ],
        vec![
            "ls",
            "-s",
            "customers",
            "--output",
            "json",
            "--output-keys",
            "name,resource_type,relation_name",
            "--resource-type",
            "model",
        ],
    ];
    let mut transcript = String::new();
    for args in cases {
        let r = pm(dir.path(), &args);
        assert_eq!(r.code, 0, "pm {}: {}", args.join(" "), r.stderr);
        let shown: Vec<String> = args
            .iter()
            .map(|a| {
                if *a == state {
                    "STATE".to_string()
                } else {
                    a.to_string()
                }
            })
            .collect();
        transcript.push_str(&format!("$ pm {}\n{}\n", shown.join(" "), r.stdout));
    }
    insta::assert_snapshot!("ls_selectors", transcript);
}

#[test]
fn compile_one_model_prints_its_sql() {
    let dir = fixture("shop");
    let r = pm(
        dir.path(),
        &[
            "compile",
            "-s",
            "revenue_daily",
            "--vars",
            "{start_date: '2020-01-01'}",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("from \"pm\".\"public_marts\".\"orders\""),
        "{}",
        r.stdout
    );
    let m = manifest(dir.path());
    assert!(m["nodes"]["model.shop.stg_orders"]["compiled_code"]
        .as_str()
        .unwrap()
        .contains("'2020-01-01'"));
}

#[test]
fn compile_writes_only_selected_nodes() {
    let dir = fixture("shop");
    let r = pm(dir.path(), &["compile", "-s", "revenue_daily"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(dir
        .path()
        .join("target/compiled/shop/models/marts/finance/revenue_daily.sql")
        .is_file());
    assert!(!dir
        .path()
        .join("target/compiled/shop/models/staging/stg_orders.sql")
        .exists());
}

#[test]
fn profile_target_and_env_var_reach_templates() {
    let dir = fixture("shop");
    write(
        dir.path(),
        "profiles.yml",
        "shop:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      host: localhost\n      user: me\n      password: \"{{ env_var('SHOP_PASSWORD') }}\"\n      dbname: analytics\n      schema: \"{{ env_var('SHOP_SCHEMA', 'dbt_me') }}\"\n      threads: 2\n    prod:\n      type: postgres\n      dbname: analytics\n      schema: prod\n",
    );
    write(dir.path(), "models/whoami.sql", "select '{{ target.name }}' as t, '{{ target.schema }}' as s, {{ target.threads }} as n, '{{ env_var('SHOP_TAG', 'none') }}' as tag\n");
    let r = pm_env(
        dir.path(),
        &["compile", "-s", "whoami"],
        &[("SHOP_PASSWORD", "secret"), ("SHOP_TAG", "blue")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.trim(),
        "select 'dev' as t, 'dbt_me' as s, 2 as n, 'blue' as tag"
    );
    let r = pm_env(
        dir.path(),
        &[
            "compile",
            "-s",
            "whoami",
            "--target",
            "prod",
            "--threads",
            "8",
        ],
        &[("SHOP_PASSWORD", "x")],
    );
    assert_eq!(
        r.stdout.trim(),
        "select 'prod' as t, 'prod' as s, 8 as n, 'none' as tag"
    );
    let m = read(dir.path(), "target/manifest.json");
    assert!(!m.contains("secret"));
    assert!(m.contains("\"\\\"analytics\\\".\\\"prod\\\".\\\"whoami\\\"\""));
}

#[test]
fn profiles_yml_as_dbt_reads_it_filters_dbt_profiles_dir_and_a_missing_profile() {
    let dir = fixture("shop");
    write(dir.path(), "models/whoami.sql", "select '{{ target.schema }}' as s, {{ target.threads }} as n, {{ target.port }} + 1 as p\n");
    // No profiles.yml anywhere: one line says so, and the embedded database is used.
    let home = tempfile::tempdir().unwrap();
    let home_env = home.path().to_str().unwrap();
    let r = pm_env(
        dir.path(),
        &["compile", "-s", "whoami"],
        &[("HOME", home_env)],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let err = unwrapped(&r.stderr);
    assert!(
        err.contains(&format!("profile `shop` is in no profiles.yml (looked in {}, {home_env}/.pm, {home_env}/.dbt); using pm's embedded local PostgreSQL", dir.path().display())),
        "{err}"
    );
    // DBT_PROFILES_DIR is read, and its values go through dbt's filters.
    let profiles = tempfile::tempdir().unwrap();
    write(
        profiles.path(),
        "profiles.yml",
        "shop:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      host: localhost\n      dbname: analytics\n      schema: \"{{ env_var('SHOP_SCHEMA') | as_text }}\"\n      port: \"{{ env_var('SHOP_PORT') | as_number }}\"\n      threads: \"{{ env_var('SHOP_THREADS', '3') | as_number }}\"\n",
    );
    let env = [
        ("HOME", home_env),
        ("DBT_PROFILES_DIR", profiles.path().to_str().unwrap()),
        ("SHOP_SCHEMA", "1234"),
        ("SHOP_PORT", "6543"),
    ];
    let r = pm_env(dir.path(), &["compile", "-s", "whoami"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "select '1234' as s, 3 as n, 6543 + 1 as p");
    assert!(!r.stderr.contains("embedded"), "{}", r.stderr);
    // A profiles.yml without the project's profile: said in one line.
    write(
        profiles.path(),
        "profiles.yml",
        "other:\n  target: dev\n  outputs:\n    dev: {type: postgres}\n",
    );
    let r = pm_env(dir.path(), &["compile", "-s", "whoami"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        unwrapped(&r.stderr).contains(&format!(
            "profile `shop` is not in {}/profiles.yml; using pm's embedded local PostgreSQL",
            profiles.path().display()
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn project_macros_override_schema_naming() {
    let dir = fixture("shop");
    write(
        dir.path(),
        "macros/generate_schema_name.sql",
        "{% macro generate_schema_name(custom_schema_name, node) -%}\n{%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}\n{%- endmacro %}\n",
    );
    assert_eq!(pm(dir.path(), &["compile", "-q"]).code, 0);
    let m = manifest(dir.path());
    assert_eq!(m["nodes"]["model.shop.orders"]["schema"], "marts");
    assert_eq!(m["nodes"]["model.shop.stg_orders"]["schema"], "public");
    let sql = read(
        dir.path(),
        "target/compiled/shop/models/marts/customers.sql",
    );
    assert!(sql.contains("from \"pm\".\"marts\".\"orders\""), "{sql}");
}

#[test]
fn jinja_surface_of_dbt_projects() {
    let dir = project(&[
        ("pm_project.yml", "name: j\nvars:\n  limit: 5\n"),
        (
            "macros/util.sql",
            "{% macro cols(prefix) -%}\n{%- set out = [] -%}\n{%- for c in ['a', 'b'] -%}{%- do out.append(prefix ~ c) -%}{%- endfor -%}\n{{ return(out | join(', ')) }}\n{%- endmacro %}\n{% macro dispatched() %}{{ return(adapter.dispatch('thing')()) }}{% endmacro %}\n{% macro default__thing() %}default thing{% endmacro %}\n{% macro wrap() %}[{{ caller() }}]{% endmacro %}\n",
        ),
        (
            "models/m.sql",
            "{{ config(materialized='table', tags=['x']) }}\n{%- set cfg = config.get('materialized') -%}\nselect {{ cols('t.') }} -- {{ cfg }} {{ this.identifier }} {{ this.schema }}\n-- {{ dispatched() }} {% call wrap() %}inside{% endcall %} {{ var('limit') }} {{ var('missing', 'dflt') }} {{ var('unset', none) is none }}\n-- {{ 'a,b'.split(',') | length }} {{ is_incremental() }} {{ model.name }} {{ adapter.quote('q') }}\n-- {{ run_started_at.strftime('%Y') | length }} {{ tojson({'k': 1}) }} {{ fromjson('[1,2]')[1] }} {{ local_md5('x') }}\n",
        ),
    ]);
    let r = pm(dir.path(), &["compile", "-s", "m"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!("jinja_surface", r.stdout);
}

#[test]
fn parse_reports_counts_and_json_logs() {
    let dir = fixture("shop");
    let r = pm(dir.path(), &["parse", "--log-format", "json"]);
    assert_eq!(r.code, 0);
    let line: serde_json::Value = serde_json::from_str(r.stderr.lines().last().unwrap()).unwrap();
    assert_eq!(line["level"], "info");
    assert!(line["msg"].as_str().unwrap().starts_with("Parsed 8 models, 3 seeds, 1 snapshot, 1 analysis, 15 tests, 1 source, 1 exposure, 3 macros"));
    let m = manifest(dir.path());
    assert!(m["nodes"]["model.shop.orders"]
        .get("compiled_code")
        .is_none());
}

#[test]
fn finds_the_project_from_a_subfolder_and_with_project_dir() {
    let dir = fixture("shop");
    let r = pm(
        &dir.path().join("models/staging"),
        &["ls", "-s", "stg_orders", "--resource-type", "model"],
    );
    assert_eq!(r.stdout, "shop.staging.stg_orders\n");
    let elsewhere = tempfile::tempdir().unwrap();
    let r = pm(
        elsewhere.path(),
        &[
            "ls",
            "--project-dir",
            dir.path().to_str().unwrap(),
            "-s",
            "stg_orders",
            "--resource-type",
            "model",
        ],
    );
    assert_eq!(r.stdout, "shop.staging.stg_orders\n");
}

#[test]
fn recompiling_rewrites_changed_and_missing_files_only() {
    let dir = fixture("shop");
    let root = dir.path();
    assert_eq!(pm(root, &["compile", "-q"]).code, 0);
    let orders = root.join("target/compiled/shop/models/marts/orders.sql");
    let customers = root.join("target/compiled/shop/models/marts/customers.sql");
    std::fs::remove_file(&orders).unwrap();
    let before = std::fs::metadata(&customers).unwrap().modified().unwrap();
    let p = root.join("models/marts/customers.sql");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(
        &p,
        text.replace("orders.lifetime_value", "orders.lifetime_value as ltv"),
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(pm(root, &["compile", "-q"]).code, 0);
    assert!(orders.is_file(), "a deleted compiled file is written again");
    assert!(read(root, "target/compiled/shop/models/marts/customers.sql").contains("as ltv"));
    assert!(std::fs::metadata(&customers).unwrap().modified().unwrap() > before);
    // An unchanged file is not rewritten.
    let stable = root.join("target/compiled/shop/models/staging/stg_orders.sql");
    let t1 = std::fs::metadata(&stable).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(pm(root, &["compile", "-q"]).code, 0);
    assert_eq!(std::fs::metadata(&stable).unwrap().modified().unwrap(), t1);
}

#[test]
fn config_precedence_file_over_yaml_over_project() {
    let dir = project(&[
        (
            "pm_project.yml",
            "name: p\nmodels:\n  p:\n    +materialized: table\n    +tags: [proj]\n    +schema: from_project\n    marts:\n      +alias_prefix: x\n",
        ),
        ("models/marts/a.sql", "{{ config(schema='from_file', tags=['file']) }}\nselect 1 as id\n"),
        ("models/marts/b.sql", "select 1 as id\n"),
        ("models/marts/c.sql", "select 1 as id\n"),
        (
            "models/marts/schema.yml",
            "models:\n  - name: a\n    config: {schema: from_yaml, tags: [yaml]}\n  - name: b\n    config:\n      schema: from_yaml\n      materialized: view\n      materialised: table\n",
        ),
    ]);
    let r = pm(dir.path(), &["compile"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Keys pm does not know are kept, and named at their line.
    let err = unwrapped(&r.stderr);
    assert!(
        err.contains("pm_project.yml:8: `alias_prefix` is not a config key pm or dbt knows;"),
        "{err}"
    );
    assert!(
        err.contains("models/marts/schema.yml:8: `materialised` is not a config key pm or dbt knows; did you mean `materialized`?"),
        "{err}"
    );
    let m = manifest(dir.path());
    let a = &m["nodes"]["model.p.a"];
    assert_eq!(a["schema"], "public_from_file");
    assert_eq!(
        a["config"]["tags"],
        serde_json::json!(["proj", "yaml", "file"])
    );
    assert_eq!(a["config"]["materialized"], "table");
    let b = &m["nodes"]["model.p.b"];
    assert_eq!(b["schema"], "public_from_yaml");
    assert_eq!(b["config"]["materialized"], "view");
    let c = &m["nodes"]["model.p.c"];
    assert_eq!(c["schema"], "public_from_project");
    assert_eq!(
        c["config"]["alias_prefix"], "x",
        "unknown config keys are kept"
    );
}

#[test]
fn disabled_models_and_their_tests_leave_the_graph() {
    let dir = project(&[
        ("pm_project.yml", "name: p\n"),
        ("models/a.sql", "select 1 as id\n"),
        ("models/b.sql", "{{ config(enabled=false) }}\nselect * from {{ ref('a') }}\n"),
        ("models/c.sql", "select 1 as id\n"),
        ("models/schema.yml", "models:\n  - name: b\n    columns:\n      - name: id\n        data_tests: [unique]\n  - name: c\n    config: {enabled: false}\n    columns:\n      - name: id\n        data_tests: [not_null]\n"),
    ]);
    let r = pm(dir.path(), &["ls"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "p.a\n");
    assert_eq!(pm(dir.path(), &["parse", "-q"]).code, 0);
    let m = manifest(dir.path());
    assert!(m["disabled"]["model.p.b"].is_array());
    assert!(m["disabled"]["model.p.c"].is_array());
    // Referring to a disabled model is an error that says so.
    write(dir.path(), "models/d.sql", "select * from {{ ref('c') }}\n");
    let r = pm(dir.path(), &["ls"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("ref('c') points at a disabled node"),
        "{}",
        r.stderr
    );
}

#[test]
fn relation_attributes_read_while_rendering_are_final() {
    let dir = project(&[
        ("pm_project.yml", "name: p\n"),
        ("models/a.sql", "select 1 as id\n"),
        ("models/b.sql", "select '{{ ref('a').schema }}.{{ ref('a').identifier }}' as src, '{{ this.schema }}' as me\nfrom {{ ref('a') }}\n"),
        ("models/schema.yml", "models:\n  - name: a\n    config: {schema: stage, alias: a_v2}\n"),
    ]);
    let r = pm(dir.path(), &["compile", "-s", "b"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.trim(),
        "select 'public_stage.a_v2' as src, 'public' as me\nfrom \"pm\".\"public_stage\".\"a_v2\""
    );
}

#[test]
fn raise_compiler_error_points_at_the_call() {
    let dir = project(&[
        ("pm_project.yml", "name: p\n"),
        ("macros/guard.sql", "{% macro guard(x) %}\n{% if x < 0 %}{{ exceptions.raise_compiler_error('x must not be negative, got ' ~ x) }}{% endif %}\n{% endmacro %}\n"),
        ("models/a.sql", "select {{ guard(-1) }} 1 as id\n"),
    ]);
    let r = pm(dir.path(), &["compile"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("x must not be negative, got -1"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("macros/guard.sql:2"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("while compiling model `a` (models/a.sql)"),
        "{}",
        r.stderr
    );
}

#[test]
fn concurrent_commands_in_one_project_do_not_trip_over_each_other() {
    let dir = fixture("shop");
    let children: Vec<std::process::Child> = (0..16)
        .map(|k| {
            std::process::Command::new(pm_bin())
                .current_dir(dir.path())
                .args(if k % 2 == 0 {
                    vec!["parse", "-q"]
                } else {
                    vec!["compile", "-q"]
                })
                .env("HOME", dir.path())
                .env_remove("PM_PROFILES_DIR")
                .env_remove("PM_DATABASE_URL")
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    manifest(dir.path());
    let leftovers: Vec<String> = std::fs::read_dir(dir.path().join("target"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn jinja_semantics_as_dbt_renders_them() {
    let dir = project(&[
        ("pm_project.yml", "name: jp\n"),
        (
            "macros/m.sql",
            "{% macro early(x) %}{% if x %}{{ return('early') }}{% endif %}{{ exceptions.raise_compiler_error('ran past return') }}{% endmacro %}\n\
             {% macro opt(a, b) %}[{{ a }}|{{ b }}]{% endmacro %}\n\
             {% macro va(first) %}{{ first }}:{{ varargs | length }}-{{ kwargs.get('k', 'none') }}{% endmacro %}\n\
             {% macro add_to(l, d) %}{% do l.append(3) %}{% do d.update({'z': 1}) %}{% endmacro %}\n",
        ),
        ("models/b.sql", "select 1 as x\n"),
        (
            "models/a.sql",
            "select '{{ early(true) }}' as e, '{{ opt(1) }}' as o, '{{ va(0, 1, 2, k='v') }}' as v,\n\
             {% set l = [1, 2] %}{% set d = {'a': 1} %}{% do add_to(l, d) %}'{{ l }}{{ d }}' as m,\n\
             '{{ ref('b') is mapping }}' as ism, '{{ ref('b').get('metadata', {}).get('type', '') }}' as meta,\n\
             '{{ ref('b').identifier }}' as ident, '{{ ref('b').include(database=false) }}' as inc, '{{ this is mapping }}' as tm\n",
        ),
    ]);
    let r = pm(dir.path(), &["compile", "-s", "a"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.trim(),
        "select 'early' as e, '[1|]' as o, '0:2-v' as v,\n\
         '[1, 2, 3]{'a': 1, 'z': 1}' as m,\n\
         'True' as ism, 'PostgresRelation' as meta,\n\
         'b' as ident, '\"public\".\"b\"' as inc, 'True' as tm"
    );
}

#[test]
fn jinja_in_config_values_is_rendered_before_it_is_used() {
    let dir = project(&[
        (
            "pm_project.yml",
            "name: cv\nvars:\n  load_extra: false\nmodels:\n  cv:\n    +materialized: \"{{ 'table' if target.name == 'dev' else 'view' }}\"\n    extra:\n      +enabled: \"{{ var('load_extra', false) }}\"\n",
        ),
        ("models/extra/x.sql", "select 1 as id\n"),
        ("models/y.sql", "select 1 as id\n"),
        (
            "models/schema.yml",
            "models:\n  - name: y\n    columns:\n      - name: id\n        data_tests:\n          - not_null:\n              config:\n                enabled: \"{{ target.type == 'postgres' }}\"\n          - unique:\n              config:\n                enabled: \"{{ target.type == 'snowflake' }}\"\n",
        ),
    ]);
    let r = pm(dir.path(), &["ls", "--output", "name"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "not_null_y_id\ny");
    let r = pm(
        dir.path(),
        &["ls", "--output", "name", "--vars", "{load_extra: true}"],
    );
    assert_eq!(r.stdout.trim(), "not_null_y_id\nx\ny", "{}", r.stderr);
    let r = pm(dir.path(), &["parse", "--vars", "{load_extra: true}"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = manifest(dir.path());
    assert_eq!(m["nodes"]["model.cv.y"]["config"]["materialized"], "table");
    assert_eq!(m["nodes"]["model.cv.x"]["config"]["enabled"], true);
}

#[test]
fn colliding_test_names_are_refused_as_by_dbt_and_long_names_select_by_their_full_name() {
    let long_value = "a_value_long_enough_to_push_the_name_past_sixty_four_characters";
    // Two tests that differ only in config have one id under dbt (its hash
    // reads the test's name and arguments), which dbt refuses: so does pm.
    let colliding = "models:\n  - name: y\n    columns:\n      - name: id\n        data_tests:\n          - not_null\n          - not_null:\n              config:\n                where: \"id > 0\"\n";
    let dir = project(&[
        ("pm_project.yml", "name: tn\n"),
        ("models/y.sql", "select 1 as id\n"),
        ("models/schema.yml", colliding),
    ]);
    let r = pm(dir.path(), &["parse"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("`not_null_y_id` is declared twice"),
        "{}",
        r.stderr
    );
    let yml = format!(
        "models:\n  - name: y\n    columns:\n      - name: id\n        data_tests:\n          - not_null\n          - accepted_values:\n              values: ['{long_value}']\n"
    );
    write(dir.path(), "models/schema.yml", &yml);
    let r = pm(
        dir.path(),
        &["ls", "--resource-type", "test", "--output", "name"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let full = format!("accepted_values_y_id__{long_value}");
    assert_eq!(r.stdout.trim(), format!("{full}\nnot_null_y_id"));
    let r = pm(dir.path(), &["ls", "-s", &full, "--output", "name"]);
    assert_eq!(r.stdout.trim(), full, "{}", r.stderr);
    let r = pm(dir.path(), &["parse"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = manifest(dir.path());
    // dbt-core 1.11's id for it (md5 of the name and the test's metadata).
    assert!(
        m["nodes"]["test.tn.not_null_y_id.a99e8f3d35"].is_object(),
        "{:?}",
        m["nodes"].as_object().unwrap().keys().collect::<Vec<_>>()
    );
}

#[test]
fn python_modules_dbt_projects_call() {
    let dir = project(&[
        ("pm_project.yml", "name: mods\n"),
        (
            "models/m.sql",
            "{% set m = modules.re.match('(?P<k>[a-z]+)_(\\d+)', 'orders_42') %}\
             select '{{ m.group('k') }}|{{ m.group(2) }}|{{ m.groups() | join(',') }}' as groups,\n\
             '{{ modules.re.sub('_(\\d+)', '-\\\\1', 'a_1 b_22') }}' as replaced,\n\
             '{{ modules.re.findall('[0-9]+', 'a1b22c333') | join(',') }}' as found,\n\
             '{{ modules.re.search('X', 'abc', flags=modules.re.IGNORECASE) is none }}|{{ modules.re.search('B', 'abc', flags=modules.re.I) is none }}' as flags,\n\
             '{{ 'yes' if modules.re.fullmatch('[0-9]+', '7') else 'no' }}|{{ not modules.re.match('a', 'ab') }}' as truthy,\n\
             '{{ modules.re.compile('\\s+').split('a  b c') | join('|') }}' as split,\n\
             '{{ modules.itertools.chain([1, 2], [3]) | join(',') }}' as chained,\n\
             '{{ modules.itertools.product(['a', 'b'], [1, 2]) | map('join', '') | join(',') }}' as product,\n\
             '{{ modules.itertools.combinations([1, 2, 3], 2) | length }}|{{ modules.itertools.permutations([1, 2, 3], 2) | length }}' as counts,\n\
             '{{ modules.pytz.timezone('Asia/Tokyo') }}|{{ modules.pytz.utc }}' as zones,\n\
             '{{ run_started_at.astimezone(modules.pytz.timezone('Asia/Tokyo')).strftime('%z') }}|{{ modules.datetime.date.today().isoformat() | length }}' as datetimes\n",
        ),
    ]);
    let r = pm(dir.path(), &["compile", "-s", "m"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.trim(),
        "select 'orders|42|orders,42' as groups,\n\
         'a-1 b-22' as replaced,\n\
         '1,22,333' as found,\n\
         'True|False' as flags,\n\
         'yes|False' as truthy,\n\
         'a|b|c' as split,\n\
         '1,2,3' as chained,\n\
         'a1,a2,b1,b2' as product,\n\
         '3|6' as counts,\n\
         'Asia/Tokyo|UTC' as zones,\n\
         '+0900|10' as datetimes"
    );
    // An unknown zone name is an error that says what a zone name looks like.
    write(
        dir.path(),
        "models/m.sql",
        "select '{{ modules.pytz.timezone('Mars/Base') }}'\n",
    );
    let r = pm(dir.path(), &["compile", "-s", "m"]);
    assert_eq!(r.code, 2);
    assert!(
        unwrapped(&r.stderr).contains("`Mars/Base` is not a time zone name"),
        "{}",
        r.stderr
    );
}

#[test]
fn datetime_module_as_python_has_it() {
    let dir = project(&[
        ("pm_project.yml", "name: dates\n"),
        (
            "models/m.sql",
            "{% set dt = modules.datetime %}\
             {% set d = dt.datetime(2024, 3, 10, 1, 30, tzinfo=dt.timezone.utc) %}\
             {% set paris = modules.pytz.timezone('Europe/Paris') %}\
             select '{{ dt.date(2024, 2, 29) }}|{{ dt.date(2024, 2, 29).replace(year=2025, day=28).isoformat() }}|{{ dt.date(2024, 1, 1).weekday() }}' as dates,\n\
             '{{ d }}|{{ d.isoformat() }}|{{ d.astimezone(paris) }}|{{ d.replace(tzinfo=none) }}|{{ d.date() }}|{{ d.hour }}' as datetimes,\n\
             '{{ paris.localize(dt.datetime(2024, 7, 1, 12)).isoformat() }}|{{ dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5))) }}' as zones,\n\
             '{{ dt.timedelta(days=1, hours=2, minutes=3, seconds=4) }}|{{ dt.timedelta(hours=-1) }}|{{ dt.timedelta(weeks=1).total_seconds() }}|{{ dt.timedelta(hours=36).days }}' as deltas,\n\
             '{{ dt.datetime.strptime('2024-05-06 07:08', '%Y-%m-%d %H:%M') }}|{{ dt.datetime.fromisoformat('2024-05-06T07:08:09+02:00').strftime('%H:%M %z') }}|{{ dt.date.fromisoformat('2024-05-06').day }}' as parsed,\n\
             '{{ dt.date(2024, 1, 2) > dt.date(2024, 1, 1) }}|{{ dt.datetime(2024, 1, 1, 12) < dt.datetime(2024, 1, 1, 9) }}|{{ dt.timedelta(days=1) > dt.timedelta(hours=23) }}' as compared,\n\
             '{{ dt.datetime.now(dt.timezone.utc).tzinfo }}|{{ dt.datetime.utcnow().tzinfo is none }}' as now\n",
        ),
    ]);
    let r = pm(dir.path(), &["compile", "-s", "m"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.trim(),
        "select '2024-02-29|2025-02-28|0' as dates,\n\
         '2024-03-10 01:30:00+00:00|2024-03-10T01:30:00+00:00|2024-03-10 02:30:00+01:00|2024-03-10 01:30:00|2024-03-10|1' as datetimes,\n\
         '2024-07-01T12:00:00+02:00|2024-01-01 00:00:00-05:00' as zones,\n\
         '1 day, 2:03:04|-1 day, 23:00:00|604800.0|1' as deltas,\n\
         '2024-05-06 07:08:00|07:08 +0200|6' as parsed,\n\
         'True|False|True' as compared,\n\
         'UTC|True' as now"
    );
    // What Python refuses is refused: the error says what goes with a date.
    write(
        dir.path(),
        "models/m.sql",
        "select '{{ modules.datetime.date(2024, 1, 2) * modules.datetime.timedelta(days=1) }}'\n",
    );
    let r = pm(dir.path(), &["compile", "-s", "m"]);
    assert_eq!(r.code, 2);
    let err = unwrapped(&r.stderr);
    assert!(err.contains("take `+`/`-` with a timedelta"), "{err}");
    assert!(err.contains("models/m.sql:1"), "{err}");
}

#[test]
fn docs_paths_is_where_docs_blocks_are_read_when_it_is_set() {
    let dir = project(&[
        ("pm_project.yml", "name: d\ndocs-paths: [\"docs\"]\n"),
        ("docs/defs.md", "# Definitions\n{% docs def_x %}\nX is the count of things.\n{% enddocs %}\n"),
        // Not a docs path any more: not read (dbt reads docs-paths only).
        ("models/notes.md", "{% docs def_x %}\nA second definition.\n{% enddocs %}\n"),
        ("models/m.sql", "select 1 as x\n"),
        ("models/m.yml", "models:\n  - name: m\n    columns:\n      - name: x\n        description: '{{ doc(\"def_x\") }}'\n"),
    ]);
    let r = pm(dir.path(), &["compile"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = manifest(dir.path());
    assert_eq!(
        m["nodes"]["model.d.m"]["columns"]["x"]["description"],
        "X is the count of things."
    );
    assert_eq!(
        m["docs"]["doc.d.def_x"]["original_file_path"],
        "docs/defs.md"
    );
}
