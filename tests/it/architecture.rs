//! Modules depend one way, along the data flow of DESIGN.md: a module may
//! use the modules of its own layer and the layers before it, never a later
//! one. Read from the sources (`crate::<module>` paths and `use crate::{…}`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, in the order data flows through them.
const LAYERS: &[&[&str]] = &[
    &["error", "output", "dag", "settings", "text"],
    &["loader"],
    &["manifest"],
    &["graph"],
    &["compile"],
    &["materialize"],
    &["adapter"],
    &["execute"],
    &["artifacts", "docs", "report", "generate", "deps"],
    &["cli"],
    &["commands"],
];

/// Wrong-way imports that exist today and are to be removed (issue 12);
/// the test fails when one of them is gone, so that this list only shrinks.
const KNOWN_WRONG_WAY: &[(&str, &str)] = &[];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level modules a source text refers to.
fn referenced(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let name = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
            .collect()
    };
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(list) = rest.strip_prefix('{') {
            // use crate::{a::b, c, d::{e, f}}: the first name of each top-level item.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in list.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && c.is_ascii_lowercase() => {
                        out.insert(name(&list[i..]));
                        item_start = false;
                    }
                    c if !c.is_whitespace() => item_start = false,
                    _ => {}
                }
            }
        } else {
            let n = name(rest);
            if !n.is_empty() {
                out.insert(n);
            }
        }
    }
    out
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every source file under src/: its path there, and its text.
fn source_files() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files
        .iter()
        .map(|f| {
            let rel = f
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, std::fs::read_to_string(f).unwrap())
        })
        .collect()
}

#[test]
fn modules_depend_one_way_along_the_data_flow() {
    let mut edges: BTreeMap<(String, String), String> = BTreeMap::new();
    for (rel, text) in source_files() {
        let module = rel
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        if matches!(module.as_str(), "lib" | "main") {
            continue;
        }
        for used in referenced(&text) {
            if used != module {
                edges.entry((module.clone(), used)).or_insert(rel.clone());
            }
        }
    }
    let mut wrong = Vec::new();
    for ((from, to), file) in &edges {
        let (Some(a), Some(b)) = (layer_of(from), layer_of(to)) else {
            wrong.push(format!(
                "{file}: `{from}` or `{to}` is in no layer of this test"
            ));
            continue;
        };
        if b > a && !KNOWN_WRONG_WAY.contains(&(from.as_str(), to.as_str())) {
            wrong.push(format!("{file}: `{from}` uses `{to}`, a later layer"));
        }
    }
    for (from, to) in KNOWN_WRONG_WAY {
        if !edges.contains_key(&(from.to_string(), to.to_string())) {
            wrong.push(format!(
                "`{from}` no longer uses `{to}`: remove it from KNOWN_WRONG_WAY"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_import_reader_sees_every_form() {
    let found = referenced(
        "use crate::error::Problem;\nuse crate::{adapter::x, manifest::{A, B}, graph};\nlet a = crate::compile::f();",
    );
    let want: BTreeSet<String> = ["error", "adapter", "manifest", "graph", "compile"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(found, want);
}

/// Calls that send SQL (tokio-postgres' client and transaction methods).
const SENDS_SQL: &[&str] = &[
    ".query(",
    ".query_one(",
    ".query_opt(",
    ".execute(",
    ".batch_execute(",
    ".simple_query(",
    ".copy_in(",
    ".prepare(",
];

#[test]
fn only_the_adapter_sends_sql_and_it_never_sees_a_node() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut wrong = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(f).unwrap();
        if rel.starts_with("adapter/") {
            if text.contains("manifest::Node")
                || text.contains("manifest::{") && text.contains(" Node")
            {
                wrong.push(format!("{rel}: the adapter uses manifest::Node"));
            }
            continue;
        }
        for (k, line) in text.lines().enumerate() {
            if let Some(call) = SENDS_SQL.iter().find(|c| line.contains(*c)) {
                wrong.push(format!(
                    "{rel}:{}: sends SQL ({call}) outside the adapter",
                    k + 1
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
