//! Placeholder substitution and ephemeral models as CTEs.

use super::context::{ResolvedRelation, PLACEHOLDER_END, PLACEHOLDER_START};
use crate::dag::Dag;

/// Replaces relation placeholders of phase-one output by final names.
pub fn substitute(out: String, rels: &[ResolvedRelation]) -> String {
    if !out.contains(PLACEHOLDER_START) {
        return out;
    }
    let mut s = String::with_capacity(out.len() + 64);
    let mut rest = out.as_str();
    while let Some(start) = rest.find(PLACEHOLDER_START) {
        s.push_str(&rest[..start]);
        let after = &rest[start + PLACEHOLDER_START.len_utf8()..];
        let Some(end) = after.find(PLACEHOLDER_END) else {
            s.push_str(&rest[start..]);
            return s;
        };
        let inner = &after[..end];
        let (idx, parts) = inner.split_once(':').unwrap_or((inner, "7"));
        match (
            idx.parse::<usize>().ok().and_then(|i| rels.get(i)),
            parts.parse::<u8>(),
        ) {
            (Some(rel), Ok(p)) => s.push_str(&rel.render(p)),
            _ => s.push_str(inner),
        }
        rest = &after[end + PLACEHOLDER_END.len_utf8()..];
    }
    s.push_str(rest);
    s
}

/// For every node, the ephemeral models it reads, directly or through other
/// ephemeral models, in the order their CTEs must appear (dependencies first),
/// as node indexes.
pub fn collect_ctes(dag: &Dag, ephemeral: &[bool]) -> Vec<Vec<usize>> {
    // Ephemeral ancestors per ephemeral node, memoised.
    let n = dag.len();
    let mut memo: Vec<Option<Vec<usize>>> = vec![None; n];
    fn chain(i: usize, dag: &Dag, eph: &[bool], memo: &mut Vec<Option<Vec<usize>>>) -> Vec<usize> {
        if let Some(c) = &memo[i] {
            return c.clone();
        }
        let mut out: Vec<usize> = Vec::new();
        for &p in &dag.parents[i] {
            if eph[p] {
                for a in chain(p, dag, eph, memo) {
                    if !out.contains(&a) {
                        out.push(a);
                    }
                }
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        memo[i] = Some(out.clone());
        out
    }
    (0..n)
        .map(|i| {
            if !dag.parents[i].iter().any(|&p| ephemeral[p]) {
                return Vec::new();
            }
            chain(i, dag, ephemeral, &mut memo)
        })
        .collect()
}

/// Puts CTEs in front of a query, merging with its own `with` clause.
/// `ctes` are `(name, sql)` where name is the CTE's name.
pub fn inject(sql: &str, ctes: &[(String, String)]) -> String {
    if ctes.is_empty() {
        return sql.to_string();
    }
    let joined: Vec<String> = ctes
        .iter()
        .map(|(name, body)| format!(" {name} as (\n{}\n)", body.trim()))
        .collect();
    let joined = joined.join(",");
    match first_keyword(sql) {
        Some((start, end)) if sql[start..end].eq_ignore_ascii_case("with") => {
            format!("{}with{joined},{}", &sql[..start], &sql[end..])
        }
        _ => format!("with{joined}\n{sql}"),
    }
}

/// Byte range of the first word of a query, skipping whitespace and comments.
fn first_keyword(sql: &str) -> Option<(usize, usize)> {
    let b = sql.as_bytes();
    let mut i = 0;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if sql[i..].starts_with("--") {
            i = sql[i..].find('\n').map(|e| i + e + 1).unwrap_or(b.len());
        } else if sql[i..].starts_with("/*") {
            i = sql[i..].find("*/").map(|e| i + e + 2).unwrap_or(b.len());
        } else {
            break;
        }
    }
    let start = i;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
        i += 1;
    }
    (i > start).then_some((start, i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Materialization;

    #[test]
    fn substitutes_placeholders() {
        let rels = vec![
            ResolvedRelation {
                database: "db".into(),
                schema: "s".into(),
                identifier: "a".into(),
                materialized: Materialization::View,
            },
            ResolvedRelation {
                identifier: "e".into(),
                materialized: Materialization::Ephemeral,
                ..Default::default()
            },
        ];
        let out = substitute(
            "select * from \u{1}0:7\u{2} join \u{1}1:7\u{2} join \u{1}0:1\u{2}".to_string(),
            &rels,
        );
        assert_eq!(
            out,
            "select * from \"db\".\"s\".\"a\" join __dbt__cte__e join \"a\""
        );
    }

    #[test]
    fn injects_ctes() {
        let ctes = vec![("__dbt__cte__e".to_string(), "select 1".to_string())];
        assert_eq!(
            inject("select * from __dbt__cte__e", &ctes),
            "with __dbt__cte__e as (\nselect 1\n)\nselect * from __dbt__cte__e"
        );
        assert_eq!(
            inject("-- hi\nWITH x as (select 2) select * from x", &ctes),
            "-- hi\nwith __dbt__cte__e as (\nselect 1\n), x as (select 2) select * from x"
        );
    }

    #[test]
    fn cte_chain_order() {
        // 0 (eph) -> 1 (eph) -> 2 (model); 0 -> 2
        let dag = Dag::build(3, [(0, 1), (1, 2), (0, 2)]);
        let ctes = collect_ctes(&dag, &[true, true, false]);
        assert_eq!(ctes[2], vec![0, 1]);
        assert_eq!(ctes[1], vec![0]);
    }
}
