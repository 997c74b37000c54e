//! The code depends one way, along the data flow of DESIGN.md. Between
//! crates the compiler enforces it (a crate names only what its Cargo.toml
//! lists); this test checks what the compiler cannot: that the crates are
//! listed in the layer order, that the modules inside a crate use only the
//! modules before them, that outside crates' types stay in their crate, that
//! SQL is written in `materialize` and sent by the warehouse crate alone,
//! and that the environment is read in `settings`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace's crates, bottom first (their folders). A crate may depend
/// on the crates of earlier layers only: not on a later one, nor on one of
/// its own layer.
const CRATE_LAYERS: &[&[(&str, &str)]] = &[
    &[("pm-core", "crates/core")],
    // The warehouse's implementation and the runner, which knows only the
    // seam (`pm_core::warehouse`): neither may use the other.
    &[
        ("pm-postgres", "crates/postgres"),
        ("pm-runner", "crates/runner"),
    ],
    &[
        ("pm-docs", "crates/docs"),
        ("pm-report", "crates/report"),
        ("pm-generate", "crates/generate"),
        ("pm-serve", "crates/serve"),
    ],
    &[("pm", ".")],
];

/// The top-level modules of the crates that have several, in order: a
/// module may use the ones before it, never one after it (nor itself
/// through a cycle).
const MODULE_ORDER: &[(&str, &[&str])] = &[
    (
        "crates/core",
        &[
            "error",
            "text",
            "dag",
            "output",
            "settings",
            "loader",
            "semantic",
            "manifest",
            "graph",
            "compile",
            "materialize",
            "warehouse",
        ],
    ),
    ("crates/runner", &["execute", "artifacts", "pipeline"]),
    (".", &["deps", "cli", "commands"]),
];

/// Outside crates whose types are one crate's business, and the crates
/// that may depend on them.
const CONFINED: &[(&str, &[&str])] = &[
    ("tokio-postgres", &["pm-postgres"]),
    ("deadpool-postgres", &["pm-postgres"]),
    ("postgres-protocol", &["pm-postgres"]),
    ("tokio-postgres-rustls", &["pm-postgres"]),
    ("rustls", &["pm-postgres"]),
    ("plotters", &["pm-report"]),
    ("png", &["pm-report"]),
    ("pulldown-cmark", &["pm-docs"]),
    ("ureq", &["pm-report", "pm"]),
    ("clap", &["pm"]),
    ("axum", &["pm-serve"]),
    ("jsonwebtoken", &["pm-serve"]),
    ("sqlparser", &["pm-serve"]),
];

/// Dependencies on a confined crate that exist today and are to be removed
/// (issue 26): the test fails when one is gone, so that this list only
/// shrinks.
const KNOWN_UNCONFINED: &[(&str, &str)] = &[];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn all_crates() -> impl Iterator<Item = (usize, &'static str, &'static str)> {
    CRATE_LAYERS
        .iter()
        .enumerate()
        .flat_map(|(layer, crates)| crates.iter().map(move |(name, dir)| (layer, *name, *dir)))
}

/// The names under `[dependencies]` of a Cargo.toml.
fn dependencies(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == "[dependencies]";
            continue;
        }
        if inside && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.', ' ']).next().unwrap_or("").trim();
            out.push(name.to_string());
        }
    }
    out
}

#[test]
fn crates_depend_on_earlier_layers_only() {
    let layer_of: BTreeMap<&str, usize> = all_crates().map(|(l, n, _)| (n, l)).collect();
    let mut wrong = Vec::new();
    let on_disk: BTreeSet<String> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .flatten()
        .map(|e| format!("crates/{}", e.file_name().to_string_lossy()))
        .collect();
    let listed: BTreeSet<String> = all_crates()
        .map(|(_, _, d)| d.to_string())
        .filter(|d| d != ".")
        .collect();
    for missing in on_disk.difference(&listed) {
        wrong.push(format!("{missing} is in no layer of CRATE_LAYERS"));
    }
    for (layer, name, dir) in all_crates() {
        let manifest = std::fs::read_to_string(root().join(dir).join("Cargo.toml")).unwrap();
        for dep in dependencies(&manifest) {
            if let Some(&dep_layer) = layer_of.get(dep.as_str()) {
                if dep_layer >= layer {
                    wrong.push(format!(
                        "{name} depends on {dep}, which is not in an earlier layer"
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn outside_crates_stay_in_their_crate() {
    let mut wrong = Vec::new();
    let mut found = BTreeSet::new();
    for (_, name, dir) in all_crates() {
        let manifest = std::fs::read_to_string(root().join(dir).join("Cargo.toml")).unwrap();
        for dep in dependencies(&manifest) {
            let Some((_, allowed)) = CONFINED.iter().find(|(c, _)| *c == dep) else {
                continue;
            };
            if allowed.contains(&name) {
                continue;
            }
            found.insert((name, dep.clone()));
            if !KNOWN_UNCONFINED.contains(&(name, dep.as_str())) {
                wrong.push(format!(
                    "{name} depends on {dep}, which belongs to {}",
                    allowed.join(", ")
                ));
            }
        }
    }
    for (name, dep) in KNOWN_UNCONFINED {
        if !found.contains(&(*name, dep.to_string())) {
            wrong.push(format!(
                "{name} no longer depends on {dep}: remove it from KNOWN_UNCONFINED"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// A source file: its crate's folder, its path under that crate's `src/`,
/// and its text up to its `#[cfg(test)]` module (tests may build fixtures
/// with SQL, read the environment, and reach anywhere in their crate).
struct Source {
    crate_dir: &'static str,
    path: String,
    text: String,
}

fn source_files() -> Vec<Source> {
    let mut out = Vec::new();
    for (_, _, dir) in all_crates() {
        let src = root().join(dir).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        for f in files {
            let path = f
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&f).unwrap();
            let text = match text.find("#[cfg(test)]\nmod ") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            out.push(Source {
                crate_dir: dir,
                path,
                text,
            });
        }
    }
    out
}

fn identifier(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
        .collect()
}

/// The top-level modules of its crate that a file at `path` (under `src/`)
/// refers to: through `crate::x`, `use crate::{x, …}`, and `super::` chains
/// that climb to the crate's root.
fn referenced(path: &str, text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut names_after = |rest: &str| {
        if let Some(list) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in list.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && c.is_ascii_lowercase() => {
                        out.insert(identifier(&list[i..]));
                        item_start = false;
                    }
                    c if !c.is_whitespace() => item_start = false,
                    _ => {}
                }
            }
        } else {
            let n = identifier(rest);
            if !n.is_empty() {
                out.insert(n);
            }
        }
    };
    for (at, _) in text.match_indices("crate::") {
        names_after(&text[at + "crate::".len()..]);
    }
    // How many `super::` from this file reach the crate root: a file
    // a/b.rs (module a::b) needs two, a/mod.rs one, lib.rs none.
    let parts: Vec<&str> = path.split('/').collect();
    let depth = parts.len() - usize::from(parts.last().is_some_and(|f| *f == "mod.rs"));
    if depth >= 1 {
        let climb = "super::".repeat(depth);
        for (at, _) in text.match_indices(&climb) {
            let before = &text[..at];
            if before.ends_with("super::") {
                continue;
            }
            names_after(&text[at + climb.len()..]);
        }
    }
    out
}

#[test]
fn the_import_reader_sees_every_form() {
    let found = referenced(
        "graph/selector/glob.rs",
        "use crate::error::Problem;\nuse crate::{text::x, manifest::{A, B}, graph};\nlet a = crate::compile::f();\nuse super::super::super::loader::Project;\nuse super::super::Near;",
    );
    let want: BTreeSet<String> = ["error", "text", "manifest", "graph", "compile", "loader"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(found, want);
}

#[test]
fn modules_use_only_the_modules_before_them() {
    let mut wrong = Vec::new();
    for source in source_files() {
        let Some((_, order)) = MODULE_ORDER.iter().find(|(d, _)| *d == source.crate_dir) else {
            continue;
        };
        let module = identifier(&source.path);
        if matches!(module.as_str(), "lib" | "main") {
            continue;
        }
        let Some(at) = order.iter().position(|m| *m == module) else {
            wrong.push(format!(
                "{}/src/{}: `{module}` is in no MODULE_ORDER list",
                source.crate_dir, source.path
            ));
            continue;
        };
        for used in referenced(&source.path, &source.text) {
            match order.iter().position(|m| *m == used) {
                Some(u) if u > at => wrong.push(format!(
                    "{}/src/{}: `{module}` uses `{used}`, which comes after it",
                    source.crate_dir, source.path
                )),
                _ => {}
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Calls that send SQL (tokio-postgres' client and transaction methods), in
/// method and in path call syntax.
const SENDS_SQL: &[&str] = &[
    "query(",
    "query_one(",
    "query_opt(",
    "query_typed(",
    "query_raw(",
    "execute(",
    "batch_execute(",
    "simple_query(",
    "copy_in(",
    "prepare(",
];

#[test]
fn only_the_warehouse_crate_sends_sql_and_it_never_sees_a_node() {
    let mut wrong = Vec::new();
    for source in source_files() {
        let at = format!("{}/src/{}", source.crate_dir, source.path);
        if source.crate_dir == "crates/postgres" {
            if source.text.contains("manifest::Node")
                || source.text.contains("manifest::{") && source.text.contains(" Node")
            {
                wrong.push(format!("{at}: the warehouse crate uses manifest::Node"));
            }
            continue;
        }
        for (k, line) in source.text.lines().enumerate() {
            for call in SENDS_SQL {
                // `c.query(` and `Client::query(c, …)`; not pm's own
                // functions of that name (`relation::query(node)`).
                let method = line.contains(&format!(".{call}"));
                let path_call = line.match_indices(&format!("::{call}")).any(|(i, _)| {
                    let segment = line[..i]
                        .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                        .unwrap_or("");
                    segment.starts_with(|c: char| c.is_ascii_uppercase())
                });
                let sends = method || path_call;
                if sends {
                    wrong.push(format!(
                        "{at}:{}: sends SQL ({call}) outside pm-postgres",
                        k + 1
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A string literal that starts an SQL statement.
fn starts_sql(line: &str) -> bool {
    const VERBS: &[&str] = &["create", "drop", "alter", "truncate", "lock", "refresh"];
    const OBJECTS: &[&str] = &[
        "table",
        "view",
        "materialized",
        "schema",
        "index",
        "unique",
        "or replace",
        "temporary",
        "unlogged",
        "role",
        "database",
        "extension",
        "function",
    ];
    line.match_indices('"').any(|(i, _)| {
        let rest = line[i + 1..].to_ascii_lowercase();
        let statement = VERBS.iter().any(|verb| {
            rest.strip_prefix(verb)
                .and_then(|r| r.strip_prefix(' '))
                .is_some_and(|r| OBJECTS.iter().any(|o| r.starts_with(o)))
        });
        let query = rest.starts_with("select ") && rest.contains(" from ");
        let change = [
            "insert into ",
            "delete from ",
            "update ",
            "grant ",
            "revoke ",
        ]
        .iter()
        .any(|k| rest.starts_with(k));
        statement || query || change
    })
}

/// Files outside `materialize` and the warehouse crate that write SQL
/// today, to be moved (issue 26): the test fails when one no longer does.
const KNOWN_SQL_ELSEWHERE: &[&str] = &[];

/// Files whose SQL is a user's file, not a statement pm sends.
const SQL_AS_CONTENT: &[&str] = &[
    // The models `pm init` writes into a new project.
    "src/commands/init.rs",
    // The select of a snapshot defined in YAML (`relation:`), compiled like
    // a user's file.
    "crates/core/src/compile/properties.rs",
];

#[test]
fn sql_is_written_in_materialize_and_the_warehouse_crate() {
    let mut wrong = Vec::new();
    let mut found = BTreeSet::new();
    for source in source_files() {
        let at = format!(
            "{}/src/{}",
            source.crate_dir.trim_start_matches("./"),
            source.path
        );
        let at = at.trim_start_matches("./").to_string();
        if source.crate_dir == "crates/postgres"
            || at.starts_with("crates/core/src/materialize/")
            || SQL_AS_CONTENT.contains(&at.as_str())
        {
            continue;
        }
        for (k, line) in source.text.lines().enumerate() {
            if line.trim_start().starts_with("//") || !starts_sql(line) {
                continue;
            }
            found.insert(at.clone());
            if !KNOWN_SQL_ELSEWHERE.contains(&at.as_str()) {
                wrong.push(format!(
                    "{at}:{}: SQL outside materialize and pm-postgres",
                    k + 1
                ));
            }
        }
    }
    for known in KNOWN_SQL_ELSEWHERE {
        if !found.contains(*known) {
            wrong.push(format!(
                "{known} no longer writes SQL: remove it from KNOWN_SQL_ELSEWHERE"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Files outside `settings` that read the environment today, each with why
/// or until when: the test fails when one no longer does.
const KNOWN_ENVIRONMENT_READERS: &[&str] = &[
    // Before anything: the arguments, the allocator's options, the crash test hook.
    "src/main.rs",
    // dbt's env_var() in templates and profiles.yml reads the environment as dbt does.
    "crates/core/src/compile/context/objects.rs",
    "crates/core/src/loader/profile.rs",
    // The report's Slack and Telegram credentials are read where they are
    // used, never kept in Settings (which prints with Debug).
    "src/commands/report.rs",
    // pm serve's token key (PM_JWT_SECRET, PM_JWT_PUBLIC_KEY_FILE), likewise.
    "src/commands/serve.rs",
];

#[test]
fn the_environment_is_read_in_settings() {
    let mut wrong = Vec::new();
    let mut found = BTreeSet::new();
    for source in source_files() {
        let at = format!("{}/src/{}", source.crate_dir, source.path);
        let at = at.trim_start_matches("./").to_string();
        if at == "crates/core/src/settings.rs" {
            continue;
        }
        for (k, line) in source.text.lines().enumerate() {
            let reads = ["env::var", "env::args", "env::set_var", "env::remove_var"]
                .iter()
                .any(|f| line.contains(f));
            if !reads || line.trim_start().starts_with("//") {
                continue;
            }
            found.insert(at.clone());
            if !KNOWN_ENVIRONMENT_READERS.contains(&at.as_str()) {
                wrong.push(format!(
                    "{at}:{}: reads the environment outside settings",
                    k + 1
                ));
            }
        }
    }
    for known in KNOWN_ENVIRONMENT_READERS {
        if !found.contains(*known) {
            wrong.push(format!(
                "{known} no longer reads the environment: remove it from KNOWN_ENVIRONMENT_READERS"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Glob imports that make several files one namespace: `use super::*` (but
/// in a test module) and `pub use module::*` re-exports. A crate's prelude
/// (rayon's, plotters') is the exception.
#[test]
fn modules_import_by_name() {
    let mut wrong = Vec::new();
    for source in source_files() {
        for (k, line) in source.text.lines().enumerate() {
            let glob = (line.starts_with("use ") || line.starts_with("pub use "))
                && line.trim_end().ends_with("::*;")
                && !line.contains("::prelude::*");
            if glob {
                wrong.push(format!(
                    "{}/src/{}:{}: `{}`: import what the file uses by name",
                    source.crate_dir.trim_start_matches("./"),
                    source.path,
                    k + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Files a reader can hold in mind: no source file over 800 lines, no
/// function over 120 (from its `fn` line to its closing brace, test modules
/// included).
#[test]
fn files_and_functions_stay_small() {
    const FILE_LINES: usize = 800;
    const FUNCTION_LINES: usize = 120;
    let mut wrong = Vec::new();
    for (_, _, dir) in all_crates() {
        let src = root().join(dir).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        for f in files {
            let at = f.strip_prefix(root()).unwrap().display().to_string();
            let text = std::fs::read_to_string(&f).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            if lines.len() > FILE_LINES {
                wrong.push(format!("{at}: {} lines", lines.len()));
            }
            for (name, start, length) in functions(&lines) {
                if length > FUNCTION_LINES {
                    wrong.push(format!("{at}:{}: fn {name} has {length} lines", start + 1));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Each function of a file (rustfmt's layout): its name, first line and
/// length, from its `fn` line to the `}` at the same indentation.
fn functions(lines: &[&str]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    for (k, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        let indent = line.len() - code.len();
        let after_keywords = [
            "pub(crate) ",
            "pub(super) ",
            "pub ",
            "async ",
            "const ",
            "unsafe ",
        ]
        .iter()
        .fold(code, |c, kw| c.strip_prefix(kw).unwrap_or(c));
        let after_keywords = after_keywords
            .strip_prefix("async ")
            .unwrap_or(after_keywords);
        let Some(rest) = after_keywords.strip_prefix("fn ") else {
            continue;
        };
        let name = identifier(rest);
        if code.contains('{') && code.trim_end().ends_with('}') {
            continue; // one line
        }
        // A declaration without a body (a trait's) ends with `;`.
        let Some(open) = (k..lines.len()).find(|&j| {
            let l = lines[j].trim_end();
            l.ends_with('{') || l.ends_with(';')
        }) else {
            continue;
        };
        if lines[open].trim_end().ends_with(';') {
            continue;
        }
        let close = (open + 1..lines.len()).find(|&j| {
            let l = lines[j];
            l.len() - l.trim_start().len() == indent && l.trim_start().starts_with('}')
        });
        if let Some(close) = close {
            out.push((name, k, close - k + 1));
        }
    }
    out
}

#[test]
fn the_function_reader_measures_from_fn_to_its_brace() {
    let text = "pub fn a() {\n    1\n}\n\nimpl X {\n    pub(crate) async fn b(\n        x: u8,\n    ) -> u8 {\n        x\n    }\n    fn c();\n}\n";
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        functions(&lines),
        vec![("a".to_string(), 0, 3), ("b".to_string(), 5, 5)]
    );
}
