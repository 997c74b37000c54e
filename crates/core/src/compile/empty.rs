//! `--empty`: a `ref()` or `source()` reads as `(select * from x where false
//! limit 0)`. A subquery in FROM needs an alias before PostgreSQL 16, and
//! the model may give it one (`from {{ ref('x') }} as p`) or not (`from
//! {{ ref('x') }} where …`, `x.col`). The render leaves a mark where the
//! alias goes; once the SQL is whole, each mark becomes the relation's own
//! name when the model gives none, and nothing when it does; a relation
//! that qualifies a column (`{{ ref('x') }}.col`) becomes that name. (dbt
//! always writes `_dbt_limit_subq_x`, which breaks both `{{ ref('x') }} as p`
//! and `{{ ref('x') }}.col`.)

use crate::text::quote_ident;

/// Encloses the relation's identifier where its alias may go.
pub const ALIAS_MARK: char = '\u{3}';

/// Words that can follow a FROM item that has no alias.
const NOT_AN_ALIAS: &[&str] = &[
    "where",
    "join",
    "inner",
    "left",
    "right",
    "full",
    "cross",
    "natural",
    "on",
    "using",
    "group",
    "order",
    "limit",
    "offset",
    "fetch",
    "for",
    "union",
    "intersect",
    "except",
    "having",
    "window",
    "lateral",
    "returning",
    "select",
    "values",
    "set",
    "qualify",
    "tablesample",
    "into",
    "then",
    "else",
    "end",
    "when",
    "and",
    "or",
    "not",
    "is",
    "in",
    "as",
];

/// The rendered relation with its alias mark.
pub fn subquery(relation: &str, identifier: &str) -> String {
    format!("(select * from {relation} where false limit 0) {ALIAS_MARK}{identifier}{ALIAS_MARK}")
}

/// The next word of `rest` after white space and `--`/`/* */` comments,
/// lower-cased (a quoted identifier is returned with its quote).
fn next_word(rest: &str) -> String {
    let mut s = rest;
    loop {
        let t = s.trim_start();
        if let Some(after) = t.strip_prefix("--") {
            s = after.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(after) = t.strip_prefix("/*") {
            s = after.split_once("*/").map_or("", |(_, r)| r);
        } else {
            s = t;
            break;
        }
    }
    if s.starts_with('"') {
        return "\"".into();
    }
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect::<String>()
        .to_lowercase()
}

/// Whether the SQL after a relation gives it an alias (`as p`, `p`).
fn alias_follows(rest: &str) -> bool {
    let word = next_word(rest);
    word == "as"
        || word == "\""
        || (!word.is_empty()
            && !word.starts_with(|c: char| c.is_ascii_digit())
            && !NOT_AN_ALIAS.contains(&word.as_str()))
}

/// Replaces each alias mark: by the quoted identifier when the model gives
/// the subquery no alias, by nothing when it does.
pub fn settle_aliases(sql: String) -> String {
    if !sql.contains(ALIAS_MARK) {
        return sql;
    }
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql.as_str();
    while let Some(start) = rest.find(ALIAS_MARK) {
        let after = &rest[start + ALIAS_MARK.len_utf8()..];
        let Some(end) = after.find(ALIAS_MARK) else {
            break;
        };
        let identifier = &after[..end];
        let tail = &after[end + ALIAS_MARK.len_utf8()..];
        let subquery_start = rest[..start].rfind("(select * from ");
        if let (true, Some(at)) = (tail.starts_with('.'), subquery_start) {
            // `{{ ref('x') }}.col` qualifies a column: it names the FROM
            // item, whose alias is the relation's name.
            out.push_str(&rest[..at]);
            out.push_str(&quote_ident(identifier));
        } else if alias_follows(tail) {
            out.push_str(rest[..start].trim_end());
        } else {
            out.push_str(&rest[..start]);
            out.push_str(&quote_ident(identifier));
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settled(sql: &str) -> String {
        settle_aliases(sql.replace("{x}", &subquery("s.x", "x")))
    }

    #[test]
    fn the_model_alias_wins_else_the_relation_name() {
        assert_eq!(
            settled("select * from {x} as p"),
            "select * from (select * from s.x where false limit 0) as p"
        );
        assert_eq!(
            settled("select * from {x} p join {x}\n  where 1 = 1"),
            "select * from (select * from s.x where false limit 0) p join (select * from s.x where false limit 0) \"x\"\n  where 1 = 1"
        );
        assert_eq!(
            settled("select {x}.a from {x}"),
            "select \"x\".a from (select * from s.x where false limit 0) \"x\""
        );
        assert_eq!(
            settled("select x.a from {x}"),
            "select x.a from (select * from s.x where false limit 0) \"x\""
        );
        assert_eq!(
            settled("select * from {x} -- rows\n left join y on true"),
            "select * from (select * from s.x where false limit 0) \"x\" -- rows\n left join y on true"
        );
    }
}
