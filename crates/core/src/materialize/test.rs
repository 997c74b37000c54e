//! Data tests as statements: dbt's test query (failure count, warn and
//! error conditions), the query that shows failing rows, the table that keeps
//! them (`store_failures`), and merged scans: the `not_null` and
//! `accepted_values` tests of one relation counted by one aggregate query,
//! each test keeping its own failure count. Pure; the adapter runs them.

use crate::error::{Code, Problem};
use crate::manifest::{Manifest, Node};
use crate::text::quote_ident;
use serde_json::Value as Json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warn,
}

/// What a test came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

impl Verdict {
    /// run_results.json's status.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

/// `warn_if` / `error_if`: SQL appended to the failure count (`!= 0`, `>10`).
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub sql: String,
    /// The comparison, when it is one pm can evaluate on a count itself.
    parsed: Option<(Cmp, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Condition {
    pub fn new(sql: &str) -> Condition {
        let s = sql.trim();
        let (cmp, rest) = [
            ("!=", Cmp::Ne),
            ("<>", Cmp::Ne),
            (">=", Cmp::Ge),
            ("<=", Cmp::Le),
            ("==", Cmp::Eq),
            ("=", Cmp::Eq),
            (">", Cmp::Gt),
            ("<", Cmp::Lt),
        ]
        .iter()
        .find_map(|(op, c)| s.strip_prefix(op).map(|r| (*c, r)))
        .unwrap_or((Cmp::Eq, ""));
        let parsed = rest.trim().parse::<f64>().ok().map(|n| (cmp, n));
        Condition {
            sql: s.to_string(),
            parsed,
        }
    }

    /// Whether `failures` meets the condition (None: only SQL can tell).
    pub fn holds(&self, failures: i64) -> Option<bool> {
        let (cmp, n) = self.parsed?;
        let f = failures as f64;
        Some(match cmp {
            Cmp::Eq => f == n,
            Cmp::Ne => f != n,
            Cmp::Lt => f < n,
            Cmp::Le => f <= n,
            Cmp::Gt => f > n,
            Cmp::Ge => f >= n,
        })
    }
}

/// Where `store_failures` keeps the failing rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    pub schema: String,
    pub name: String,
    /// `store_failures_as: view` (else a table).
    pub as_view: bool,
}

/// A test's config, with dbt's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct TestConfig {
    pub severity: Severity,
    pub warn_if: Condition,
    pub error_if: Condition,
    pub fail_calc: String,
    pub limit: Option<u64>,
    pub store: Option<Store>,
}

/// Whether stored failures are asked for, by config or by `--store-failures`.
fn wants_store(node: &Node, flag: bool) -> Option<bool> {
    match node.typed_config.store_failures_as.as_deref() {
        Some("ephemeral") => return Some(false),
        Some("table") | Some("view") => return Some(true),
        _ => {}
    }
    Some(node.typed_config.store_failures.unwrap_or(flag))
}

/// The schema of stored failures: the test's own `schema` config through
/// the naming rules, else `<target schema>_pm_test_failures`.
pub fn failures_schema(m: &Manifest, node: &Node) -> String {
    match node.typed_config.schema {
        Some(_) => node.schema.clone(),
        None => format!("{}_pm_test_failures", m.target.schema),
    }
}

impl TestConfig {
    pub fn of(m: &Manifest, node: &Node, store_failures_flag: bool) -> Result<TestConfig, Problem> {
        super::statement::check_single(node, failing_rows_sql(node))?;
        let config = &node.typed_config;
        let severity = match config.severity.as_deref().map(str::to_lowercase).as_deref() {
            None | Some("error") => Severity::Error,
            Some("warn") => Severity::Warn,
            Some(other) => {
                return Err(Problem::new(
                    Code::TestSeverity,
                    format!("test `{}` has severity `{other}`", node.name),
                )
                .help("severity is `error` or `warn`"))
            }
        };
        let store = match wants_store(node, store_failures_flag) {
            Some(true) => Some(Store {
                schema: failures_schema(m, node),
                name: node.alias.clone(),
                as_view: config.store_failures_as.as_deref() == Some("view"),
            }),
            _ => None,
        };
        Ok(TestConfig {
            severity,
            warn_if: Condition::new(config.warn_if.as_deref().unwrap_or("!= 0")),
            error_if: Condition::new(config.error_if.as_deref().unwrap_or("!= 0")),
            fail_calc: config
                .fail_calc
                .clone()
                .unwrap_or_else(|| "count(*)".into()),
            limit: config.limit,
            store,
        })
    }

    /// dbt's rule: an error-severity test fails when error_if holds and
    /// warns when only warn_if does; a warn-severity test can only warn.
    pub fn verdict(&self, should_warn: bool, should_error: bool) -> Verdict {
        if self.severity == Severity::Error && should_error {
            Verdict::Fail
        } else if should_warn {
            Verdict::Warn
        } else {
            Verdict::Pass
        }
    }
}

/// The test's own SQL: the SELECT of failing rows.
pub fn failing_rows_sql(node: &Node) -> &str {
    crate::materialize::relation::query(node)
}

/// dbt's test query: one row with the failure count and both conditions.
pub fn test_sql(node: &Node, cfg: &TestConfig) -> String {
    let limit = cfg
        .limit
        .map(|n| format!("\nlimit {n}"))
        .unwrap_or_default();
    format!(
        "select\n    ({calc})::bigint as failures,\n    ({calc}) {warn} as should_warn,\n    ({calc}) {error} as should_error\nfrom (\n{sql}{limit}\n) pm_internal_test",
        calc = cfg.fail_calc,
        warn = cfg.warn_if.sql,
        error = cfg.error_if.sql,
        sql = failing_rows_sql(node),
    )
}

/// The first failing rows, to show.
pub fn sample_sql(node: &Node, rows: usize) -> String {
    format!(
        "select * from (\n{}\n) pm_failing_rows\nlimit {rows}",
        failing_rows_sql(node)
    )
}

/// Replaces the stored failures of a test, in one transaction.
pub fn store_sql(node: &Node, cfg: &TestConfig, store: &Store) -> String {
    let schema = quote_ident(&store.schema);
    let name = format!("{schema}.{}", quote_ident(&store.name));
    let limit = cfg
        .limit
        .map(|n| format!("\nlimit {n}"))
        .unwrap_or_default();
    let kind = if store.as_view { "view" } else { "table" };
    format!(
        "create schema if not exists {schema};\ndrop table if exists {name} cascade;\ndrop view if exists {name} cascade;\ncreate {kind} {name} as (\n{}{limit}\n)",
        failing_rows_sql(node)
    )
}

// ---- merged scans ----------------------------------------------------------

/// What a mergeable test counts.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// Rows where the column is null.
    NotNull,
    /// Distinct non-null values outside the list (SQL literals).
    AcceptedValues(Vec<String>),
}

/// A test that can share a scan, and the scan it can share.
#[derive(Debug, Clone, PartialEq)]
pub struct Mergeable {
    /// The relation (or its `where` subquery) the test reads.
    pub from: String,
    pub column: String,
    pub check: Check,
}

/// Names of the built-in tests whose counts a merged scan reproduces, as
/// project macros would override them.
const MERGED_TESTS: [&str; 2] = ["not_null", "accepted_values"];

/// Whether the project overrides the built-in test macro `name`.
pub fn overridden(m: &Manifest, name: &str) -> bool {
    let names = [
        format!("test_{name}"),
        format!("default__test_{name}"),
        format!("postgres__test_{name}"),
    ];
    m.macros
        .iter()
        .any(|mac| mac.package_name != "pm" && names.contains(&mac.name))
}

/// Whether the project (or a package) defines its own `get_where_subquery`.
fn overridden_where_subquery(m: &Manifest) -> bool {
    let names = [
        "get_where_subquery",
        "default__get_where_subquery",
        "postgres__get_where_subquery",
    ];
    m.macros
        .iter()
        .any(|mac| mac.package_name != "pm" && names.contains(&mac.name.as_str()))
}

/// Whether a test can be counted in a merged scan, and how: a built-in
/// `not_null` or `accepted_values` on one relation, with literal arguments and
/// the default failure count, limit and storage (stored failures need the rows).
pub fn mergeable(m: &Manifest, node: &Node, cfg: &TestConfig, parent: &Node) -> Option<Mergeable> {
    let meta = node.test.as_ref()?.metadata.as_ref()?;
    if meta.namespace.is_some()
        || !MERGED_TESTS.contains(&meta.name.as_str())
        || cfg.fail_calc.trim() != "count(*)"
        || cfg.limit.is_some()
        || cfg.store.is_some()
        || overridden(m, &meta.name)
    {
        return None;
    }
    let column = meta.kwargs.get("column_name")?.as_str()?;
    if column.contains("{{") || column.contains("{%") || column.trim().is_empty() {
        return None;
    }
    let relation = parent.relation_name()?;
    let from = match node.typed_config.where_.as_deref() {
        Some(w) if w.contains("{{") || w.contains("{%") => return None,
        // The project's own get_where_subquery gives the `where` its meaning
        // (dbt documents placeholders replaced there): the test runs alone.
        Some(w) if !w.trim().is_empty() && overridden_where_subquery(m) => return None,
        Some(w) if !w.trim().is_empty() => format!("(select * from {relation} where {w}) pm_where"),
        _ => relation,
    };
    let check = match meta.name.as_str() {
        "not_null" => Check::NotNull,
        _ => {
            let quote = !matches!(meta.kwargs.get("quote"), Some(Json::Bool(false)));
            let Json::Array(values) = meta.kwargs.get("values")? else {
                return None;
            };
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                let text = match v {
                    Json::String(s) if s.contains("{{") || s.contains("{%") => return None,
                    Json::String(s) => s.clone(),
                    Json::Number(n) => n.to_string(),
                    Json::Bool(b) => b.to_string(),
                    _ => return None,
                };
                out.push(if quote {
                    crate::text::quote_literal(&text)
                } else {
                    text
                });
            }
            if out.is_empty() {
                return None;
            }
            Check::AcceptedValues(out)
        }
    };
    Some(Mergeable {
        from,
        column: column.to_string(),
        check,
    })
}

/// One aggregate over `from` giving each test's failure count, in order
/// (`f0`, `f1`, …): `not_null` counts null rows, `accepted_values` the
/// distinct values outside its list (only failing rows are de-duplicated).
pub fn merged_sql(from: &str, tests: &[(&str, &Check)]) -> String {
    let counts: Vec<String> = tests
        .iter()
        .enumerate()
        .map(|(k, (column, check))| match check {
            Check::NotNull => format!("    count(*) filter (where {column} is null) as f{k}"),
            Check::AcceptedValues(values) => format!(
                "    count(distinct {column}) filter (where {column} not in ({})) as f{k}",
                values.join(", ")
            ),
        })
        .collect();
    format!("select\n{}\nfrom {from}", counts.join(",\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_evaluate_like_sql() {
        let c = Condition::new("!= 0");
        assert_eq!(c.holds(0), Some(false));
        assert_eq!(c.holds(3), Some(true));
        let c = Condition::new(">10");
        assert_eq!(c.holds(10), Some(false));
        assert_eq!(c.holds(11), Some(true));
        assert_eq!(Condition::new(">= 2").holds(2), Some(true));
        assert_eq!(Condition::new("<> 5").holds(5), Some(false));
        assert_eq!(Condition::new("= 0").holds(0), Some(true));
        assert_eq!(Condition::new("between 1 and 5").holds(3), None);
    }

    fn cfg(severity: Severity) -> TestConfig {
        TestConfig {
            severity,
            warn_if: Condition::new("!= 0"),
            error_if: Condition::new("> 10"),
            fail_calc: "count(*)".into(),
            limit: None,
            store: None,
        }
    }

    #[test]
    fn verdicts_follow_dbt() {
        let e = cfg(Severity::Error);
        assert_eq!(e.verdict(false, false), Verdict::Pass);
        assert_eq!(e.verdict(true, false), Verdict::Warn);
        assert_eq!(e.verdict(true, true), Verdict::Fail);
        let w = cfg(Severity::Warn);
        assert_eq!(w.verdict(true, true), Verdict::Warn);
        assert_eq!(w.verdict(false, false), Verdict::Pass);
    }

    #[test]
    fn merged_query_counts_each_test() {
        let values = Check::AcceptedValues(vec!["'a'".into(), "'b'".into()]);
        insta::assert_snapshot!(merged_sql(
            "\"pm\".\"public\".\"users\"",
            &[("id", &Check::NotNull), ("status", &values)]
        ), @r#"
        select
            count(*) filter (where id is null) as f0,
            count(distinct status) filter (where status not in ('a', 'b')) as f1
        from "pm"."public"."users"
        "#);
    }
}
