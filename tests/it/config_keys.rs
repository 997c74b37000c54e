//! Config keys dbt-postgres acts on: pm honours them or refuses them by
//! name, never silently (`sql_header`, `persist_docs`; contracts, microbatch,
//! access, quoting and the like are refused until pm does them).

use crate::common::*;

#[test]
fn sql_header_and_persist_docs_act_as_in_dbt_postgres() {
    let p = LocalProject::new(&[
        (
            "models/h.sql",
            "{{ config(materialized='table') }}\n\
             {% call set_sql_header(config) %}\n\
             create or replace function pg_temp.twice(x int) returns int language sql as $$ select x * 2 $$;\n\
             {% endcall %}\n\
             select pg_temp.twice(21) as v\n",
        ),
        (
            "models/d.sql",
            "{{ config(materialized='table', persist_docs={'relation': true, 'columns': true}) }}\n\
             select 1 as id, 'x' as name\n",
        ),
        (
            "models/v.sql",
            "{{ config(materialized='view', persist_docs={'relation': true, 'columns': true}) }}\n\
             select 1 as id\n",
        ),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: d\n    description: \"The d's model\"\n    columns:\n      - name: id\n        description: Its key.\n      - name: gone\n        description: Not in the table.\n  - name: v\n    description: A view.\n    columns:\n      - name: id\n        description: The view's key.\n",
        ),
    ]);
    let r = pm(p.path(), &["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(sql(p.path(), "select v from public.h"), "42");
    assert_eq!(
        sql(
            p.path(),
            "select obj_description('public.d'::regclass) || '|' || col_description('public.d'::regclass, 1) || '|' || coalesce(col_description('public.d'::regclass, 2), '-')"
        ),
        "The d's model|Its key.|-"
    );
    assert_eq!(
        sql(
            p.path(),
            "select obj_description('public.v'::regclass) || '|' || col_description('public.v'::regclass, 1)"
        ),
        "A view.|The view's key."
    );
    // A rebuild keeps them (they are set on the new relation before the swap).
    let r = pm(p.path(), &["run", "-s", "d"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        sql(p.path(), "select obj_description('public.d'::regclass)"),
        "The d's model"
    );
}

#[test]
fn config_pm_does_not_act_on_is_refused_by_name() {
    for (config, says) in [
        ("contract={'enforced': true}", "model contracts"),
        (
            "materialized='materialized_view', on_configuration_change='fail'",
            "on_configuration_change `fail`",
        ),
        (
            "materialized='incremental', incremental_strategy='microbatch', event_time='d'",
            "microbatch",
        ),
        ("access='private'", "access `private`"),
        ("quoting={'identifier': false}", "quoting: false"),
        (
            "materialized='materialized_view', persist_docs={'relation': true}",
            "persist_docs on a materialized view",
        ),
    ] {
        let p = project(&[
            ("pm_project.yml", "name: k\n"),
            (
                "models/m.sql",
                &format!("{{{{ config({config}) }}}}\nselect 1 as id\n"),
            ),
        ]);
        let r = pm(p.path(), &["compile"]);
        assert_eq!(r.code, 2, "{config}: {}", r.stderr);
        let said = unwrapped(&r.stderr);
        assert!(
            said.contains(says) && said.contains("models/m.sql:1"),
            "{config}: {said}"
        );
    }
    // A contract that is not enforced, and public access, change nothing.
    let p = project(&[
        ("pm_project.yml", "name: k\n"),
        (
            "models/m.sql",
            "{{ config(contract={'enforced': false}, access='public') }}\nselect 1 as id\n",
        ),
    ]);
    assert_eq!(pm(p.path(), &["compile"]).code, 0);
}
