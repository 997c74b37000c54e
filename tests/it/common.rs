//! Helpers for running the `pm` binary on fixture projects.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A private copy of `tests/fixtures/<name>` (so tests can run in parallel and
/// write their `target/` without touching the repository).
pub fn fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    copy_dir(&src, dir.path());
    dir
}

/// An empty project folder with the given files.
pub fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, text) in files {
        write(dir.path(), path, text);
    }
    dir
}

pub fn write(root: &Path, path: &str, text: &str) {
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for e in std::fs::read_dir(src).expect("read fixture") {
        let e = e.expect("entry");
        let to = dst.join(e.file_name());
        // Build output and a developer's local server stay behind.
        if matches!(e.file_name().to_str(), Some("target" | ".pm" | "logs")) {
            continue;
        }
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).expect("copy");
        }
    }
}

pub fn pm_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pm"))
}

/// Runs pm in `dir` with a clean environment (no user profiles, no colour).
pub fn pm(dir: &Path, args: &[&str]) -> Run {
    pm_env(dir, args, &[])
}

/// The pm command in `dir` with a clean environment and `env` added.
fn pm_command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(pm_bin());
    cmd.current_dir(dir)
        .args(args)
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .env_remove("PM_PROFILES_DIR")
        .env_remove("PM_DATABASE_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

pub fn pm_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = pm_command(dir, args, env).output().expect("run pm");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A diagnostic with miette's line wrapping undone (`\n  | ` continuations).
pub fn unwrapped(text: &str) -> String {
    text.replace("\n  | ", " ").replace("\n        ", " ")
}

pub fn read(root: &Path, path: &str) -> String {
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

pub fn manifest(root: &Path) -> serde_json::Value {
    serde_json::from_str(&read(root, "target/manifest.json")).expect("manifest is JSON")
}

/// A node's `status` in the last run's target/run_results.json.
pub fn run_status(root: &Path, unique_id: &str) -> Option<String> {
    let results: serde_json::Value =
        serde_json::from_str(&read(root, "target/run_results.json")).expect("run_results is JSON");
    results["results"]
        .as_array()?
        .iter()
        .find(|r| r["unique_id"] == unique_id)
        .and_then(|r| r["status"].as_str().map(str::to_string))
}

/// A project folder whose local server is stopped when the test ends, even on panic.
pub struct LocalProject {
    dir: tempfile::TempDir,
}

impl LocalProject {
    /// A project named `local` with the given files besides its project file.
    pub fn new(files: &[(&str, &str)]) -> LocalProject {
        let mut all = vec![
            ("pm_project.yml", "name: local\n"),
            ("models/a.sql", "select 1 as id\n"),
        ];
        all.extend_from_slice(files);
        let dir = project(&all);
        // When pm runs as root, the server runs as `postgres`, which must be able to enter the folder.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        LocalProject { dir }
    }
    /// A private copy of a fixture project, with its own server.
    pub fn fixture(name: &str) -> LocalProject {
        let dir = fixture(name);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        LocalProject { dir }
    }

    /// A private copy of the PulseMetrics project (`project/`), with its own server.
    pub fn pulsemetrics() -> LocalProject {
        let dir = tempfile::tempdir().expect("temp dir");
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("project"),
            dir.path(),
        );
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        LocalProject { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for LocalProject {
    fn drop(&mut self) {
        let _ = pm(self.dir.path(), &["db", "stop"]);
    }
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// psql from the server binaries pm uses (as `pm db status` reports them).
pub fn psql_bin(project: &Path) -> PathBuf {
    let status = pm(project, &["db", "status"]).stdout;
    status
        .lines()
        .find_map(|l| l.strip_prefix("binaries:"))
        .map(|d| Path::new(d.trim()).join("psql"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("psql"))
}

/// Runs SQL with psql against the project's local database; the output, unaligned.
pub fn sql(project: &Path, sql: &str) -> String {
    let url = pm(project, &["db", "url"]).stdout.trim().to_string();
    psql(project, &url, sql)
}

pub fn psql(project: &Path, url: &str, sql: &str) -> String {
    psql_result(project, url, sql).unwrap_or_else(|e| panic!("psql failed: {e}"))
}

/// Like [`psql`], but the error text when the statement fails.
pub fn psql_result(project: &Path, url: &str, sql: &str) -> Result<String, String> {
    psql_as(project, url, sql, None)
}

/// Like [`psql_result`], run as the OS user `uid` (and its group) when given.
pub fn psql_as(project: &Path, url: &str, sql: &str, uid: Option<u32>) -> Result<String, String> {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(psql_bin(project));
    cmd.args([url, "-XAtc", sql]);
    if let Some(uid) = uid {
        cmd.uid(uid).gid(uid).env("HOME", "/tmp");
    }
    let out = cmd.output().expect("run psql");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// pm started in `dir` and left running: its stderr piped, its stdout discarded.
pub fn spawn_pm(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    pm_command(dir, args, env)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start pm")
}

/// Waits until `query` on the project's database answers `value`; fails
/// with `what` after `secs` seconds.
pub fn wait_for_sql(project: &Path, query: &str, value: &str, secs: u64, what: &str) {
    let started = std::time::Instant::now();
    while sql(project, query) != value {
        assert!(started.elapsed().as_secs() < secs, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A minimal WebDriver client for chromedriver.
pub struct Browser {
    driver: std::process::Child,
    base: String,
    session: String,
}

impl Browser {
    pub fn start() -> Option<Browser> {
        let (chromium, driver) = ("/usr/bin/chromium", "/usr/bin/chromedriver");
        if !Path::new(chromium).exists() || !Path::new(driver).exists() {
            assert!(
                std::env::var_os("PM_REQUIRE_BROWSER").is_none(),
                "Chromium is needed: apt-get install chromium chromium-driver"
            );
            eprintln!("skipped: chromium and chromium-driver are not installed");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().unwrap().keep();
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1400,900", format!("--user-data-dir={}", profile.display())]
        }}}});
        let mut session = None;
        for _ in 0..100 {
            if let Ok(mut r) = ureq::post(&format!("{base}/session")).send_json(&caps) {
                let v: Value = r.body_mut().read_json().unwrap();
                session = v["value"]["sessionId"].as_str().map(str::to_string);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let mut b = Browser {
            driver: child,
            base,
            session: String::new(),
        };
        b.session = session.expect("a WebDriver session");
        Some(b)
    }

    pub fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut r = match method {
            "GET" => ureq::get(&url).call(),
            _ => ureq::post(&url).send_json(&body),
        }
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let v: Value = r.body_mut().read_json().unwrap();
        v["value"].clone()
    }

    pub fn js(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
    }

    pub fn element(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    /// A screenshot of the page, for people to look at, as
    /// target/NAME.png.
    pub fn screenshot(&self, name: &str) {
        let png = self.call("GET", "/screenshot", json!(null));
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        let out = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join(format!("{name}.png"));
        std::fs::write(&out, bytes).unwrap();
    }

    pub fn wait_for(&self, script: &str) -> Value {
        for _ in 0..100 {
            let v = self.js(script);
            if !v.is_null() && v != json!(false) && v != json!("") {
                return v;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("waited in vain for: {script}");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = ureq::delete(&format!("{}/session/{}", self.base, self.session)).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
