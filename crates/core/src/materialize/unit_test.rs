//! A unit test's statements and verdict, as dbt-postgres' `unit`
//! materialization makes them: each input's rows as a `select` cast to the
//! input relation's column types; the expected rows cast to the model's
//! output types; one query giving the actual and expected rows side by
//! side; and the comparison, order-insensitive, with a diff of what differs.

use crate::text::{quote_ident, quote_literal};
use serde_json::{Map, Value as Json};

/// A column's name and type (`format_type`'s text: `numeric(10,2)`, `text`).
pub type ColumnType = (String, String);

/// The column `actual_or_expected` marks each row with.
pub const SIDE_COLUMN: &str = "actual_or_expected";

/// A fixture value as a SQL literal, as dbt's `format_row` writes it:
/// strings quoted, null as null, numbers and booleans as written; lists and
/// mappings as their JSON text.
fn literal(v: &Json) -> String {
    match v {
        Json::Null => "null".into(),
        Json::String(s) => quote_literal(s),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        other => quote_literal(&other.to_string()),
    }
}

fn cast(value: &str, data_type: &str) -> String {
    format!("cast({value} as {data_type})")
}

/// A row's values by lower-cased column name; a name the columns do not
/// have is an error naming the accepted ones.
fn row_by_column<'r>(
    row: &'r Map<String, Json>,
    columns: &[ColumnType],
    whose: &str,
) -> Result<Vec<(String, &'r Json)>, String> {
    row.iter()
        .map(|(k, v)| {
            let key = k.to_lowercase();
            if columns.iter().any(|(c, _)| c.to_lowercase() == key) {
                Ok((key, v))
            } else {
                let accepted: Vec<&str> = columns.iter().map(|(c, _)| c.as_str()).collect();
                Err(format!(
                    "the rows for {whose} name column `{k}`, which {whose} does not have (its columns: {})",
                    accepted.join(", ")
                ))
            }
        })
        .collect()
}

/// An input's rows as a `select` with every column of the relation it
/// stands for, each cast to its type; a column the rows leave out is null.
pub fn fixture_sql(
    rows: &[Map<String, Json>],
    columns: &[ColumnType],
    whose: &str,
) -> Result<String, String> {
    let select = |values: &dyn Fn(&str) -> String| {
        let parts: Vec<String> = columns
            .iter()
            .map(|(c, t)| format!("{} as {}", cast(&values(c), t), quote_ident(c)))
            .collect();
        format!("select {}", parts.join(", "))
    };
    if rows.is_empty() {
        return Ok(format!("{}\nlimit 0", select(&|_| "null".into())));
    }
    let mut selects = Vec::with_capacity(rows.len());
    for row in rows {
        let given = row_by_column(row, columns, whose)?;
        selects.push(select(&|c: &str| {
            let c = c.to_lowercase();
            given
                .iter()
                .find(|(k, _)| *k == c)
                .map_or_else(|| "null".into(), |(_, v)| literal(v))
        }));
    }
    Ok(selects.join("\nunion all\n"))
}

/// The columns a test compares: those its expected rows name (in the order
/// first named), or every column of the model when it expects no rows or
/// gives them as SQL.
pub fn tested_columns(
    expected: Option<&[Map<String, Json>]>,
    model_columns: &[ColumnType],
) -> Result<Vec<ColumnType>, String> {
    let Some(rows) = expected.filter(|r| !r.is_empty()) else {
        return Ok(model_columns.to_vec());
    };
    let mut out: Vec<ColumnType> = Vec::new();
    for row in rows {
        for (key, _) in row_by_column(row, model_columns, "the expected output")? {
            if !out.iter().any(|(c, _)| c.to_lowercase() == key) {
                if let Some(col) = model_columns.iter().find(|(c, _)| c.to_lowercase() == key) {
                    out.push(col.clone());
                }
            }
        }
    }
    Ok(out)
}

/// The expected rows as a `select` of the tested columns, cast to the
/// model's types.
pub fn expected_sql(rows: &[Map<String, Json>], tested: &[ColumnType]) -> Result<String, String> {
    fixture_sql(rows, tested, "the expected output")
}

/// The query giving the model's rows on the fixtures and the expected rows,
/// each marked in `actual_or_expected` (dbt's `get_unit_test_sql`).
pub fn comparison_sql(actual_sql: &str, expected_sql: &str, tested: &[ColumnType]) -> String {
    let columns: Vec<String> = tested.iter().map(|(c, _)| quote_ident(c)).collect();
    let columns = columns.join(", ");
    let side = quote_ident(SIDE_COLUMN);
    format!(
        "-- Build actual result given inputs\n\
         with dbt_internal_unit_test_actual as (\n  select\n    {columns}, 'actual' as {side}\n  from (\n{actual}\n  ) _dbt_internal_unit_test_actual\n),\n\
         -- Build expected result\n\
         dbt_internal_unit_test_expected as (\n  select\n    {columns}, 'expected' as {side}\n  from (\n{expected}\n  ) _dbt_internal_unit_test_expected\n)\n\
         -- Union actual and expected results\n\
         select * from dbt_internal_unit_test_actual\n\
         union all\n\
         select * from dbt_internal_unit_test_expected",
        actual = actual_sql.trim().trim_end_matches(';'),
        expected = expected_sql.trim().trim_end_matches(';'),
    )
}

/// The model's output columns: a table of its rows created empty, whose
/// columns the catalog then lists with their exact types.
pub fn empty_table_sql(table: &str, sql: &str) -> String {
    format!(
        "create temporary table {} as\nselect * from (\n{}\n) as dbt_internal_unit_test_columns\nlimit 0",
        quote_ident(table),
        sql.trim().trim_end_matches(';')
    )
}

/// What differs between the actual and expected rows, ready to show.
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    pub columns: Vec<String>,
    /// Each differing row: its mark (`+++` only in actual, `---` only in
    /// expected, `→` changed) and its cells (`expected→actual` where changed).
    pub rows: Vec<(&'static str, Vec<String>)>,
}

/// A value as compared and shown: numerics without trailing zeros (1.50 is
/// 1.5, as dbt compares decimals), booleans as true/false, NULL as null.
fn normalize(value: Option<&str>, data_type: &str) -> String {
    let Some(v) = value else {
        return "null".into();
    };
    if data_type == "boolean" {
        return match v {
            "t" => "true".into(),
            "f" => "false".into(),
            other => other.into(),
        };
    }
    if (data_type.starts_with("numeric") || data_type.starts_with("decimal")) && v.contains('.') {
        let trimmed = v.trim_end_matches('0').trim_end_matches('.');
        return if trimmed == "-0" {
            "0".into()
        } else {
            trimmed.into()
        };
    }
    v.into()
}

/// Compares the rows of [`comparison_sql`] (the side column last), order
/// insensitive; None when actual and expected are the same rows.
pub fn compare(tested: &[ColumnType], rows: &[Vec<Option<String>>]) -> Option<Diff> {
    let n = tested.len();
    let mut actual: Vec<Vec<String>> = Vec::new();
    let mut expected: Vec<Vec<String>> = Vec::new();
    for row in rows {
        let values: Vec<String> = tested
            .iter()
            .enumerate()
            .map(|(k, (_, t))| normalize(row.get(k).and_then(|v| v.as_deref()), t))
            .collect();
        match row.get(n).and_then(|v| v.as_deref()) {
            Some("actual") => actual.push(values),
            _ => expected.push(values),
        }
    }
    actual.sort();
    expected.sort();
    let (only_expected, only_actual) = multiset_difference(expected, actual);
    if only_expected.is_empty() && only_actual.is_empty() {
        return None;
    }
    Some(Diff {
        columns: tested.iter().map(|(c, _)| c.clone()).collect(),
        rows: paired(only_expected, only_actual),
    })
}

/// The rows of each sorted list that the other lacks (counting repeats).
fn multiset_difference(
    expected: Vec<Vec<String>>,
    actual: Vec<Vec<String>>,
) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let (mut e, mut a) = (
        expected.into_iter().peekable(),
        actual.into_iter().peekable(),
    );
    let (mut only_e, mut only_a) = (Vec::new(), Vec::new());
    loop {
        match (e.peek(), a.peek()) {
            (Some(x), Some(y)) if x == y => {
                e.next();
                a.next();
            }
            (Some(x), Some(y)) if x < y => only_e.extend(e.next()),
            (Some(_), Some(_)) => only_a.extend(a.next()),
            (Some(_), None) => only_e.extend(e.next()),
            (None, Some(_)) => only_a.extend(a.next()),
            (None, None) => break,
        }
    }
    (only_e, only_a)
}

/// Rows only in expected and only in actual, those with the same first
/// value shown as one changed row (`expected→actual` in the cells that differ).
fn paired(
    only_expected: Vec<Vec<String>>,
    mut only_actual: Vec<Vec<String>>,
) -> Vec<(&'static str, Vec<String>)> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for e in only_expected {
        match only_actual.iter().position(|a| a.first() == e.first()) {
            Some(k) => {
                let a = only_actual.remove(k);
                let cells = e
                    .iter()
                    .zip(&a)
                    .map(|(x, y)| {
                        if x == y {
                            x.clone()
                        } else {
                            format!("{x}→{y}")
                        }
                    })
                    .collect();
                out.push(("→", cells));
            }
            None => missing.push(("---", e)),
        }
    }
    out.extend(only_actual.into_iter().map(|a| ("+++", a)));
    out.extend(missing);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(v: Json) -> Vec<Map<String, Json>> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_object().unwrap().clone())
            .collect()
    }

    fn cols(list: &[(&str, &str)]) -> Vec<ColumnType> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn fixture_rows_are_cast_to_the_relations_types() {
        let columns = cols(&[("id", "integer"), ("name", "text"), ("active", "boolean")]);
        let sql = fixture_sql(
            &rows(json!([{"ID": 1, "name": "o'brien"}, {"id": 2, "active": true}])),
            &columns,
            "ref('users')",
        )
        .unwrap();
        assert_eq!(
            sql,
            "select cast(1 as integer) as \"id\", cast('o''brien' as text) as \"name\", cast(null as boolean) as \"active\"\n\
             union all\n\
             select cast(2 as integer) as \"id\", cast(null as text) as \"name\", cast(true as boolean) as \"active\""
        );
        assert_eq!(
            fixture_sql(&[], &columns[..1], "ref('users')").unwrap(),
            "select cast(null as integer) as \"id\"\nlimit 0"
        );
        let e = fixture_sql(&rows(json!([{"idd": 1}])), &columns, "ref('users')").unwrap_err();
        assert!(
            e.contains("column `idd`") && e.contains("id, name, active"),
            "{e}"
        );
    }

    #[test]
    fn tested_columns_are_the_expected_rows_columns() {
        let model = cols(&[("id", "integer"), ("total", "numeric(10,2)")]);
        let t = tested_columns(Some(&rows(json!([{"total": 1}]))), &model).unwrap();
        assert_eq!(t, cols(&[("total", "numeric(10,2)")]));
        assert_eq!(tested_columns(Some(&[]), &model).unwrap(), model);
        assert_eq!(tested_columns(None, &model).unwrap(), model);
    }

    #[test]
    fn comparison_ignores_order_and_trailing_zeros() {
        let tested = cols(&[("id", "integer"), ("amount", "numeric")]);
        let r = |id: &str, amount: &str, side: &str| {
            vec![
                Some(id.to_string()),
                Some(amount.to_string()),
                Some(side.to_string()),
            ]
        };
        let same = [
            r("2", "1.50", "actual"),
            r("1", "3", "actual"),
            r("1", "3.0", "expected"),
            r("2", "1.5", "expected"),
        ];
        assert_eq!(compare(&tested, &same), None);
        let differ = [
            r("1", "3", "actual"),
            r("2", "1.5", "actual"),
            r("4", "0", "actual"),
            r("1", "3", "expected"),
            r("2", "2", "expected"),
            r("3", "7", "expected"),
        ];
        let diff = compare(&tested, &differ).unwrap();
        assert_eq!(
            diff.rows,
            vec![
                ("→", vec!["2".to_string(), "2→1.5".to_string()]),
                ("+++", vec!["4".to_string(), "0".to_string()]),
                ("---", vec!["3".to_string(), "7".to_string()]),
            ]
        );
        // A repeated row counts: two expected, one actual.
        let repeated = [
            r("1", "3", "actual"),
            r("1", "3", "expected"),
            r("1", "3", "expected"),
        ];
        assert_eq!(
            compare(&tested, &repeated).unwrap().rows,
            vec![("---", vec!["1".to_string(), "3".to_string()])]
        );
    }
}
