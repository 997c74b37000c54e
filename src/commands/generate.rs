//! `pm generate`: applies the raw warehouse's DDL (`warehouse/*.sql`) and
//! streams the synthetic business into it with binary COPY, every table at
//! once; or writes the rows as CSV files (`--out`). `--append-days` adds the
//! next days to what is loaded; `--build` then builds the project.

use super::Session;
use crate::cli::{GenerateArgs, RunArgs};
use pm_core::error::{Code, Problem, Problems, Result};
use pm_core::output::{Log, Progress};
use pm_core::settings::Settings;
use pm_generate::output::{CopyStreams, CsvFiles};
use pm_generate::{Params, Request, Table, Window, WAREHOUSE_SQL};
use pm_postgres::warehouse::{self, BulkTable, GeneratorState};
use pm_postgres::Endpoint;
use std::time::Instant;

pub fn run(g: &Settings, args: &GenerateArgs, log: Log) -> Result<i32> {
    let request = Request {
        seed: args.seed,
        scale: args.scale,
        start: args.start,
        days: args.days,
        months: args.months,
    };
    let yesterday = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    // The flags are checked before anything is connected to or loaded.
    if args.append_days.is_none() {
        pm_generate::params(&request, yesterday)?;
    }
    if let Some(dir) = &args.out {
        let params = pm_generate::params(&request, yesterday)?;
        write_csv(&params, dir, log)?;
        return Ok(0);
    }
    let session = Session::open(g, "generate", log)?;
    let endpoint = session.endpoint()?;
    let rt = pm_runner::pipeline::runtime()?;
    let control = rt.block_on(endpoint.connect())?;
    for (name, sql) in WAREHOUSE_SQL {
        rt.block_on(warehouse::apply_script(&control, name, sql))?;
    }
    let state = rt.block_on(warehouse::generator_state(&control))?;
    let has_data = rt.block_on(warehouse::has_rows(&control, "raw.users"))?;
    let mut fresh = false;
    if let Some(more) = args.append_days {
        let Some(state) = state else {
            return Err(Problem::new(
                Code::GenerateAppend,
                "--append-days adds to a dataset pm generate made, and raw.generator_state is empty",
            )
            .help("run `pm generate` first (with the --seed, --scale and --start you want)")
            .into());
        };
        if more == 0 || more > 3660 {
            return Err(Problem::new(
                Code::GenerateAppend,
                format!("--append-days {more} is out of range"),
            )
            .help("add between 1 and 3660 days")
            .into());
        }
        let loaded_days = (state.end - state.start).num_days() as u32 + 1;
        let params = Params {
            seed: state.seed,
            scale: state.scale,
            start: pm_generate::to_day(state.start),
            days: loaded_days + more,
        };
        log.info(&format!(
            "Adding {more} day{} after {} to the dataset (seed {}, scale {})",
            if more == 1 { "" } else { "s" },
            state.end,
            state.seed,
            state.scale
        ));
        load(&rt, &endpoint, &params, Some(loaded_days), log)?;
    } else if args.if_empty && has_data {
        log.info(&match state {
            Some(s) => format!(
                "raw already holds a dataset (seed {}, scale {}, {} to {}): not generating",
                s.seed, s.scale, s.start, s.end
            ),
            None => "raw already holds data that pm generate did not record as loaded (an interrupted load, or data of your own): not generating; `pm generate` without --if-empty replaces it".to_string(),
        });
    } else {
        let params = pm_generate::params(&request, yesterday)?;
        if has_data {
            log.info("Replacing the data in raw");
        }
        load(&rt, &endpoint, &params, None, log)?;
        fresh = true;
    }
    drop(control);
    if !args.build {
        if fresh && has_data {
            log.info("The raw data was replaced: build with `pm build --full-refresh --vars '{rebuild_history: true}'` so that incremental models, those that keep history too, start over");
        }
        return Ok(0);
    }
    // Rebuilt data: incremental models start over, those that keep history
    // past raw retention too (PulseMetrics' `rebuild_history` var).
    let build = RunArgs {
        full_refresh: fresh,
        ..RunArgs::default()
    };
    let settings = if fresh {
        with_var(g, "rebuild_history", serde_json::Value::Bool(true))?
    } else {
        g.clone()
    };
    let code = super::run::build(&settings, &build, log)?;
    if code != 0 {
        return Ok(code);
    }
    // The digest of the last generated day, for each report the project declares.
    if session
        .project
        .root
        .join(pm_report::config::REPORTS_FILE)
        .is_file()
    {
        println!();
        let latest = crate::cli::ReportArgs {
            name: None,
            date: "latest".into(),
            format: crate::cli::ReportFormat::Text,
            to: None,
            dry_run: false,
            force: false,
        };
        super::report::run(g, &latest, log)?;
    }
    log.info(&next_steps(&session));
    Ok(0)
}

/// The settings with one more `--vars` entry (over the user's).
fn with_var(g: &Settings, key: &str, value: serde_json::Value) -> Result<Settings> {
    let mut vars = match &g.vars {
        Some(text) => pm_core::loader::parse_cli_vars(text)?,
        None => Default::default(),
    };
    vars.insert(key.to_string(), value);
    let mut settings = g.clone();
    settings.vars = Some(serde_json::Value::Object(vars).to_string());
    Ok(settings)
}

/// What to look at once the warehouse is built.
fn next_steps(session: &Session) -> String {
    let dir = session.project.root.display();
    // The binary as the user can call it: `target/release/pm` after `cargo run`.
    let pm = std::env::current_exe()
        .ok()
        .and_then(|exe| {
            let cwd = std::env::current_dir().ok()?;
            exe.strip_prefix(&cwd).ok().map(|p| p.display().to_string())
        })
        .unwrap_or_else(|| "pm".to_string());
    let marts = pm_generate::FIRST_MARTS.join(", ");
    format!(
        "\nThe warehouse is built. Next:\n\
         \x20 psql \"$({pm} db url --project-dir {dir})\"\n\
         \x20     the marts: {marts}, …\n\
         \x20 {pm} docs --serve --project-dir {dir}\n\
         \x20     the documentation site with the lineage graph, on http://127.0.0.1:8080/\n\
         \x20 {pm} generate --append-days 1 --build --project-dir {dir}\n\
         \x20     the next day's data, then the nightly (incremental) build\n\
         \x20 {pm} source freshness --project-dir {dir}\n\
         \x20     how recent the raw data is"
    )
}

/// The first day of every month from `params.start` to its last day.
fn months(params: &Params) -> Vec<chrono::NaiveDate> {
    use chrono::Datelike;
    let last = pm_generate::to_date(params.end_day() - 1);
    let mut m = pm_generate::to_date(params.start)
        .with_day(1)
        .unwrap_or(last);
    let mut out = Vec::new();
    while m <= last {
        out.push(m);
        m = m
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(last.succ_opt().unwrap_or(last));
    }
    out
}

/// Simulates `params` and loads the rows of its window into raw, every table
/// on its own connection; nothing commits unless every table loaded.
fn load(
    rt: &tokio::runtime::Runtime,
    endpoint: &Endpoint,
    params: &Params,
    loaded_days: Option<u32>,
    log: Log,
) -> Result<()> {
    let started = Instant::now();
    let window = Window::new(params, loaded_days);
    let appending = loaded_days.is_some();
    let control = rt.block_on(endpoint.connect())?;
    rt.block_on(warehouse::create_event_partitions(
        &control,
        &months(params),
    ))?;
    if !appending {
        // Recorded again once every table has committed.
        rt.block_on(warehouse::forget_generator_state(&control))?;
    }
    drop(control);
    let tables: Vec<Table> = Table::ALL
        .into_iter()
        .filter(|t| !appending || !matches!(t, Table::Plans | Table::Titles))
        .collect();
    let mut senders = Vec::new();
    let mut loaders = Vec::new();
    let mut bulks = Vec::new();
    for &table in &tables {
        let (to, from) = tokio::sync::mpsc::channel(4);
        senders.push((table, to));
        let name = format!("raw.{}", table.name());
        let bulk = BulkTable {
            // An appended load is staged, then published in one transaction.
            stage: appending.then(|| warehouse::stage_name(&name)),
            name,
            columns: table.columns().to_vec(),
            // An appended load replaces the subscriptions: their rows change.
            replace: !appending || table == Table::Subscriptions,
        };
        bulks.push(bulk.clone());
        loaders.push((
            table,
            rt.spawn(warehouse::bulk_load(endpoint.clone(), bulk, from)),
        ));
    }
    let simulation = simulate_into(rt, params, window, senders, log);
    let (rows, results) = rt.block_on(async {
        let rows = simulation.await;
        let mut results = Vec::new();
        for (table, handle) in loaders {
            results.push((table, handle.await));
        }
        (rows, results)
    });
    let rows = rows.map_err(|e| {
        Problem::new(
            Code::GenerateSimulate,
            format!("the simulation failed: {e}"),
        )
    })?;
    let loaded = all_loaded(results)?;
    let state = GeneratorState {
        seed: params.seed,
        scale: params.scale,
        start: pm_generate::to_date(params.start),
        end: pm_generate::to_date(params.end_day() - 1),
    };
    rt.block_on(async {
        if appending {
            // The staging tables commit on their own; the rows reach raw in one transaction.
            for (_, l) in &loaded {
                l.commit().await?;
            }
            let mut client = endpoint.connect().await?;
            warehouse::publish_staged(&mut client, &bulks, &state).await?;
        } else {
            commit_each(endpoint, &loaded, &state).await?;
        }
        for analyzed in
            futures_util::future::join_all(loaded.iter().map(|(_, l)| l.analyze())).await
        {
            analyzed?;
        }
        Ok::<(), Problems>(())
    })?;
    log_loaded(log, started, appending, &tables, &rows, &state, params.days);
    Ok(())
}

/// Runs the simulation on a blocking thread, its rows streamed to the
/// loaders through `senders`, with progress; the rows of each table.
fn simulate_into(
    rt: &tokio::runtime::Runtime,
    params: &Params,
    window: Window,
    senders: Vec<(Table, pm_generate::output::RowSender)>,
    log: Log,
) -> tokio::task::JoinHandle<[u64; 10]> {
    let total_days = params.days as u64;
    let first_day = params.start;
    let sim_params = params.clone();
    rt.spawn_blocking(move || {
        let progress = Progress::new(&log, total_days as usize, "generating");
        let live = progress.is_live();
        let mut reported = 0;
        let mut streams = CopyStreams::new(senders);
        pm_generate::simulate(&sim_params, &window, &mut streams, |day| {
            let done = (day - first_day + 1) as u64;
            progress.set_position(done as usize);
            let tenth = done * 10 / total_days.max(1);
            if !live && tenth > reported {
                reported = tenth;
                log.info(&format!(
                    "simulated {} of {} days ({}%)",
                    done,
                    total_days,
                    tenth * 10
                ));
            }
        });
        let rows = streams.rows;
        streams.finish();
        rows
    })
}

/// Every table's open load, or the problems of those that failed (dropping
/// the others rolls their transactions back).
fn all_loaded(
    results: Vec<(
        Table,
        std::result::Result<Result<warehouse::Loaded>, tokio::task::JoinError>,
    )>,
) -> Result<Vec<(Table, warehouse::Loaded)>> {
    let mut problems = Problems::default();
    let mut loaded = Vec::new();
    for (table, result) in results {
        match result {
            Ok(Ok(l)) => loaded.push((table, l)),
            Ok(Err(p)) => problems.0.extend(p.0),
            Err(e) => problems.push(Problem::new(
                Code::GenerateLoad,
                format!("loading raw.{} failed: {e}", table.name()),
            )),
        }
    }
    // Dropping the loaded connections rolls their transactions back.
    problems.into_result()?;
    Ok(loaded)
}

/// The load's summary lines: rows per table and second, and the dataset.
fn log_loaded(
    log: Log,
    started: Instant,
    appending: bool,
    tables: &[Table],
    rows: &[u64],
    state: &GeneratorState,
    days: u32,
) {
    let seconds = started.elapsed().as_secs_f64();
    let total: u64 = rows.iter().sum();
    log.info(&format!(
        "{} {} rows into raw in {seconds:.2}s ({} rows/s): {}",
        if appending { "Added" } else { "Loaded" },
        thousands(total),
        thousands((total as f64 / seconds.max(1e-9)) as u64),
        tables
            .iter()
            .map(|t| format!("{} {}", t.name(), thousands(rows[*t as usize])))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    log.info(&format!(
        "Dataset: seed {}, scale {}, {} to {} ({} days)",
        state.seed, state.scale, state.start, state.end, days
    ));
}

/// A full load: each table commits on its own connection (parallel COPY
/// into the tables themselves), then the state row in a transaction of its
/// own. The state row went first (see [`load`]): a load interrupted between
/// these commits leaves none, and `--append-days` refuses to add to it.
async fn commit_each(
    endpoint: &Endpoint,
    loaded: &[(Table, warehouse::Loaded)],
    state: &GeneratorState,
) -> Result<()> {
    for (_, l) in loaded {
        l.commit().await?;
    }
    let client = endpoint.connect().await?;
    warehouse::record_generator_state(&client, state)
        .await
        .map_err(|e| {
            Problem::new(
                Code::GenerateState,
                format!("cannot record raw.generator_state: {}", e.text()),
            )
            .help("the rows are loaded; run `pm generate` again to record what it loaded")
            .into()
        })
}

/// `--out DIR`: every table as a CSV file with a header line.
fn write_csv(params: &Params, dir: &std::path::Path, log: Log) -> Result<()> {
    let started = Instant::now();
    let io = |path: &std::path::Path, e: std::io::Error| {
        Problem::new(
            Code::GenerateOut,
            format!("cannot write {}: {e}", path.display()),
        )
        .help("check that the folder is writable and the disk has room")
    };
    let mut files = CsvFiles::create(dir).map_err(|e| io(dir, e))?;
    let window = Window::new(params, None);
    pm_generate::simulate(params, &window, &mut files, |_| {});
    let rows = files.finish().map_err(|(p, e)| io(&p, e))?;
    let total: u64 = rows.iter().sum();
    log.info(&format!(
        "Wrote {} rows to {}/*.csv in {:.2}s (seed {}, scale {}, {} to {})",
        thousands(total),
        dir.display(),
        started.elapsed().as_secs_f64(),
        params.seed,
        params.scale,
        pm_generate::to_date(params.start),
        pm_generate::to_date(params.end_day() - 1)
    ));
    Ok(())
}

/// 1234567 → "1,234,567".
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
