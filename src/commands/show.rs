//! `pm show`: runs one node's SQL, or `--inline` SQL, and prints the first
//! rows, building nothing.

use super::Session;
use crate::cli::{ShowArgs, ShowOutput};
use pm_core::compile::context::{QueryResult, RenderWarehouse};
use pm_core::error::{Code, Problem, Problems, Result};
use pm_core::manifest::ResourceType;
use pm_core::output::Log;
use pm_core::settings::Settings;
use serde_json::Value as Json;
use std::io::Write;
use std::sync::Arc;

/// What `pm show` runs: a node's SQL, or the inline text to render.
enum Shown {
    Node(String),
    /// The text, and the ephemeral models it may read.
    Inline(String, pm_core::compile::run_render::EphemeralCtes),
}

fn problem(code: Code, message: String) -> Problems {
    Problem::new(code, message)
        .help("name one model, seed, snapshot or analysis with -s, or pass --inline \"select …\"")
        .into()
}

/// The one node `--select` names.
fn node_to_show(s: &Session, c: &pm_core::compile::Compiled, args: &ShowArgs) -> Result<String> {
    if args.select.select.is_empty() {
        return Err(problem(
            Code::ShowNothing,
            "pm show needs -s NODE or --inline SQL".into(),
        ));
    }
    let chosen: Vec<usize> = s
        .select(c, &args.select)?
        .into_iter()
        .filter(|&i| {
            let n = &c.manifest.nodes[i];
            !matches!(n.resource_type, ResourceType::Test | ResourceType::UnitTest)
                && n.compiled_code.is_some()
        })
        .collect();
    match chosen.as_slice() {
        [i] => Ok(c.manifest.nodes[*i].unique_id.clone()),
        [] => Err(problem(
            Code::ShowNone,
            "the selection names no node with SQL".into(),
        )),
        many => Err(problem(
            Code::ShowSeveral,
            format!(
                "the selection names {} nodes ({}); pm show runs one",
                many.len(),
                many.iter()
                    .take(5)
                    .map(|&i| c.manifest.nodes[i].name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

fn cell(v: &Json) -> String {
    match v {
        Json::Null => "null".into(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A text table: a header, a rule, the rows; numbers right-aligned.
pub fn table(r: &QueryResult) -> String {
    let cells: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| row.iter().map(cell).collect())
        .collect();
    let widths: Vec<usize> = r
        .columns
        .iter()
        .enumerate()
        .map(|(k, (name, _))| {
            cells
                .iter()
                .map(|row| row[k].chars().count())
                .chain([name.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<(String, bool)>| {
        let parts: Vec<String> = values
            .into_iter()
            .zip(&widths)
            .map(|((v, right), &w)| {
                if right {
                    format!("{v:>w$}")
                } else {
                    format!("{v:<w$}")
                }
            })
            .collect();
        format!("| {} |", parts.join(" | "))
    };
    let mut out = vec![line(
        r.columns.iter().map(|(n, _)| (n.clone(), false)).collect(),
    )];
    out.push(format!(
        "|{}|",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    ));
    for (row, texts) in r.rows.iter().zip(cells) {
        out.push(line(
            row.iter()
                .zip(texts)
                .map(|(v, t)| (t, v.is_number()))
                .collect(),
        ));
    }
    out.join("\n")
}

fn as_json(r: &QueryResult) -> Json {
    Json::Array(
        r.rows
            .iter()
            .map(|row| {
                Json::Object(
                    r.columns
                        .iter()
                        .zip(row)
                        .map(|((n, _), v)| (n.clone(), v.clone()))
                        .collect(),
                )
            })
            .collect(),
    )
}

pub fn run(g: &Settings, args: &ShowArgs, log: Log) -> Result<i32> {
    let s = Session::open(g, "show", log)?;
    let c = s.compile()?;
    let shown = match &args.inline {
        Some(text) => Shown::Inline(
            text.clone(),
            pm_core::compile::run_render::ephemeral_ctes(&c.manifest.nodes),
        ),
        None => Shown::Node(node_to_show(&s, &c, args)?),
    };
    let compiled = match &shown {
        Shown::Node(id) => c
            .manifest
            .index
            .get(id)
            .and_then(|&i| c.manifest.nodes[i].compiled_code.clone()),
        Shown::Inline(..) => None,
    };
    let endpoint = s.endpoint()?;
    let runtime = pm_runner::pipeline::runtime()?;
    let renderer = c.run_renderer.clone();
    let limit = args.limit;
    let outcome = runtime.block_on(async {
        let connection = Arc::new(pm_postgres::render::RenderConnection::open(&endpoint).await?);
        tokio::task::spawn_blocking(move || {
            let sql = match &shown {
                Shown::Inline(text, ephemerals) => {
                    renderer.render_inline(text, ephemerals, connection.clone())?
                }
                Shown::Node(id) => match renderer.render(id, connection.clone()) {
                    Some(rendered) => rendered?,
                    None => compiled.unwrap_or_default(),
                },
            };
            connection
                .run_sql(&pm_core::materialize::relation::limited(&sql, limit))
                .map_err(|e| {
                    Problem::new(Code::ShowQuery, format!("the query failed: {e}"))
                        .help(format!("the SQL was:\n{}", sql.trim()))
                })
        })
        .await
        .map_err(|e| {
            Problems::from(Problem::new(
                Code::ShowStopped,
                format!("pm show stopped: {e}"),
            ))
        })
    })?;
    let result = match outcome {
        Ok(r) => r,
        Err(p) => {
            log.problems(p.into());
            return Ok(1);
        }
    };
    let text = match args.output {
        ShowOutput::Text => table(&result),
        ShowOutput::Json => serde_json::to_string_pretty(&as_json(&result)).unwrap_or_default(),
    };
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_numbers_right() {
        let r = QueryResult {
            columns: vec![("id".into(), "int4".into()), ("name".into(), "text".into())],
            rows: vec![
                vec![Json::from(7), Json::from("ann")],
                vec![Json::from(12), Json::Null],
            ],
            rows_affected: 2,
        };
        assert_eq!(
            table(&r),
            "| id | name |\n|----|------|\n|  7 | ann  |\n| 12 | null |"
        );
    }
}
