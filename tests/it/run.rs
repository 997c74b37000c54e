//! `pm run` against a real PostgreSQL (the project's embedded cluster).

use crate::common::*;

#[test]
fn builds_the_shop_project_in_dependency_order() {
    // The shop fixture, without its incremental model (pm run builds views and tables so far).
    let p = LocalProject::fixture("shop");
    std::fs::remove_file(p.path().join("models/staging/stg_page_views.sql")).unwrap();
    std::fs::remove_file(p.path().join("models/staging/sources.yml")).unwrap();
    let r = pm(p.path(), &["seed", "-q"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = pm(p.path(), &["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("PASS=6 WARN=0 ERROR=0 SKIP=0 TOTAL=6"),
        "{}",
        r.stderr
    );
    assert_eq!(
        sql(p.path(), "select string_agg(customer_id || ':' || lifetime_value, ',' order by customer_id) from public_marts.dim_customers"),
        "1:10.00,2:23.00,3:2.00"
    );
    assert_eq!(
        sql(
            p.path(),
            "select sum(revenue) from public_marts.revenue_daily"
        ),
        "25.00"
    );
    assert_eq!(
        sql(
            p.path(),
            "select table_type from information_schema.tables where table_name = 'stg_orders'"
        ),
        "VIEW"
    );
    let results: serde_json::Value =
        serde_json::from_str(&read(p.path(), "target/run_results.json")).unwrap();
    assert_eq!(results["results"].as_array().unwrap().len(), 6);
    assert!(results["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == "success"));
    let ran = read(p.path(), "target/run/shop/models/marts/orders.sql");
    assert!(
        ran.contains("create table \"public_marts\".\"orders__pm_new_"),
        "{ran}"
    );
}

#[test]
fn a_failing_model_keeps_its_old_table_and_skips_only_its_descendants() {
    let p = LocalProject::new(&[
        ("models/base.sql", "select 1 as id union all select 2\n"),
        (
            "models/totals.sql",
            "{{ config(materialized='table') }}\nselect count(*) as n from {{ ref('base') }}\n",
        ),
        (
            "models/sibling.sql",
            "{{ config(materialized='table') }}\nselect max(id) as top from {{ ref('base') }}\n",
        ),
    ]);
    assert_eq!(pm(p.path(), &["run", "-q"]).code, 0);
    assert_eq!(sql(p.path(), "select n from totals"), "2");

    // Break totals, give it a child; change the sibling so its rebuild shows.
    write(p.path(), "models/totals.sql", "{{ config(materialized='table') }}\nselect count(*) as n\nfrom {{ ref('base') }}\nwhere idd > 0\n");
    write(
        p.path(),
        "models/report.sql",
        "select n * 2 as twice from {{ ref('totals') }}\n",
    );
    write(
        p.path(),
        "models/sibling.sql",
        "{{ config(materialized='table') }}\nselect max(id) + 100 as top from {{ ref('base') }}\n",
    );
    let r = pm(p.path(), &["run"]);
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 1, "{err}");
    assert!(err.contains("ERROR  table model public.totals"), "{err}");
    assert!(
        err.contains("SKIP   view model public.report (depends on totals, which failed)"),
        "{err}"
    );
    assert!(
        err.contains("PASS=3 WARN=0 ERROR=1 SKIP=1 TOTAL=5"),
        "{err}"
    );
    // The error names the model and marks the line of compiled SQL.
    assert!(
        err.contains("model `totals` (models/totals.sql): column \"idd\" does not exist"),
        "{err}"
    );
    assert!(
        err.contains("[target/compiled/local/models/totals.sql:4:7]"),
        "{err}"
    );
    assert_eq!(
        sql(p.path(), "select n from totals"),
        "2",
        "old table intact"
    );
    assert_eq!(
        sql(p.path(), "select top from sibling"),
        "102",
        "independent branch built"
    );
    assert_eq!(
        sql(p.path(), "select to_regclass('public.report') is null"),
        "t"
    );
    assert_eq!(
        sql(
            p.path(),
            "select count(*) from pg_class where relname like '%\\_\\_pm\\_new%'"
        ),
        "0"
    );
    let status = |id: &str| run_status(p.path(), id).unwrap_or_default();
    assert_eq!(status("model.local.totals"), "error");
    assert_eq!(status("model.local.report"), "skipped");
    assert_eq!(status("model.local.sibling"), "success");
}

#[test]
fn views_on_a_replaced_table_are_re_pointed_or_the_swap_is_refused() {
    let p = LocalProject::new(&[(
        "models/t.sql",
        "{{ config(materialized='table') }}\nselect 1 as id, 'a' as label\n",
    )]);
    assert_eq!(pm(p.path(), &["run", "-q"]).code, 0);
    sql(p.path(), "create view t_labels as select label from t; create view t_count as select count(*) as n from t_labels");
    sql(p.path(), "create role viewer; grant select on t_count to viewer; comment on view t_labels is 'labels in use'");

    write(p.path(), "models/t.sql", "{{ config(materialized='table') }}\nselect 1 as id, 'a' as label union all select 2, 'b'\n");
    let r = pm(p.path(), &["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("views re-created: t_labels, t_count"),
        "{}",
        r.stderr
    );
    assert_eq!(sql(p.path(), "select n from t_count"), "2");
    // The re-created views keep their grants and comments.
    assert_eq!(
        sql(
            p.path(),
            "select has_table_privilege('viewer', 'public.t_count', 'select')::text || ' ' || obj_description('public.t_labels'::regclass, 'pg_class')"
        ),
        "true labels in use"
    );

    // A new version the views cannot read: refused, old table and views intact.
    write(
        p.path(),
        "models/t.sql",
        "{{ config(materialized='table') }}\nselect 3 as id\n",
    );
    let r = pm(p.path(), &["run"]);
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 1, "{err}");
    assert!(
        err.contains("view t_labels, which depends on it, cannot be re-created on the new version"),
        "{err}"
    );
    assert_eq!(sql(p.path(), "select n from t_count"), "2");
}

#[test]
fn materializations_not_built_yet_are_refused_up_front() {
    let p = LocalProject::new(&[
        (
            "models/mv.sql",
            "{{ config(materialized='snapshot_like') }}\nselect 1 as id\n",
        ),
        (
            "macros/snapshot_like.sql",
            "{% materialization snapshot_like, default %}\n{{ return({'relations': []}) }}\n{% endmaterialization %}\n",
        ),
    ]);
    // The project's own materialization compiles; running it is refused by name.
    assert_eq!(pm(p.path(), &["compile", "-q"]).code, 0);
    let r = pm(p.path(), &["run"]);
    assert_eq!(r.code, 2);
    let err = unwrapped(&r.stderr);
    assert!(
        err.contains("model `mv` is materialized as `snapshot_like`, the project's own materialization, which pm cannot build"),
        "{err}"
    );
    assert_eq!(pm(p.path(), &["run", "-q", "--exclude", "mv"]).code, 0);
    // A bad incremental config is refused before anything runs.
    write(
        p.path(),
        "models/inc.sql",
        "{{ config(materialized='incremental', incremental_strategy='merge') }}\nselect 1 as id\n",
    );
    let r = pm(p.path(), &["run", "--exclude", "mv"]);
    assert_eq!(r.code, 2);
    let err = unwrapped(&r.stderr);
    assert!(
        err.contains("incremental strategies delete+insert and merge need a unique_key"),
        "{err}"
    );
}

fn incremental_model(strategy: &str, extra_cols: &str, on_schema_change: &str) -> String {
    format!(
        "{{{{ config(materialized='incremental', unique_key='id', incremental_strategy='{strategy}', on_schema_change='{on_schema_change}') }}}}\n\
         select id, v, at{extra_cols}\nfrom {{{{ source('raw', 'events') }}}}\n\
         {{% if is_incremental() %}}\nwhere at > (select max(at) from {{{{ this }}}})\n{{% endif %}}\n"
    )
}

#[test]
fn incremental_models_add_rows_like_a_full_refresh_would() {
    for (strategy, after_second_run) in [
        ("merge", "1:a,2:B,3:c"),
        ("delete+insert", "1:a,2:B,3:c"),
        ("append", "1:a,2:b,2:B,3:c"),
    ] {
        let p = LocalProject::new(&[
            (
                "models/src.yml",
                "sources:\n  - name: raw\n    tables:\n      - name: events\n",
            ),
            (
                "models/events_incr.sql",
                &incremental_model(strategy, "", "fail"),
            ),
        ]);
        assert_eq!(pm(p.path(), &["db", "start", "-q"]).code, 0);
        sql(
            p.path(),
            "create schema raw; create table raw.events (id int, v text, at timestamp);\
             insert into raw.events values (1, 'a', '2024-01-01'), (2, 'b', '2024-01-02')",
        );
        let r = pm(p.path(), &["run", "-s", "events_incr"]);
        assert_eq!(r.code, 0, "{strategy}: {}", r.stderr);
        let rows = || {
            sql(
                p.path(),
                "select string_agg(id || ':' || v, ',' order by id, v desc) from events_incr",
            )
        };
        assert_eq!(rows(), "1:a,2:b", "{strategy}");

        // A changed row and a new one, both newer than what the table has.
        sql(
            p.path(),
            "insert into raw.events values (2, 'B', '2024-01-03'), (3, 'c', '2024-01-04')",
        );
        let r = pm(p.path(), &["run", "-s", "events_incr"]);
        assert_eq!(r.code, 0, "{strategy}: {}", r.stderr);
        assert!(
            r.stderr.contains("2 rows written"),
            "{strategy}: {}",
            r.stderr
        );
        assert_eq!(rows(), after_second_run, "{strategy}");
        let ran = read(p.path(), "target/run/local/models/events_incr.sql");
        assert!(
            ran.contains("where at > (select max(at) from \"pm\".\"public\".\"events_incr\")"),
            "{ran}"
        );

        if strategy == "merge" {
            // The same table as a full rebuild from the source (latest version of each id).
            sql(p.path(), "delete from raw.events where id = 2 and v = 'b'");
            assert_eq!(
                pm(
                    p.path(),
                    &["run", "-q", "--full-refresh", "-s", "events_incr"]
                )
                .code,
                0
            );
            assert_eq!(rows(), after_second_run);

            // on_schema_change: fail refuses a new column, append_new_columns adds it.
            write(
                p.path(),
                "models/events_incr.sql",
                &incremental_model(strategy, ", upper(v) as big", "fail"),
            );
            sql(
                p.path(),
                "insert into raw.events values (4, 'd', '2024-01-05')",
            );
            let r = pm(p.path(), &["run", "-s", "events_incr"]);
            let err = unwrapped(&r.stderr);
            assert_eq!(r.code, 1, "{err}");
            assert!(
                err.contains("the columns changed (added: [big text]"),
                "{err}"
            );
            assert_eq!(rows(), after_second_run, "table unchanged");
            write(
                p.path(),
                "models/events_incr.sql",
                &incremental_model(strategy, ", upper(v) as big", "append_new_columns"),
            );
            let r = pm(p.path(), &["run", "-s", "events_incr"]);
            assert_eq!(r.code, 0, "{}", r.stderr);
            assert!(r.stderr.contains("added big"), "{}", r.stderr);
            assert_eq!(
                sql(
                    p.path(),
                    "select coalesce(big, '-') from events_incr order by id"
                ),
                "-\n-\n-\nD"
            );
        }
    }
}

#[test]
fn runs_are_recorded_and_two_runs_on_one_target_take_turns() {
    let p = LocalProject::new(&[("models/b.sql", "select * from {{ ref('a') }}\n")]);
    let r = pm(p.path(), &["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        sql(
            p.path(),
            "select string_agg(node || '=' || status, ',' order by node) from pm_meta.run_results"
        ),
        "model.local.a=success,model.local.b=success"
    );
    assert_eq!(
        sql(
            p.path(),
            "select count(*) from pm_meta.run_results where finished_at >= started_at"
        ),
        "2"
    );

    // Another run holds the target: --no-wait fails at once, otherwise pm waits its turn.
    let url = pm(p.path(), &["db", "url"]).stdout.trim().to_string();
    let mut holder = std::process::Command::new(psql_bin(p.path()))
        .args([
            url.as_str(),
            "-Xqc",
            "select pg_advisory_lock(hashtextextended('pm:pm.public', 0)), pg_sleep(3)",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_sql(
        p.path(),
        "select count(*) from pg_locks where locktype = 'advisory' and granted",
        "1",
        20,
        "the holder never took the target's lock",
    );
    let r = pm(p.path(), &["run", "--no-wait"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("another pm run is building schema public of database pm"),
        "{}",
        r.stderr
    );
    let t0 = std::time::Instant::now();
    let r = pm(p.path(), &["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("waiting for another pm run on this target to finish"),
        "{}",
        r.stderr
    );
    assert!(t0.elapsed() > std::time::Duration::from_millis(1000));
    let _ = holder.wait();
    assert_eq!(
        sql(
            p.path(),
            "select count(distinct run_id) from pm_meta.run_results"
        ),
        "2"
    );
}

#[test]
fn materialized_views_refresh_or_rebuild_when_their_query_changed() {
    let p = LocalProject::new(&[(
        "models/mv.sql",
        "{{ config(materialized='materialized_view') }}\nselect count(*) as n from pm_src\n",
    )]);
    assert_eq!(pm(p.path(), &["db", "start", "-q"]).code, 0);
    sql(
        p.path(),
        "create table pm_src (x int); insert into pm_src values (1)",
    );
    let r = pm(p.path(), &["run", "-s", "mv"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        sql(
            p.path(),
            "select relkind from pg_class where relname = 'mv'"
        ),
        "m"
    );
    sql(p.path(), "insert into pm_src values (2)");
    let r = pm(p.path(), &["run", "-s", "mv"]);
    assert!(r.stderr.contains("refreshed"), "{}", r.stderr);
    assert_eq!(sql(p.path(), "select n from mv"), "2");
    write(
        p.path(),
        "models/mv.sql",
        "{{ config(materialized='materialized_view') }}\nselect count(*) * 10 as n from pm_src\n",
    );
    let r = pm(p.path(), &["run", "-s", "mv"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("refreshed"), "{}", r.stderr);
    assert_eq!(sql(p.path(), "select n from mv"), "20");
}

#[test]
fn hooks_and_grants_run_with_the_model() {
    let p = LocalProject::new(&[
        (
            "pm_project.yml",
            "name: local\non-run-start: \"create table if not exists audit (event text)\"\non-run-end:\n  - \"insert into audit values ('end of run')\"\n",
        ),
        (
            "models/t.sql",
            "{{ config(materialized='table', pre_hook=\"insert into audit values ('pre {{ this.identifier }}')\", post_hook=\"insert into audit values ('post ' || (select count(*) from {{ this }}))\", grants={'select': ['reporter']}) }}\nselect 1 as id\n",
        ),
    ]);
    assert_eq!(pm(p.path(), &["db", "start", "-q"]).code, 0);
    sql(p.path(), "create role reporter");
    let r = pm(p.path(), &["run", "-s", "t"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        sql(p.path(), "select string_agg(event, ',') from audit"),
        "pre t,post 1,end of run"
    );
    assert_eq!(
        sql(
            p.path(),
            "select has_table_privilege('reporter', 'public.t', 'select')"
        ),
        "t"
    );

    // No grant in the config any more: none on the table.
    write(
        p.path(),
        "models/t.sql",
        "{{ config(materialized='table') }}\nselect 1 as id\n",
    );
    assert_eq!(pm(p.path(), &["run", "-q", "-s", "t"]).code, 0);
    assert_eq!(
        sql(
            p.path(),
            "select has_table_privilege('reporter', 'public.t', 'select')"
        ),
        "f"
    );

    // A failing post-hook fails the model and leaves the previous table.
    write(
        p.path(),
        "models/t.sql",
        "{{ config(materialized='table', post_hook='select 1/0') }}\nselect 2 as id\n",
    );
    let r = pm(p.path(), &["run", "-s", "t"]);
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 1, "{err}");
    assert!(
        err.contains("a post-hook of model `t` failed: division by zero"),
        "{err}"
    );
    assert_eq!(sql(p.path(), "select id from t"), "1");
}

#[test]
fn hooks_outside_the_transaction_and_on_seeds() {
    // `vacuum` refuses to run inside a transaction: only `transaction: false` lets it run.
    let p = LocalProject::new(&[
        (
            "pm_project.yml",
            "name: local\non-run-start: \"create table if not exists audit (event text)\"\nseeds:\n  +post-hook: \"insert into audit select 'seed ' || count(*) from {{ this }}\"\n  +grants:\n    select: [reporter]\n",
        ),
        ("seeds/colors.csv", "id,name\n1,red\n2,blue\n"),
        (
            "models/t.sql",
            "{{ config(materialized='table', post_hook=[{'sql': 'vacuum analyze {{ this }}', 'transaction': false}, \"insert into audit values ('inside')\"]) }}\nselect 1 as id\n",
        ),
    ]);
    assert_eq!(pm(p.path(), &["db", "start", "-q"]).code, 0);
    sql(p.path(), "create role reporter");
    let r = pm(p.path(), &["build"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        sql(
            p.path(),
            "select string_agg(event, ',' order by event) from audit"
        ),
        "inside,seed 2"
    );
    assert_eq!(
        sql(
            p.path(),
            "select has_table_privilege('reporter', 'public.colors', 'select')"
        ),
        "t"
    );
    // The vacuum ran: the table has been analyzed.
    assert_eq!(
        sql(
            p.path(),
            "select last_vacuum is not null and last_analyze is not null from pg_stat_user_tables where relname = 't'"
        ),
        "t"
    );

    // The same hook inside the transaction fails, naming the hook.
    write(
        p.path(),
        "models/t.sql",
        "{{ config(materialized='table', post_hook='vacuum {{ this }}') }}\nselect 2 as id\n",
    );
    let r = pm(p.path(), &["run", "-s", "t"]);
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 1, "{err}");
    assert!(
        err.contains("VACUUM cannot run inside a transaction block"),
        "{err}"
    );
    assert_eq!(sql(p.path(), "select id from t"), "1");
}

#[test]
fn build_loads_seeds_and_builds_models_in_one_ordered_run() {
    let p = LocalProject::fixture("shop");
    std::fs::remove_file(p.path().join("models/staging/stg_page_views.sql")).unwrap();
    std::fs::remove_file(p.path().join("models/staging/sources.yml")).unwrap();
    let r = pm(p.path(), &["build"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("PASS=23 WARN=0 ERROR=0 SKIP=0 TOTAL=23"),
        "{}",
        r.stderr
    );
    // The snapshot is built in DAG order, into its target_schema.
    assert!(
        r.stderr
            .contains("OK     snapshot snapshots.orders_snapshot ["),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("OK     seed public_raw.raw_orders [")
            && r.stderr.contains("3 rows, created]"),
        "{}",
        r.stderr
    );
    assert_eq!(
        sql(
            p.path(),
            "select sum(revenue) from public_marts.revenue_daily"
        ),
        "25.00"
    );

    // A broken seed: what reads it is skipped, the rest is built.
    write(
        p.path(),
        "seeds/raw_customers.csv",
        "id,first_name,last_name\n1,Michael\n",
    );
    let r = pm(p.path(), &["build"]);
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 1, "{err}");
    assert!(
        err.contains("ERROR  seed public_raw.raw_customers"),
        "{err}"
    );
    assert!(
        err.contains(
            "SKIP   view model public.stg_customers (depends on raw_customers, which failed)"
        ),
        "{err}"
    );
    assert!(
        err.contains("SKIP   table model public_marts.dim_customers"),
        "{err}"
    );
    // Branches that do not read it are built: revenue_daily reads orders,
    // not customers, so it does not wait for the relationships test of
    // orders against customers (skipped with customers), as in dbt, whose
    // build holds a node back for a test of several nodes only when it is
    // downstream of all of them.
    assert!(
        err.contains("OK     table model public_marts.orders"),
        "{err}"
    );
    assert!(
        err.contains("OK     table model public_marts.revenue_daily"),
        "{err}"
    );
}

#[test]
fn incremental_predicates_and_merge_columns_do_what_dbt_does() {
    let p = LocalProject::new(&[
        (
            "models/narrowed.sql",
            "{{ config(materialized='incremental', unique_key='id', incremental_strategy='delete+insert', incremental_predicates=['DBT_INTERNAL_DEST.id > 1']) }}\nselect g as id from generate_series(1, 3) as g\n",
        ),
        (
            "models/merged.sql",
            "{{ config(materialized='incremental', unique_key='id', incremental_strategy='merge', merge_exclude_columns=['first_v']) }}\nselect 1 as id, '{{ var(\"v\") }}'::text as v, '{{ var(\"v\") }}'::text as first_v\n",
        ),
    ]);
    for v in ["a", "b"] {
        let r = pm(p.path(), &["run", "--vars", &format!("{{v: {v}}}")]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    // The delete spared the rows outside the predicate: id 1 was added again.
    assert_eq!(
        sql(
            p.path(),
            "select string_agg(id::text, ',' order by id) from narrowed"
        ),
        "1,1,2,3"
    );
    // The merge left first_v as the first run wrote it.
    assert_eq!(sql(p.path(), "select v || first_v from merged"), "ba");
    // Both lists: refused, naming the model.
    write(
        p.path(),
        "models/merged.sql",
        "{{ config(materialized='incremental', unique_key='id', incremental_strategy='merge', merge_exclude_columns=['first_v'], merge_update_columns=['v']) }}\nselect 1 as id, 'c'::text as v, 'c'::text as first_v\n",
    );
    let r = pm(p.path(), &["run", "-s", "merged"]);
    let err = unwrapped(&r.stderr);
    assert_ne!(r.code, 0, "{err}");
    assert!(
        err.contains("model `merged`")
            && err.contains("both merge_update_columns and merge_exclude_columns"),
        "{err}"
    );
}

#[test]
fn hooks_see_the_models_own_config() {
    // As in dbt, a hook renders with the model's whole config: what its own
    // config() sets goes over the project's.
    let p = LocalProject::new(&[
        (
            "dbt_project.yml",
            "name: local\nversion: '1.0'\nconfig-version: 2\nprofile: local\nmodels:\n  local:\n    +meta: {owner: folder}\n",
        ),
        (
            "models/m.sql",
            "{{ config(materialized='table', meta={'owner': 'model'}, pre_hook='create table if not exists public.seen (v text)', post_hook=\"insert into public.seen select '{{ config.get('meta')['owner'] }}'\") }}\nselect 1 as id\n",
        ),
    ]);
    let r = pm(p.path(), &["run", "-s", "m"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        sql(p.path(), "select string_agg(v, ',') from public.seen"),
        "model"
    );
}

#[test]
fn fail_fast_starts_nothing_after_a_failure() {
    // One thread; `bad` heads the longest chain, so it runs first (model `a`
    // comes with every local project).
    let p = LocalProject::new(&[
        (
            "models/bad.sql",
            "{{ config(materialized='table') }}\nselect 1 / 0 as x\n",
        ),
        ("models/below_bad.sql", "select x from {{ ref('bad') }}\n"),
        ("models/b.sql", "select 1 as x\n"),
        ("models/c.sql", "select 1 as x\n"),
        ("models/d.sql", "select 1 as x\n"),
    ]);
    let r = pm(p.path(), &["run", "--threads", "1", "--fail-fast"]);
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 1, "{err}");
    assert!(
        err.contains("PASS=0 WARN=0 ERROR=1 SKIP=5 TOTAL=6"),
        "{err}"
    );
    assert_eq!(
        sql(
            p.path(),
            "select count(*) from pg_class where relname in ('a', 'b', 'c', 'd')"
        ),
        "0"
    );
    // Without it, the independent branches are built.
    let r = pm(p.path(), &["run", "--threads", "1"]);
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 1, "{err}");
    assert!(
        err.contains("PASS=4 WARN=0 ERROR=1 SKIP=1 TOTAL=6"),
        "{err}"
    );
}

#[test]
fn the_longest_expected_chain_starts_first() {
    // One thread: a chain of three quick models and one slow model alone.
    let p = LocalProject::new(&[
        ("models/a1.sql", "select 1 as id\n"),
        ("models/a2.sql", "select id from {{ ref('a1') }}\n"),
        ("models/a3.sql", "select id from {{ ref('a2') }}\n"),
        (
            "models/z_slow.sql",
            "{{ config(materialized='table') }}\nselect 1 as id from (select pg_sleep(0.6)) as s\n",
        ),
    ]);
    let first_started = |r: &Run| -> String {
        r.stderr
            .lines()
            .find(|l| l.contains(" START "))
            .unwrap_or_default()
            .to_string()
    };
    // No history yet: the longest chain of models goes first.
    let r = pm(p.path(), &["run", "--threads", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(first_started(&r).ends_with("public.a1"), "{}", r.stderr);
    // Then the last run's times: z_slow alone outlasts the chain.
    let r = pm(p.path(), &["run", "--threads", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(first_started(&r).ends_with("public.z_slow"), "{}", r.stderr);
}

#[test]
fn indexes_and_unlogged_tables() {
    let p = LocalProject::new(&[(
        "models/t.sql",
        "{{ config(materialized='table', unlogged=true, indexes=[{'columns': ['id'], 'unique': true}, {'columns': ['a'], 'type': 'hash'}]) }}\nselect 1 as id, 'x' as a\n",
    )]);
    let r = pm(p.path(), &["run", "-s", "t"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        sql(
            p.path(),
            "select relpersistence from pg_class where relname = 't'"
        ),
        "u"
    );
    assert_eq!(
        sql(p.path(), "select string_agg(case when i.indisunique then 'unique ' else '' end || am.amname, ',' order by am.amname desc) from pg_index i join pg_class c on c.oid = i.indexrelid join pg_am am on am.oid = c.relam where i.indrelid = 'public.t'::regclass"),
        "hash,unique btree"
    );
    // Rebuilt: the indexes come with the new table, none left over.
    assert_eq!(pm(p.path(), &["run", "-q", "-s", "t"]).code, 0);
    assert_eq!(
        sql(
            p.path(),
            "select count(*) from pg_index where indrelid = 'public.t'::regclass"
        ),
        "2"
    );
    let names = "select string_agg(c.relname, ',' order by c.relname) from pg_index i join pg_class c on c.oid = i.indexrelid where i.indrelid = 'public.t'::regclass";
    let before = sql(p.path(), names);

    // The indexes are built on the new table before the swap, not while its
    // locks keep readers out: a reader holding the old table stops the swap,
    // and by then the new table has its indexes.
    let url = pm(p.path(), &["db", "url"]).stdout.trim().to_string();
    let mut reader = std::process::Command::new(psql_bin(p.path()))
        .args([
            url.as_str(),
            "-Xqc",
            "begin; select count(*) from t; select pg_sleep(300)",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_sql(
        p.path(),
        "select count(*) from pg_stat_activity where query like '%pg_sleep(300)%' and pid <> pg_backend_pid()",
        "1",
        20,
        "the reader never started",
    );
    let run = spawn_pm(p.path(), &["run", "-q", "-s", "t"], &[]);
    wait_for_sql(
        p.path(),
        "select count(*) from pg_stat_activity where application_name = 'pm' and wait_event_type = 'Lock'",
        "1",
        40,
        "the swap never waited for the reader",
    );
    assert_eq!(
        sql(
            p.path(),
            "select count(*) from pg_indexes where tablename like 't\\_\\_pm\\_new\\_%'"
        ),
        "2",
        "the new table's indexes are built before the swap"
    );
    sql(p.path(), "select pg_terminate_backend(pid) from pg_stat_activity where query like '%pg_sleep(300)%' and pid <> pg_backend_pid()");
    let _ = reader.wait();
    assert!(run.wait_with_output().unwrap().status.success());
    assert_eq!(sql(p.path(), names), before, "the same index names");
}

#[test]
fn an_incremental_run_adds_only_the_indexes_its_table_lacks_whatever_their_names() {
    // The table dbt built (its own index names): the incremental run adds
    // no second copy of the index on `day`, and adds the one on `id`.
    let p = LocalProject::new(&[(
        "models/inc.sql",
        "{{ config(materialized='incremental', unique_key='day', incremental_strategy='delete+insert', indexes=[{'columns': ['day']}, {'columns': ['id'], 'unique': true}]) }}\nselect g as id, current_date - (g % 3) as day from generate_series(1, 9) as g\n",
    )]);
    assert_eq!(pm(p.path(), &["db", "start", "-q"]).code, 0);
    sql(
        p.path(),
        "create table public.inc as select g as id, current_date - (g % 3) as day from generate_series(1, 9) as g;
         create index inc_dbt_8c1f on public.inc (day)",
    );
    let r = pm(p.path(), &["run", "-s", "inc"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let indexes = "select string_agg(case when i.indisunique then 'unique ' else '' end || pg_get_indexdef(i.indexrelid, 1, true), ',' order by 1) from pg_index i where i.indrelid = 'public.inc'::regclass";
    assert_eq!(sql(p.path(), indexes), "day,unique id");
    assert_eq!(
        sql(
            p.path(),
            "select count(*) from pg_indexes where indexname = 'inc_dbt_8c1f'"
        ),
        "1"
    );
    // Again: nothing more.
    assert_eq!(pm(p.path(), &["run", "-q", "-s", "inc"]).code, 0);
    assert_eq!(sql(p.path(), indexes), "day,unique id");
}

#[test]
fn ctrl_c_cancels_on_the_server_and_leaves_nothing_half_built() {
    let p = LocalProject::new(&[
        (
            "models/slow.sql",
            "{{ config(materialized='table') }}\nselect 1 as z from pg_sleep(30)\n",
        ),
        ("models/after.sql", "select * from {{ ref('slow') }}\n"),
    ]);
    assert_eq!(pm(p.path(), &["db", "start", "-q"]).code, 0);
    // Ctrl-C exits 130, SIGTERM 143.
    for (signal, code) in [("-INT", 130), ("-TERM", 143)] {
        let child = std::process::Command::new(pm_bin())
            .current_dir(p.path())
            .args(["run", "-s", "slow+"])
            .env("HOME", p.path())
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the slow query runs on the server.
        let t0 = std::time::Instant::now();
        while sql(p.path(), "select count(*) from pg_stat_activity where query like '%pg_sleep(30)%' and pid <> pg_backend_pid()") != "1" {
            assert!(t0.elapsed().as_secs() < 20, "the model never started");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        std::process::Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let err = unwrapped(&String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(code), "{err}");
        assert!(
            t0.elapsed().as_secs() < 25,
            "pm waited for the query instead of cancelling it"
        );
        assert!(
            err.contains("interrupted: cancelling running statements"),
            "{err}"
        );
        assert!(
            err.contains("model `slow`: interrupted (building); the statement was cancelled"),
            "{err}"
        );
        assert!(!err.contains("fix the model"), "{err}");
        assert!(err.contains("SKIP   view model public.after"), "{err}");
        assert_eq!(
            sql(
                p.path(),
                "select count(*) from pg_class where relname in ('slow', 'after') or relname like 'slow\\_\\_pm\\_new%'"
            ),
            "0"
        );
        assert_eq!(sql(p.path(), "select count(*) from pg_stat_activity where query like '%pg_sleep(30)%' and pid <> pg_backend_pid()"), "0");
    }
}

#[test]
fn seed_and_run_against_a_server_given_by_pm_database_url() {
    // A server of one project's, reached by another through PM_DATABASE_URL
    // only: the second project has no profile and starts no server of its own.
    let server = LocalProject::new(&[("pm_project.yml", "name: server\n")]);
    assert_eq!(pm(server.path(), &["db", "start", "-q"]).code, 0);
    let url = pm(server.path(), &["db", "url"]).stdout.trim().to_string();
    sql(server.path(), "create database elsewhere");
    let url = url.replacen("/pm?", "/elsewhere?", 1);
    assert!(url.contains("/elsewhere?"), "{url}");

    let p = project(&[
        ("pm_project.yml", "name: client\n"),
        ("seeds/colors.csv", "id,name\n1,red\n2,blue\n"),
        (
            "models/named.sql",
            "select upper(name) as name from {{ ref('colors') }}\n",
        ),
    ]);
    let env = [("PM_DATABASE_URL", url.as_str())];
    let r = pm_env(p.path(), &["seed"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = pm_env(p.path(), &["run"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("on PM_DATABASE_URL ("), "{}", r.stderr);
    assert!(!p.path().join(".pm").exists(), "a server was started");
    assert_eq!(
        psql(
            server.path(),
            &url,
            "select string_agg(name, ',' order by name) from named"
        ),
        "BLUE,RED"
    );
    // A wrong password or database is the server's clear error, exit 2.
    let bad = url.replacen("/elsewhere?", "/nowhere?", 1);
    let r = pm_env(p.path(), &["run"], &[("PM_DATABASE_URL", bad.as_str())]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        unwrapped(&r.stderr).contains("database \"nowhere\" does not exist"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_terminal_gets_a_progress_bar_and_a_pipe_gets_plain_lines() {
    let p = LocalProject::new(&[
        ("pm_project.yml", "name: local\n"),
        ("models/a.sql", "select 1 as id\n"),
        ("models/b.sql", "select id from {{ ref('a') }}\n"),
    ]);
    // Through a pipe: one START and one OK line per model, no escape codes.
    let r = pm(p.path(), &["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr.matches(" START ").count(), 2, "{}", r.stderr);
    assert!(!r.stderr.contains('\x1b'), "{}", r.stderr);
    // On a terminal (util-linux `script` gives one): the bar replaces the
    // START lines; the result lines and the summary stay.
    let cmd = format!("{} run", pm_bin().display());
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(p.path())
        .env("HOME", p.path())
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("PM_DATABASE_URL")
        .output()
        .expect("util-linux `script` runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(" running ["), "{text}");
    assert!(text.contains("/2"), "{text}");
    assert!(!text.contains(" START "), "{text}");
    assert!(text.contains("OK     view model public.b"), "{text}");
    assert!(
        text.contains("PASS=2 WARN=0 ERROR=0 SKIP=0 TOTAL=2"),
        "{text}"
    );
}

#[test]
fn leftovers_of_an_interrupted_run_are_removed_and_never_anything_else() {
    let p = LocalProject::new(&[
        (
            "models/t.sql",
            "{{ config(materialized='table') }}\nselect 1 as id\n",
        ),
        // A model whose name looks like the old temporary name of `t`.
        ("models/t__pm_new.sql", "select 2 as id\n"),
    ]);
    assert_eq!(pm(p.path(), &["run", "-q"]).code, 0);
    sql(
        p.path(),
        "create view uses_t__pm_new as select id from t__pm_new;
         create table a__pm_new (id int);
         create materialized view gone__pm_new_0123abcd as select 1 as id;
         create table kept__pm_new (id int);",
    );
    // `a__pm_new`: the leftover of model `a` of an older pm (a table, where
    // a view was expected); `gone__pm_new_…`: of a model since removed.
    let r = pm(p.path(), &["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let err = unwrapped(&r.stderr);
    assert!(
        err.contains("removed public.a__pm_new, a table an interrupted run left behind"),
        "{err}"
    );
    assert!(
        err.contains("removed public.gone__pm_new_0123abcd, a materialized view an interrupted run left behind"),
        "{err}"
    );
    assert_eq!(
        sql(
            p.path(),
            "select string_agg(relname, ',' order by relname) from pg_class
             where relnamespace = 'public'::regnamespace and relkind in ('r', 'v', 'm')"
        ),
        "a,kept__pm_new,t,t__pm_new,uses_t__pm_new",
        "a model named t__pm_new, its dependent view, and a table pm did not make all stay"
    );
    assert_eq!(sql(p.path(), "select id from uses_t__pm_new"), "2");
}

#[test]
fn models_sharing_a_long_prefix_build_under_their_own_temporary_names() {
    let prefix = "m".repeat(58);
    let one = format!("models/{prefix}_one.sql");
    let two = format!("models/{prefix}_two.sql");
    // Aliases of 59 bytes: the first 55 are the same.
    let short = &prefix[..55];
    let one_sql = format!("{{{{ config(alias='{short}_one') }}}}\nselect 'one' as which\n");
    let two_sql = format!("{{{{ config(alias='{short}_two') }}}}\nselect 'two' as which\n");
    let p = LocalProject::new(&[
        (one.as_str(), one_sql.as_str()),
        (two.as_str(), two_sql.as_str()),
        (
            "models/big.sql",
            "{{ config(materialized='table') }}\nselect 1 as id\n",
        ),
    ]);
    for _ in 0..2 {
        let r = pm(p.path(), &["run"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    assert_eq!(
        sql(p.path(), &format!("select which from {short}_one")),
        "one"
    );
    assert_eq!(
        sql(p.path(), &format!("select which from {short}_two")),
        "two"
    );
    // A leftover table under a model's own temporary name (a crash between
    // build and swap) does not stop the next build.
    let ran = read(p.path(), "target/run/local/models/big.sql");
    let name = ran
        .split('"')
        .find(|s| s.starts_with("big__pm_new_"))
        .expect("the temporary name in the statements that ran")
        .to_string();
    sql(p.path(), &format!("create table \"{name}\" (junk int)"));
    let r = pm(p.path(), &["run", "-s", "big"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(sql(p.path(), "select id from big"), "1");
}

#[test]
fn a_grants_key_that_is_not_a_privilege_is_refused_before_anything_runs() {
    let p = LocalProject::new(&[
        (
            "models/t.sql",
            "{{ config(materialized='table', grants={'select on t to public; drop table keep; --': ['postgres']}) }}\nselect 1 as id\n",
        ),
        (
            "models/ok.sql",
            "{{ config(materialized='table', grants={'SELECT': ['postgres'], 'all privileges': []}) }}\nselect 1 as id\n",
        ),
    ]);
    assert_eq!(pm(p.path(), &["db", "start", "-q"]).code, 0);
    sql(p.path(), "create table keep (id int)");
    let r = pm(p.path(), &["run"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let err = unwrapped(&r.stderr);
    assert!(
        err.contains("model `t` (models/t.sql): `select on t to public; drop table keep; --` under grants: is not a privilege"),
        "{err}"
    );
    assert_eq!(
        sql(
            p.path(),
            "select count(*) from pg_class where relname in ('keep')"
        ),
        "1"
    );
    assert_eq!(
        sql(p.path(), "select to_regclass('public.ok') is null"),
        "t",
        "nothing ran"
    );
    assert_eq!(pm(p.path(), &["run", "-q", "-s", "ok"]).code, 0);
}

#[test]
fn a_lost_connection_stops_the_run_and_says_so() {
    // `gone`'s pre-hook ends its own connection, as a server going away would.
    let mut files = vec![(
        "models/gone.sql".to_string(),
        "{{ config(materialized='table', pre_hook='select pg_terminate_backend(pg_backend_pid())') }}\nselect 1 as id\n".to_string(),
    )];
    for k in 0..6 {
        files.push((
            format!("models/later_{k}.sql"),
            "select 1 as id\n".to_string(),
        ));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let p = LocalProject::new(&refs);
    let r = pm(
        p.path(),
        &[
            "run",
            "--threads",
            "1",
            "-s",
            "gone",
            "later_0",
            "later_1",
            "later_2",
            "later_3",
        ],
    );
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 1, "{err}");
    assert!(
        err.contains("the connection to the server was lost: nothing more is started"),
        "{err}"
    );
    assert!(err.contains("model `gone`: the connection to the server was lost (a pre-hook): terminating connection due to administrator command"), "{err}");
    assert!(!err.contains("db error"), "{err}");
    assert!(err.contains("PASS=0 WARN=0 ERROR=1 SKIP=4"), "{err}");
    assert!(
        read(p.path(), "target/run_results.json")
            .contains("skipped: the connection to the server was lost"),
        "the others were not started"
    );

    // A seed whose connection goes says so, not to set column_types.
    write(p.path(), "seeds/s.csv", "id\n1\n");
    write(
        p.path(),
        "dbt_project.yml",
        "name: local\nseeds:\n  local:\n    +pre-hook: \"select pg_terminate_backend(pg_backend_pid())\"\n",
    );
    std::fs::remove_file(p.path().join("pm_project.yml")).unwrap();
    let r = pm(p.path(), &["seed"]);
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 1, "{err}");
    assert!(
        err.contains("seed `s`: the connection to the server was lost"),
        "{err}"
    );
    assert!(!err.contains("column_types"), "{err}");
}

#[test]
fn a_refused_statement_says_the_servers_reason() {
    let p = LocalProject::new(&[(
        "models/m.sql",
        "{{ config(schema='elsewhere') }}\nselect 1 as id\n",
    )]);
    assert_eq!(pm(p.path(), &["db", "start", "-q"]).code, 0);
    sql(
        p.path(),
        "create role builder login; grant usage, create on schema public to builder",
    );
    let url = pm(p.path(), &["db", "url", "--role", "builder"]);
    assert_eq!(url.code, 0, "{}", url.stderr);
    let r = pm_env(
        p.path(),
        &["run"],
        &[("PM_DATABASE_URL", url.stdout.trim())],
    );
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 2, "{err}");
    assert!(
        err.contains("cannot create schema public_elsewhere: permission denied for database pm"),
        "{err}"
    );
    assert!(!err.contains("db error"), "{err}");
}

#[test]
fn results_and_the_jinja_context_tell_the_truth() {
    let p = LocalProject::new(&[
        ("pm_project.yml", "name: local\ntarget-path: out\n"),
        (
            "models/t.sql",
            "{{ config(materialized='table') }}\nselect generate_series(1, 5) as id\n",
        ),
        (
            "models/inc.sql",
            "{{ config(materialized='incremental') }}\nselect id from {{ ref('t') }} where id <= 3\n",
        ),
        (
            "models/flags.sql",
            "select '{{ flags.STORE_FAILURES }}' as store_failures, '{{ dbt_version }}' as dbt_version\n",
        ),
    ]);
    let r = pm(p.path(), &["build", "-q", "--store-failures"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // compiled_path follows target-path.
    let m: serde_json::Value = serde_json::from_str(&read(p.path(), "out/manifest.json")).unwrap();
    assert_eq!(
        m["nodes"]["model.local.t"]["compiled_path"],
        "out/compiled/local/models/t.sql"
    );
    // Rows written, in pm_meta.run_results and run_results.json.
    assert_eq!(
        sql(
            p.path(),
            "select node, rows_affected from pm_meta.run_results where node in ('model.local.t', 'model.local.inc') order by 1"
        ),
        "model.local.inc|3\nmodel.local.t|5"
    );
    let results: serde_json::Value =
        serde_json::from_str(&read(p.path(), "out/run_results.json")).unwrap();
    let t = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["unique_id"] == "model.local.t")
        .unwrap();
    assert_eq!(t["adapter_response"]["rows_affected"], 5);
    // flags.STORE_FAILURES follows --store-failures; dbt_version is a dbt release.
    assert_eq!(
        sql(p.path(), "select store_failures, dbt_version from flags"),
        "True|1.11.0"
    );
    // A crash is a short diagnostic and exit 70, not a backtrace.
    let r = pm_env(p.path(), &["parse"], &[("PM_TEST_CRASH", "1")]);
    assert_eq!(r.code, 70, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("pm crashed: this is a bug in pm 0.1.0, not a problem with your project."),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("what: PM_TEST_CRASH is set"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("stack backtrace"), "{}", r.stderr);
}

#[test]
fn build_empty_creates_every_relation_with_no_rows() {
    let p = LocalProject::fixture("shop");
    std::fs::remove_file(p.path().join("models/staging/stg_page_views.sql")).unwrap();
    std::fs::remove_file(p.path().join("models/staging/sources.yml")).unwrap();
    let r = pm(p.path(), &["build", "--empty"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("ERROR=0 SKIP=0"), "{}", r.stderr);
    // Every relation pm built exists, and none has a row.
    let counts = sql(
        p.path(),
        "select string_agg(table_name || '=' || (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I.%I', table_schema, table_name), false, true, '')))[1]::text, ',' order by table_name) \
         from information_schema.tables where table_schema not in ('pg_catalog', 'information_schema') and table_schema not like 'pm%'",
    );
    for name in [
        "raw_customers",
        "raw_orders",
        "stg_orders",
        "customers",
        "orders",
    ] {
        assert!(counts.contains(&format!("{name}=0")), "{name}: {counts}");
    }
    assert!(!counts.split(',').any(|c| !c.ends_with("=0")), "{counts}");
    // A normal build afterwards fills them.
    let r = pm(p.path(), &["build"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_ne!(
        sql(
            p.path(),
            "select (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I.orders', table_schema), false, true, '')))[1]::text \
             from information_schema.tables where table_name = 'orders'"
        ),
        "0"
    );
}

#[test]
fn views_re_created_after_a_swap_keep_owner_options_privileges_and_comments_exactly() {
    // A table that only shows `reader` its recent rows (row-level security,
    // re-applied by a post-hook as PulseMetrics does).
    let p = LocalProject::new(&[(
        "models/facts.sql",
        "{{ config(materialized='table', grants={'select': ['reader', 'boss']}, post_hook=[\"alter table {{ this }} enable row level security\", \
         \"create policy recent on {{ this }} for select to reader using (day > 7)\", \
         \"create policy everything on {{ this }} for select to boss using (true)\"]) }}\n\
         select g as day, g * 10 as amount from generate_series(1, 10) g\n",
    )]);
    assert_eq!(pm(p.path(), &["db", "start"]).code, 0);
    sql(
        p.path(),
        "create role reader; create role boss; create role analyst",
    );
    let r = pm(p.path(), &["run", "-q"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    sql(
        p.path(),
        "-- runs as its caller: reader sees what the policy lets it see
         create view invoker with (security_invoker = true, security_barrier = true) as select * from facts;
         grant select on invoker to reader;
         -- owned by reader: runs with reader's rights whoever reads it
         create view owned as select day from facts;
         alter view owned owner to reader;
         grant select on owned to analyst;
         -- an updatable view with a check option, a grant made by another grantor, column privileges, comments
         create view checked with (check_option = local) as select day, amount from facts where day > 2;
         grant select on checked to boss with grant option;
         set role boss; grant select on checked to analyst; reset role;
         grant select (day), update (amount) on checked to analyst;
         comment on view checked is 'days after the second';
         comment on column checked.amount is 'in cents';
         alter view checked alter column amount set default 0;
         -- a materialized view with an index, and one with no data, over a view
         create materialized view totals as select sum(amount) as total from owned join facts using (day);
         create index totals_total on totals (total);
         alter materialized view totals owner to boss;
         create materialized view later as select * from checked with no data;",
    );
    let catalog = |p: &LocalProject| {
        sql(
            p.path(),
            &format!(
                "select string_agg(c.relname || ': ' || {}, E'\\n---\\n' order by c.relname) from pg_class c
                 where c.relname in ('invoker', 'owned', 'checked', 'totals', 'later')",
                "concat_ws(' ', pg_get_userbyid(c.relowner), c.reloptions::text, c.relacl::text,
                   (select string_agg(a.attname || '=' || a.attacl::text, ',') from pg_attribute a where a.attrelid = c.oid and a.attacl is not null),
                   obj_description(c.oid, 'pg_class'), col_description(c.oid, 2),
                   (select string_agg(pg_get_expr(adbin, adrelid), ',') from pg_attrdef where adrelid = c.oid),
                   (select string_agg(pg_get_indexdef(indexrelid), ',') from pg_index where indrelid = c.oid),
                   c.relispopulated::text)"
            ),
        )
    };
    let as_role = |role: &str, query: &str| {
        sql(p.path(), &format!("set role {role}; {query}"))
            .trim_start_matches("SET\n")
            .to_string()
    };
    let before = catalog(&p);
    assert!(before.contains("security_invoker=true"), "{before}");
    assert_eq!(as_role("reader", "select count(*) from invoker"), "3");
    assert_eq!(as_role("analyst", "select count(*) from owned"), "3");

    let r = pm(p.path(), &["run", "--full-refresh"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("views re-created"), "{}", r.stderr);
    assert_eq!(catalog(&p), before);
    assert_eq!(as_role("reader", "select count(*) from invoker"), "3");
    assert_eq!(as_role("analyst", "select count(*) from owned"), "3");
    assert_eq!(sql(p.path(), "select total from totals"), "270");
    let denied = crate::common::psql_result(
        p.path(),
        pm(p.path(), &["db", "url"]).stdout.trim(),
        "set role analyst; select count(*) from invoker",
    );
    assert!(denied.unwrap_err().contains("permission denied"));
}

#[test]
fn a_run_that_waited_for_the_lock_decides_on_what_the_other_run_left() {
    let p = LocalProject::new(&[
        (
            "models/slow.sql",
            "{{ config(materialized='table') }}\nselect pg_sleep(5) is null as slept\n",
        ),
        (
            "models/inc.sql",
            "-- depends_on: {{ ref('slow') }}\n{{ config(materialized='incremental') }}\n\
             select 1{% if is_incremental() %} + (select count(*) from {{ this }}){% endif %} as id\n",
        ),
    ]);
    assert_eq!(pm(p.path(), &["db", "start", "-q"]).code, 0);
    // The first run creates inc after 5 s; the second starts meanwhile and waits.
    let first = spawn_pm(p.path(), &["run", "-q"], &[]);
    wait_for_sql(
        p.path(),
        "select count(*) from pg_stat_activity where query like '%pg_sleep(5)%' and pid <> pg_backend_pid()",
        "1",
        30,
        "the first run never started",
    );
    let second = pm(p.path(), &["run", "-s", "inc"]);
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success());
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stderr.contains("waiting for another pm run"),
        "{}",
        second.stderr
    );
    // It found the table the first run made, and added to it.
    assert_eq!(
        sql(
            p.path(),
            "select string_agg(id::text, ',' order by id) from inc"
        ),
        "1,2"
    );
}

#[test]
fn ctrl_c_cancels_the_queries_of_a_render_at_run_time_too() {
    let p = LocalProject::new(&[(
        "models/asks.sql",
        "{% if execute %}{% set r = run_query('select pg_sleep(60) is null as slept') %}{% endif %}\nselect 1 as id\n",
    )]);
    assert_eq!(pm(p.path(), &["db", "start", "-q"]).code, 0);
    let sleeping = "select count(*) from pg_stat_activity where query like '%pg_sleep(60)%' and pid <> pg_backend_pid()";
    let child = spawn_pm(p.path(), &["run"], &[]);
    wait_for_sql(p.path(), sleeping, "1", 20, "the render never queried");
    let t0 = std::time::Instant::now();
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = unwrapped(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        t0.elapsed().as_secs() < 30,
        "pm waited for the render's query instead of cancelling it"
    );
    assert_eq!(sql(p.path(), sleeping), "0", "{err}");
}

#[test]
fn a_model_named_like_a_temporary_name_is_refused_not_dropped() {
    let p = LocalProject::new(&[("models/x__pm_new_0123abcd.sql", "select 1 as id\n")]);
    let r = pm(p.path(), &["run"]);
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 2, "{err}");
    assert!(
        err.contains("model `x__pm_new_0123abcd` would be named `x__pm_new_0123abcd`, the shape of pm's temporary names"),
        "{err}"
    );
}

#[test]
fn messages_name_the_files_under_target_path() {
    let p = LocalProject::new(&[
        ("pm_project.yml", "name: local\ntarget-path: out\n"),
        ("tests/never.sql", "select 1 as x\n"),
    ]);
    let r = pm(p.path(), &["test", "-s", "never"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("compiled SQL: out/compiled/local/tests/never.sql"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("target/"), "{}", r.stderr);
}

#[test]
fn the_full_refresh_config_decides_over_the_flag() {
    // Each run adds one row (1, 2, …) to what the table holds.
    let model = |full_refresh: &str| {
        format!(
            "{{{{ config(materialized='incremental', full_refresh={full_refresh}) }}}}\n\
             select 1{{% if is_incremental() %}} + (select count(*) from {{{{ this }}}}){{% endif %}} as n\n"
        )
    };
    let p = LocalProject::new(&[
        ("models/kept.sql", &model("false")),
        ("models/always.sql", &model("true")),
        ("models/plain.sql", &model("none")),
    ]);
    for _ in 0..2 {
        let r = pm(p.path(), &["run", "-q"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let count = |t: &str| sql(p.path(), &format!("select count(*) from {t}"));
    assert_eq!(
        (count("kept"), count("always"), count("plain")),
        ("2".into(), "1".into(), "2".into())
    );
    let r = pm(p.path(), &["run", "--full-refresh"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "model.local.kept has full_refresh: false: adding to its table, not rebuilding it"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(
        (count("kept"), count("always"), count("plain")),
        ("3".into(), "1".into(), "1".into())
    );
}
