//! pm's own PostgreSQL for a project that configures no target: a data
//! directory under `<project>/.pm/postgres`, reachable only through a unix
//! socket (no TCP port to collide with), created with `initdb` on first use,
//! started on demand and left running for the next command.
//!
//! PostgreSQL refuses to run as root. When pm runs as root (CI, containers)
//! the server runs as the `postgres` OS user, which then owns the data
//! directory; when neither works, the error says what to install or change.

mod access;
mod os;

use crate::embedded::os::{current_user_name, effective_uid, is_live_postgres, passwd_user};
pub use access::passfile_password;
use os::find_bin_dir;
use pm_core::error::{Code, Problem, Result};
use pm_core::settings::ServerEnvironment;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The database pm creates in its cluster and connects to.
pub const DATABASE: &str = "pm";
/// Only names the socket file (`.s.PGSQL.5432`): the server listens on no TCP port.
const PORT: u16 = 5432;
/// The settings file pm writes into the data folder at every start (socket
/// folder, port, access), included at the end of postgresql.conf.
const SERVER_SETTINGS: &str = "pm_server.conf";
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

/// A string value for postgresql.conf: quoted, with quotes and backslashes escaped.
fn conf_string(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

fn problem(code: Code, msg: impl Into<String>, help: impl Into<String>) -> Problem {
    Problem::new(code, msg).help(help)
}

impl Cluster {
    /// The cluster of the project at `root` (nothing is created yet).
    pub fn for_project(root: &Path, env: &ServerEnvironment) -> Result<Cluster> {
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let base = root.join(".pm");
        let bin_dir = find_bin_dir(env.pg_bin.as_deref(), env.path.as_deref())?;
        let run_as = if effective_uid() == Some(0) {
            Some(passwd_user("postgres").ok_or_else(|| {
                problem(
                    Code::EmbeddedRoot,
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
            .unwrap_or_else(|| current_user_name(env.user.as_deref()));
        let mut socket_dir = base.join("run");
        if socket_dir.join(".s.PGSQL.5432").as_os_str().len() > MAX_SOCKET_PATH {
            // Too long for a socket address: a short, stable folder per project.
            let h = pm_core::text::sha256_hex(&root.to_string_lossy());
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
                Code::EmbeddedWorkers,
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
                Code::EmbeddedConfig,
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
            Some(pid) if is_live_postgres(pid, &self.data_dir) => Status::Running { pid },
            _ => Status::Stopped,
        }
    }

    /// The pid in postmaster.pid, if there is one.
    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data_dir.join("postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
    }

    /// The uid the server runs as.
    fn server_uid(&self) -> Option<u32> {
        self.run_as.as_ref().map(|u| u.uid).or_else(effective_uid)
    }

    /// Creates the folders, owned by the server's user when that is not pm's.
    /// Only that user (and root) may enter the socket and log folders; `.pm`
    /// itself lets the server's user through to its data folder.
    fn prepare_dirs(&self) -> Result<()> {
        let base = self.root.join(".pm");
        let log_dir = self.log_file.parent().unwrap_or(&base).to_path_buf();
        for d in [&base, &log_dir] {
            std::fs::create_dir_all(d).map_err(|e| {
                problem(
                    Code::EmbeddedDir,
                    format!("cannot create {}: {e}", d.display()),
                    "check that the project folder is writable",
                )
            })?;
        }
        self.private_socket_dir()?;
        let _ = std::fs::write(base.join(".gitignore"), "*\n");
        let set_mode = |d: &Path, mode: u32| {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode)).map_err(|e| {
                problem(
                    Code::EmbeddedDir,
                    format!("cannot set the permissions of {}: {e}", d.display()),
                    "check that the project folder is yours",
                )
            })
        };
        set_mode(&base, if self.run_as.is_some() { 0o711 } else { 0o700 })?;
        set_mode(&log_dir, 0o700)?;
        if let Some(u) = &self.run_as {
            std::os::unix::fs::chown(&log_dir, Some(u.uid), Some(u.gid)).map_err(|e| {
                problem(
                    Code::EmbeddedDir,
                    format!("cannot hand {} to user {}: {e}", log_dir.display(), u.name),
                    "run pm as root or as an ordinary user",
                )
            })?;
            // The server user must be able to reach its folders through the project folder.
            for d in self.root.ancestors() {
                if let Ok(md) = std::fs::metadata(d) {
                    if md.permissions().mode() & 0o001 == 0 {
                        return Err(problem(
                            Code::EmbeddedAccess,
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

    /// The socket folder, mode 0700 and owned by the server's user, so that
    /// no other OS user can reach the server. One that exists and belongs to
    /// someone else (a folder under /tmp made by another user) is refused.
    fn private_socket_dir(&self) -> Result<()> {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        let dir = &self.socket_dir;
        let refuse = |why: String| -> pm_core::error::Problems {
            problem(
                Code::EmbeddedSocketDir,
                format!("the socket folder {} {why}", dir.display()),
                "remove it (only pm should create it), or move the project to a shorter path",
            )
            .into()
        };
        match std::fs::symlink_metadata(dir) {
            Err(_) => std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(|e| refuse(format!("cannot be created: {e}")))?,
            Ok(md) if !md.is_dir() => return Err(refuse("is not a folder".into())),
            Ok(md) => {
                let ours = Some(md.uid()) == self.server_uid() || Some(md.uid()) == effective_uid();
                if !ours {
                    return Err(refuse(format!(
                        "belongs to uid {}, not to pm or its server",
                        md.uid()
                    )));
                }
            }
        }
        if let Some(u) = &self.run_as {
            std::os::unix::fs::chown(dir, Some(u.uid), Some(u.gid))
                .map_err(|e| refuse(format!("cannot be handed to user {}: {e}", u.name)))?;
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| refuse(format!("cannot be made private: {e}")))?;
        Ok(())
    }

    /// The OS user the server runs as: the one pm runs as, unless root
    /// (whose server runs as `postgres`); the superuser is named after it.
    fn server_os_user(&self) -> String {
        self.run_as
            .as_ref()
            .map(|u| u.name.clone())
            .unwrap_or_else(|| self.superuser.clone())
    }

    /// The data folder the server was last started from, when that is not
    /// this one: the project folder was copied or moved (read before a start
    /// rewrites it).
    pub fn moved_from(&self) -> Option<PathBuf> {
        let text = std::fs::read_to_string(self.data_dir.join(SERVER_SETTINGS)).ok()?;
        let was = text
            .lines()
            .find_map(|l| l.strip_prefix("# data folder: "))?;
        (Path::new(was) != self.data_dir).then(|| PathBuf::from(was))
    }

    /// Writes a file of the data folder, readable by the server's user only.
    fn write_data_file(&self, name: &str, text: &str) -> Result<()> {
        let path = self.data_dir.join(name);
        let failed = |e: std::io::Error| -> pm_core::error::Problems {
            problem(
                Code::EmbeddedConfig,
                format!("cannot write {}: {e}", path.display()),
                "check the data directory's permissions",
            )
            .into()
        };
        std::fs::write(&path, text).map_err(failed)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
        if let Some(u) = &self.run_as {
            std::os::unix::fs::chown(&path, Some(u.uid), Some(u.gid)).map_err(failed)?;
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
                Code::EmbeddedDir,
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
                // Replaced by pm's own pg_hba.conf before the first start.
                "--auth-local=peer".as_ref(),
                "--auth-host=reject".as_ref(),
                "--encoding=UTF8".as_ref(),
                "--locale=C".as_ref(),
                "--no-sync".as_ref(),
            ],
        )
        .map_err(|out| {
            // Leave no half-made data directory behind.
            let _ = std::fs::remove_dir_all(&self.data_dir);
            problem(
                Code::EmbeddedInitdb,
                format!(
                    "initdb failed for {}:\n{}",
                    self.data_dir.display(),
                    out.trim()
                ),
                "see the message above; `pm db reset --yes` starts from scratch",
            )
        })?;
        // Quiet, quick to stop (the socket, port and access are in
        // SERVER_SETTINGS, written at every start). JIT off: compiling a
        // model's query took longer than running it (2.8 s of PulseMetrics'
        // fct_daily_metrics, which then ran in 1.5 s).
        self.append_config(
            "\n# pm: local-only server\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\nwal_level = minimal\nmax_wal_senders = 0\nmax_connections = 100\njit = off\nwork_mem = '64MB'\n",
        )?;
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
        self.write_access_files()?;
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
                    Code::EmbeddedStart,
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
                Code::EmbeddedStop,
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
                        Code::EmbeddedReset,
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
            pm_core::text::percent_encode(&self.superuser),
            pm_core::text::percent_encode(&self.socket_dir.to_string_lossy()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::access::hba_word;

    #[test]
    fn settings_and_access_files_quote_what_they_hold() {
        assert_eq!(conf_string("/tmp/it's\\here"), "'/tmp/it''s\\\\here'");
        assert_eq!(hba_word("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(
            passfile_password("*:*:pm:re\\:ader:s3cret", "pm", "re:ader").as_deref(),
            Some("s3cret")
        );
        assert_eq!(
            passfile_password("*:*:other:reader:x", "pm", "reader"),
            None
        );
        assert_eq!(passfile_password("# *:*:pm:reader:x", "pm", "reader"), None);
    }
}
