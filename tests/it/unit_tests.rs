//! Unit tests (dbt 1.8's `unit_tests:`): models run on fixture rows and
//! compared with the expected rows, before the model is built.

use crate::common::*;

const MODELS: &[(&str, &str)] = &[
    ("seeds/plans.csv", "plan_id,name,price\n1,basic,10.00\n2,pro,25.50\n"),
    (
        "models/stg_orders.sql",
        "select 1 as order_id, 1 as plan_id, 2 as quantity, 'paid'::text as status\n",
    ),
    (
        "models/order_totals.sql",
        "select o.order_id, p.name as plan_name, o.quantity * p.price as total,\n\
         o.status = 'paid' as is_paid, '{{ var(\"region\", \"eu\") }}' as region\n\
         from {{ ref('stg_orders') }} o join {{ ref('plans') }} p using (plan_id)\n",
    ),
    (
        "models/new_orders.sql",
        "{{ config(materialized='incremental', unique_key='order_id') }}\n\
         select order_id, status, {{ today() }} as seen_on from {{ ref('stg_orders') }}\n\
         {% if is_incremental() %}where order_id > (select max(order_id) from {{ this }}){% endif %}\n",
    ),
    ("macros/today.sql", "{% macro today() %}current_date{% endmacro %}\n"),
    ("models/doubled_base.sql", "{{ config(materialized='ephemeral') }}\nselect 5 as x\n"),
    (
        "models/doubled.sql",
        "select x * 2 as y, '{{ env_var(\"PM_UT_COLOR\", \"red\") }}' as color from {{ ref('doubled_base') }}\n",
    ),
    (
        "tests/fixtures/cheap_plans.csv",
        "plan_id,name,price\n1,basic,10\n2,pro,25.5\n",
    ),
    (
        "tests/fixtures/one_full_order.sql",
        "select 1 as order_id, 'a' as status, current_date as seen_on\n",
    ),
];

const UNIT_TESTS: &str = "unit_tests:
  - name: totals_multiply
    description: price times quantity; the plans come from the seed's file
    model: order_totals
    given:
      - input: ref('stg_orders')
        rows:
          - {order_id: 1, plan_id: 1, quantity: 3, status: paid}
          - {order_id: 2, plan_id: 2, quantity: 2}
      - input: ref('plans')
    expect:
      rows:
        - {order_id: 2, total: 51.0, is_paid: null}
        - {order_id: 1, total: 30, is_paid: true}
  - name: totals_in_the_us
    model: order_totals
    overrides:
      vars: {region: us}
    given:
      - input: ref('stg_orders')
        format: csv
        rows: |
          order_id,plan_id,quantity,status
          1,1,3,paid
          3,2,1,open
      - input: ref('plans')
        format: csv
        fixture: cheap_plans
    expect:
      rows:
        - {order_id: 1, total: 31, region: us}
        - {order_id: 4, total: 25.5, region: us}
  - name: only_new_orders
    model: new_orders
    overrides:
      macros:
        is_incremental: true
        today: \"'2024-01-02'::date\"
    given:
      - input: ref('stg_orders')
        rows: [{order_id: 1, status: a}, {order_id: 5, status: b}]
      - input: this
        format: sql
        rows: select 3 as order_id
    expect:
      rows: [{order_id: 5, status: b, seen_on: '2024-01-02'}]
  - name: all_orders_on_a_full_refresh
    model: new_orders
    overrides:
      macros: {is_incremental: false}
    given:
      - input: ref('stg_orders')
        rows: [{order_id: 1, status: a}]
    expect:
      format: sql
      fixture: one_full_order
  - name: doubles_the_ephemeral_rows
    model: doubled
    overrides:
      env_vars: {PM_UT_COLOR: blue}
    given:
      - input: ref('doubled_base')
        format: sql
        rows: select 4 as x union all select 6
    expect:
      format: csv
      rows: |
        y,color
        8,blue
        12,blue
";

fn shop() -> LocalProject {
    let mut files = MODELS.to_vec();
    files.push(("models/unit_tests.yml", UNIT_TESTS));
    LocalProject::new(&files)
}

#[test]
fn unit_tests_run_before_their_model_and_report_the_diff() {
    let p = shop();
    let r = pm(p.path(), &["build"]);
    let out = format!("{}{}", r.stdout, r.stderr);
    assert_eq!(r.code, 1, "{out}");
    // The failing test's model is not built; the others are.
    assert!(
        out.contains("SKIP   view model public.order_totals (unit test totals_in_the_us failed)"),
        "{out}"
    );
    assert_eq!(
        sql(
            p.path(),
            "select string_agg(relname, ',' order by relname) from pg_class c \
             join pg_namespace n on n.oid = c.relnamespace where nspname = 'public' and relkind in ('r', 'v')"
        ),
        "a,doubled,new_orders,plans,stg_orders"
    );
    for passing in [
        "PASS   unit test totals_multiply",
        "PASS   unit test only_new_orders",
        "PASS   unit test all_orders_on_a_full_refresh",
        "PASS   unit test doubles_the_ephemeral_rows",
    ] {
        assert!(out.contains(passing), "{passing}: {out}");
    }
    // The diff: a changed row (expected→actual), a row only in actual, one
    // only in expected; numeric 30.00 equals 30, order does not matter.
    assert!(out.contains("FAIL 3 unit test totals_in_the_us"), "{out}");
    let diff = "\
    | @@  | order_id | total | region |
    |-----|----------|-------|--------|
    | →   | 1        | 31→30 | us     |
    | +++ | 3        | 25.5  | us     |
    | --- | 4        | 25.5  | us     |";
    assert!(out.contains(diff), "{out}");
    // The overrides and fixtures reached the model's SQL.
    let compiled = read(
        p.path(),
        "target/compiled/local/models/unit_tests.yml/only_new_orders.sql",
    );
    assert!(
        compiled.contains("'2024-01-02'::date as seen_on")
            && compiled.contains("from __dbt__cte__stg_orders")
            && compiled.contains("(select max(order_id) from __dbt__cte__new_orders)"),
        "{compiled}"
    );
    let status = |id: &str| run_status(p.path(), id);
    assert_eq!(
        status("unit_test.local.order_totals.totals_in_the_us").as_deref(),
        Some("fail")
    );
    assert_eq!(
        status("model.local.order_totals").as_deref(),
        Some("skipped")
    );
    let manifest = manifest(p.path());
    assert_eq!(
        manifest["unit_tests"]["unit_test.local.order_totals.totals_multiply"]["depends_on"]
            ["nodes"],
        serde_json::json!(["model.local.order_totals"])
    );

    // Fixed, the test passes and `pm build` builds the model; `pm test`
    // runs unit tests selected by type.
    let fixed = UNIT_TESTS
        .replace("total: 31, region: us", "total: 30, region: us")
        .replace("{order_id: 4, total: 25.5", "{order_id: 3, total: 25.5");
    write(p.path(), "models/unit_tests.yml", &fixed);
    let r = pm(p.path(), &["build"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let r = pm(p.path(), &["test", "-s", "test_type:unit"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("PASS=5") || r.stdout.contains("PASS=5"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    // `pm compile -s model` still prints the model's SQL, not its unit tests'.
    let compiled = pm(p.path(), &["compile", "-s", "order_totals"]);
    assert!(
        compiled
            .stdout
            .contains("from \"pm\".\"public\".\"stg_orders\" o"),
        "{}",
        compiled.stdout
    );
    let listed = pm(
        p.path(),
        &["ls", "-s", "order_totals", "--resource-type", "unit_test"],
    );
    assert_eq!(
        listed.stdout.trim(),
        "unit_test:local.order_totals.totals_in_the_us\nunit_test:local.order_totals.totals_multiply"
    );
}

#[test]
fn unit_test_mistakes_are_errors_naming_them() {
    let compile_error = |yaml: &str| {
        let mut files = MODELS.to_vec();
        files.push(("pm_project.yml", "name: local\n"));
        files.push(("models/unit_tests.yml", yaml));
        let p = project(&files);
        let r = pm(p.path(), &["compile"]);
        assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
        unwrapped(&r.stderr)
    };
    let head = "unit_tests:\n  - name: t\n";
    let e = compile_error(&format!(
        "{head}    model: order_totals\n    given:\n      - input: ref('stg_orders')\n        rows: [{{order_id: 1}}]\n    expect: {{rows: []}}\n"
    ));
    assert!(
        e.contains("the model reads ref('plans'), for which unit test `t` gives no rows")
            && e.contains("add `- input: ref('plans')`"),
        "{e}"
    );
    let e = compile_error(&format!(
        "{head}    model: order_total\n    given: []\n    expect: {{rows: []}}\n"
    ));
    assert!(
        e.contains("tests model `order_total`, which does not exist")
            && e.contains("did you mean `order_totals`?"),
        "{e}"
    );
    let e = compile_error(&format!(
        "{head}    model: new_orders\n    given:\n      - input: ref('stg_orders')\n        rows: []\n    expect: {{rows: []}}\n"
    ));
    assert!(
        e.contains("does not say whether is_incremental() is true"),
        "{e}"
    );
    let e = compile_error(&format!(
        "{head}    model: new_orders\n    overrides: {{macros: {{is_incremental: true}}}}\n    given:\n      - input: ref('stg_orders')\n        rows: []\n    expect: {{rows: []}}\n"
    ));
    assert!(e.contains("without a `this` input"), "{e}");
    let e = compile_error(&format!(
        "{head}    model: doubled\n    versions: {{include: [2]}}\n    given: []\n    expect: {{rows: []}}\n"
    ));
    assert!(
        e.contains("names versions of model `doubled`, which is not versioned"),
        "{e}"
    );
    let e = compile_error(&format!(
        "{head}    model: doubled\n    given:\n      - input: ref('doubled_base')\n        format: csv\n        fixture: nowhere\n    expect: {{rows: []}}\n"
    ));
    assert!(
        e.contains("names fixture `nowhere`, but there is no nowhere.csv"),
        "{e}"
    );
    let e = compile_error(&format!(
        "{head}    model: doubled\n    given: []\n    expect:\n      format: xml\n      rows: x\n"
    ));
    assert!(
        e.contains("has format `xml`") && e.contains("dict (the default), csv or sql"),
        "{e}"
    );

    let e = compile_error(
        "models:\n  - name: doubled\n    latest_version: 2\n    versions:\n      - v: 2\n",
    );
    assert!(
        e.contains("`doubled` has `versions:`, but pm does not support model versions"),
        "{e}"
    );

    // At run time: a column the input's relation does not have, and an
    // input whose relation is not built (its column types are unknown).
    let p = LocalProject::new(
        &[
            MODELS,
            &[(
                "models/unit_tests.yml",
                "unit_tests:\n  - name: t\n    model: order_totals\n    given:\n      - input: ref('stg_orders')\n        rows: [{order_id: 1, qty: 2}]\n      - input: ref('plans')\n        rows: []\n    expect: {rows: []}\n",
            )][..],
        ]
        .concat(),
    );
    write(
        p.path(),
        "models/pivot.sql",
        "{% set statuses = [] %}{% if execute %}{% set statuses = run_query('select distinct status from ' ~ ref('stg_orders')).columns[0].values() %}{% endif %}\n\
         select {% for s in statuses %}count(*) filter (where status = '{{ s }}') as {{ s }}, {% endfor %}count(*) as orders from {{ ref('stg_orders') }}\n",
    );
    write(
        p.path(),
        "models/pivot_tests.yml",
        "unit_tests:\n  - name: pivots\n    model: pivot\n    given:\n      - input: ref('stg_orders')\n        rows: [{status: paid}]\n    expect:\n      rows: [{orders: 1}]\n",
    );
    let r = pm(p.path(), &["test"]);
    assert_eq!(r.code, 1);
    let e = unwrapped(&r.stderr);
    assert!(
        e.contains("public.stg_orders does not exist")
            && e.contains("pm run -s stg_orders --empty"),
        "{e}"
    );
    let r = pm(p.path(), &["build"]);
    assert_eq!(r.code, 1);
    let e = unwrapped(&r.stderr);
    assert!(
        e.contains("the rows for ref('stg_orders') name column `qty`, which ref('stg_orders') does not have (its columns: order_id, plan_id, quantity, status)"),
        "{e}"
    );
    assert!(
        e.contains("relation \"__dbt__cte__stg_orders\" does not exist")
            && e.contains("override the macro that runs it"),
        "{e}"
    );
    assert_eq!(
        run_status(p.path(), "model.local.pivot").as_deref(),
        Some("skipped")
    );
}
