//! `pm deps`: installs the packages `packages.yml` (or `dependencies.yml`)
//! declares into the project's `packages-install-path`, as `dbt deps` does:
//! `local:` entries as links, `git:` entries with the `git` command, hub
//! entries through the package hub's HTTP API; then each package's own
//! packages, and `package-lock.yml` pinning what was installed. With a lock
//! file made from the same entries, exactly what it pins is installed.
//!
//! Everything is fetched into a staging folder next to the install path,
//! which replaces the old one only when every package is in place: a failed
//! `pm deps` leaves the installed packages as they were.

pub mod spec;

use pm_core::error::{Code, Problem, Problems, Result};
use pm_core::loader::{self, Project};
use serde_json::Value as Json;
use spec::{Pinned, Spec};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;

/// How `pm deps` runs.
#[derive(Debug, Clone)]
pub struct DepsOptions {
    /// The package hub (`DBT_PACKAGE_HUB_URL`, else dbt's).
    pub hub_url: String,
    /// Re-resolve even when the lock file matches (`--upgrade`).
    pub upgrade: bool,
    /// Only write the lock file (`--lock`).
    pub lock_only: bool,
}

/// A package fetched into the staging folder (or, for `local:`, found).
#[derive(Debug)]
struct Fetched {
    name: String,
    pinned: Pinned,
    /// Where its files are now.
    dir: PathBuf,
    /// Where to install it from: a link for `local:`, else moved.
    link: bool,
}

/// What `pm deps` did.
#[derive(Debug)]
pub struct Installed {
    pub packages: Vec<(String, Pinned)>,
    pub lock_written: bool,
}

/// Installs the root project's declared packages.
pub fn install(
    root: &Project,
    options: &DepsOptions,
    log: &mut dyn FnMut(&str),
) -> Result<Installed> {
    let entries = loader::packages::declared(root)?;
    let file =
        loader::packages::declaration_file(root).map_or_else(|| "packages.yml".into(), |(f, _)| f);
    let install_path = root.root.join(loader::packages::install_path(root));
    let staging = sibling(&install_path, "pm-new");
    remove_any(&staging)?;
    std::fs::create_dir_all(&staging).map_err(|e| io_problem("create", &staging, e))?;
    let hash = spec::declared_hash(&entries);
    let lock_path = root.root.join("package-lock.yml");
    let locked = if options.upgrade {
        None
    } else {
        read_lock(&lock_path, &hash)?
    };
    let mut fetcher = Fetcher {
        hub: HubClient::new(&options.hub_url),
        staging: staging.clone(),
        count: 0,
        log,
    };
    let result = match &locked {
        Some(pins) => fetcher.pinned(root, pins),
        None => fetcher.resolve(root, &entries, &file),
    };
    let fetched = match result {
        Ok(f) => f,
        Err(e) => {
            let _ = remove_any(&staging);
            return Err(e);
        }
    };
    let packages: Vec<(String, Pinned)> = fetched
        .iter()
        .map(|f| (f.name.clone(), f.pinned.clone()))
        .collect();
    let lock_written = locked.is_none();
    if lock_written {
        write_file(&lock_path, &spec::lock_text(&packages, &hash)?)?;
    }
    if options.lock_only {
        remove_any(&staging)?;
    } else {
        put_in_place(&fetched, &staging, &install_path)?;
    }
    Ok(Installed {
        packages,
        lock_written,
    })
}

/// The pins of a lock file made from the same entries, if there is one.
fn read_lock(path: &Path, hash: &str) -> Result<Option<Vec<Pinned>>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    let text: std::sync::Arc<str> = text.into();
    let doc = loader::yaml::parse("package-lock.yml", &text)?;
    if doc.get("sha1_hash").and_then(Json::as_str) != Some(hash) {
        return Ok(None);
    }
    let entries = match doc.get("packages") {
        Some(Json::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    let pins = entries
        .iter()
        .map(|e| Pinned::from_lock(e, "package-lock.yml"))
        .collect::<std::result::Result<Vec<_>, Problem>>()?;
    Ok(Some(pins))
}

struct Fetcher<'a> {
    hub: HubClient,
    staging: PathBuf,
    count: usize,
    log: &'a mut dyn FnMut(&str),
}

impl Fetcher<'_> {
    /// Resolves the entries and the packages' own, breadth first. A hub
    /// package asked for again gets the highest version meeting every range
    /// asked so far.
    fn resolve(&mut self, root: &Project, entries: &[Json], file: &str) -> Result<Vec<Fetched>> {
        let mut queue: VecDeque<(Spec, PathBuf)> = VecDeque::new();
        for e in entries {
            queue.push_back((Spec::parse(e, file)?, root.root.clone()));
        }
        let mut hub_ranges: HashMap<String, Vec<String>> = HashMap::new();
        let mut fetched: Vec<Fetched> = Vec::new();
        while let Some((spec, base)) = queue.pop_front() {
            let label = spec.label();
            let wanted = match &spec {
                Spec::Hub {
                    package,
                    ranges,
                    prerelease,
                } => {
                    let all = hub_ranges.entry(package.clone()).or_default();
                    all.extend(ranges.iter().cloned());
                    let version = self.hub.choose(package, all, *prerelease)?;
                    let have = fetched.iter().position(
                        |f| matches!(&f.pinned, Pinned::Hub { package: p, .. } if p == package),
                    );
                    if let Some(i) = have {
                        if matches!(&fetched[i].pinned, Pinned::Hub { version: v, .. } if *v == version)
                        {
                            continue;
                        }
                        fetched.remove(i);
                    }
                    Pinned::Hub {
                        package: package.clone(),
                        version,
                    }
                }
                Spec::Git {
                    url,
                    revision,
                    subdirectory,
                } => {
                    if fetched.iter().any(|f| {
                        matches!(&f.pinned, Pinned::Git { url: u, subdirectory: s, .. } if u == url && s == subdirectory)
                    }) {
                        continue;
                    }
                    Pinned::Git {
                        url: url.clone(),
                        revision: revision.clone().unwrap_or_else(|| "HEAD".into()),
                        subdirectory: subdirectory.clone(),
                    }
                }
                Spec::Local { path } => Pinned::Local { path: path.clone() },
            };
            let f = self.fetch(&label, &wanted, &base, root)?;
            if let Some(other) = fetched.iter().find(|o| o.name == f.name) {
                if matches!(f.pinned, Pinned::Local { .. }) && other.dir == f.dir {
                    continue;
                }
                return Err(Problem::new(
                    Code::DepsDuplicate,
                    format!(
                        "two entries install package `{}`: {} and {label}",
                        f.name,
                        describe(&other.pinned)
                    ),
                )
                .help("keep one entry for each package (a package's own packages.yml counts too)")
                .into());
            }
            for e in loader::packages::declared_in(&f.dir)? {
                queue.push_back((
                    Spec::parse(&e, &format!("{}'s packages.yml", f.name))?,
                    f.dir.clone(),
                ));
            }
            fetched.push(f);
        }
        Ok(fetched)
    }

    /// Fetches exactly what a lock file pins.
    fn pinned(&mut self, root: &Project, pins: &[Pinned]) -> Result<Vec<Fetched>> {
        let mut out = Vec::new();
        for pin in pins {
            let label = describe(pin);
            out.push(self.fetch(&label, pin, &root.root, root)?);
        }
        Ok(out)
    }

    fn fetch(&mut self, label: &str, pin: &Pinned, base: &Path, root: &Project) -> Result<Fetched> {
        (self.log)(&format!("Installing {label}"));
        self.count += 1;
        let work = self.staging.join(format!(".fetch-{}", self.count));
        let (dir, pinned, link, said) = match pin {
            Pinned::Local { path } => {
                let dir = base.join(path);
                let dir = dir
                    .canonicalize()
                    .map_err(|e| io_problem("find", &dir, e))?;
                // Recorded relative to the root, as written there.
                let path = if base == root.root {
                    path.clone()
                } else {
                    dir.to_string_lossy().into_owned()
                };
                (
                    dir,
                    Pinned::Local { path },
                    true,
                    "  Installed from local".to_string(),
                )
            }
            Pinned::Git {
                url,
                revision,
                subdirectory,
            } => {
                let commit = git_checkout(url, revision, &work)?;
                let dir = match subdirectory {
                    Some(s) => work.join(s),
                    None => work.clone(),
                };
                let said = format!("  Installed from revision {revision}");
                let pinned = Pinned::Git {
                    url: url.clone(),
                    revision: commit,
                    subdirectory: subdirectory.clone(),
                };
                (dir, pinned, false, said)
            }
            Pinned::Hub { package, version } => {
                let dir = self.hub.download(package, version, &work)?;
                let said = format!("  Installed from version {version}");
                (dir, pin.clone(), false, said)
            }
        };
        let name = project_name(&dir)?;
        (self.log)(&said);
        Ok(Fetched {
            name,
            pinned,
            dir,
            link,
        })
    }
}

fn describe(pin: &Pinned) -> String {
    match pin {
        Pinned::Local { path } => path.clone(),
        Pinned::Git { url, .. } => url.clone(),
        Pinned::Hub { package, version } => format!("{package}@{version}"),
    }
}

/// The `name:` of the project file in `dir`.
fn project_name(dir: &Path) -> Result<String> {
    let found = loader::PROJECT_FILES
        .iter()
        .find_map(|f| std::fs::read_to_string(dir.join(f)).ok().map(|t| (f, t)));
    let Some((file, text)) = found else {
        return Err(Problem::new(
            Code::DepsNotAProject,
            format!("{} holds no dbt_project.yml", dir.display()),
        )
        .help("a package is a dbt project; for a git repository with the project in a folder, set `subdirectory:`")
        .into());
    };
    let text: std::sync::Arc<str> = text.into();
    let doc = loader::yaml::parse(file, &text)?;
    doc.get("name")
        .and_then(loader::yaml::as_string)
        .ok_or_else(|| {
            Problem::new(
                Code::DepsNotAProject,
                format!("{} has no `name:`", dir.join(file).display()),
            )
            .into()
        })
}

/// Clones `url` into `dest` at `revision`; returns the commit.
fn git_checkout(url: &str, revision: &str, dest: &Path) -> Result<String> {
    let dest_text = dest.to_string_lossy().into_owned();
    // `--`/`--end-of-options`: a URL or revision is never read as an option
    // (Spec::parse refuses those starting with `-` too).
    git(&["clone", "--quiet", "--", url, &dest_text], url)?;
    if revision != "HEAD" {
        git(
            &[
                "-C",
                &dest_text,
                "checkout",
                "--quiet",
                "--end-of-options",
                revision,
                "--",
            ],
            url,
        )?;
    }
    Ok(git(&["-C", &dest_text, "rev-parse", "HEAD"], url)?
        .trim()
        .to_string())
}

fn git(args: &[&str], url: &str) -> Result<String> {
    let out = Command::new("git").args(args).output().map_err(|e| {
        Problems::from(
            Problem::new(Code::DepsGit, format!("cannot run git for {url}: {e}"))
                .help("install git, or install the package under dbt_packages/ by hand"),
        )
    })?;
    if !out.status.success() {
        return Err(Problem::new(
            Code::DepsGit,
            format!(
                "git {} failed for {url}: {}",
                args.iter()
                    .find(|a| !a.starts_with('-'))
                    .copied()
                    .unwrap_or(""),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        )
        .help("check the URL and the revision (a branch, a tag or a commit)")
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The package hub's HTTP API (`/api/v1/<namespace>/<name>.json`).
struct HubClient {
    base: String,
    agent: ureq::Agent,
    cache: HashMap<String, Json>,
}

impl HubClient {
    fn new(base: &str) -> HubClient {
        HubClient {
            base: base.trim_end_matches('/').to_string(),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(std::time::Duration::from_secs(60)))
                .build()
                .into(),
            cache: HashMap::new(),
        }
    }

    fn get(&self, url: &str, what: &str) -> Result<Vec<u8>> {
        let fail = |msg: String| {
            Problems::from(
                Problem::new(Code::DepsHub, format!("{what}: {msg}"))
                    .help("check the package name and your network; DBT_PACKAGE_HUB_URL points pm at another hub"),
            )
        };
        let mut response = self
            .agent
            .get(url)
            .call()
            .map_err(|e| fail(format!("{url}: {e}")))?;
        if !response.status().is_success() {
            return Err(fail(format!("{url} answered {}", response.status())));
        }
        response
            .body_mut()
            .with_config()
            .limit(200 << 20)
            .read_to_vec()
            .map_err(|e| fail(format!("{url}: {e}")))
    }

    fn metadata(&mut self, package: &str) -> Result<&Json> {
        if !self.cache.contains_key(package) {
            let url = format!("{}/api/v1/{package}.json", self.base);
            let body = self.get(&url, &format!("package `{package}`"))?;
            let doc: Json = serde_json::from_slice(&body).map_err(|e| {
                Problems::from(Problem::new(
                    Code::DepsHub,
                    format!("the hub's answer for `{package}` is not JSON: {e}"),
                ))
            })?;
            self.cache.insert(package.to_string(), doc);
        }
        Ok(&self.cache[package])
    }

    fn choose(&mut self, package: &str, ranges: &[String], prerelease: bool) -> Result<String> {
        let doc = self.metadata(package)?;
        let versions: Vec<&str> = doc
            .get("versions")
            .and_then(Json::as_object)
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        spec::best_version(versions.iter().copied(), ranges, prerelease).ok_or_else(|| {
            Problem::new(
                Code::DepsVersion,
                format!(
                    "no version of `{package}` meets {}; the hub has {}",
                    ranges.join(", "),
                    versions.join(", ")
                ),
            )
            .help("widen the version range in packages.yml (every package that asks for it counts)")
            .into()
        })
    }

    /// Downloads and unpacks a version's tarball into `dest`; returns the
    /// folder holding its project file.
    fn download(&mut self, package: &str, version: &str, dest: &Path) -> Result<PathBuf> {
        let doc = self.metadata(package)?;
        let url = doc
            .pointer(&format!("/versions/{version}/downloads/tarball"))
            .and_then(Json::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                Problems::from(Problem::new(
                    Code::DepsHub,
                    format!("the hub has no tarball for `{package}` {version}"),
                ))
            })?;
        let bytes = self.get(&url, &format!("`{package}` {version}"))?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        archive.unpack(dest).map_err(|e| {
            Problems::from(Problem::new(
                Code::DepsHub,
                format!("cannot unpack `{package}` {version} from {url}: {e}"),
            ))
        })?;
        project_folder(dest)
    }
}

/// `dir` itself when it holds a project file, else its one subfolder that does
/// (a tarball's top folder).
fn project_folder(dir: &Path) -> Result<PathBuf> {
    let holds = |d: &Path| loader::PROJECT_FILES.iter().any(|f| d.join(f).is_file());
    if holds(dir) {
        return Ok(dir.to_path_buf());
    }
    std::fs::read_dir(dir)
        .map_err(|e| io_problem("read", dir, e))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir() && holds(p))
        .ok_or_else(|| {
            Problem::new(
                Code::DepsNotAProject,
                format!(
                    "the package unpacked into {} holds no dbt_project.yml",
                    dir.display()
                ),
            )
            .into()
        })
}

/// Moves each fetched package to `staging/<name>` (a link for `local:`),
/// then swaps the staging folder in for the install path.
fn put_in_place(fetched: &[Fetched], staging: &Path, install_path: &Path) -> Result<()> {
    for f in fetched {
        let to = staging.join(&f.name);
        if f.link {
            std::os::unix::fs::symlink(&f.dir, &to).map_err(|e| io_problem("link", &to, e))?;
        } else {
            std::fs::rename(&f.dir, &to).map_err(|e| io_problem("move", &to, e))?;
        }
    }
    for entry in std::fs::read_dir(staging)
        .map_err(|e| io_problem("read", staging, e))?
        .flatten()
    {
        if entry.file_name().to_string_lossy().starts_with(".fetch-") {
            remove_any(&entry.path())?;
        }
    }
    let old = sibling(install_path, "pm-old");
    remove_any(&old)?;
    if install_path.exists() {
        std::fs::rename(install_path, &old).map_err(|e| io_problem("move", install_path, e))?;
    }
    std::fs::rename(staging, install_path).map_err(|e| io_problem("move", staging, e))?;
    remove_any(&old)
}

/// `dbt_packages` → `dbt_packages.<suffix>`, next to it.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    path.with_file_name(name)
}

fn remove_any(path: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    let r = if meta.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    r.map_err(|e| io_problem("remove", path, e))
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| io_problem("write", path, e))
}

fn io_problem(what: &str, path: &Path, e: std::io::Error) -> Problems {
    Problem::new(
        Code::DepsIo,
        format!("cannot {what} {}: {e}", path.display()),
    )
    .into()
}
