//! Running a unit test: its inputs' rows become CTEs cast to the types the
//! catalog gives their relations, the tested model's SQL runs on them, and
//! its rows are compared with the expected ones, in one transaction that is
//! rolled back.

use crate::execute::{as_run, compiled_path, write_run_sql, RunOptions, Status, TestReport};
use pm_core::error::{Code, Problem};
use pm_core::manifest::{FixtureData, Manifest, Node, ResourceType, UnitTestInfo, UnitTestInput};
use pm_core::materialize::unit_test as sql;
use pm_core::warehouse::{StatementError, UnitTestTransaction, Warehouse, WarehouseConnection};

/// A unit test's outcome: pass, or fail with the number of differing rows
/// and the diff.
pub(super) async fn run_unit_test<W: Warehouse>(
    client: &mut W::Connection,
    m: &Manifest,
    i: usize,
    options: &RunOptions<'_, W>,
) -> Result<(Status, i64, Option<TestReport>), Problem> {
    let n = &*as_run(m, &m.nodes[i], options).await?;
    let Some(info) = n.unit_test.as_deref() else {
        return Err(Problem::new(
            Code::UnitTestNode,
            format!("{} is not a unit test", n.unique_id),
        ));
    };
    let session = client
        .begin_unit_test()
        .await
        .map_err(|e| database_problem(m, n, "starting its transaction", &e))?;
    let mut ctes = Vec::with_capacity(info.given.len());
    for input in &info.given {
        let body = input_sql(&session, m, n, input).await?;
        ctes.push((input.cte.clone(), body));
    }
    let model_sql = n.compiled_code.as_deref().unwrap_or_default();
    let actual_sql = pm_core::compile::ephemeral::inject(model_sql, &ctes);
    let model_columns = session
        .query_columns(&actual_sql)
        .await
        .map_err(|e| database_problem(m, n, "running the model on the given rows", &e))?;
    let (comparison, tested) = comparison(info, &actual_sql, &model_columns)
        .map_err(|msg| definition_problem(m, n, msg))?;
    write_run_sql(m, n, options.target_dir, &comparison);
    let rows = session
        .rows(&comparison)
        .await
        .map_err(|e| database_problem(m, n, "comparing the rows", &e))?;
    // Rolled back: the test created nothing that stays.
    let _ = session.finish().await;
    Ok(match sql::compare(&tested, &rows) {
        None => (Status::Pass, 0, None),
        Some(diff) => {
            let failures = diff.rows.len() as i64;
            let mut columns = vec!["@@".to_string()];
            columns.extend(diff.columns);
            let rows = diff
                .rows
                .into_iter()
                .map(|(mark, cells)| std::iter::once(mark.to_string()).chain(cells).collect())
                .collect();
            let report = TestReport {
                failures,
                condition: "actual differs from expected".into(),
                sample: Some((columns, rows)),
                stored_in: None,
            };
            (Status::Fail, failures, Some(report))
        }
    })
}

/// The comparison query, and the columns it compares.
fn comparison(
    info: &UnitTestInfo,
    actual_sql: &str,
    model_columns: &[sql::ColumnType],
) -> Result<(String, Vec<sql::ColumnType>), String> {
    let (tested, expected) = match &info.expect {
        FixtureData::Rows(rows) => {
            let tested = sql::tested_columns(Some(rows), model_columns)?;
            let expected = sql::expected_sql(rows, &tested)?;
            (tested, expected)
        }
        FixtureData::Sql(text) => (sql::tested_columns(None, model_columns)?, text.clone()),
    };
    Ok((sql::comparison_sql(actual_sql, &expected, &tested), tested))
}

/// An input's rows as SQL: as written (`format: sql`), or cast to the
/// column types of the relation they stand for.
async fn input_sql(
    session: &impl UnitTestTransaction,
    m: &Manifest,
    n: &Node,
    input: &UnitTestInput,
) -> Result<String, Problem> {
    let rows = match &input.rows {
        FixtureData::Sql(text) => return Ok(text.clone()),
        FixtureData::Rows(rows) => rows,
    };
    let Some(target) = m.get(&input.node) else {
        return Err(definition_problem(
            m,
            n,
            format!(
                "input {} names {}, which is not in this project",
                input.input, input.node
            ),
        ));
    };
    let (schema, alias) = target.read_relation();
    let columns = session
        .relation_columns(schema, alias)
        .await
        .map_err(|e| database_problem(m, n, "reading an input's columns", &e))?;
    if columns.is_empty() {
        return Err(missing_input(n, input, target));
    }
    sql::fixture_sql(rows, &columns, &input.input).map_err(|msg| definition_problem(m, n, msg))
}

/// An input whose relation is not in the warehouse: its column types are unknown.
fn missing_input(n: &Node, input: &UnitTestInput, target: &Node) -> Problem {
    let help = if target.resource_type == ResourceType::Source {
        format!(
            "load {}.{} first, or give the input's rows as SQL (`format: sql`), every column named",
            target.read_relation().0,
            target.read_relation().1
        )
    } else {
        format!(
            "build it first (its rows do not matter: `pm run -s {} --empty`), or give the input's rows as SQL (`format: sql`), every column named",
            target.name
        )
    };
    Problem::new(
        Code::UnitTestInputRelation,
        format!(
            "unit test `{}` cannot type the rows of {}: {}.{} does not exist",
            n.name,
            input.input,
            target.read_relation().0,
            target.read_relation().1
        ),
    )
    .help(help)
}

/// A unit test whose definition does not fit the warehouse's relations.
fn definition_problem(m: &Manifest, n: &Node, msg: String) -> Problem {
    Problem::new(
        Code::UnitTestFixture,
        format!("unit test `{}`: {msg}", n.name),
    )
    .help(format!(
        "fix the test in {}; the model's SQL is in {}",
        n.original_file_path,
        compiled_path(m, n)
    ))
}

fn database_problem(m: &Manifest, n: &Node, what: &str, e: &StatementError) -> Problem {
    if let Some(p) = e.interrupted_or_lost("unit test", &n.name, what) {
        return p;
    }
    Problem::new(
        Code::UnitTestDatabase,
        format!("unit test `{}`: {what} failed: {}", n.name, e.message),
    )
    .help(format!(
        "the SQL is in {} (the model on the fixtures) and {}/run/ (the comparison)",
        compiled_path(m, n),
        m.target_path.trim_end_matches('/'),
    ))
}
