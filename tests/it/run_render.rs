//! Rendering with the warehouse at hand: a node whose template uses it
//! (`execute`, `run_query`, `statement`, the adapter's catalog methods) is
//! rendered again right before it runs, with its parents built.

use crate::common::*;

const METHODS_MACRO: &str = "{% macro payment_methods() %}\
{% set q %}select distinct method from {{ ref('payments') }} order by 1{% endset %}\
{% set found = run_query(q) %}\
{% if execute %}{{ return(found.columns[0].values()) }}{% else %}{{ return([]) }}{% endif %}\
{% endmacro %}\n";

#[test]
fn templates_that_query_the_warehouse_render_with_it_at_run_time() {
    let p = LocalProject::new(&[
        ("macros/methods.sql", METHODS_MACRO),
        (
            "models/payments.sql",
            "{{ config(materialized='table') }}\
             select * from (values (1, 'card', 10), (2, 'bank', 20), (3, 'card', 5)) t(id, method, amount)\n",
        ),
        (
            "models/pivot.sql",
            "select {% for m in payment_methods() %}sum(case when method = '{{ m }}' then amount else 0 end) as {{ m }}_amount{{ ',' if not loop.last }}\n{% endfor %}\
             from {{ ref('payments') }}\n",
        ),
        (
            "models/described.sql",
            "select '{% for c in adapter.get_columns_in_relation(ref('payments')) %}{{ c.name }}:{{ c.data_type }}{{ ',' if not loop.last }}{% endfor %}' as columns\n",
        ),
        (
            "models/totals.sql",
            "-- depends_on: {{ ref('payments') }}\n{% call statement('total', fetch_result=True) %}select sum(amount) as s, count(*) as n from {{ ref('payments') }}{% endcall %}\
             {% set res = load_result('total') %}\
             select {{ res['data'][0][0] if execute else 0 }} as total, {{ res.table.rows[0]['n'] if execute else 0 }} as n, '{{ execute }}' as executed\n",
        ),
        (
            "models/found.sql",
            "{% set rel = adapter.get_relation(database=this.database, schema=this.schema, identifier='payments') %}\
             select '{{ rel.type if rel else 'none' }}' as kind, '{{ load_relation(ref('payments')) is not none }}' as loaded, \
             '{{ adapter.get_relation(this.database, this.schema, 'nothing_here') is none }}' as missing\n",
        ),
        (
            "models/housekeeping.sql",
            "{% if execute %}\
             {% do adapter.create_schema(api.Relation.create(database=target.database, schema='side')) %}\
             {% do run_query('create table side.old_stuff as select 1 as x; create table side.gone as select 2 as y') %}\
             {% do adapter.rename_relation(api.Relation.create(schema='side', identifier='old_stuff', type='table'), api.Relation.create(schema='side', identifier='renamed_stuff')) %}\
             {% do adapter.drop_relation(adapter.get_relation(target.database, 'side', 'gone')) %}\
             {% endif %}select 1 as done\n",
        ),
    ]);
    // Compiling needs no server: those templates see `execute` false.
    let r = pm(p.path(), &["compile", "-s", "totals"]);
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    assert!(
        r.stderr
            .contains("use the warehouse while rendering; compiled without it"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout
            .contains("\nselect 0 as total, 0 as n, 'False' as executed"),
        "{}",
        r.stdout
    );

    let r = pm(p.path(), &["run"]);
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    assert_eq!(
        sql(p.path(), "select bank_amount, card_amount from pivot"),
        "20|15"
    );
    assert_eq!(
        sql(p.path(), "select * from described"),
        "id:integer,method:text,amount:integer"
    );
    assert_eq!(sql(p.path(), "select * from totals"), "35|3|True");
    assert_eq!(sql(p.path(), "select * from found"), "table|True|True");
    assert_eq!(
        sql(
            p.path(),
            "select (select x from side.renamed_stuff), to_regclass('side.old_stuff') is null, to_regclass('side.gone') is null"
        ),
        "1|t|t"
    );
    // What ran is what target/compiled/ holds.
    let compiled = read(p.path(), "target/compiled/local/models/pivot.sql");
    assert!(compiled.contains("as bank_amount"), "{compiled}");
    // With the database running, pm compile renders those nodes with it too.
    let r = pm(p.path(), &["compile", "-s", "pivot"]);
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    assert!(r.stdout.contains("as bank_amount"), "{}", r.stdout);
}

#[test]
fn tests_that_query_the_warehouse_render_with_it_too() {
    let p = LocalProject::new(&[
        (
            "tests/one_row.sql",
            "{% set found = run_query('select count(*) from ' ~ ref('a')) %}\
             select * from {{ ref('a') }} where {{ found.columns[0].values()[0] if execute else -1 }} <> 1\n",
        ),
        (
            "tests/two_rows.sql",
            "{% set found = run_query('select count(*) from ' ~ ref('a')) %}\
             select * from {{ ref('a') }} where {{ found.columns[0].values()[0] if execute else -1 }} <> 2\n",
        ),
    ]);
    let r = pm(p.path(), &["build"]);
    assert_eq!(r.code, 1, "{}", unwrapped(&r.stderr));
    assert!(r.stderr.contains("PASS=2 WARN=0 ERROR=1"), "{}", r.stderr);
    assert!(r.stderr.contains("FAIL 1 two_rows"), "{}", r.stderr);
}

#[test]
fn a_failing_query_while_rendering_names_the_query_and_the_model() {
    let p = LocalProject::new(&[(
        "models/bad.sql",
        "{% set r = run_query('select nope from nowhere') %}select 1 as x\n",
    )]);
    let r = pm(p.path(), &["run"]);
    assert_eq!(r.code, 1, "{}", unwrapped(&r.stderr));
    let out = unwrapped(&format!("{}{}", r.stdout, r.stderr));
    assert!(out.contains("a query run while rendering failed"), "{out}");
    assert!(out.contains("relation \"nowhere\" does not exist"), "{out}");
    assert!(out.contains("models/bad.sql"), "{out}");

    // A ref() seen only at run time is refused, with the line that declares it.
    write(
        p.path(),
        "models/bad.sql",
        "{% if execute %}{% set r = run_query('select 1 from ' ~ ref('a')) %}{% endif %}select 1 as x\n",
    );
    let r = pm(p.path(), &["run", "-s", "bad"]);
    assert_eq!(r.code, 1, "{}", unwrapped(&r.stderr));
    let out = unwrapped(&format!("{}{}", r.stdout, r.stderr));
    assert!(
        out.contains("refers to `a` only while rendering at run time"),
        "{out}"
    );
    assert!(out.contains("-- depends_on: {{ ref('a') }}"), "{out}");
    // The model a.sql, which does not depend on it, was built.
    assert_eq!(sql(p.path(), "select id from a"), "1");
}

#[test]
fn run_operation_calls_a_macro_with_the_warehouse() {
    let p = LocalProject::new(&[(
        "macros/ops.sql",
        "{% macro make_log(label, times=1) %}\
         {% do run_query(\"create table ops_log as select '\" ~ label ~ \"'::text as label, \" ~ times ~ \" as times\") %}\
         {% do log('made ' ~ label, info=True) %}\
         {% endmacro %}\
         {% macro refuse() %}{{ exceptions.raise_compiler_error('not today') }}{% endmacro %}\n",
    )]);
    let r = pm(
        p.path(),
        &[
            "run-operation",
            "make_log",
            "--args",
            "{label: hello, times: 3}",
        ],
    );
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    assert!(r.stderr.contains("made hello"), "{}", r.stderr);
    assert_eq!(sql(p.path(), "select label, times from ops_log"), "hello|3");
    // A package's (here pm's own dbt namespace) macro by its qualified name.
    let r = pm(p.path(), &["run-operation", "dbt.type_int"]);
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));

    let r = pm(p.path(), &["run-operation", "make_lg"]);
    assert_eq!(r.code, 2);
    let err = unwrapped(&r.stderr);
    assert!(err.contains("there is no macro named `make_lg`"), "{err}");
    assert!(err.contains("make_log"), "{err}");

    let r = pm(p.path(), &["run-operation", "refuse"]);
    assert_eq!(r.code, 1);
    let err = unwrapped(&r.stderr);
    assert!(err.contains("not today"), "{err}");
    assert!(err.contains("macros/ops.sql"), "{err}");

    let r = pm(p.path(), &["run-operation", "make_log", "--args", "[1, 2]"]);
    assert_eq!(r.code, 2);
    assert!(
        unwrapped(&r.stderr).contains("--args must be a YAML mapping"),
        "{}",
        r.stderr
    );
}

#[test]
fn hooks_that_test_execute_render_with_the_warehouse() {
    let p = LocalProject::new(&[
        (
            "pm_project.yml",
            "name: local\non-run-start: [\"create table if not exists hook_log (name text)\"]\n",
        ),
        (
            "macros/mark.sql",
            "{% macro mark_built(rel) %}{% if execute %}insert into hook_log values ('{{ rel.identifier }}'){% else %}select 1{% endif %}{% endmacro %}\n",
        ),
        (
            "models/hooked.sql",
            "{{ config(materialized='table', post_hook=\"{{ mark_built(this) }}\") }}select 1 as x\n",
        ),
    ]);
    let r = pm(p.path(), &["run", "-s", "hooked"]);
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    assert_eq!(sql(p.path(), "select name from hook_log"), "hooked");
}

#[test]
fn renders_of_a_run_share_their_connections() {
    // One thread: the renders follow one another, each on the connection
    // the one before gave back (a new connection per node was slow).
    let mut files = Vec::new();
    for i in 1..=4 {
        files.push((
            format!("models/m{i}.sql"),
            "select {{ run_query('select pg_backend_pid()').columns[0].values()[0] if execute else 0 }} as pid\n"
                .to_string(),
        ));
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let p = LocalProject::new(&files);
    let r = pm(p.path(), &["run", "--threads", "1"]);
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    assert_eq!(
        sql(
            p.path(),
            "select count(distinct pid), min(pid) > 0 from (select pid from m1 union all select pid from m2 \
             union all select pid from m3 union all select pid from m4) t"
        ),
        "1|t"
    );
}
