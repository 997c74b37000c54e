//! Snapshots: type-2 history over three runs, for each strategy and
//! hard-delete mode. The expected rows are the rows dbt-postgres 1.11 wrote
//! for the same snapshots and changes (compared side by side).

use crate::common::*;

const SNAPSHOTS: &str = "{% snapshot ts_inv %}\
{{ config(unique_key='id', strategy='timestamp', updated_at='updated_at', hard_deletes='invalidate') }}\
select * from src.items\
{% endsnapshot %}\
{% snapshot chk_new %}\
{{ config(unique_key='id', strategy='check', check_cols=['status'], hard_deletes='new_record') }}\
select * from src.items\
{% endsnapshot %}\
{% snapshot chk_all %}\
{{ config(unique_key=['id', 'kind'], strategy='check', check_cols='all', target_schema='history') }}\
select * from src.items\
{% endsnapshot %}\n";

#[test]
fn snapshot_histories_over_three_runs_match_dbts() {
    let p = LocalProject::new(&[("snapshots/snaps.sql", SNAPSHOTS)]);
    assert_eq!(pm(p.path(), &["db", "start"]).code, 0);
    let step = |changes: &str| {
        sql(p.path(), changes);
        let r = pm(p.path(), &["snapshot"]);
        assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    };
    step(
        "create schema src; create table src.items(id int, kind text, status text, updated_at timestamp); \
         insert into src.items values (1, 'a', 'new', '2024-01-01'), (2, 'a', 'new', '2024-01-01'), (3, 'b', 'new', '2024-01-01')",
    );
    step(
        "update src.items set status = 'paid', updated_at = '2024-01-02' where id = 1; delete from src.items where id = 2; \
         insert into src.items values (4, 'b', 'new', '2024-01-02')",
    );
    step(
        "insert into src.items values (2, 'a', 'back', '2024-01-03'); update src.items set kind = 'c' where id = 3; \
         update src.items set updated_at = '2024-01-04' where id = 4",
    );
    let rows = |query: &str| sql(p.path(), query);
    assert_eq!(
        rows(
            "select id, status, updated_at::date, dbt_valid_from::date, dbt_valid_to is null, dbt_scd_id = md5(id::text || '|' || updated_at::text) \
             from ts_inv order by 1, 3, 4"
        ),
        "1|new|2024-01-01|2024-01-01|f|t\n\
         1|paid|2024-01-02|2024-01-02|t|t\n\
         2|new|2024-01-01|2024-01-01|f|t\n\
         2|back|2024-01-03|2024-01-03|t|t\n\
         3|new|2024-01-01|2024-01-01|t|t\n\
         4|new|2024-01-02|2024-01-02|f|t\n\
         4|new|2024-01-04|2024-01-04|t|t"
    );
    assert_eq!(
        rows(
            "select id, status, dbt_valid_to is null, dbt_is_deleted from chk_new \
             order by 1, 3, 4, dbt_valid_from"
        ),
        "1|new|f|False\n\
         1|paid|t|False\n\
         2|new|f|False\n\
         2|new|f|True\n\
         2|back|t|False\n\
         3|new|t|False\n\
         4|new|t|False"
    );
    // Check 'all' with a composite key: kind is part of the key, so id 3's
    // new kind is a new row; hard deletes are ignored (id 2 stayed current
    // while deleted, and is closed when it comes back changed).
    assert_eq!(
        rows("select id, kind, status, dbt_valid_to is null from history.chk_all order by 1, 2, 4"),
        "1|a|new|f\n\
         1|a|paid|t\n\
         2|a|new|f\n\
         2|a|back|t\n\
         3|b|new|t\n\
         3|c|new|t\n\
         4|b|new|f\n\
         4|b|new|t"
    );
    // The same columns as dbt's, in its order.
    assert_eq!(
        rows(
            "select string_agg(attname, ',' order by attnum) from pg_attribute \
             where attrelid = 'chk_new'::regclass and attnum > 0 and not attisdropped"
        ),
        "id,kind,status,updated_at,dbt_scd_id,dbt_updated_at,dbt_valid_from,dbt_valid_to,dbt_is_deleted"
    );
}

#[test]
fn a_snapshot_without_its_strategy_config_is_refused_before_anything_runs() {
    let p = LocalProject::new(&[(
        "snapshots/bad.sql",
        "{% snapshot bad %}{{ config(unique_key='id', strategy='timestamp') }}select 1 as id{% endsnapshot %}\n",
    )]);
    let r = pm(p.path(), &["snapshot"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        unwrapped(&r.stderr).contains("snapshot `bad`: the timestamp strategy needs updated_at"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_yaml_defined_snapshot_keeps_the_history_of_its_relation() {
    let p = LocalProject::new(&[(
        "snapshots/snaps.yml",
        "snapshots:\n  - name: a_history\n    relation: ref('a')\n    description: every id a has held\n    config: {unique_key: id, strategy: check, check_cols: all, hard_deletes: invalidate}\n    meta: {owner: data}\n    columns:\n      - name: id\n        description: the id\n        data_tests: [not_null]\n",
    )]);
    let r = pm(p.path(), &["build"]);
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    assert!(
        r.stderr.contains("OK     snapshot public.a_history ["),
        "{}",
        r.stderr
    );
    write(p.path(), "models/a.sql", "select 2 as id\n");
    let r = pm(p.path(), &["build"]);
    assert_eq!(r.code, 0, "{}", unwrapped(&r.stderr));
    assert_eq!(
        sql(
            p.path(),
            "select id, dbt_valid_to is null from a_history order by 1"
        ),
        "1|f\n2|t"
    );
    let m = manifest(p.path());
    let node = &m["nodes"]["snapshot.local.a_history"];
    assert_eq!(node["depends_on"]["nodes"][0], "model.local.a");
    assert_eq!(node["description"], "every id a has held");
    assert_eq!(node["columns"]["id"]["description"], "the id");
    assert_eq!(node["meta"]["owner"], "data");

    // A relation that is not ref() or source() text is said so at its line.
    write(
        p.path(),
        "snapshots/snaps.yml",
        "snapshots:\n  - name: a_history\n    relation: [a]\n",
    );
    let r = pm(p.path(), &["compile"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let err = unwrapped(&r.stderr);
    assert!(
        err.contains("`relation:` must be ref('model') or source('source', 'table')"),
        "{err}"
    );
}
