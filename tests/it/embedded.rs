//! pm's embedded PostgreSQL: a real server per test, in the test's own project.

use crate::common::*;
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
    let conf = std::fs::read_to_string(p.path().join(".pm/postgres/pm_server.conf")).unwrap();
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
        // CI runs as root, so there this test always runs.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run as root: the embedded server's root path is tested only there"
        );
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

#[test]
fn tls_connections_follow_sslmode() {
    // The project's server, given a certificate and a TCP port with TLS on.
    let p = LocalProject::new(&[(
        "models/tls.sql",
        "{{ config(materialized='table') }}\nselect (select ssl from pg_stat_ssl where pid = pg_backend_pid()) as tls\n",
    )]);
    assert_eq!(pm(p.path(), &["db", "start", "-q"]).code, 0);
    assert_eq!(pm(p.path(), &["db", "stop", "-q"]).code, 0);
    let data = p.path().join(".pm/postgres");
    // A certificate authority, and the server's certificate signed by it.
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&data)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=pm test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        data.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    ]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = data.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str(&format!(
        "\nlisten_addresses = '127.0.0.1'\nport = {port}\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
    ));
    std::fs::write(&conf, text).unwrap();
    // pm's own access rules have no TCP line: this test's server adds one.
    let hba = data.join("pg_hba.conf");
    let mut text = std::fs::read_to_string(&hba).unwrap();
    text.push_str("host all postgres 127.0.0.1/32 trust\n");
    std::fs::write(&hba, text).unwrap();
    if is_root() {
        // The server runs as `postgres`, which must own its key.
        for f in ["server.key", "server.crt"] {
            let s = std::process::Command::new("chown")
                .args(["postgres:postgres"])
                .arg(data.join(f))
                .status()
                .unwrap();
            assert!(s.success());
        }
    }
    std::fs::set_permissions(
        data.join("server.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    // Started by hand: pm's own start would look for its socket on the usual port.
    let bindir = pm(p.path(), &["db", "status"])
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("binaries:").map(|d| d.trim().to_string()))
        .expect("pm db status names the binaries");
    let pg_ctl = format!("{bindir}/pg_ctl");
    let log = p.path().join(".pm/log/tls.log");
    let data_s = data.display().to_string();
    let log_s = log.display().to_string();
    let mut args = vec![pg_ctl.as_str(), "-D", &data_s, "-l", &log_s, "-w", "start"];
    if is_root() {
        let s = std::process::Command::new("touch")
            .arg(&log)
            .status()
            .unwrap();
        assert!(s.success());
        let s = std::process::Command::new("chown")
            .args(["postgres:postgres", &log_s])
            .status()
            .unwrap();
        assert!(s.success());
        args.splice(0..0, ["runuser", "-u", "postgres", "--"]);
    }
    let out = std::process::Command::new(args[0])
        .args(&args[1..])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(
        out.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    let url = |q: &str| format!("postgresql://postgres@localhost:{port}/pm?{q}");
    let cert = data.join("ca.crt").display().to_string();
    let check = |q: &str| -> String {
        let r = pm_env(p.path(), &["run", "-q"], &[("PM_DATABASE_URL", &url(q))]);
        assert_eq!(r.code, 0, "{q}: {}", r.stderr);
        psql(p.path(), &url("sslmode=disable"), "select tls from tls")
    };
    assert_eq!(check("sslmode=require"), "t");
    assert_eq!(
        check(&format!("sslmode=verify-full&sslrootcert={cert}")),
        "t"
    );
    assert_eq!(check("sslmode=disable"), "f");
    // verify-full against the public roots: the self-signed certificate is refused.
    let with_password = url("sslmode=verify-full").replace("postgres@", "postgres:s3cret@");
    let r = pm_env(
        p.path(),
        &["run", "-q"],
        &[("PM_DATABASE_URL", &with_password)],
    );
    let err = unwrapped(&r.stderr);
    assert_eq!(r.code, 2, "{err}");
    assert!(err.contains("cannot connect to PM_DATABASE_URL ("), "{err}");
    assert!(err.contains("postgres:****@localhost"), "{err}");
    assert!(
        err.contains("invalid peer certificate: UnknownIssuer"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn a_password_in_the_url_is_masked_in_every_form_and_everywhere() {
    let p = LocalProject::new(&[]);
    assert_eq!(pm(p.path(), &["db", "start", "-q"]).code, 0);
    let url = pm(p.path(), &["db", "url"]).stdout.trim().to_string();
    let socket = url
        .split("host=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    // The local server knows its owner by the socket's peer: a password is accepted and ignored.
    let forms = [
        format!("{url}&password=s3cret"),
        format!("postgresql://postgres:s3cret@/pm?host={socket}"),
        format!(
            "host={socket} port=5432 dbname=pm password='s3 cret' user={}",
            url.split("://").nth(1).unwrap().split('@').next().unwrap()
        ),
    ];
    for form in &forms {
        for args in [
            vec!["run"],
            vec!["run", "--log-format", "json"],
            vec!["debug"],
        ] {
            let r = pm_env(p.path(), &args, &[("PM_DATABASE_URL", form)]);
            assert_eq!(r.code, 0, "{form}: {}", r.stderr);
            let all = format!("{}{}", r.stdout, r.stderr);
            assert!(
                !all.contains("s3") && all.contains("****"),
                "{args:?} with {form}:\n{all}"
            );
        }
    }
    // An empty PM_DATABASE_URL is unset: the project's own target, here the local server.
    for empty in ["", "  "] {
        let r = pm_env(p.path(), &["debug"], &[("PM_DATABASE_URL", empty)]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(
            r.stdout.contains("connection:   embedded PostgreSQL"),
            "{}",
            r.stdout
        );
    }
    // Connection errors too (a database that does not exist).
    for form in [
        format!("{url}&password=s3cret").replace("/pm?", "/nothere?"),
        forms[2].replace("dbname=pm", "dbname=nothere"),
    ] {
        let r = pm_env(
            p.path(),
            &["run", "--log-format", "json"],
            &[("PM_DATABASE_URL", &form)],
        );
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(
            r.stderr.contains("nothere") && !r.stderr.contains("s3"),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn a_server_that_died_is_stopped_at_once_and_starts_again() {
    let p = LocalProject::new(&[]);
    assert_eq!(pm(p.path(), &["db", "start", "-q"]).code, 0);
    let pid = read(p.path(), ".pm/postgres/postmaster.pid")
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_string();
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    // Killed: gone, or a zombie until someone reaps it; either way not running.
    let r = pm(p.path(), &["db", "status"]);
    assert!(r.stdout.contains("state:     stopped"), "{}", r.stdout);
    let r = pm(p.path(), &["run", "-q"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(pm(p.path(), &["db", "status"])
        .stdout
        .contains("state:     running"));
}

/// Runs psql as another OS user (`nobody`); its error text when it fails.
fn psql_as_nobody(p: &LocalProject, url: &str) -> Result<String, String> {
    psql_as(p.path(), url, "select current_user", Some(65534))
}

#[test]
fn only_the_projects_owner_can_reach_the_local_server_and_roles_need_their_password() {
    if !is_root() {
        // Acting as a second OS user needs root; CI runs as root and must run this.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run this test as root"
        );
        eprintln!("skipped: acting as a second OS user needs root");
        return;
    }
    let p = LocalProject::new(&[]);
    assert_eq!(pm(p.path(), &["db", "start", "-q"]).code, 0);
    sql(p.path(), "create role reader login; create table secret as select 42 as x; grant select on secret to reader");
    let url = pm(p.path(), &["db", "url"]).stdout.trim().to_string();

    // The owner (root here) is the superuser, through peer authentication.
    assert_eq!(psql(p.path(), &url, "select current_user"), "postgres");
    // Another OS user cannot reach the socket at all, as any role.
    let err = psql_as_nobody(&p, &url).unwrap_err();
    assert!(err.contains("Permission denied"), "{err}");
    let reader_url = pm(p.path(), &["db", "url", "--role", "reader"]);
    assert_eq!(reader_url.code, 0, "{}", reader_url.stderr);
    let reader_url = reader_url.stdout.trim().to_string();
    assert!(psql_as_nobody(&p, &reader_url).is_err());
    let socket = p.path().join(".pm/run");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "socket folder mode {mode:o}");

    // A role connects with its password only: none, or a wrong one, is refused.
    let bare = reader_url.split("&passfile=").next().unwrap().to_string();
    let err = psql_result(p.path(), &bare, "select 1").unwrap_err();
    assert!(err.contains("password"), "{err}");
    let err = psql_result(p.path(), &format!("{bare}&password=guess"), "select 1").unwrap_err();
    assert!(err.contains("password authentication failed"), "{err}");
    assert_eq!(
        psql(
            p.path(),
            &reader_url,
            "select current_user || ' ' || x from secret"
        ),
        "reader 42"
    );
    let passwords = p.path().join(".pm/passwords");
    let mode = std::fs::metadata(&passwords).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "passwords file mode {mode:o}");
    // The password kept is the one set: asking again changes nothing for the role.
    let again = pm(p.path(), &["db", "url", "--role", "reader"]).stdout;
    assert_eq!(again.trim(), reader_url);
    assert_eq!(psql(p.path(), &reader_url, "select x from secret"), "42");
    // PM_DATABASE_URL reads the passfile too.
    let r = pm_env(p.path(), &["debug"], &[("PM_DATABASE_URL", &reader_url)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = pm(p.path(), &["db", "url", "--role", "nobody_here"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("there is no role `nobody_here`"),
        "{}",
        r.stderr
    );

    // A server made with trust for every local connection (by an older pm)
    // gets pm's access rules at its next start.
    assert_eq!(pm(p.path(), &["db", "stop", "-q"]).code, 0);
    let hba = p.path().join(".pm/postgres/pg_hba.conf");
    std::fs::write(&hba, "local all all trust\n").unwrap();
    assert_eq!(pm(p.path(), &["db", "start", "-q"]).code, 0);
    let text = std::fs::read_to_string(&hba).unwrap();
    assert!(!text.contains("trust"), "{text}");
    let err = psql_result(p.path(), &bare, "select 1").unwrap_err();
    assert!(err.contains("password"), "{err}");
}

#[test]
fn ci_stops_the_servers_of_its_own_run_and_no_one_elses() {
    let mine = LocalProject::new(&[]);
    let theirs = LocalProject::new(&[]);
    let marker = format!("test-{}", std::process::id());
    let r = pm_env(
        mine.path(),
        &["db", "start", "-q"],
        &[("PM_CI_RUN", &marker)],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(pm(theirs.path(), &["db", "start", "-q"]).code, 0);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/stop_ours.sh");
    let out = std::process::Command::new("bash")
        .args(["-c", &format!(". '{}' && cleanup", script.display())])
        .env("PM_CI_RUN", &marker)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = |p: &LocalProject| {
        pm(p.path(), &["db", "status"])
            .stdout
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert!(state(&mine).contains("stopped"), "{}", state(&mine));
    assert!(state(&theirs).contains("running"), "{}", state(&theirs));
}

#[test]
fn a_copied_project_starts_its_own_server_on_its_own_socket_and_says_so() {
    let original = LocalProject::new(&[]);
    assert_eq!(pm(original.path(), &["db", "start", "-q"]).code, 0);
    sql(
        original.path(),
        "create table here as select 'original' as who",
    );
    assert_eq!(pm(original.path(), &["db", "stop", "-q"]).code, 0);
    let copy = LocalProject::new(&[]);
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(original.path().join(".pm"))
        .arg(copy.path())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(pm(original.path(), &["db", "start", "-q"]).code, 0);
    let r = pm(copy.path(), &["db", "start"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("was copied or moved from"),
        "{}",
        r.stderr
    );
    // Each answers on its own socket, with its own data.
    sql(copy.path(), "update here set who = 'copy'");
    assert_eq!(sql(original.path(), "select who from here"), "original");
    assert_eq!(sql(copy.path(), "select who from here"), "copy");
    let url = pm(copy.path(), &["db", "url"]).stdout;
    assert!(
        url.contains(&copy.path().join(".pm/run").display().to_string()) || url.contains("/pm-"),
        "{url}"
    );
    // A copy made while the original runs does not take the original's server for its own.
    let copy2 = LocalProject::new(&[]);
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(original.path().join(".pm"))
        .arg(copy2.path())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(pm(copy2.path(), &["db", "status"])
        .stdout
        .starts_with("state:     stopped"));
}
