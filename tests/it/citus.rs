//! Citus: the local cluster of `pm db start --workers N`. The tests need the
//! Citus extension (`../shared/citus/install.sh`); without it they are
//! skipped with a message, except in CI (`PM_REQUIRE_CITUS=1`), which
//! installs it and requires them.

use crate::common::*;
use std::path::Path;

/// Whether Citus is installed for the newest PostgreSQL; when not, the
/// test is skipped (or, in CI, fails).
pub fn citus_or_skip() -> bool {
    let installed = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .any(|v| v.path().join("lib/citus.so").is_file());
    if !installed {
        assert!(
            std::env::var_os("PM_REQUIRE_CITUS").is_none(),
            "Citus is needed: run ../shared/citus/install.sh"
        );
        eprintln!("skipped: the Citus extension is not installed (../shared/citus/install.sh)");
    }
    installed
}

#[test]
fn a_local_citus_cluster_starts_joined_spreads_shards_and_stops() {
    if !citus_or_skip() {
        return;
    }
    let p = LocalProject::new(&[]);
    let r = pm(p.path(), &["db", "start", "--workers", "2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("started the local Citus cluster: a coordinator and 2 workers"),
        "{}",
        r.stderr
    );
    assert_eq!(
        sql(p.path(), "select count(*) from pg_dist_node where isactive"),
        "3"
    );
    assert_eq!(
        sql(
            p.path(),
            "create table t(id int); select create_distributed_table('t', 'id'); \
             insert into t select generate_series(1, 1000); \
             select count(distinct nodeport) from citus_shards where table_name = 't'::regclass"
        )
        .lines()
        .last()
        .unwrap_or_default(),
        "2"
    );
    let status = pm(p.path(), &["db", "status"]).stdout;
    assert!(
        status.contains("worker 1:  running") && status.contains("worker 2:  running"),
        "{status}"
    );

    // Stopped and started again: every node, the rows kept.
    assert_eq!(pm(p.path(), &["db", "stop"]).code, 0);
    let status = pm(p.path(), &["db", "status"]).stdout;
    assert!(
        status.contains("state:     stopped") && status.contains("worker 2:  stopped"),
        "{status}"
    );
    assert_eq!(pm(p.path(), &["db", "start"]).code, 0);
    assert_eq!(sql(p.path(), "select count(*) from t"), "1000");

    let r = pm(p.path(), &["db", "start", "--workers", "3"]);
    assert_eq!(r.code, 2);
    assert!(
        unwrapped(&r.stderr).contains("the local cluster has 2 workers, not 3"),
        "{}",
        r.stderr
    );
}

#[test]
fn without_citus_a_local_cluster_is_refused_with_how_to_install_it() {
    // Server binaries without Citus beside them: links to the real ones.
    let real = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|v| v.path().join("bin"))
        .find(|b| b.join("initdb").is_file());
    let Some(real) = real else {
        eprintln!("skipped: no PostgreSQL under /usr/lib/postgresql");
        return;
    };
    let p = project(&[("pm_project.yml", "name: local\n")]);
    let bin = p.path().join("pgbin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["initdb", "pg_ctl", "postgres"] {
        std::os::unix::fs::symlink(real.join(tool), bin.join(tool)).unwrap();
    }
    let r = pm_env(
        p.path(),
        &["db", "start", "--workers", "2"],
        &[("PM_PG_BIN", bin.to_str().unwrap())],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    let e = unwrapped(&r.stderr);
    assert!(
        e.contains("a local Citus cluster needs the Citus extension, which is not installed")
            && e.contains("../shared/citus/install.sh"),
        "{e}"
    );
    assert!(!Path::new(&p.path().join(".pm/postgres")).exists());
}

const LAYOUT: &[(&str, &str)] = &[
    (
        "models/plan_log.sql",
        "{{ config(materialized='incremental', reference=true, unique_key='plan_id') }}\n\
         select plan_id, name from {{ ref('dim_plan') }}\n",
    ),
    ("seeds/plans.csv", "plan_id,name\n1,basic\n2,pro\n"),
    (
        "seeds/seeds.yml",
        "seeds:\n  - name: plans\n    config: {reference: true}\n",
    ),
    (
        "models/users.sql",
        "{{ config(materialized='table', distributed_by='user_id') }}\n\
         select g as user_id, 1 + g % 2 as plan_id from generate_series(1, 5000) g\n",
    ),
    (
        "models/dim_plan.sql",
        "{{ config(materialized='table', reference=true) }}\nselect * from {{ ref('plans') }}\n",
    ),
    (
        "models/fct_usage.sql",
        "{{ config(materialized='table', distributed_by='user_id', colocate_with='users') }}\n\
         select u.user_id, p.name as plan, u.user_id % 7 as n\n\
         from {{ ref('users') }} u join {{ ref('dim_plan') }} p using (plan_id)\n",
    ),
    (
        "models/usage_log.sql",
        "{{ config(materialized='incremental', distributed_by='user_id', unique_key='user_id', incremental_strategy='delete+insert') }}\n\
         select user_id, plan from {{ ref('fct_usage') }}\n\
         {% if is_incremental() %}where user_id > 4990{% endif %}\n",
    ),
];

#[test]
fn distributed_and_reference_tables_are_built_on_the_workers() {
    if !citus_or_skip() {
        return;
    }
    let p = LocalProject::new(LAYOUT);
    assert_eq!(pm(p.path(), &["db", "start", "--workers", "2"]).code, 0);
    for round in 1..=2 {
        // The second build replaces every table: the layout is kept.
        let r = pm(p.path(), &["build"]);
        assert_eq!(r.code, 0, "round {round}: {}", r.stderr);
        assert_eq!(
            sql(
                p.path(),
                "select string_agg(logicalrelid::text || ':' || partmethod::text, ',' order by logicalrelid::text) \
                 from pg_dist_partition"
            ),
            "dim_plan:n,fct_usage:h,plan_log:n,plans:n,usage_log:h,users:h"
        );
        assert_eq!(
            sql(
                p.path(),
                "select count(distinct colocationid) from pg_dist_partition \
                 where logicalrelid in ('users'::regclass, 'fct_usage'::regclass)"
            ),
            "1"
        );
        assert_eq!(
            sql(
                p.path(),
                "select count(distinct nodeport) from citus_shards where table_name = 'fct_usage'::regclass"
            ),
            "2"
        );
        assert_eq!(
            sql(
                p.path(),
                "select count(*), sum(n), count(*) filter (where plan = 'pro') from fct_usage"
            ),
            "5000|14997|2500"
        );
        // The incremental model's second build adds its rows to the distributed table.
        assert!(
            r.stderr.contains(if round == 1 {
                "OK     incremental model public.usage_log"
            } else {
                "usage_log ["
            }) && (round == 1 || r.stderr.contains("10 rows written")),
            "{}",
            r.stderr
        );
        assert_eq!(
            sql(
                p.path(),
                "select count(*), count(distinct user_id) from usage_log"
            ),
            "5000|5000"
        );
        // A reference table's rows are added from a reference table.
        assert_eq!(sql(p.path(), "select count(*) from plan_log"), "2");
        if round == 2 {
            assert!(
                read(p.path(), "target/run/local/models/plan_log.sql")
                    .contains(") with no data;\nselect create_reference_table("),
                "{}",
                r.stderr
            );
        }
    }
    // The fill is pushed down to the workers: no rows through the coordinator.
    let model = read(p.path(), "target/compiled/local/models/fct_usage.sql");
    let plan = sql(p.path(), &format!("explain insert into fct_usage {model}"));
    assert!(
        plan.contains("Task Count: 32") && !plan.contains("pull to coordinator"),
        "{plan}"
    );
    // This run's rows of a distributed incremental model are staged in a
    // table colocated with it, and dropped.
    let staged = read(p.path(), "target/run/local/models/usage_log.sql");
    assert!(
        staged.contains(") with no data;\nselect create_distributed_table(")
            && staged.contains("'user_id', colocate_with => '\"public\".\"usage_log\"')"),
        "{staged}"
    );
    assert_eq!(
        sql(
            p.path(),
            "select count(*) from pg_class where relname like 'usage\\_log\\_\\_pm%'"
        ),
        "0"
    );
    // MERGE on the distribution column runs shard by shard from that table.
    write(
        p.path(),
        "models/usage_log.sql",
        "{{ config(materialized='incremental', distributed_by='user_id', unique_key='user_id', incremental_strategy='merge') }}\n\
         select user_id, plan || '+' as plan from {{ ref('fct_usage') }}\n\
         {% if is_incremental() %}where user_id > 4990{% endif %}\n",
    );
    let r = pm(p.path(), &["run", "-s", "usage_log"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        sql(
            p.path(),
            "select count(*), count(*) filter (where plan like '%+') from usage_log"
        ),
        "5000|10"
    );
    // What Citus cannot merge is refused before anything runs, naming the rule.
    for (config, says) in [
        (
            "distributed_by='user_id', unique_key='plan', incremental_strategy='merge'",
            "its unique_key must hold the distribution column `user_id` (unique_key: [plan])",
        ),
        (
            "reference=true, unique_key='user_id', incremental_strategy='merge'",
            "Citus refuses a reference table as MERGE's target",
        ),
    ] {
        write(
            p.path(),
            "models/usage_log.sql",
            &format!(
                "{{{{ config(materialized='incremental', {config}) }}}}\nselect user_id, plan from {{{{ ref('fct_usage') }}}}\n"
            ),
        );
        let r = pm(p.path(), &["run", "-s", "usage_log"]);
        assert_eq!(r.code, 2, "{config}: {}", r.stderr);
        assert!(
            unwrapped(&r.stderr).contains(says) && !r.stderr.contains("Running 1 nodes"),
            "{config}: {}",
            r.stderr
        );
    }
    let built = read(p.path(), "target/run/local/models/fct_usage.sql");
    assert!(
        built.contains(") with no data;\nselect create_distributed_table(")
            && built.contains("colocate_with => '\"public\".\"users\"'"),
        "{built}"
    );
}

#[test]
fn on_plain_postgresql_the_layout_is_ignored_with_one_warning_and_wrong_layouts_are_refused() {
    let p = LocalProject::new(LAYOUT);
    let r = pm(p.path(), &["build"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "6 selected node(s) set a Citus layout (distributed_by, reference); the target is not a Citus coordinator, so they are built as plain tables"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(sql(p.path(), "select count(*) from fct_usage"), "5000");
    assert_eq!(
        sql(
            p.path(),
            "select count(*) from pg_extension where extname = 'citus'"
        ),
        "0"
    );
    for (config, says) in [
        (
            "materialized='view', distributed_by='user_id'",
            "Citus distributes tables, and this node is materialized as `view`",
        ),
        (
            "materialized='table', reference=true, distributed_by='user_id'",
            "a reference table is copied to every node",
        ),
        (
            "materialized='table', colocate_with='users'",
            "colocate_with and shard_count need a distribution column",
        ),
        (
            "materialized='table', distributed_by='user_id', colocate_with='nobody'",
            "colocate_with names `nobody`, which is not a model",
        ),
        (
            "materialized='table', distributed_by='user_id', colocate_with='users', shard_count=4",
            "a table colocated with another has that table's shard count",
        ),
        (
            "materialized='table', distributed_by='user_id', colocate_with='usage_log'",
            "colocate_with names `usage_log`, which is not upstream of it",
        ),
    ] {
        write(
            p.path(),
            "models/fct_usage.sql",
            &format!("{{{{ config({config}) }}}}\nselect user_id from {{{{ ref('users') }}}}\n"),
        );
        let r = pm(p.path(), &["build"]);
        assert_eq!(r.code, 2, "{config}: {}", r.stderr);
        assert!(
            unwrapped(&r.stderr).contains(says),
            "{config}: {}",
            r.stderr
        );
    }
}

#[test]
#[cfg(feature = "generate")]
fn pulsemetrics_on_a_coordinator_and_two_workers_has_the_single_node_rows() {
    if !citus_or_skip() {
        return;
    }
    let single = LocalProject::pulsemetrics();
    let cluster = LocalProject::pulsemetrics();
    let r = pm(cluster.path(), &["db", "start", "--workers", "2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let generate = [
        "generate",
        "--seed",
        "7",
        "--scale",
        "0.2",
        "--start",
        "2024-01-01",
        "--days",
        "120",
        "--build",
    ];
    for p in [&single, &cluster] {
        let r = pm(p.path(), &generate);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stderr.contains("ERROR=0 SKIP=0"), "{}", r.stderr);
    }
    // Plain PostgreSQL ignored the layout, with one warning.
    let r = pm(single.path(), &["run", "-s", "fct_events"]);
    assert!(
        r.stderr.contains("1 selected node(s) set a Citus layout"),
        "{}",
        r.stderr
    );
    // Every table and view, raw to marts, has the same rows on both (but
    // the times generator_state and the job log record).
    let tables = sql(
        single.path(),
        "select table_schema || '.' || table_name from information_schema.tables \
         where table_schema in ('raw', 'staging', 'intermediate', 'analytics', 'reference') \
           and table_name not in ('generator_state', 'metrics_job_log') order by 1",
    );
    assert!(tables.lines().count() >= 45, "{tables}");
    let fingerprint = |p: &LocalProject, table: &str| {
        sql(
            p.path(),
            &format!("select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from {table} t"),
        )
    };
    let same_rows = |when: &str| {
        for table in tables.lines() {
            assert_eq!(
                fingerprint(&single, table),
                fingerprint(&cluster, table),
                "{table} {when}"
            );
        }
    };
    same_rows("after the first build");
    // Laid out as the project says: users and facts distributed by user and
    // colocated, small dimensions and seeds on every node.
    assert_eq!(
        sql(
            cluster.path(),
            "select string_agg(logicalrelid::text || ':' || partmethod::text, ',' order by logicalrelid::text) \
             from pg_dist_partition where logicalrelid::text in \
             ('analytics.fct_events', 'analytics.dim_users', 'analytics.dim_plan', 'reference.channels', \
              'raw.events', 'raw.events_2024_03', 'raw.sessions', 'raw.subscription_changes', 'raw.plans', \
              'intermediate.int_subscription_plan_periods', 'intermediate.int_cohort_months')"
        ),
        "analytics.dim_plan:n,analytics.dim_users:h,analytics.fct_events:h,\
         intermediate.int_cohort_months:n,intermediate.int_subscription_plan_periods:h,\
         raw.events:h,raw.events_2024_03:h,raw.plans:n,raw.sessions:h,raw.subscription_changes:h,\
         reference.channels:n"
    );
    assert_eq!(
        sql(
            cluster.path(),
            "select count(distinct colocationid) from pg_dist_partition where partmethod = 'h'"
        ),
        "1"
    );
    assert_eq!(
        sql(
            cluster.path(),
            "select count(distinct nodeport) from citus_shards where table_name = 'analytics.fct_events'::regclass"
        ),
        "2"
    );
    // The raw tables are distributed as the facts are, so each fact's build
    // (and dim_users') runs on the workers: one task per shard, each reading
    // and writing its own shards, nothing pulled through the coordinator or
    // repartitioned.
    for (folder, fact) in [
        ("facts", "fct_events"),
        ("facts", "fct_sessions"),
        ("facts", "fct_payments"),
        ("facts", "fct_subscriptions"),
        ("dimensions", "dim_users"),
    ] {
        let model = read(
            cluster.path(),
            &format!("target/compiled/pulsemetrics/models/{folder}/{fact}.sql"),
        );
        let plan = sql(
            cluster.path(),
            &format!("explain insert into analytics.{fact} {model}"),
        );
        assert!(
            plan.starts_with("Custom Scan (Citus Adaptive)")
                && plan.contains("Task Count: 32")
                && plan.contains(&format!("Insert on {fact}_"))
                && !plan.contains("pull to coordinator")
                && !plan.contains("repartition")
                && !plan.contains("Distributed Subplan"),
            "{fact}: {plan}"
        );
    }
    // The nightly build: the incremental models replace their recent days
    // on the workers as on one node.
    for p in [&single, &cluster] {
        let r = pm(p.path(), &["generate", "-q", "--append-days", "2"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let r = pm(p.path(), &["build"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stderr.contains("ERROR=0 SKIP=0"), "{}", r.stderr);
    }
    same_rows("after the nightly build");
}
