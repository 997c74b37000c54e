//! pm's embedded PostgreSQL: a real server per test, in the test's own project.

mod common;
use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

#[test]
fn start_status_url_stop_and_restart() {
    let p = LocalProject::new(&[]);
    let r = pm(p.path(), &["db", "status"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.starts_with("state:     not created"),
        "{}",
        r.stdout
    );

    let r = pm(p.path(), &["db", "start"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("started the local PostgreSQL"),
        "{}",
        r.stderr
    );
    let r = pm(p.path(), &["db", "start"]);
    assert!(r.stderr.contains("already running"), "{}", r.stderr);
    let status = pm(p.path(), &["db", "status"]).stdout;
    assert!(status.starts_with("state:     running (pid "), "{status}");
    // Unix socket only: no TCP listener configured.
    let conf = std::fs::read_to_string(p.path().join(".pm/postgres/postgresql.conf")).unwrap();
    assert!(conf.contains("listen_addresses = ''"));

    let url = pm(p.path(), &["db", "url"]).stdout.trim().to_string();
    assert_eq!(psql(p.path(), &url, "select current_database()"), "pm");
    psql(
        p.path(),
        &url,
        "create table kept (x int); insert into kept values (42)",
    );

    let r = pm(p.path(), &["db", "stop"]);
    assert_eq!(r.code, 0);
    assert!(pm(p.path(), &["db", "status"])
        .stdout
        .starts_with("state:     stopped"));
    // Data survives a restart.
    assert_eq!(pm(p.path(), &["db", "start", "-q"]).code, 0);
    assert_eq!(psql(p.path(), &url, "select x from kept"), "42");
    // .pm/ keeps itself out of git.
    assert_eq!(
        std::fs::read_to_string(p.path().join(".pm/.gitignore")).unwrap(),
        "*\n"
    );
}

#[test]
fn debug_connects_and_prints_versions() {
    let p = LocalProject::new(&[]);
    let r = pm(p.path(), &["debug"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("profiles.yml: none (embedded local PostgreSQL)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("server:       PostgreSQL "),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("connection test: OK"));

    // PM_DATABASE_URL wins over everything, and its password is masked.
    let other = LocalProject::new(&[]);
    let url = pm(other.path(), &["db", "url"]).stdout.trim().to_string();
    assert_eq!(pm(other.path(), &["db", "start", "-q"]).code, 0);
    let r = pm_env(p.path(), &["debug"], &[("PM_DATABASE_URL", &url)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("connection:   PM_DATABASE_URL"),
        "{}",
        r.stdout
    );
    let r = pm_env(
        p.path(),
        &["debug"],
        &[("PM_DATABASE_URL", "postgresql://u:hunter2@127.0.0.1:1/x")],
    );
    assert_eq!(r.code, 2);
    assert!(
        !r.stdout.contains("hunter2") && !r.stderr.contains("hunter2"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(
        r.stderr
            .contains("cannot connect to PM_DATABASE_URL (postgresql://u:****@127.0.0.1:1/x)"),
        "{}",
        r.stderr
    );
}

#[test]
fn reset_asks_for_confirmation() {
    let p = LocalProject::new(&[]);
    assert_eq!(pm(p.path(), &["db", "start", "-q"]).code, 0);
    let r = pm(p.path(), &["db", "reset"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("pass --yes to confirm"), "{}", r.stderr);
    assert!(p.path().join(".pm/postgres/PG_VERSION").is_file());
    let r = pm(p.path(), &["db", "reset", "--yes"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!p.path().join(".pm/postgres").exists());
}

#[test]
fn as_root_the_server_runs_as_postgres() {
    if !is_root() {
        eprintln!("not root: the root path does not apply");
        return;
    }
    let p = LocalProject::new(&[]);
    assert_eq!(pm(p.path(), &["db", "start", "-q"]).code, 0);
    let owner = std::fs::metadata(p.path().join(".pm/postgres"))
        .unwrap()
        .uid();
    let postgres_uid = std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .and_then(|l| l.split(':').nth(2).map(|u| u.parse::<u32>().unwrap()))
        .unwrap();
    assert_eq!(owner, postgres_uid);
    assert!(pm(p.path(), &["db", "status"])
        .stdout
        .contains("server as: OS user postgres (pm runs as root)"));

    // A folder the postgres user cannot enter gets an error that says what to do.
    let closed = project(&[("pm_project.yml", "name: closed\n")]);
    std::fs::set_permissions(closed.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let r = pm(closed.path(), &["db", "start"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("which cannot enter"), "{}", r.stderr);
    assert!(r.stderr.contains("chmod o+x"), "{}", r.stderr);
}
