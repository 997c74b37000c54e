//! `pm report [NAME] [--date D] [--format F] [--to slack|telegram]`: the
//! daily digest of each report in reports.yml, its charts under
//! `target/reports/<name>/<date>/`, and its delivery, once per day.

use super::Session;
use crate::cli::{ReportArgs, ReportChannel, ReportFormat};
use chrono::NaiveDate;
use pm_core::error::{Code, Problem, Problems, Result};
use pm_core::manifest::{Node, ResourceType};
use pm_core::output::Log;
use pm_core::settings::Settings;
use pm_postgres::report::{self as store, DeliveryKey};
use pm_postgres::Connection;
use pm_report::config::{self, ReportSpec, REPORTS_FILE};
use pm_report::deliver::{self, Destination, Transport};
use pm_report::digest::{self, DayRows, Digest};
use pm_report::transport::{DryRun, Http};
use pm_report::{chart, render};
use std::io::IsTerminal;
use std::sync::Arc;
use tokio::runtime::Runtime;

/// Reports whose data is not there yet, or whose delivery failed: exit 1.
const NOT_DONE: i32 = 1;
/// The exit code of a usage or project error.
const USAGE: i32 = 2;

pub fn run(g: &Settings, args: &ReportArgs, log: Log) -> Result<i32> {
    check_date_arg(&args.date)?;
    let s = Session::open(g, "report", log)?;
    let (text, specs) = read_specs(&s)?;
    let chosen = choose(&specs, args.name.as_deref())?;
    let destination = match args.to {
        Some(channel) => Some(destination(channel)?),
        None => None,
    };
    let c = s.compile()?;
    let endpoint = s.endpoint()?;
    let rt = pm_runner::pipeline::runtime()?;
    let client = rt.block_on(endpoint.connect())?;
    let mut code = 0;
    for spec in chosen {
        let model = find_model(&c.manifest.nodes, spec, &text)?;
        let outcome = report_one(
            &s,
            &text,
            &rt,
            &client,
            spec,
            model,
            args,
            destination.as_ref(),
        );
        match outcome {
            Ok(c) => code = code.max(c),
            Err(problems) => {
                // A reports.yml column the model lacks is the project's error (2);
                // the rest (no data yet, a failed build, a refusal) is not done (1).
                let usage = problems.0.iter().any(|p| p.code == Code::ReportColumn);
                log.problems(problems);
                code = code.max(if usage { USAGE } else { NOT_DONE });
            }
        }
    }
    Ok(code)
}

/// `reports.yml`: its text (for errors that point into it) and its reports.
fn read_specs(s: &Session) -> Result<(Arc<str>, Vec<ReportSpec>)> {
    let path = s.project.root.join(REPORTS_FILE);
    let text: Arc<str> = match std::fs::read_to_string(&path) {
        Ok(t) => t.into(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Problem::new(
                Code::ReportNone,
                format!(
                    "this project declares no reports: {} has no {REPORTS_FILE}",
                    s.project.root.display()
                ),
            )
            .help("declare one in reports.yml (see the README's `pm report` section)")
            .into())
        }
        Err(e) => {
            return Err(Problem::new(
                Code::ReportConfig,
                format!("cannot read {REPORTS_FILE}: {e}"),
            )
            .into())
        }
    };
    let mut specs = config::parse(&text)?;
    // The models' calendar: the `timezone` var (--vars over the project's).
    let project_timezone = s
        .var("timezone")
        .and_then(pm_core::loader::yaml::as_string)
        .unwrap_or_else(|| "UTC".into());
    config::with_project_timezone(&text, &mut specs, &project_timezone)?;
    Ok((text, specs))
}

fn choose<'a>(specs: &'a [ReportSpec], name: Option<&str>) -> Result<Vec<&'a ReportSpec>> {
    let Some(name) = name else {
        if specs.is_empty() {
            return Err(Problem::new(
                Code::ReportNone,
                format!("{REPORTS_FILE} declares no reports"),
            )
            .into());
        }
        return Ok(specs.iter().collect());
    };
    match specs.iter().find(|r| r.name == name) {
        Some(r) => Ok(vec![r]),
        None => {
            let known = pm_core::error::closest(name, specs.iter().map(|r| r.name.as_str()));
            let all: Vec<&str> = specs.iter().map(|r| r.name.as_str()).collect();
            Err(
                Problem::new(Code::ReportUnknown, format!("no report is named `{name}`"))
                    .help(pm_core::error::did_you_mean(
                        &known,
                        &format!("the reports in {REPORTS_FILE}: {}", all.join(", ")),
                    ))
                    .into(),
            )
        }
    }
}

/// How long one request to Slack or Telegram may take, answer included:
/// `PM_REPORT_TIMEOUT` seconds, 60 by default.
fn request_timeout() -> Result<std::time::Duration> {
    match std::env::var("PM_REPORT_TIMEOUT") {
        Err(_) => Ok(std::time::Duration::from_secs(60)),
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|&s| (1..=3600).contains(&s))
            .map(std::time::Duration::from_secs)
            .ok_or_else(|| {
                Problem::new(
                    Code::ReportTimeout,
                    format!("PM_REPORT_TIMEOUT is `{v}`, not a number of seconds from 1 to 3600"),
                )
                .help("unset it for 60 s, or give whole seconds")
                .into()
            }),
    }
}

/// A bot token: real ones are long; a short one could not be masked in
/// what pm prints without masking everything else, so it is refused.
fn checked_token(name: &str, token: String) -> Result<String> {
    let token = token.trim().to_string();
    if token.len() >= 8 && !token.chars().any(char::is_whitespace) {
        return Ok(token);
    }
    Err(Problem::new(
        Code::ReportBadToken,
        format!("{name} is not a token (too short, or has spaces)"),
    )
    .help(format!("set {name} to the token the service gave you"))
    .into())
}

/// An http(s) URL with a host, or an error naming the variable (not its
/// value, which may hold a secret).
fn checked_url(name: &str, value: String) -> Result<String> {
    let uri = value.parse::<ureq::http::Uri>().ok();
    let fits = uri.as_ref().is_some_and(|u| {
        matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some_and(|h| !h.is_empty())
    });
    if fits {
        return Ok(value);
    }
    Err(Problem::new(
        Code::ReportBadUrl,
        format!("{name} is not an http(s) URL with a host"),
    )
    .help(format!(
        "set {name} to a URL such as https://… (it is not shown here: it may hold a secret)"
    ))
    .into())
}

/// `--date`: a day (YYYY-MM-DD), yesterday, today or latest; checked
/// before anything else (a usage error, exit 2).
fn check_date_arg(date: &str) -> Result<()> {
    if matches!(date, "yesterday" | "today" | "latest")
        || NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok()
    {
        return Ok(());
    }
    Err(Problem::new(
        Code::ReportDate,
        format!("--date `{}` is not a day", date.escape_debug()),
    )
    .help("give --date as YYYY-MM-DD, yesterday, today or latest")
    .into())
}

/// The Slack or Telegram destination from the environment.
fn destination(channel: ReportChannel) -> Result<Destination> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let base = |k: &str, default: &str| {
        var(k)
            .unwrap_or_else(|| default.to_string())
            .trim_end_matches('/')
            .to_string()
    };
    match channel {
        ReportChannel::Slack => {
            if let (Some(token), Some(channel)) = (var("SLACK_BOT_TOKEN"), var("SLACK_CHANNEL_ID"))
            {
                let token = checked_token("SLACK_BOT_TOKEN", token)?;
                return Ok(Destination::SlackBot {
                    api: checked_url(
                        "PM_SLACK_API_URL",
                        base("PM_SLACK_API_URL", "https://slack.com/api"),
                    )?,
                    token,
                    channel,
                });
            }
            match var("SLACK_WEBHOOK_URL") {
                Some(url) => Ok(Destination::SlackWebhook {
                    url: checked_url("SLACK_WEBHOOK_URL", url.trim().to_string())?,
                }),
                None => Err(Problem::new(Code::ReportNoCredentials, "nothing to post to Slack with")
                    .help("set SLACK_WEBHOOK_URL (an incoming webhook), or SLACK_BOT_TOKEN and SLACK_CHANNEL_ID (a bot, which also uploads the charts)")
                    .into()),
            }
        }
        ReportChannel::Telegram => match (var("TELEGRAM_BOT_TOKEN"), var("TELEGRAM_CHAT_ID")) {
            (Some(token), Some(chat)) => Ok(Destination::Telegram {
                token: checked_token("TELEGRAM_BOT_TOKEN", token)?,
                api: checked_url(
                    "PM_TELEGRAM_API_URL",
                    base("PM_TELEGRAM_API_URL", "https://api.telegram.org"),
                )?,
                chat,
            }),
            _ => Err(Problem::new(
                Code::ReportNoCredentials,
                "nothing to post to Telegram with",
            )
            .help("set TELEGRAM_BOT_TOKEN (from @BotFather) and TELEGRAM_CHAT_ID")
            .into()),
        },
    }
}

/// A problem pointing at a report's `key: value` line in reports.yml.
fn at_entry(text: &Arc<str>, key: &str, value: &str, problem: Problem) -> Problem {
    let line = config::line_of(text, key, value).unwrap_or(1);
    let range = pm_core::error::line_range(text, line);
    problem
        .in_file(REPORTS_FILE, text.clone())
        .label(range, "here")
}

fn find_model<'a>(nodes: &'a [Node], spec: &ReportSpec, text: &Arc<str>) -> Result<&'a Node> {
    let models = || {
        nodes
            .iter()
            .filter(|n| n.resource_type == ResourceType::Model)
    };
    if let Some(n) = models().find(|n| n.name == spec.model) {
        return Ok(n);
    }
    let known = pm_core::error::closest(&spec.model, models().map(|n| n.name.as_str()));
    Err(at_entry(
        text,
        "model",
        &spec.model,
        Problem::new(
            Code::ReportModel,
            format!(
                "report `{}` reads `{}`, which is no model of this project",
                spec.name, spec.model
            ),
        )
        .help(pm_core::error::did_you_mean(
            &known,
            "name a model of the project",
        )),
    )
    .into())
}

#[allow(clippy::too_many_arguments)]
fn report_one(
    s: &Session,
    text: &Arc<str>,
    rt: &Runtime,
    client: &Connection,
    spec: &ReportSpec,
    model: &Node,
    args: &ReportArgs,
    to: Option<&Destination>,
) -> Result<i32> {
    let relation = model.relation_name().unwrap_or_default();
    check_columns(text, rt, client, spec, model)?;
    let asked = resolve_day(rt, client, spec, &relation, &args.date)?;
    // A weekly report: the last complete week ending on or before that day.
    let day = digest::period_start(spec, asked);
    let last = digest::period_end(spec, day);
    let rows = read_rows(rt, client, spec, &relation, last)?;
    if !rows.contains_key(&last) {
        let model_last = rt.block_on(store::last_day(client, &relation, &spec.date_column))?;
        return Err(Problem::new(
            Code::ReportNoData,
            format!(
                "report `{}`: {} has no row for {last}{}",
                spec.name,
                model.name,
                model_last
                    .map(|d| format!(" (its last day is {d})"))
                    .unwrap_or_default()
            ),
        )
        .help("build the model first (pm build), or choose another day with --date")
        .into());
    }
    let mut d = digest::digest_of(spec, &rows, day);
    let charts = draw_charts(s, spec, &rows, last)?;
    d.charts = charts.iter().map(|c| c.path.clone()).collect();
    print_digest(&d, args.format);
    let Some(to) = to else {
        return Ok(0);
    };
    if let Some(problem) = unfinished_build(rt, client, model)? {
        return Err(problem.into());
    }
    let key = DeliveryKey {
        report: &spec.name,
        day,
        channel: to.channel(),
    };
    let (title, body) = (render::heading(&d), render::chat(&d));
    let chart_files: Vec<deliver::Chart> = charts
        .into_iter()
        .map(|c| deliver::Chart {
            title: format!("{} ({day})", c.label),
            file_name: c.file_name,
            png: c.png,
        })
        .collect();
    send_once(s, rt, client, &key, to, &title, &body, &chart_files, args)
}

fn check_columns(
    text: &Arc<str>,
    rt: &Runtime,
    client: &Connection,
    spec: &ReportSpec,
    model: &Node,
) -> Result<()> {
    let Some(columns) = rt.block_on(store::columns(client, &model.schema, &model.alias))? else {
        return Err(Problem::new(
            Code::ReportNotBuilt,
            format!(
                "report `{}`: {} has not been built ({}.{} does not exist)",
                spec.name, model.name, model.schema, model.alias
            ),
        )
        .help("build it first: pm build")
        .into());
    };
    let mut problems = Problems::default();
    for wanted in std::iter::once(&spec.date_column).chain(spec.all_metrics().map(|m| &m.column)) {
        if !columns.contains(wanted) {
            let known = pm_core::error::closest(wanted, columns.iter().map(String::as_str));
            let key = if *wanted == spec.date_column {
                "date_column"
            } else {
                "column"
            };
            problems.push(at_entry(
                text,
                key,
                wanted,
                Problem::new(
                    Code::ReportColumn,
                    format!(
                        "report `{}`: {} has no column `{wanted}`",
                        spec.name, model.name
                    ),
                )
                .help(pm_core::error::did_you_mean(
                    &known,
                    "name one of the model's columns",
                )),
            ));
        }
    }
    problems.into_result()
}

/// The day asked for: a date, yesterday or today in the report's timezone,
/// or the model's last day.
fn resolve_day(
    rt: &Runtime,
    client: &Connection,
    spec: &ReportSpec,
    relation: &str,
    asked: &str,
) -> Result<NaiveDate> {
    let today = chrono::Utc::now().with_timezone(&spec.tz()).date_naive();
    match asked {
        "yesterday" => Ok(today.pred_opt().unwrap_or(today)),
        "today" => Ok(today),
        "latest" => rt
            .block_on(store::last_day(client, relation, &spec.date_column))?
            .ok_or_else(|| {
                Problem::new(
                    Code::ReportNoData,
                    format!("report `{}`: {} has no rows", spec.name, spec.model),
                )
                .help("build it with data first: pm generate --build")
                .into()
            }),
        other => NaiveDate::parse_from_str(other, "%Y-%m-%d").map_err(|_| {
            Problem::new(Code::ReportDate, format!("`{other}` is not a day"))
                .help("give --date as YYYY-MM-DD, yesterday, today or latest")
                .into()
        }),
    }
}

fn read_rows(
    rt: &Runtime,
    client: &Connection,
    spec: &ReportSpec,
    relation: &str,
    day: NaiveDate,
) -> Result<DayRows> {
    let columns: Vec<String> = spec.all_metrics().map(|m| m.column.clone()).collect();
    let from = digest::first_day_needed(spec, day);
    let rows = rt.block_on(store::day_rows(
        client,
        relation,
        &spec.date_column,
        &columns,
        from,
        day,
    ))?;
    Ok(rows
        .into_iter()
        .map(|(d, values)| (d, columns.iter().cloned().zip(values).collect()))
        .collect())
}

/// A chart drawn for the report.
struct Drawn {
    /// Relative to the project's root.
    path: String,
    file_name: String,
    label: String,
    png: Vec<u8>,
}

/// Draws each chart into target/reports/<name>/<date>/<column>.png.
fn draw_charts(
    s: &Session,
    spec: &ReportSpec,
    rows: &DayRows,
    day: NaiveDate,
) -> Result<Vec<Drawn>> {
    let dir = s
        .target_dir()
        .join("reports")
        .join(&spec.name)
        .join(day.to_string());
    if !spec.charts.is_empty() {
        std::fs::create_dir_all(&dir).map_err(|e| {
            Problem::new(
                Code::ReportChart,
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
    }
    let mut out = Vec::new();
    // config::parse made sure that every chart is of one of the report's metrics.
    for (c, metric) in spec
        .charts
        .iter()
        .filter_map(|c| Some((c, spec.all_metrics().find(|m| m.column == c.metric)?)))
    {
        let points = digest::series(rows, &c.metric, day, c.days);
        let label = metric.label();
        let png = chart::png(&chart::ChartData {
            label: &label,
            format: metric.format,
            currency: metric.currency.as_deref(),
            points: &points,
            width: spec.chart_size.width,
            height: spec.chart_size.height,
        })?;
        let file_name = format!("{}.png", c.metric);
        let path = dir.join(&file_name);
        pm_runner::artifacts::write_atomically(&path, &png).map_err(|e| {
            Problem::new(
                Code::ReportChart,
                format!("cannot write {}: {e}", path.display()),
            )
        })?;
        let shown = path
            .strip_prefix(&s.project.root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        out.push(Drawn {
            path: shown,
            file_name,
            label,
            png,
        });
    }
    Ok(out)
}

fn print_digest(d: &Digest, format: ReportFormat) {
    let color = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    match format {
        ReportFormat::Text => {
            print!("{}", render::text(d, color));
            if !d.charts.is_empty() {
                println!("\nCharts: {}", d.charts.join(", "));
            }
        }
        ReportFormat::Chat => print!("{}\n\n{}", render::heading(d), render::chat(d)),
        ReportFormat::Markdown => print!("{}", render::markdown(d)),
        ReportFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&render::json(d)).unwrap_or_default()
        ),
    }
}

/// Why the model's data is not ready to send: its last build did not succeed.
fn unfinished_build(rt: &Runtime, client: &Connection, model: &Node) -> Result<Option<Problem>> {
    let Some(last) = rt.block_on(store::last_result(client, &model.unique_id))? else {
        return Ok(None);
    };
    if last.status == "success" {
        return Ok(None);
    }
    Ok(Some(
        Problem::new(
            Code::ReportNotReady,
            format!(
                "not sent: the last build of {} ({}) ended `{}`{}",
                model.name,
                last.finished_at.format("%Y-%m-%d %H:%M UTC"),
                last.status,
                last.error
                    .map(|e| format!(": {}", e.lines().next().unwrap_or("")))
                    .unwrap_or_default()
            ),
        )
        .help("fix and rebuild it (pm build), then report again"),
    ))
}

#[allow(clippy::too_many_arguments)]
fn send_once(
    s: &Session,
    rt: &Runtime,
    client: &Connection,
    key: &DeliveryKey,
    to: &Destination,
    title: &str,
    body: &str,
    charts: &[deliver::Chart],
    args: &ReportArgs,
) -> Result<i32> {
    let log = s.log;
    let what = format!("report `{}` for {} to {}", key.report, key.day, key.channel);
    if !rt.block_on(store::lock_delivery(client, key))? {
        // Its outcome is read once it is done: sent, or left for this one to send.
        log.info(&format!(
            "another pm is sending {what} right now; waiting for its outcome"
        ));
        rt.block_on(store::wait_for_delivery(client, key))?;
    }
    if let Some(done) = rt.block_on(store::delivery(client, key))? {
        if !args.force {
            if done.status == "sent" {
                let at = done.finished_at.unwrap_or(done.started_at);
                log.info(&format!(
                    "{what} was already sent at {}; nothing sent (--force sends it again)",
                    at.format("%Y-%m-%d %H:%M:%S UTC")
                ));
                return Ok(0);
            }
            return Err(Problem::new(
                Code::ReportUnfinished,
                format!(
                    "sending {what} began at {} and never finished; it may have been posted",
                    done.started_at.format("%Y-%m-%d %H:%M:%S UTC")
                ),
            )
            .help("look in the channel; send it again with --force if it is not there")
            .into());
        }
    }
    if args.dry_run {
        let mut dry = DryRun { out: Vec::new() };
        let result = deliver::deliver(to, title, body, charts, &mut dry);
        for (k, r) in dry.out.iter().enumerate() {
            println!("\n--- request {} (not sent) ---\n{r}", k + 1);
        }
        return match result {
            Ok(_) => Ok(0),
            Err(f) => Err((*f.problem).into()),
        };
    }
    rt.block_on(store::start_delivery(client, key))?;
    let mut http = Http::new(
        to,
        request_timeout()?,
        Box::new(move |line: &str| log.warn(line)),
    );
    match deliver::deliver(to, title, body, charts, &mut http as &mut dyn Transport) {
        Ok(posted) => {
            rt.block_on(store::finish_delivery(
                client,
                key,
                posted.charts_left_out.as_deref(),
            ))?;
            if let Some(why) = posted.charts_left_out {
                log.warn(&format!("charts not sent: {why}"));
            }
            log.info(&format!("sent {what} ({} requests)", posted.requests));
            Ok(0)
        }
        Err(failed) if failed.maybe_posted => {
            // As after a kill: the record stays unfinished, and the next
            // attempt says it may have been posted instead of posting again.
            rt.block_on(store::note_delivery(
                client,
                key,
                &format!("may have been posted: {}", failed.problem.message),
            ))?;
            log.problems((*failed.problem).into());
            log.warn(&format!("{what} may have been posted; it is recorded as unfinished: look in the channel, and send it again with --force if it is not there"));
            Ok(NOT_DONE)
        }
        Err(failed) if failed.posted => {
            let detail = format!("posted, then: {}", failed.problem.message);
            rt.block_on(store::finish_delivery(client, key, Some(&detail)))?;
            log.problems((*failed.problem).into());
            log.warn(&format!("the message of {what} was posted; it is recorded as sent (--force sends it all again)"));
            Ok(NOT_DONE)
        }
        Err(failed) => {
            rt.block_on(store::forget_delivery(client, key))?;
            Err((*failed.problem).into())
        }
    }
}
