//! What a command runs with, resolved once at start from the command line
//! and the environment (as ripgrep and uv do): modules below the commands
//! take these values and never read the environment or the command line.
//! (Templates' `env_var()` reads the environment by design: it is the
//! project's, not pm's.)

use std::path::PathBuf;

/// pm's own environment variables, read once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Environment {
    /// `PM_DATABASE_URL`, unless unset or empty: the server to use instead
    /// of the profile's target or the embedded cluster.
    pub database_url: Option<String>,
    /// `PM_PROFILES_DIR`: looked at after `--profiles-dir`.
    pub profiles_dir: Option<PathBuf>,
    /// What the embedded cluster needs: `PM_PG_BIN`, `USER`, `PATH`.
    pub server: ServerEnvironment,
    /// `HOME`, for `~/.pm` and `~/.dbt`.
    pub home: Option<PathBuf>,
    /// `PM_TEST_MERGE=0` runs every data test on its own query (a
    /// debugging aid for the merged scans).
    pub merge_tests: bool,
    /// `PM_TIMINGS=1` prints how long each phase of loading and compiling took.
    pub timings: bool,
    /// `DBT_PACKAGE_HUB_URL`: the package hub `pm deps` asks (dbt's by default).
    pub package_hub_url: String,
    /// `DBT_PROFILES_DIR`: looked at after `--profiles-dir` and `PM_PROFILES_DIR`.
    pub dbt_profiles_dir: Option<PathBuf>,
    /// `NO_COLOR` set (and not empty): log lines without colour.
    pub no_color: bool,
    /// `TERM=dumb`: no progress bar, even on a terminal.
    pub dumb_terminal: bool,
}

/// What pm's embedded cluster reads of the environment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerEnvironment {
    /// `PM_PG_BIN`: PostgreSQL's server binaries for the embedded cluster.
    pub pg_bin: Option<PathBuf>,
    /// `USER`: the role the server's superuser is named after (when pm does
    /// not run as root).
    pub user: Option<String>,
    /// `PATH`: where the server's binaries may be.
    pub path: Option<String>,
}

impl Environment {
    /// The process's environment.
    pub fn read() -> Environment {
        Environment::from_lookup(|k| std::env::var_os(k).and_then(|v| v.into_string().ok()))
    }

    /// The environment `lookup` answers for (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Environment {
        let set = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        Environment {
            database_url: set("PM_DATABASE_URL"),
            profiles_dir: set("PM_PROFILES_DIR").map(PathBuf::from),
            server: ServerEnvironment {
                pg_bin: set("PM_PG_BIN").map(PathBuf::from),
                user: set("USER"),
                path: set("PATH"),
            },
            home: set("HOME").map(PathBuf::from),
            merge_tests: lookup("PM_TEST_MERGE").is_none_or(|v| v != "0"),
            timings: lookup("PM_TIMINGS").is_some_and(|v| v == "1"),
            package_hub_url: set("DBT_PACKAGE_HUB_URL")
                .unwrap_or_else(|| "https://hub.getdbt.com/".into()),
            dbt_profiles_dir: set("DBT_PROFILES_DIR").map(PathBuf::from),
            no_color: lookup("NO_COLOR").is_some_and(|v| !v.is_empty()),
            dumb_terminal: lookup("TERM").is_some_and(|v| v == "dumb"),
        }
    }
}

/// The global flags and the environment, as every command receives them.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `--project-dir`.
    pub project_dir: Option<PathBuf>,
    /// `--profiles-dir`.
    pub profiles_dir: Option<PathBuf>,
    /// `--target`: the profile's output to use.
    pub target_name: Option<String>,
    /// `--threads`.
    pub threads: Option<usize>,
    /// `--vars`, as typed.
    pub vars: Option<String>,
    pub env: Environment,
}

impl Settings {
    /// Where profiles.yml is looked for, first match wins: `--profiles-dir`,
    /// `PM_PROFILES_DIR`, `DBT_PROFILES_DIR`, the project folder, `~/.pm`,
    /// `~/.dbt`.
    pub fn profile_dirs(&self, project_root: &std::path::Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self
            .profiles_dir
            .iter()
            .chain(&self.env.profiles_dir)
            .chain(&self.env.dbt_profiles_dir)
            .cloned()
            .collect();
        v.push(project_root.to_path_buf());
        if let Some(home) = &self.env.home {
            v.push(home.join(".pm"));
            v.push(home.join(".dbt"));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn empty_variables_count_as_unset_and_profiles_are_looked_for_in_order() {
        let vars: HashMap<&str, &str> = [
            ("PM_DATABASE_URL", " "),
            ("PM_PROFILES_DIR", "/env"),
            ("HOME", "/home/u"),
            ("PM_TEST_MERGE", "0"),
        ]
        .into();
        let env = Environment::from_lookup(|k| vars.get(k).map(|v| v.to_string()));
        assert_eq!(env.database_url, None);
        assert!(!env.merge_tests);
        let s = Settings {
            profiles_dir: Some("/flag".into()),
            env,
            ..Default::default()
        };
        let dirs: Vec<String> = s
            .profile_dirs(std::path::Path::new("/proj"))
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            dirs,
            ["/flag", "/env", "/proj", "/home/u/.pm", "/home/u/.dbt"]
        );
        assert!(Environment::from_lookup(|_| None).merge_tests);
    }
}
