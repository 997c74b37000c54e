//! What the embedded cluster asks of the operating system: who runs pm,
//! whether a process is a live server, where PostgreSQL's binaries are.

use super::{problem, OsUser};
use pm_core::error::{Code, Result};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The current process's effective uid, from /proc (no libc needed).
pub(super) fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Whether `pid` is a PostgreSQL server process that still runs (not a
/// zombie waiting to be reaped, nor another program that got the pid), and
/// serves `data_dir` (a copied project's postmaster.pid names the server of
/// the folder it was copied from).
pub(super) fn is_live_postgres(pid: u32, data_dir: &Path) -> bool {
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
            let args: Vec<&[u8]> = c.split(|&b| b == 0).collect();
            let argv0 = args.first().copied().unwrap_or(&[]);
            let serves = args
                .iter()
                .position(|a| *a == b"-D")
                .and_then(|i| args.get(i + 1))
                .map(|d| {
                    let d = Path::new(std::ffi::OsStr::from_bytes(d));
                    let same =
                        |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
                    same(d) == same(data_dir)
                })
                .unwrap_or(true);
            String::from_utf8_lossy(argv0).contains("postgres") && serves
        })
        .unwrap_or(true)
}

/// An entry of /etc/passwd.
pub(super) fn passwd_user(name: &str) -> Option<OsUser> {
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

/// The OS user pm runs as: `USER` (`user`), else the passwd entry of the
/// effective uid.
pub(super) fn current_user_name(user: Option<&str>) -> String {
    user.filter(|u| !u.is_empty())
        .map(str::to_string)
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

pub(super) fn has_server_binaries(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|b| dir.join(b).is_file())
}

/// Finds the server binaries: `PM_PG_BIN`, `pg_config --bindir`, `PATH`, then
/// the newest `/usr/lib/postgresql/*/bin`.
pub fn find_bin_dir(pg_bin: Option<&Path>, path: Option<&str>) -> Result<PathBuf> {
    if let Some(dir) = pg_bin {
        let dir = dir.to_path_buf();
        if has_server_binaries(&dir) {
            return Ok(dir);
        }
        return Err(problem(
            Code::EmbeddedBin,
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
    if let Some(path) = path {
        for dir in std::env::split_paths(path) {
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
            Code::EmbeddedBin,
            "no PostgreSQL server binaries found (initdb, pg_ctl, postgres)",
            "install PostgreSQL's server (Debian/Ubuntu: apt-get install postgresql), set PM_PG_BIN to its bin folder, \
             or configure a target in profiles.yml / PM_DATABASE_URL",
        )
        .into()
    })
}
