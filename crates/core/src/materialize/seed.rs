//! Seeds: a CSV file becomes a table. This module decides the column types
//! (dbt-postgres's inference, or `column_types`) and writes the SQL; the
//! adapter streams the file's bytes through `COPY … FROM STDIN`.

use crate::error::{Code, Problem};
use crate::manifest::Node;
use crate::text::quote_ident;
use std::path::Path;

/// A column type pm infers, narrowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Inferred {
    /// Only empty values so far.
    Unknown,
    Boolean,
    Integer,
    BigInt,
    Float,
    /// Whole numbers beyond bigint (and any number beside them): exact.
    Numeric,
    Date,
    Timestamp,
    Text,
}

impl Inferred {
    pub fn sql(self) -> &'static str {
        match self {
            Inferred::Boolean => "boolean",
            Inferred::Integer => "integer",
            Inferred::BigInt => "bigint",
            Inferred::Float => "double precision",
            Inferred::Numeric => "numeric",
            Inferred::Date => "date",
            Inferred::Timestamp => "timestamp without time zone",
            Inferred::Unknown | Inferred::Text => "text",
        }
    }

    /// The narrowest type of one non-empty value.
    fn of(v: &str) -> Inferred {
        if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") {
            return Inferred::Boolean;
        }
        if is_integer(v) {
            return match v.parse::<i64>() {
                Ok(n) if i32::try_from(n).is_ok() => Inferred::Integer,
                Ok(_) => Inferred::BigInt,
                // Whole numbers beyond bigint: as floats, two distinct
                // 20-digit ids could become equal; numeric keeps every digit.
                Err(_) => Inferred::Numeric,
            };
        }
        if is_float(v) {
            return Inferred::Float;
        }
        if is_date(v) {
            return Inferred::Date;
        }
        if is_timestamp(v) {
            return Inferred::Timestamp;
        }
        Inferred::Text
    }

    /// The type holding values of both.
    fn join(self, other: Inferred) -> Inferred {
        use Inferred::*;
        match (self, other) {
            (Unknown, x) | (x, Unknown) => x,
            (a, b) if a == b => a,
            (Integer | BigInt | Float | Numeric, Integer | BigInt | Float | Numeric) => {
                self.max(other)
            }
            (Date, Timestamp) | (Timestamp, Date) => Timestamp,
            _ => Text,
        }
    }
}

fn is_integer(v: &str) -> bool {
    let d = v.strip_prefix(['-', '+']).unwrap_or(v);
    // Like dbt's agate types, `007` is the number 7: keep leading zeros with
    // `column_types: {code: text}`.
    !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
}

fn is_float(v: &str) -> bool {
    let d = v.strip_prefix(['-', '+']).unwrap_or(v);
    let has_digit = d.bytes().any(|b| b.is_ascii_digit());
    has_digit
        && d.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && d.parse::<f64>().is_ok_and(f64::is_finite)
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
}

/// `YYYY-MM-DD`, a real calendar day.
fn is_date(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    match (digits(&b[..4]), digits(&b[5..7]), digits(&b[8..10])) {
        (Some(y), Some(m), Some(d)) => chrono::NaiveDate::from_ymd_opt(y as i32, m, d).is_some(),
        _ => false,
    }
}

/// `YYYY-MM-DD HH:MM[:SS[.fraction]]`, with a space or `T`.
fn is_timestamp(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() < 16 || !is_date(&v[..10]) || !matches!(b[10], b' ' | b'T') || b[13] != b':' {
        return false;
    }
    let (Some(h), Some(mi)) = (digits(&b[11..13]), digits(&b[14..16])) else {
        return false;
    };
    if h > 23 || mi > 59 {
        return false;
    }
    match &b[16..] {
        [] => true,
        [b':', s1, s2, rest @ ..] => {
            digits(&[*s1, *s2]).is_some_and(|s| s <= 59)
                && match rest {
                    [] => true,
                    [b'.', frac @ ..] => !frac.is_empty() && frac.iter().all(u8::is_ascii_digit),
                    _ => false,
                }
        }
        _ => false,
    }
}

/// Whether a value still fits the column's current type (the usual case:
/// one check instead of trying every type).
fn fits(current: Inferred, v: &str) -> bool {
    match current {
        Inferred::Integer => is_integer(v) && v.parse::<i32>().is_ok(),
        Inferred::BigInt => is_integer(v) && v.parse::<i64>().is_ok(),
        Inferred::Float | Inferred::Numeric => is_integer(v) || is_float(v),
        Inferred::Boolean => v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false"),
        Inferred::Timestamp => is_timestamp(v) || is_date(v),
        Inferred::Date => is_date(v),
        Inferred::Unknown | Inferred::Text => false,
    }
}

/// What loading a seed needs: its columns with their SQL types.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedTable {
    pub columns: Vec<(String, String)>,
    /// Data rows seen while inferring (0 when every type was given).
    pub rows: u64,
    pub delimiter: u8,
    pub quote_columns: bool,
    /// Create the table and load none of the file's rows (`--empty`).
    pub no_rows: bool,
    /// On a Citus coordinator: how the table is distributed before it is filled.
    pub distribution: Option<super::citus::Distribution>,
}

/// A CSV problem with its 1-based line and column.
fn csv_problem(
    path: &str,
    text: Option<&str>,
    line: u64,
    column: Option<usize>,
    msg: String,
    help: &str,
) -> Problem {
    let where_ = match column {
        Some(c) => format!("{path} line {line}, column {c}"),
        None => format!("{path} line {line}"),
    };
    let mut p = Problem::new(Code::SeedCsv, format!("malformed CSV in {where_}: {msg}"))
        .help(help.to_string());
    if let Some(t) = text.filter(|t| !t.is_empty()) {
        p = p
            .in_file(path, std::sync::Arc::from(t))
            .label_line(line as usize, msg);
    }
    p
}

/// The seed's config: `delimiter`, `quote_columns`, `column_types`.
fn seed_config(node: &Node) -> (u8, bool, &indexmap::IndexMap<String, String>) {
    let config = &node.typed_config;
    let delimiter = config
        .delimiter
        .as_deref()
        .and_then(|d| d.bytes().next())
        .unwrap_or(b',');
    (
        delimiter,
        config.quote_columns.unwrap_or(true),
        &config.column_types,
    )
}

/// Reads the whole CSV once to check it and infer each column's type.
/// `text` is the file's content when the loader kept it (small files), for
/// showing the offending line.
pub fn inspect(root: &Path, node: &Node) -> Result<SeedTable, Problem> {
    inspect_as(root, node, false).map(|(t, _)| t)
}

/// Like [`inspect`], but when `column_types` gives every column's type the
/// rows are not read: the table is known from the header alone, and the
/// caller checks the rest (with [`inspect`]) while the rows load. Returns the
/// table and whether it was fully checked.
pub fn inspect_header(root: &Path, node: &Node) -> Result<(SeedTable, bool), Problem> {
    inspect_as(root, node, true)
}

fn inspect_as(root: &Path, node: &Node, header_only: bool) -> Result<(SeedTable, bool), Problem> {
    let path = &node.original_file_path;
    let (delimiter, quote_columns, column_types) = seed_config(node);
    let small = (!node.raw_code.is_empty()).then_some(&*node.raw_code);
    let file = std::fs::File::open(root.join(path)).map_err(|e| {
        Problem::new(Code::SeedRead, format!("cannot read {path}: {e}"))
            .help("check that the file exists and is readable")
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(false)
        .buffer_capacity(1 << 20)
        .from_reader(std::io::BufReader::with_capacity(1 << 20, file));
    let headers = header_of(&mut reader, path, small)?;
    let mut types = vec![Inferred::Unknown; headers.len()];
    let fixed: Vec<bool> = headers
        .iter()
        .map(|h| column_types.contains_key(h))
        .collect();
    let complete = !(header_only && fixed.iter().all(|&f| f));
    // Unless the header says it all, every row is read.
    let rows = if complete {
        infer_types(&mut reader, path, small, &fixed, &mut types)?
    } else {
        0
    };
    let columns = headers
        .into_iter()
        .zip(types)
        .map(|(h, t)| {
            let ty = column_types
                .get(&h)
                .cloned()
                .unwrap_or_else(|| t.sql().to_string());
            (h, ty)
        })
        .collect();
    Ok((
        SeedTable {
            columns,
            rows,
            delimiter,
            quote_columns,
            no_rows: false,
            distribution: None,
        },
        complete,
    ))
}

/// The header line's column names, each named once.
fn header_of<R: std::io::Read>(
    reader: &mut csv::Reader<R>,
    path: &str,
    small: Option<&str>,
) -> Result<Vec<String>, Problem> {
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| {
            csv_problem(
                path,
                small,
                1,
                None,
                e.to_string(),
                "the first line must name the columns",
            )
        })?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if headers.is_empty() || headers.iter().any(String::is_empty) {
        return Err(csv_problem(
            path,
            small,
            1,
            None,
            "a column has no name".into(),
            "give every column a name in the header line",
        ));
    }
    for (i, h) in headers.iter().enumerate() {
        if headers[..i].contains(h) {
            return Err(csv_problem(
                path,
                small,
                1,
                Some(i + 1),
                format!("column `{h}` appears twice"),
                "column names must be unique",
            ));
        }
    }
    Ok(headers)
}

/// Reads every row, widening each column's inferred type (`types`) to fit
/// its values (columns `fixed` by `column_types` are left alone); the rows.
fn infer_types<R: std::io::Read>(
    reader: &mut csv::Reader<R>,
    path: &str,
    small: Option<&str>,
    fixed: &[bool],
    types: &mut [Inferred],
) -> Result<u64, Problem> {
    let mut record = csv::ByteRecord::new();
    let mut rows = 0u64;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let (line, msg) = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        pos,
                        expected_len,
                        len,
                    } => (
                        pos.as_ref().map(|p| p.line()).unwrap_or(0),
                        format!("this row has {len} fields, the header has {expected_len}"),
                    ),
                    csv::ErrorKind::Utf8 { pos, err } => (
                        pos.as_ref().map(|p| p.line()).unwrap_or(0),
                        format!("field {} is not valid UTF-8", err.field() + 1),
                    ),
                    _ => (e.position().map(|p| p.line()).unwrap_or(0), e.to_string()),
                };
                return Err(csv_problem(
                    path,
                    small,
                    line,
                    None,
                    msg,
                    "fix the row (a stray delimiter or an unclosed quote are the usual causes)",
                ));
            }
        }
        rows += 1;
        for (i, field) in record.iter().enumerate() {
            if fixed[i] || field.is_empty() || types[i] == Inferred::Text {
                continue;
            }
            let Ok(v) = std::str::from_utf8(field) else {
                let line = record.position().map(|p| p.line()).unwrap_or(0);
                return Err(csv_problem(
                    path,
                    small,
                    line,
                    Some(i + 1),
                    "not valid UTF-8".into(),
                    "save the file as UTF-8",
                ));
            };
            if !fits(types[i], v) {
                types[i] = types[i].join(Inferred::of(v));
            }
        }
    }
    Ok(rows)
}

impl SeedTable {
    fn column(&self, name: &str) -> String {
        if self.quote_columns {
            quote_ident(name)
        } else {
            name.to_string()
        }
    }

    /// `create table` for the seed under `relation` (already quoted).
    pub fn create_sql(&self, relation: &str) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|(n, t)| format!("    {} {t}", self.column(n)))
            .collect();
        let create = format!("create table {relation} (\n{}\n)", cols.join(",\n"));
        match &self.distribution {
            Some(d) => format!("{create};\n{}", super::citus::distribute_sql(relation, d)),
            None => create,
        }
    }

    /// The `COPY` that reads the file's bytes.
    pub fn copy_sql(&self, relation: &str) -> String {
        let cols: Vec<String> = self.columns.iter().map(|(n, _)| self.column(n)).collect();
        let delim = if self.delimiter == b'\'' {
            "''''".to_string()
        } else {
            format!("'{}'", self.delimiter as char)
        };
        format!(
            "copy {relation} ({}) from stdin with (format csv, header true, delimiter {delim})",
            cols.join(", ")
        )
    }
}

/// How a seed replaced what was there.
#[derive(Debug, Clone, PartialEq)]
pub enum Replaced {
    Created,
    /// The old table was dropped and the new one renamed into place.
    Swapped,
    /// Views depend on the table and the columns did not change: its rows were replaced.
    Refilled,
    /// `--full-refresh` dropped these dependent views with the old table.
    DroppedDependents(Vec<String>),
}

impl Replaced {
    /// For the run's log line.
    pub fn describe(&self) -> String {
        match self {
            Replaced::Created => "created".into(),
            Replaced::Swapped => "replaced".into(),
            Replaced::Refilled => "refilled (views depend on it)".into(),
            Replaced::DroppedDependents(v) => {
                format!("replaced, dropped dependent views {}", v.join(", "))
            }
        }
    }
}

/// What the catalog says of a seed's table when its new rows are loaded
/// (under a temporary name) and about to be put in place.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExistingSeedTable {
    pub exists: bool,
    /// The views that read the table.
    pub dependent_views: Vec<String>,
    /// Whether the loaded table has the old one's columns and types.
    pub same_columns: bool,
}

/// The statements that put a loaded seed (`loaded`, a relation under a
/// temporary name) in place of `relation` (named `alias` in its schema),
/// each with what it is for, and how it replaced what was there:
/// - no table yet: the loaded one is renamed into place;
/// - no view reads the old one: it is dropped, the loaded one renamed;
/// - views read it and the columns are the same: its rows are replaced, so
///   the views stay as they are;
/// - views read it and the columns changed: refused, unless `full_refresh`,
///   which drops the views with the old table.
pub fn put_in_place(
    seed: &str,
    relation: &str,
    alias: &str,
    loaded: &str,
    existing: &ExistingSeedTable,
    full_refresh: bool,
) -> Result<(super::StatementPlan, Replaced), Problem> {
    let rename = format!("alter table {loaded} rename to {}", quote_ident(alias));
    if !existing.exists {
        return Ok((vec![(rename, "naming the table")], Replaced::Created));
    }
    if existing.dependent_views.is_empty() {
        let statements = vec![
            (format!("drop table {relation}"), "replacing the table"),
            (rename, "replacing the table"),
        ];
        return Ok((statements, Replaced::Swapped));
    }
    if existing.same_columns && !full_refresh {
        let statements = vec![
            (format!("truncate {relation}"), "refilling the table"),
            (
                format!("insert into {relation} select * from {loaded}"),
                "refilling the table",
            ),
            (format!("drop table {loaded}"), "refilling the table"),
        ];
        return Ok((statements, Replaced::Refilled));
    }
    if full_refresh {
        let statements = vec![
            (
                format!("drop table {relation} cascade"),
                "replacing the table",
            ),
            (rename, "replacing the table"),
        ];
        return Ok((
            statements,
            Replaced::DroppedDependents(existing.dependent_views.clone()),
        ));
    }
    Err(Problem::new(
        Code::SeedDependents,
        format!(
            "seed {seed} changed its columns, and these views depend on the table: {}",
            existing.dependent_views.join(", ")
        ),
    )
    .help("run `pm seed --full-refresh` to replace it (the views are dropped; `pm run` builds them again); the table is unchanged"))
}

#[cfg(test)]
mod tests {
    use super::Inferred::*;
    use super::*;

    fn existing(exists: bool, views: &[&str], same_columns: bool) -> ExistingSeedTable {
        ExistingSeedTable {
            exists,
            dependent_views: views.iter().map(|v| v.to_string()).collect(),
            same_columns,
        }
    }

    fn put(
        existing: &ExistingSeedTable,
        full_refresh: bool,
    ) -> Result<(Vec<String>, Replaced), Problem> {
        put_in_place(
            "plans",
            "s.plans",
            "plans",
            "s.plans__new",
            existing,
            full_refresh,
        )
        .map(|(statements, replaced)| (statements.into_iter().map(|(s, _)| s).collect(), replaced))
    }

    #[test]
    fn a_loaded_seed_is_put_in_place_as_the_views_on_it_allow() {
        assert_eq!(
            put(&existing(false, &[], false), false).unwrap(),
            (
                vec!["alter table s.plans__new rename to \"plans\"".to_string()],
                Replaced::Created
            )
        );
        assert_eq!(
            put(&existing(true, &[], false), false).unwrap(),
            (
                vec![
                    "drop table s.plans".to_string(),
                    "alter table s.plans__new rename to \"plans\"".to_string()
                ],
                Replaced::Swapped
            )
        );
        assert_eq!(
            put(&existing(true, &["s.v"], true), false).unwrap(),
            (
                vec![
                    "truncate s.plans".to_string(),
                    "insert into s.plans select * from s.plans__new".to_string(),
                    "drop table s.plans__new".to_string()
                ],
                Replaced::Refilled
            )
        );
        assert_eq!(
            put(&existing(true, &["s.v"], false), true).unwrap(),
            (
                vec![
                    "drop table s.plans cascade".to_string(),
                    "alter table s.plans__new rename to \"plans\"".to_string()
                ],
                Replaced::DroppedDependents(vec!["s.v".into()])
            )
        );
        let refused = put(&existing(true, &["s.v", "s.w"], false), false).unwrap_err();
        assert!(
            refused.to_string().contains(
                "seed plans changed its columns, and these views depend on the table: s.v, s.w"
            ),
            "{refused}"
        );
    }

    #[test]
    fn infers_like_dbt_postgres() {
        let cases = [
            (vec!["1", "2", ""], Integer),
            (vec!["1", "3000000000"], BigInt),
            (
                vec!["12345678901234567890", "12345678901234567891"],
                Numeric,
            ),
            (vec!["1", "99999999999999999999", "2.5"], Numeric),
            (vec!["1", "2.5"], Float),
            (vec!["1e3"], Float),
            (vec!["true", "FALSE", ""], Boolean),
            (vec!["2024-01-31"], Date),
            (vec!["2024-01-31", "2024-02-01 10:00:00"], Timestamp),
            (vec!["2024-01-31T10:00:00.123"], Timestamp),
            (vec!["007"], Integer),
            (vec!["1", "x"], Text),
            (vec!["true", "1"], Text),
            (vec!["2024-13-01"], Text),
            (vec!["2024-02-30"], Text),
            (vec!["2024-01-31 24:00"], Text),
            (vec!["2024-01-31 10:00:60"], Text),
            (vec!["2024-01-31 10:00:59.123456"], Timestamp),
            (vec!["", ""], Unknown),
        ];
        for (values, want) in cases {
            let got = values
                .iter()
                .filter(|v| !v.is_empty())
                .fold(Unknown, |t, v| t.join(Inferred::of(v)));
            assert_eq!(got, want, "{values:?}");
        }
        assert_eq!(Unknown.sql(), "text");
    }

    #[test]
    fn writes_ddl_and_copy() {
        let t = SeedTable {
            columns: vec![
                ("id".into(), "integer".into()),
                ("Name".into(), "text".into()),
            ],
            rows: 2,
            delimiter: b';',
            quote_columns: true,
            no_rows: false,
            distribution: None,
        };
        assert_eq!(
            t.create_sql("\"s\".\"x\""),
            "create table \"s\".\"x\" (\n    \"id\" integer,\n    \"Name\" text\n)"
        );
        assert_eq!(
            t.copy_sql("\"s\".\"x\""),
            "copy \"s\".\"x\" (\"id\", \"Name\") from stdin with (format csv, header true, delimiter ';')"
        );
    }
}
