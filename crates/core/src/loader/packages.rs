//! Installed packages: each folder under the root's `packages-install-path`
//! (`dbt_packages/` by default) that holds a project file is a package, as
//! `dbt deps` or `pm deps` left it. Also what a package may ask of the dbt
//! version and of vars.

use super::{load_project, yaml, Project};
use crate::error::{Code, Problem, Result};
use serde_json::{Map, Value as Json};
use std::path::Path;
use std::sync::Arc;

/// Where packages are installed, relative to the root.
pub fn install_path(project: &Project) -> String {
    project
        .document
        .get("packages-install-path")
        .and_then(yaml::as_string)
        .map(|p| p.trim_end_matches('/').to_string())
        .unwrap_or_else(|| "dbt_packages".into())
}

/// The file that declares the project's packages (`packages.yml`, else
/// `dependencies.yml`), with its text, when there is one.
pub fn declaration_file(project: &Project) -> Option<(String, Arc<str>)> {
    declaration_file_in(&project.root)
}

fn declaration_file_in(dir: &Path) -> Option<(String, Arc<str>)> {
    ["packages.yml", "dependencies.yml"].iter().find_map(|f| {
        std::fs::read_to_string(dir.join(f))
            .ok()
            .map(|t| (f.to_string(), Arc::from(t)))
    })
}

/// The entries under `packages:` of the declaration file.
pub fn declared(project: &Project) -> Result<Vec<Json>> {
    declared_in(&project.root)
}

/// The entries under `packages:` of the declaration file in `dir`.
pub fn declared_in(dir: &Path) -> Result<Vec<Json>> {
    let Some((file, text)) = declaration_file_in(dir) else {
        return Ok(Vec::new());
    };
    let doc = yaml::parse(&file, &text)?;
    Ok(match doc.get("packages") {
        Some(Json::Array(entries)) => entries.clone(),
        _ => Vec::new(),
    })
}

/// Loads every installed package of the root project, sorted by folder name;
/// refuses when fewer are installed than declared (as dbt does), or when a
/// project asks for a dbt version pm does not stand in for.
pub fn load_installed(root: &Project) -> Result<Vec<Project>> {
    check_dbt_version(root)?;
    let install = install_path(root);
    let dir = root.root.join(&install);
    let mut folders: Vec<std::path::PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| super::PROJECT_FILES.iter().any(|f| p.join(f).is_file()))
            .collect(),
        Err(_) => Vec::new(),
    };
    folders.sort();
    let declared = declared(root)?.len();
    if folders.len() < declared {
        return Err(Problem::new(
            Code::ProjectPackagesNotInstalled,
            format!(
                "{declared} package(s) are declared in {}, but {} are installed in {install}/",
                declaration_file(root).map_or_else(|| "packages.yml".into(), |(f, _)| f),
                folders.len()
            ),
        )
        .help("run `pm deps` to install them")
        .into());
    }
    let mut packages = Vec::with_capacity(folders.len());
    for folder in folders {
        let package = load_project(&root.root, &folder)?;
        check_dbt_version(&package)?;
        if package.name == root.name {
            continue;
        }
        packages.push(package);
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(packages)
}

/// A package's vars: its own, then the root project's global vars, then the
/// root's `vars: {package: {...}}` block (dbt's precedence). `--vars` goes
/// over all of them when rendering.
pub fn vars_for(root: &Project, package: &Project) -> Map<String, Json> {
    let mut vars = package.vars.clone();
    let package_names: Vec<&str> = root.all().map(|p| p.name.as_str()).collect();
    if let Some(Json::Object(root_vars)) = root.document.get("vars") {
        for (k, v) in root_vars {
            if !package_names.contains(&k.as_str()) {
                vars.insert(k.clone(), v.clone());
            }
        }
        if let Some(Json::Object(scoped)) = root_vars.get(&package.name) {
            for (k, v) in scoped {
                vars.insert(k.clone(), v.clone());
            }
        }
    }
    vars
}

/// `require-dbt-version` (a range such as `">=1.3.0"`, or a list of them)
/// checked against the dbt version pm implements.
fn check_dbt_version(project: &Project) -> Result<()> {
    let Some(required) = project.document.get("require-dbt-version") else {
        return Ok(());
    };
    let specs: Vec<String> = yaml::string_list(Some(required))
        .iter()
        .flat_map(|s| s.split(',').map(|p| p.trim().to_string()))
        .filter(|s| !s.is_empty())
        .collect();
    let ours = version_parts(crate::DBT_VERSION).unwrap_or_default();
    for spec in &specs {
        match satisfies(&ours, spec) {
            Some(true) => {}
            Some(false) => {
                return Err(version_problem(
                    project,
                    format!(
                        "`{}` requires dbt {}, and pm runs projects as dbt {}",
                        project.name,
                        specs.join(", "),
                        crate::DBT_VERSION
                    ),
                    "install a version of the package made for this dbt version (its `version:` in packages.yml)",
                ))
            }
            None => {
                return Err(version_problem(
                    project,
                    format!("require-dbt-version `{spec}` is not a version range"),
                    "write it like \">=1.3.0\" or [\">=1.3.0\", \"<2.0.0\"]",
                ))
            }
        }
    }
    Ok(())
}

fn version_problem(project: &Project, message: String, help: &str) -> crate::error::Problems {
    Problem::new(Code::ProjectDbtVersion, message)
        .in_file(&project.project_file, project.project_text.clone())
        .label_line(
            yaml::line_of_key(&project.project_text, "require-dbt-version").unwrap_or(1),
            "required here",
        )
        .help(help.to_string())
        .into()
}

/// `1.8.2` → [1, 8, 2]; missing parts are 0; a pre-release suffix is dropped.
pub fn version_parts(v: &str) -> Option<[u64; 3]> {
    let core = v.trim().trim_start_matches('v');
    let core = core.split(['-', '+']).next()?;
    let mut out = [0u64; 3];
    for (i, part) in core.split('.').enumerate() {
        if i >= 3 {
            break;
        }
        out[i] = part.trim().parse().ok()?;
    }
    Some(out)
}

/// Whether `version` meets one comparison (`>=1.3.0`, `<2`, `=1.5.0`, `1.5.0`).
pub fn satisfies(version: &[u64; 3], spec: &str) -> Option<bool> {
    let spec = spec.trim();
    let (op, rest) = [">=", "<=", "==", ">", "<", "="]
        .iter()
        .find_map(|op| spec.strip_prefix(op).map(|r| (*op, r)))
        .unwrap_or(("=", spec));
    let wanted = version_parts(rest)?;
    Some(match op {
        ">=" => version >= &wanted,
        "<=" => version <= &wanted,
        ">" => version > &wanted,
        "<" => version < &wanted,
        _ => version == &wanted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ranges() {
        let v = version_parts("1.11.0").unwrap();
        assert_eq!(satisfies(&v, ">=1.3.0"), Some(true));
        assert_eq!(satisfies(&v, "<2.0.0"), Some(true));
        assert_eq!(satisfies(&v, ">=1.12"), Some(false));
        assert_eq!(satisfies(&v, "1.11.0"), Some(true));
        assert_eq!(satisfies(&v, ">=x"), None);
        assert_eq!(version_parts("1.2.3-b1"), Some([1, 2, 3]));
    }
}
