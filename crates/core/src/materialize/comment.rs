//! `persist_docs`: a model's descriptions kept as comments in the warehouse.

use super::relation::Kind;
use crate::manifest::Node;
use crate::text::{quote_ident, quote_literal};

/// `persist_docs`: the model's description as the relation's comment, and
/// each documented column's as the column's, for the columns the relation
/// has (as dbt-postgres, which skips the others).
pub fn comments_sql(node: &Node, kind: Kind, relation: &str) -> Vec<String> {
    let persist = node.typed_config.persist_docs;
    let mut out = Vec::new();
    if persist.relation && kind != Kind::MaterializedView {
        out.push(format!(
            "comment on {} {relation} is {}",
            kind.sql(),
            quote_literal(&node.description)
        ));
    }
    if persist.columns {
        for c in node.columns.values().filter(|c| !c.description.is_empty()) {
            let column = if c.quote == Some(true) {
                quote_ident(&c.name)
            } else {
                quote_ident(&c.name.to_lowercase())
            };
            out.push(format!(
                "do $pm$ begin if exists (select 1 from pg_attribute where attrelid = {}::regclass \
                 and attname = {} and not attisdropped) then comment on column {relation}.{column} is {}; \
                 end if; end $pm$",
                quote_literal(relation),
                quote_literal(column.trim_matches('"')),
                quote_literal(&c.description)
            ));
        }
    }
    out
}
