//! What `packages.yml` asks for and what `package-lock.yml` pins, as plain
//! data: parsing the entries, choosing a hub version, the lock file's text
//! and dbt's hash of the declared entries.

use pm_core::error::{Code, Problem};
use pm_core::loader::packages::{satisfies, version_parts};
use pm_core::loader::yaml;
use serde_json::{Map, Value as Json};

/// One entry of `packages:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// `local: ../path` (relative to the project that declares it).
    Local { path: String },
    /// `git: url`, with `revision` (branch, tag or commit) and `subdirectory`.
    Git {
        url: String,
        revision: Option<String>,
        subdirectory: Option<String>,
    },
    /// `package: namespace/name` with `version:` ranges.
    Hub {
        package: String,
        ranges: Vec<String>,
        prerelease: bool,
    },
}

impl Spec {
    /// Reads one entry; `file` names where it is, for the error.
    pub fn parse(entry: &Json, file: &str) -> Result<Spec, Problem> {
        let text = |k: &str| entry.get(k).and_then(yaml::as_string);
        if let Some(path) = text("local") {
            return Ok(Spec::Local { path });
        }
        if let Some(url) = text("git") {
            let spec = Spec::Git {
                url,
                revision: text("revision"),
                subdirectory: text("subdirectory"),
            };
            check_git(&spec, file)?;
            return Ok(spec);
        }
        if let Some(package) = text("package") {
            let ranges: Vec<String> = yaml::string_list(entry.get("version"))
                .iter()
                .flat_map(|v| v.split(',').map(|s| s.trim().to_string()))
                .filter(|s| !s.is_empty())
                .collect();
            if ranges.is_empty() {
                return Err(Problem::new(
                    Code::DepsVersion,
                    format!("{file}: package `{package}` has no `version:`"),
                )
                .help("give a version or a range, e.g. version: [\">=1.0.0\", \"<2.0.0\"]"));
            }
            return Ok(Spec::Hub {
                package,
                ranges,
                prerelease: entry
                    .get("install-prerelease")
                    .and_then(Json::as_bool)
                    .unwrap_or(false),
            });
        }
        if entry.get("tarball").is_some() || entry.get("private").is_some() {
            return Err(Problem::new(
                Code::DepsUnsupported,
                format!("{file}: `tarball:` and `private:` packages are not supported by pm deps"),
            )
            .help("use a `git:` entry for the same repository, or install it under dbt_packages/ by hand"));
        }
        Err(Problem::new(
            Code::DepsEntry,
            format!("{file}: a package entry needs `local:`, `git:` or `package:`; got {entry}"),
        )
        .help("see https://docs.getdbt.com/docs/build/packages"))
    }

    /// How `pm deps` names it while installing.
    pub fn label(&self) -> String {
        match self {
            Spec::Local { path } => path.clone(),
            Spec::Git { url, .. } => url.clone(),
            Spec::Hub { package, .. } => package.clone(),
        }
    }
}

/// The highest version that meets every range (pre-releases only when asked).
pub fn best_version<'a>(
    versions: impl Iterator<Item = &'a str>,
    ranges: &[String],
    prerelease: bool,
) -> Option<String> {
    versions
        .filter(|v| prerelease || !v.chars().any(|c| c == '-' || c.is_ascii_alphabetic()))
        .filter_map(|v| version_parts(v).map(|p| (p, v)))
        .filter(|(p, _)| ranges.iter().all(|r| satisfies(p, r) == Some(true)))
        .max_by_key(|(p, _)| *p)
        .map(|(_, v)| v.to_string())
}

/// A `git:` entry's values go to the `git` command and into a path: a URL or
/// revision that git would read as an option (`--upload-pack=…`), and a
/// subdirectory that leaves the clone (`..`, an absolute path), are refused.
fn check_git(spec: &Spec, file: &str) -> Result<(), Problem> {
    let Spec::Git {
        url,
        revision,
        subdirectory,
    } = spec
    else {
        return Ok(());
    };
    let refuse = |what: String, help: &str| {
        Err(Problem::new(Code::DepsGitEntry, format!("{file}: {what}")).help(help.to_string()))
    };
    if url.trim().is_empty() || url.starts_with('-') {
        return refuse(
            format!("git: `{url}` is not a repository URL (git would read it as an option)"),
            "give the repository's URL, e.g. https://github.com/owner/repo.git",
        );
    }
    if let Some(r) = revision {
        if r.trim().is_empty() || r.starts_with('-') {
            return refuse(
                format!("revision: `{r}` of {url} is not a branch, tag or commit (git would read it as an option)"),
                "give a branch, a tag or a commit",
            );
        }
    }
    if let Some(dir) = subdirectory {
        let path = std::path::Path::new(dir);
        let leaves = path.is_absolute()
            || path.components().any(|c| {
                !matches!(
                    c,
                    std::path::Component::Normal(_) | std::path::Component::CurDir
                )
            });
        if leaves || dir.trim().is_empty() {
            return refuse(
                format!("subdirectory: `{dir}` of {url} is not a folder inside the repository"),
                "give a relative path inside the repository, without `..`",
            );
        }
    }
    Ok(())
}

/// A package as installed: what the lock file records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pinned {
    Local {
        path: String,
    },
    Git {
        url: String,
        /// The commit.
        revision: String,
        subdirectory: Option<String>,
    },
    Hub {
        package: String,
        version: String,
    },
}

impl Pinned {
    fn to_json(&self, name: &str) -> Json {
        let mut m = Map::new();
        match self {
            Pinned::Local { path } => {
                m.insert("local".into(), Json::from(path.clone()));
            }
            Pinned::Git {
                url,
                revision,
                subdirectory,
            } => {
                m.insert("git".into(), Json::from(url.clone()));
                m.insert("revision".into(), Json::from(revision.clone()));
                if let Some(s) = subdirectory {
                    m.insert("subdirectory".into(), Json::from(s.clone()));
                }
            }
            Pinned::Hub { package, version } => {
                m.insert("package".into(), Json::from(package.clone()));
                m.insert("version".into(), Json::from(version.clone()));
            }
        }
        m.insert("name".into(), Json::from(name));
        Json::Object(m)
    }

    /// The entry of a lock file, as a spec that installs exactly it.
    pub fn from_lock(entry: &Json, file: &str) -> Result<Pinned, Problem> {
        Ok(match Spec::parse(entry, file)? {
            Spec::Local { path } => Pinned::Local { path },
            Spec::Git {
                url,
                revision,
                subdirectory,
            } => Pinned::Git {
                url,
                revision: revision.unwrap_or_else(|| "HEAD".into()),
                subdirectory,
            },
            Spec::Hub {
                package, ranges, ..
            } => Pinned::Hub {
                package,
                version: ranges.join(","),
            },
        })
    }
}

/// dbt's hash of the declared entries: each entry's JSON with sorted keys
/// (Python's separators), the lines sorted and joined, SHA-1. A lock file
/// whose hash matches was made from these entries.
pub fn declared_hash(entries: &[Json]) -> String {
    use sha1::Digest;
    let mut lines: Vec<String> = entries.iter().map(python_json).collect();
    lines.sort();
    pm_core::text::hex(&sha1::Sha1::digest(lines.join("\n").as_bytes()))
}

/// `json.dumps(value, sort_keys=True)`.
fn python_json(v: &Json) -> String {
    match v {
        Json::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}: {}",
                        Json::from(k.as_str()),
                        python_json(&m[k.as_str()])
                    )
                })
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Json::Array(a) => format!(
            "[{}]",
            a.iter().map(python_json).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

/// The text of `package-lock.yml`.
pub fn lock_text(installed: &[(String, Pinned)], hash: &str) -> Result<String, Problem> {
    let packages: Vec<Json> = installed.iter().map(|(n, p)| p.to_json(n)).collect();
    let doc = serde_json::json!({ "packages": packages, "sha1_hash": hash });
    serde_yaml::to_string(&doc).map_err(|e| {
        Problem::new(
            Code::DepsLock,
            format!("cannot write package-lock.yml: {e}"),
        )
    })
}

#[cfg(test)]
mod git_entry_tests {
    use super::*;

    fn parse(yaml: serde_json::Value) -> Result<Spec, Problem> {
        Spec::parse(&yaml, "packages.yml")
    }

    #[test]
    fn options_and_paths_out_of_the_clone_are_refused() {
        let url = "https://example.com/p.git";
        for (entry, says) in [
            (
                serde_json::json!({"git": "--upload-pack=touch /tmp/x", "revision": "main"}),
                "is not a repository URL",
            ),
            (
                serde_json::json!({"git": url, "revision": "--output=/etc/passwd"}),
                "is not a branch, tag or commit",
            ),
            (
                serde_json::json!({"git": url, "subdirectory": "../../.ssh"}),
                "is not a folder inside the repository",
            ),
            (
                serde_json::json!({"git": url, "subdirectory": "/etc"}),
                "is not a folder inside the repository",
            ),
            (
                serde_json::json!({"git": url, "subdirectory": "a/../../b"}),
                "is not a folder inside the repository",
            ),
        ] {
            let e = parse(entry.clone()).unwrap_err();
            assert!(e.message.contains(says), "{entry}: {}", e.message);
        }
        assert!(parse(serde_json::json!({"git": url, "revision": "v1.2", "subdirectory": "integration_tests/./x"})).is_ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_and_versions() {
        let hub = Spec::parse(
            &json!({"package": "dbt-labs/dbt_utils", "version": [">=1.0.0", "<2.0.0"]}),
            "packages.yml",
        )
        .unwrap();
        let Spec::Hub { ranges, .. } = &hub else {
            panic!("{hub:?}")
        };
        let versions = ["0.9.6", "1.0.0", "1.3.0", "2.0.0", "1.4.0-b1"];
        assert_eq!(
            best_version(versions.iter().copied(), ranges, false).as_deref(),
            Some("1.3.0")
        );
        assert!(Spec::parse(&json!({"tarball": "x"}), "p.yml").is_err());
        let e = Spec::parse(&json!({"package": "a/b"}), "packages.yml").unwrap_err();
        assert!(e.message.contains("has no `version:`"), "{}", e.message);
    }

    #[test]
    fn the_hash_is_dbts() {
        // sha1 of '{"package": "dbt-labs/dbt_utils", "version": "1.1.1"}', as
        // Python's json.dumps(..., sort_keys=True) writes it.
        let h = declared_hash(&[json!({"version": "1.1.1", "package": "dbt-labs/dbt_utils"})]);
        use sha1::Digest;
        let want = pm_core::text::hex(&sha1::Sha1::digest(
            br#"{"package": "dbt-labs/dbt_utils", "version": "1.1.1"}"#,
        ));
        assert_eq!(h, want);
    }
}
