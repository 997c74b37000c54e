//! pm's own PostgreSQL for a project that configures no target: a data
//! directory under `<project>/.pm/postgres`, reachable only through a unix
//! socket (no TCP port to collide with), created with `initdb` on first use,
//! started on demand and left running for the next command.
//!
//! PostgreSQL refuses to run as root. When pm runs as root (CI, containers)
//! the server runs as the `postgres` OS user, which then owns the data
//! directory; when neither works, the error says what to install or change.

use crate::error::{Problem, Result};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The database pm creates in its cluster and connects to.
pub const DATABASE: &str = "pm";
/// Only names the socket file (`.s.PGSQL.5432`): the server listens on no TCP port.
const PORT: u16 = 5432;
/// Unix socket paths are limited to 107 bytes on Linux.
const MAX_SOCKET_PATH: usize = 100;

/// An OS user the server runs as (when pm runs as root).
#[derive(Debug, Clone, PartialEq)]
pub struct OsUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone)]
pub struct Cluster {
    pub root: PathBuf,
    pub data_dir: PathBuf,
    pub socket_dir: PathBuf,
    pub log_file: PathBuf,
    pub bin_dir: PathBuf,
    /// Set when the server runs as another OS user than pm.
    pub run_as: Option<OsUser>,
    /// The database superuser initdb creates (the OS user the server runs as).
    pub superuser: String,
    /// The port naming its socket file (`.s.PGSQL.<port>`): 5432, and 5432 + k
    /// for worker k of a local Citus cluster (same socket folder).
    pub port: u16,
    /// Worker k (1, 2, …) of a local Citus cluster; None for the coordinator
    /// (or the single server).
    pub worker: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// No data directory yet.
    Absent,
    Stopped,
    Running {
        pid: u32,
    },
}

fn problem(code: &'static str, msg: impl Into<String>, help: impl Into<String>) -> Problem {
    Problem::new(code, msg).help(help)
}

/// The current process's effective uid, from /proc (no libc needed).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Whether `pid` is a PostgreSQL server process that still runs (not a
/// zombie waiting to be reaped, nor another program that got the pid).
fn is_live_postgres(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) S ...": the state follows the command name's closing parenthesis.
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next())
        .unwrap_or("");
    if matches!(state, "Z" | "X" | "x") {
        return false;
    }
    // When the command line cannot be read, the process is taken to be the server.
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            let argv0 = c.split(|&b| b == 0).next().unwrap_or(&[]);
            String::from_utf8_lossy(argv0).contains("postgres")
        })
        .unwrap_or(true)
}

/// An entry of /etc/passwd.
fn passwd_user(name: &str) -> Option<OsUser> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == name).then(|| OsUser {
            name: name.to_string(),
            uid: f[2].parse().unwrap_or(0),
            gid: f[3].parse().unwrap_or(0),
        })
    })
}

fn current_user_name() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            let uid = effective_uid()?;
            let text = std::fs::read_to_string("/etc/passwd").ok()?;
            text.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| "postgres".into())
}

fn has_server_binaries(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|b| dir.join(b).is_file())
}

/// Finds the server binaries: `PM_PG_BIN`, `pg_config --bindir`, `PATH`, then
/// the newest `/usr/lib/postgresql/*/bin`.
pub fn find_bin_dir(pg_bin: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = pg_bin {
        let dir = dir.to_path_buf();
        if has_server_binaries(&dir) {
            return Ok(dir);
        }
        return Err(problem(
            "embedded::bin",
            format!("PM_PG_BIN={} does not hold initdb, pg_ctl and postgres", dir.display()),
            "point PM_PG_BIN at PostgreSQL's bin folder (e.g. /usr/lib/postgresql/15/bin), or unset it",
        )
        .into());
    }
    if let Ok(out) = Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_server_binaries(&dir) {
            return Ok(dir);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_server_binaries(&dir) {
                // Resolve symlinks (/usr/local/bin/initdb → …/15/bin/initdb) so
                // the binaries of one installation are used together.
                let real = std::fs::canonicalize(dir.join("initdb"))
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .filter(|d| has_server_binaries(d))
                    .unwrap_or(dir);
                return Ok(real);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                    let bin = e.path().join("bin");
                    has_server_binaries(&bin).then_some((v, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.pop().map(|(_, d)| d).ok_or_else(|| {
        problem(
            "embedded::bin",
            "no PostgreSQL server binaries found (initdb, pg_ctl, postgres)",
            "install PostgreSQL's server (Debian/Ubuntu: apt-get install postgresql), set PM_PG_BIN to its bin folder, \
             or configure a target in profiles.yml / PM_DATABASE_URL",
        )
        .into()
    })
}

impl Cluster {
    /// The cluster of the project at `root` (nothing is created yet).
    pub fn for_project(root: &Path, pg_bin: Option<&Path>) -> Result<Cluster> {
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let base = root.join(".pm");
        let bin_dir = find_bin_dir(pg_bin)?;
        let run_as = if effective_uid() == Some(0) {
            Some(passwd_user("postgres").ok_or_else(|| {
                problem(
                    "embedded::root",
                    "pm runs as root, PostgreSQL refuses to, and there is no `postgres` OS user to run it as",
                    "create one (useradd --system postgres; installing Debian's postgresql package does), \
                     run pm as an ordinary user, or point PM_DATABASE_URL at a server of your own",
                )
            })?)
        } else {
            None
        };
        let superuser = run_as
            .as_ref()
            .map(|u| u.name.clone())
            .unwrap_or_else(current_user_name);
        let mut socket_dir = base.join("run");
        if socket_dir.join(".s.PGSQL.5432").as_os_str().len() > MAX_SOCKET_PATH {
            // Too long for a socket address: a short, stable folder per project.
            let h = crate::text::sha256_hex(&root.to_string_lossy());
            socket_dir = std::env::temp_dir().join(format!("pm-{}", &h[..16]));
        }
        Ok(Cluster {
            data_dir: base.join("postgres"),
            log_file: base.join("log").join("postgres.log"),
            socket_dir,
            bin_dir,
            run_as,
            superuser,
            root,
            port: PORT,
            worker: None,
        })
    }

    /// Worker `k` (1, 2, …) of the project's local Citus cluster: its own
    /// data folder (`.pm/worker<k>`) and log, the coordinator's socket folder.
    pub fn worker(&self, k: usize) -> Cluster {
        let base = self.root.join(".pm");
        Cluster {
            data_dir: base.join(format!("worker{k}")),
            log_file: base.join("log").join(format!("worker{k}.log")),
            port: PORT + k as u16,
            worker: Some(k),
            ..self.clone()
        }
    }

    /// The file recording how many workers the local cluster has.
    fn workers_file(&self) -> PathBuf {
        self.root.join(".pm").join("workers")
    }

    /// The workers of the project's local Citus cluster (none for a single server).
    pub fn workers(&self) -> Vec<Cluster> {
        if self.worker.is_some() {
            return Vec::new();
        }
        let n = std::fs::read_to_string(self.workers_file())
            .ok()
            .and_then(|t| t.trim().parse::<usize>().ok())
            .unwrap_or(0);
        (1..=n).map(|k| self.worker(k)).collect()
    }

    /// Records that the local cluster has `n` workers.
    pub fn set_worker_count(&self, n: usize) -> Result<()> {
        std::fs::write(self.workers_file(), format!("{n}\n")).map_err(|e| {
            problem(
                "embedded::workers",
                format!("cannot write {}: {e}", self.workers_file().display()),
                "check that the project folder is writable",
            )
            .into()
        })
    }

    /// Whether the Citus extension is installed for these server binaries.
    pub fn citus_installed(&self) -> bool {
        let from_pg_config = Command::new(self.bin_dir.join("pg_config"))
            .arg("--pkglibdir")
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
        let beside = self.bin_dir.parent().map(|p| p.join("lib"));
        from_pg_config
            .into_iter()
            .chain(beside)
            .any(|dir| dir.join("citus.so").is_file())
    }

    /// Loads Citus when the server starts (`shared_preload_libraries`).
    /// Returns true when the setting was added (a running server must restart).
    pub fn preload_citus(&self) -> Result<bool> {
        let conf_path = self.data_dir.join("postgresql.conf");
        let text = std::fs::read_to_string(&conf_path).unwrap_or_default();
        if text.contains("shared_preload_libraries = 'citus'") {
            return Ok(false);
        }
        self.append_config(
            "\n# pm: a node of a local Citus cluster\nshared_preload_libraries = 'citus'\n",
        )?;
        Ok(true)
    }

    /// Adds settings at the end of the server's postgresql.conf.
    fn append_config(&self, settings: &str) -> Result<()> {
        let conf_path = self.data_dir.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf_path).unwrap_or_default();
        text.push_str(settings);
        std::fs::write(&conf_path, text).map_err(|e| {
            problem(
                "embedded::config",
                format!("cannot write {}: {e}", conf_path.display()),
                "check the data directory's permissions",
            )
            .into()
        })
    }

    /// Starts the server and, for a local Citus cluster, its workers first.
    /// Returns whether the coordinator (or single server) was started.
    pub fn start_all(&self) -> Result<bool> {
        for w in self.workers() {
            w.start()?;
        }
        self.start()
    }

    /// Stops the server and its workers; false when none was running.
    pub fn stop_all(&self) -> Result<bool> {
        let mut stopped = self.stop()?;
        for w in self.workers() {
            stopped |= w.stop()?;
        }
        Ok(stopped)
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(self.bin_dir.join(program));
        if let Some(u) = &self.run_as {
            c.uid(u.uid).gid(u.gid);
            // A HOME the server user can read (root's is not).
            c.env("HOME", &self.data_dir);
        }
        c.env_remove("PGDATA")
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        c
    }

    /// Runs a server tool with its output going to a file (never to pm's own
    /// stdout/stderr, so a server it starts cannot hold them open).
    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) -> std::result::Result<String, String> {
        let out_path = self.log_file.with_file_name(format!("{program}.out"));
        let out = std::fs::File::create(&out_path)
            .map_err(|e| format!("cannot create {}: {e}", out_path.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let status = self
            .command(program)
            .args(args)
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .status()
            .map_err(|e| format!("cannot run {}: {e}", self.bin_dir.join(program).display()))?;
        let text = std::fs::read_to_string(&out_path).unwrap_or_default();
        if status.success() {
            Ok(text)
        } else {
            Err(text)
        }
    }

    pub fn status(&self) -> Status {
        if !self.data_dir.join("PG_VERSION").is_file() {
            return Status::Absent;
        }
        match self.pid() {
            Some(pid) if is_live_postgres(pid) => Status::Running { pid },
            _ => Status::Stopped,
        }
    }

    /// The pid in postmaster.pid, if there is one.
    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data_dir.join("postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
    }

    /// Creates the folders, owned by the server's user when that is not pm's.
    fn prepare_dirs(&self) -> Result<()> {
        let base = self.root.join(".pm");
        for d in [
            &base,
            &self.socket_dir,
            self.log_file.parent().unwrap_or(&base),
        ] {
            std::fs::create_dir_all(d).map_err(|e| {
                problem(
                    "embedded::dir",
                    format!("cannot create {}: {e}", d.display()),
                    "check that the project folder is writable",
                )
            })?;
        }
        let _ = std::fs::write(base.join(".gitignore"), "*\n");
        if let Some(u) = &self.run_as {
            for d in [
                &self.socket_dir,
                &self.log_file.parent().unwrap_or(&base).to_path_buf(),
            ] {
                std::os::unix::fs::chown(d, Some(u.uid), Some(u.gid)).map_err(|e| {
                    problem(
                        "embedded::dir",
                        format!("cannot hand {} to user {}: {e}", d.display(), u.name),
                        "run pm as root or as an ordinary user",
                    )
                })?;
            }
            // The server user must be able to reach its folders through the project folder.
            for d in self.root.ancestors() {
                if let Ok(md) = std::fs::metadata(d) {
                    if md.permissions().mode() & 0o001 == 0 {
                        return Err(problem(
                            "embedded::access",
                            format!(
                                "PostgreSQL runs as the `{}` user, which cannot enter {} (mode {:o})",
                                u.name,
                                d.display(),
                                md.permissions().mode() & 0o777
                            ),
                            format!("make it traversable (chmod o+x {}), keep the project elsewhere, or set PM_DATABASE_URL", d.display()),
                        )
                        .into());
                    }
                }
            }
        }
        Ok(())
    }

    /// `initdb` when there is no data directory yet.
    pub fn init(&self) -> Result<bool> {
        if self.status() != Status::Absent {
            return Ok(false);
        }
        self.prepare_dirs()?;
        std::fs::create_dir_all(&self.data_dir).map_err(|e| {
            problem(
                "embedded::dir",
                format!("cannot create {}: {e}", self.data_dir.display()),
                "check that the project folder is writable",
            )
        })?;
        if let Some(u) = &self.run_as {
            let _ = std::os::unix::fs::chown(&self.data_dir, Some(u.uid), Some(u.gid));
        }
        let _ = std::fs::set_permissions(&self.data_dir, std::fs::Permissions::from_mode(0o700));
        let data = self.data_dir.as_os_str();
        let user = format!("--username={}", self.superuser);
        self.run(
            "initdb",
            &[
                "-D".as_ref(),
                data,
                user.as_ref(),
                "--auth=trust".as_ref(),
                "--encoding=UTF8".as_ref(),
                "--locale=C".as_ref(),
                "--no-sync".as_ref(),
            ],
        )
        .map_err(|out| {
            // Leave no half-made data directory behind.
            let _ = std::fs::remove_dir_all(&self.data_dir);
            problem(
                "embedded::initdb",
                format!(
                    "initdb failed for {}:\n{}",
                    self.data_dir.display(),
                    out.trim()
                ),
                "see the message above; `pm db reset --yes` starts from scratch",
            )
        })?;
        // Unix socket only, in our own folder; quiet, quick to stop. JIT off:
        // compiling a model's query took longer than running it (2.8 s of
        // PulseMetrics' fct_daily_metrics, which then ran in 1.5 s).
        let conf = format!(
            "\n# pm: local-only server\nlisten_addresses = ''\nunix_socket_directories = '{}'\nport = {}\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\nwal_level = minimal\nmax_wal_senders = 0\nmax_connections = 100\njit = off\nwork_mem = '64MB'\n",
            self.socket_dir.display(),
            self.port
        );
        self.append_config(&conf)?;
        Ok(true)
    }

    /// Starts the server (initialising it first if needed). Returns false
    /// when it was already running.
    pub fn start(&self) -> Result<bool> {
        self.init()?;
        if matches!(self.status(), Status::Running { .. }) {
            return Ok(false);
        }
        self.prepare_dirs()?;
        // A server that died (killed, crashed) leaves postmaster.pid naming a
        // process that is gone or a zombie, which PostgreSQL takes for a live
        // server; and its last backends may hold its shared memory a moment
        // longer. The stale file goes, and the start is tried again while
        // they finish.
        if self.pid().is_some() {
            let _ = std::fs::remove_file(self.data_dir.join("postmaster.pid"));
        }
        let data = self.data_dir.as_os_str();
        let log = self.log_file.as_os_str();
        let start = || {
            self.run(
                "pg_ctl",
                &[
                    "start".as_ref(),
                    "-D".as_ref(),
                    data,
                    "-l".as_ref(),
                    log,
                    "-w".as_ref(),
                    "-t".as_ref(),
                    "60".as_ref(),
                ],
            )
        };
        let mut result = start();
        for _ in 0..20 {
            let log_says = std::fs::read_to_string(&self.log_file).unwrap_or_default();
            let busy = log_says
                .lines()
                .rev()
                .take(5)
                .any(|l| l.contains("is still in use") || l.contains("already exists"));
            if result.is_ok() || !busy || matches!(self.status(), Status::Running { .. }) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
            result = start();
        }
        match result {
            Ok(_) => Ok(true),
            // Another pm may have started it a moment ago.
            Err(_) if matches!(self.status(), Status::Running { .. }) => Ok(false),
            Err(out) => {
                let log_tail: String = std::fs::read_to_string(&self.log_file)
                    .unwrap_or_default()
                    .lines()
                    .rev()
                    .take(8)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                Err(problem(
                    "embedded::start",
                    format!(
                        "the local PostgreSQL did not start:\n{}\n{}",
                        out.trim(),
                        log_tail
                    ),
                    format!("the server log is {}", self.log_file.display()),
                )
                .into())
            }
        }
    }

    /// Stops the server; false when it was not running.
    pub fn stop(&self) -> Result<bool> {
        if !matches!(self.status(), Status::Running { .. }) {
            return Ok(false);
        }
        let data = self.data_dir.as_os_str();
        self.run(
            "pg_ctl",
            &[
                "stop".as_ref(),
                "-D".as_ref(),
                data,
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
            ],
        )
        .map_err(|out| {
            problem(
                "embedded::stop",
                format!("pg_ctl stop failed:\n{}", out.trim()),
                format!("the server log is {}", self.log_file.display()),
            )
        })?;
        Ok(true)
    }

    /// Stops the server (and its workers) and deletes their data directories.
    pub fn reset(&self) -> Result<()> {
        let workers = self.workers();
        self.stop_all()?;
        for c in std::iter::once(self).chain(&workers) {
            if c.data_dir.exists() {
                std::fs::remove_dir_all(&c.data_dir).map_err(|e| {
                    problem(
                        "embedded::reset",
                        format!("cannot remove {}: {e}", c.data_dir.display()),
                        "remove it by hand",
                    )
                })?;
            }
        }
        let _ = std::fs::remove_file(self.workers_file());
        Ok(())
    }

    /// A libpq connection URL (`psql "$(pm db url)"` works).
    pub fn url(&self) -> String {
        format!(
            "postgresql://{}@/{DATABASE}?host={}&port={}",
            self.superuser,
            self.socket_dir.display(),
            self.port
        )
    }

    /// Connection settings for tokio-postgres.
    pub fn config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host_path(&self.socket_dir)
            .port(self.port)
            .user(&self.superuser)
            .dbname(dbname)
            .application_name("pm");
        c
    }
}
