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
