//! `pm query`: metrics of the semantic layer by dimensions, as MetricFlow's
//! `mf query` answers them: the planner writes one statement, the target
//! runs it as the profile's role, and the rows print as a table, CSV or JSON.

use super::Session;
use crate::cli::{QueryArgs, QueryOutput};
use pm_core::compile::context::{QueryResult, RenderWarehouse};
use pm_core::error::{Code, Problem, Problems, Result};
use pm_core::manifest::layer::semantic_layer;
use pm_core::output::Log;
use pm_core::semantic::query::{self, Query};
use pm_core::semantic::Layer;
use pm_core::settings::Settings;
use std::io::Write;

pub fn run(g: &Settings, args: &QueryArgs, log: Log) -> Result<i32> {
    let s = Session::open(g, "query", log)?;
    let c = s.compile()?;
    let layer = semantic_layer(&c.manifest.nodes);
    let asked = query_of(&layer, args)?;
    let plan = query::plan(&layer, &asked).map_err(|e| {
        Problems::from(
            Problem::new(Code::SemanticQuery, e)
                .help("the group-by names and filters are MetricFlow's: metric_time__month, customer__region, {{ Dimension('customer__region') }} = 'north'"),
        )
    })?;
    if args.explain {
        let _ = writeln!(std::io::stdout().lock(), "{}", plan.sql);
        super::release_at_exit((s, c));
        return Ok(0);
    }
    let endpoint = s.endpoint()?;
    let runtime = pm_runner::pipeline::runtime()?;
    // The connection's driver runs on the runtime: the query waits on a
    // thread of its own while the runtime drives it.
    let sql = plan.sql.clone();
    let outcome = runtime.block_on(async {
        let connection = pm_postgres::render::RenderConnection::open(&endpoint).await?;
        tokio::task::spawn_blocking(move || connection.run_sql(&sql))
            .await
            .map_err(|e| {
                Problems::from(Problem::new(
                    Code::QueryFailed,
                    format!("pm query stopped: {e}"),
                ))
            })
    })?;
    let result = match outcome {
        Ok(r) => r,
        Err(e) => {
            log.problems(
                Problem::new(
                    Code::QueryFailed,
                    format!("the query of {} failed: {e}", asked.metrics.join(", ")),
                )
                .help(format!(
                    "a permission error means the target's role may not read what these metrics read; `pm query --explain` prints the SQL:\n{}",
                    plan.sql
                ))
                .into(),
            );
            return Ok(1);
        }
    };
    let text = match args.output {
        QueryOutput::Table => super::show::table(&result),
        QueryOutput::Csv => csv_of(&result)?,
        QueryOutput::Json => json_of(&result),
    };
    let _ = writeln!(std::io::stdout().lock(), "{}", text.trim_end());
    super::release_at_exit((s, c));
    Ok(0)
}

/// The query the flags ask, or the saved query they name.
fn query_of(layer: &Layer, args: &QueryArgs) -> Result<Query> {
    let mut q = Query {
        metrics: args.metrics.iter().map(|m| m.trim().to_string()).collect(),
        group_by: args.group_by.iter().map(|m| m.trim().to_string()).collect(),
        filters: args.filters.clone(),
        checked_filters: Vec::new(),
        order_by: args.order_by.clone(),
        limit: args.limit,
        start_time: args.start_time.clone(),
        end_time: args.end_time.clone(),
    };
    let Some(name) = &args.saved_query else {
        return Ok(q);
    };
    let saved = layer.saved_query(name).ok_or_else(|| {
        let close = pm_core::error::closest(
            name,
            layer.saved_queries.iter().map(|s| s.def.name.as_str()),
        );
        Problems::from(
            Problem::new(
                Code::SemanticQuery,
                format!("there is no saved query `{name}`"),
            )
            .help(pm_core::error::did_you_mean(
                &close,
                "`pm ls --resource-type saved_query` lists them",
            )),
        )
    })?;
    // The saved query's own; the flags add filters, bounds, order and limit.
    let own = Query::of_saved(saved);
    q.metrics = own.metrics;
    q.group_by = own.group_by;
    q.filters.extend(own.filters);
    if q.order_by.is_empty() {
        q.order_by = own.order_by;
    }
    q.limit = q.limit.or(own.limit);
    Ok(q)
}

/// A header, then one row a line; NULL is an empty field.
fn csv_of(r: &QueryResult) -> Result<String> {
    pm_core::output::rows_as_csv(&r.columns, &r.rows).map_err(|e| {
        Problems::from(Problem::new(
            Code::QueryFailed,
            format!("cannot write CSV: {e}"),
        ))
    })
}

/// `{"columns": [{"name", "type"}…], "rows": [[…]…]}`.
fn json_of(r: &QueryResult) -> String {
    serde_json::to_string_pretty(&pm_core::output::rows_as_json(&r.columns, &r.rows))
        .unwrap_or_default()
}
