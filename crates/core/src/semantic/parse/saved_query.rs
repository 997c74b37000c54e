//! A saved query's entry and its exports.

use super::{Entry, Reader};
use crate::error::Problem;
use crate::semantic::definition::{Export, ExportAs, ExportConfig, SavedQuery, SavedQueryParams};
use serde_json::Value as Json;

/// A saved query's entry.
pub fn saved_query(r: &Reader, m: &Entry, line: usize) -> Result<SavedQuery, Problem> {
    let name = r.required(m, "name", "a saved query", line)?;
    let what = format!("saved query `{name}`");
    r.only_keys(
        m,
        &[
            "name",
            "description",
            "label",
            "query_params",
            "exports",
            "config",
            "meta",
            "tags",
        ],
        &what,
        line,
    )?;
    let q = r.object(m, "query_params", &what, line)?.ok_or_else(|| {
        r.problem(
            line,
            format!("{what} has no `query_params:`"),
            "add `query_params:` with its `metrics:` (and `group_by:`, `where:`)".into(),
        )
    })?;
    let at = r.key_line(line, "query_params");
    r.only_keys(
        q,
        &["metrics", "group_by", "where", "order_by", "limit"],
        &format!("`query_params` of {what}"),
        at,
    )?;
    let metrics = crate::loader::yaml::string_list(q.get("metrics"));
    if metrics.is_empty() {
        return Err(r.problem(
            at,
            format!("{what} names no metrics"),
            "list them under `query_params: {metrics: [...]}`".into(),
        ));
    }
    let limit = match q.get("limit") {
        None | Some(Json::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            r.problem(
                r.key_line(at, "limit"),
                format!("`limit` of {what} is `{v}`, not a whole number"),
                "write a whole number of rows, e.g. `limit: 100`".into(),
            )
        })?),
    };
    let mut exports = Vec::new();
    for (e, ename, eat) in r.named_list(m, "exports", &what, line)? {
        exports.push(export(r, e, ename, &what, eat)?);
    }
    Ok(SavedQuery {
        description: r.text_of(m, "description", &what, line)?,
        label: r.text_of(m, "label", &what, line)?,
        query_params: SavedQueryParams {
            group_by: crate::loader::yaml::string_list(q.get("group_by")),
            where_filter: r.filters(q.get("where"), &what, r.key_line(at, "where"))?,
            order_by: crate::loader::yaml::string_list(q.get("order_by")),
            metrics,
            limit,
        },
        metadata: None,
        tags: crate::loader::yaml::string_list(
            m.get("tags")
                .or_else(|| m.get("config").and_then(|c| c.get("tags"))),
        ),
        exports,
        line,
        name,
    })
}

fn export(
    r: &Reader,
    e: &Entry,
    name: String,
    query: &str,
    line: usize,
) -> Result<Export, Problem> {
    let what = format!("export `{name}` of {query}");
    r.only_keys(e, &["name", "config"], &what, line)?;
    let c = r
        .object(e, "config", &what, line)?
        .cloned()
        .unwrap_or_default();
    r.only_keys(
        &c,
        &["export_as", "schema", "alias"],
        &format!("`config` of {what}"),
        line,
    )?;
    let export_as = match r.text_of(&c, "export_as", &what, line)?.as_deref() {
        Some("table") => ExportAs::Table,
        Some("view") => ExportAs::View,
        other => {
            return Err(r.problem(
                r.key_line(line, "export_as"),
                match other {
                    Some(o) => format!("{what} has export_as `{o}`"),
                    None => format!("{what} has no `config.export_as`"),
                },
                "export_as is table or view".into(),
            ))
        }
    };
    Ok(Export {
        config: ExportConfig {
            export_as,
            schema_name: r.text_of(&c, "schema", &what, line)?,
            alias: Some(
                r.text_of(&c, "alias", &what, line)?
                    .unwrap_or_else(|| name.clone()),
            ),
            database: None,
        },
        line,
        name,
    })
}
