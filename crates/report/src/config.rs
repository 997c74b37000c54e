//! `reports.yml`: the reports a project declares. dbt never reads the file,
//! so a project with reports still runs under dbt unchanged.

use pm_core::error::{Code, Problem};
use serde::Deserialize;
use std::sync::Arc;

/// Where a project declares its reports, relative to its root.
pub const REPORTS_FILE: &str = "reports.yml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportsFile {
    #[allow(dead_code)]
    version: Option<u32>,
    #[serde(default)]
    reports: Vec<ReportSpec>,
}

/// One report: a model's day row with comparisons, month-to-date sums,
/// point-in-time values and charts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    pub name: String,
    /// The digest's heading (default: the name).
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// The model holding a row per day.
    pub model: String,
    /// Its date column.
    #[serde(default = "default_date_column")]
    pub date_column: String,
    /// The timezone whose calendar decides which day is "yesterday": the
    /// project's (its `timezone` var) unless the report sets one, which must
    /// then be the same ([`with_project_timezone`]).
    #[serde(default)]
    pub timezone: Option<String>,
    /// `day` (the default): a day's digest; `week`: the last complete ISO
    /// week (Monday to Sunday) ending on or before the report's day.
    #[serde(default)]
    pub period: Period,
    /// Default: the period's own ([`Period::default_comparisons`]).
    #[serde(default)]
    pub comparisons: Option<Vec<Comparison>>,
    /// The day's values (flows: counts, sums, rates of the day).
    #[serde(default)]
    pub metrics: Vec<MetricSpec>,
    /// Values at the day's end (active subscriptions, MRR): no month-to-date sum.
    #[serde(default)]
    pub point_in_time: Vec<MetricSpec>,
    #[serde(default)]
    pub charts: Vec<ChartSpec>,
    #[serde(default)]
    pub chart_size: ChartSize,
}

fn default_date_column() -> String {
    "date".into()
}

/// What one digest covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    #[default]
    Day,
    Week,
}

impl Period {
    pub fn name(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
        }
    }

    /// The comparisons a report of this period makes unless it lists its own.
    pub fn default_comparisons(self) -> Vec<Comparison> {
        match self {
            Period::Day => vec![
                Comparison::PreviousDay,
                Comparison::SameWeekdayLastWeek,
                Comparison::SameDayLastMonth,
            ],
            Period::Week => vec![Comparison::PreviousWeek, Comparison::FourWeeksBefore],
        }
    }

    /// Whether `c` compares periods of this kind.
    fn compares(self, c: Comparison) -> bool {
        let weekly = matches!(c, Comparison::PreviousWeek | Comparison::FourWeeksBefore);
        weekly == (self == Period::Week)
    }
}

/// A day a value is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    PreviousDay,
    SameWeekdayLastWeek,
    SameDayLastMonth,
    /// A weekly report's week before (week over week).
    PreviousWeek,
    /// A weekly report's week four weeks before.
    FourWeeksBefore,
}

impl Comparison {
    /// The name used in reports.yml and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Comparison::PreviousDay => "previous_day",
            Comparison::SameWeekdayLastWeek => "same_weekday_last_week",
            Comparison::SameDayLastMonth => "same_day_last_month",
            Comparison::PreviousWeek => "previous_week",
            Comparison::FourWeeksBefore => "four_weeks_before",
        }
    }

    /// The column heading of the digest.
    pub fn heading(self) -> &'static str {
        match self {
            Comparison::PreviousDay => "vs previous day",
            Comparison::SameWeekdayLastWeek => "vs a week before",
            Comparison::SameDayLastMonth => "vs a month before",
            Comparison::PreviousWeek => "vs previous week",
            Comparison::FourWeeksBefore => "vs 4 weeks before",
        }
    }

    /// The heading in a chat, where every character counts (Telegram holds 4096).
    pub fn short_heading(self) -> &'static str {
        match self {
            Comparison::PreviousDay => "vs day before",
            Comparison::SameWeekdayLastWeek => "vs week before",
            Comparison::SameDayLastMonth => "vs month before",
            Comparison::PreviousWeek => "vs last week",
            Comparison::FourWeeksBefore => "vs 4 weeks before",
        }
    }

    /// The day compared with `day`. A month before the 31st is the last day
    /// of a shorter month.
    pub fn day_before(self, day: chrono::NaiveDate) -> Option<chrono::NaiveDate> {
        match self {
            Comparison::PreviousDay => day.pred_opt(),
            Comparison::SameWeekdayLastWeek => day.checked_sub_days(chrono::Days::new(7)),
            Comparison::SameDayLastMonth => day.checked_sub_months(chrono::Months::new(1)),
            // `day` is a week's first day for these.
            Comparison::PreviousWeek => day.checked_sub_days(chrono::Days::new(7)),
            Comparison::FourWeeksBefore => day.checked_sub_days(chrono::Days::new(28)),
        }
    }
}

/// How a value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// A whole number with thousands separators.
    Count,
    /// A number with two decimals.
    Number,
    /// An amount in `currency` (ISO 4217 code).
    Currency,
    /// A ratio (0.25) written as a percentage (25.0%).
    Percent,
    /// Seconds written as 1h 02m, 4m 10s or 12s.
    Duration,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Count => "count",
            Format::Number => "number",
            Format::Currency => "currency",
            Format::Percent => "percent",
            Format::Duration => "duration",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    pub column: String,
    /// Default: the column's name, capitalised, underscores as spaces.
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default = "default_format")]
    pub format: Format,
    /// The ISO 4217 code of a `currency` value.
    #[serde(default)]
    pub currency: Option<String>,
    /// Also show the sum from the month's first day to the report's day
    /// (only for additive metrics).
    #[serde(default)]
    pub month_to_date: bool,
    /// False for metrics where a rise is bad news (cancellations, churn):
    /// their rises are red.
    #[serde(default = "yes")]
    pub higher_is_better: bool,
    /// How a weekly report makes one value of the week's days: `sum`
    /// (default for counts and currency), `average` (default for the rest),
    /// `last` (the week's last day).
    #[serde(default)]
    pub aggregate: Option<Aggregate>,
}

/// How a weekly report makes one value of the days of its week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    Sum,
    Average,
    Last,
}

fn default_format() -> Format {
    Format::Count
}

fn yes() -> bool {
    true
}

impl MetricSpec {
    /// How a weekly report sums this metric up.
    pub fn aggregate(&self) -> Aggregate {
        self.aggregate.unwrap_or(match self.format {
            Format::Count | Format::Currency => Aggregate::Sum,
            _ => Aggregate::Average,
        })
    }

    pub fn label(&self) -> String {
        self.label.clone().unwrap_or_else(|| {
            let words = self.column.replace('_', " ");
            let mut c = words.chars();
            match c.next() {
                Some(first) => first.to_uppercase().chain(c).collect(),
                None => words,
            }
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartSpec {
    /// The column of one of the report's metrics.
    pub metric: String,
    /// How many days, ending on the report's day.
    #[serde(default = "default_chart_days")]
    pub days: u32,
}

fn default_chart_days() -> u32 {
    30
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartSize {
    pub width: u32,
    pub height: u32,
}

impl Default for ChartSize {
    fn default() -> Self {
        ChartSize {
            width: 800,
            height: 400,
        }
    }
}

impl ReportSpec {
    /// Every metric, the day's first, then the point-in-time ones.
    pub fn all_metrics(&self) -> impl Iterator<Item = &MetricSpec> {
        self.metrics.iter().chain(&self.point_in_time)
    }

    pub fn title(&self) -> String {
        self.title.clone().unwrap_or_else(|| self.name.clone())
    }

    /// The comparisons the report makes: its own, or its period's.
    pub fn comparisons(&self) -> Vec<Comparison> {
        self.comparisons
            .clone()
            .unwrap_or_else(|| self.period.default_comparisons())
    }

    /// The timezone's name (UTC when neither the report nor the project sets one).
    pub fn timezone_name(&self) -> &str {
        self.timezone.as_deref().unwrap_or("UTC")
    }

    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone_name().parse().unwrap_or(chrono_tz::UTC)
    }
}

/// The 1-based line of the first `key: value` in `text`, in block style or
/// inside a flow mapping (`- {column: x, format: count}`).
pub fn line_of(text: &str, key: &str, value: &str) -> Option<usize> {
    let pattern = format!("{key}:");
    text.lines()
        .position(|line| {
            let line = line.split(" #").next().unwrap_or(line);
            line.match_indices(&pattern).any(|(at, _)| {
                let before = line[..at].chars().next_back();
                let starts_key =
                    before.is_none_or(|c| c == ' ' || c == '{' || c == ',' || c == '-');
                let rest = line[at + pattern.len()..].trim_start();
                let token = rest
                    .split([',', '}'])
                    .next()
                    .unwrap_or("")
                    .trim()
                    .trim_matches(|c| c == '"' || c == '\'');
                starts_key && token == value
            })
        })
        .map(|i| i + 1)
}

/// Gives each report the project's timezone (the models' `timezone` var,
/// which decides what a day is in them), or refuses a report that sets
/// another: its "yesterday" would not be the model's day of that date.
pub fn with_project_timezone(
    text: &Arc<str>,
    specs: &mut [ReportSpec],
    project_timezone: &str,
) -> Result<(), Problem> {
    for r in specs.iter_mut() {
        match &r.timezone {
            None => r.timezone = Some(project_timezone.to_string()),
            Some(tz) if tz == project_timezone => {}
            Some(tz) => {
                let line = line_of(text, "timezone", tz).unwrap_or(1);
                return Err(Problem::new(
                    Code::ReportTimezone,
                    format!(
                        "report `{}` counts days in {tz}, and the models count them in {project_timezone} (the project's `timezone` var): its day would not be the model's day",
                        r.name
                    ),
                )
                .in_file(REPORTS_FILE, text.clone())
                .label(pm_core::error::line_range(text, line), "here")
                .help(format!("remove the report's `timezone:` (it takes the project's), or set it to {project_timezone}")));
            }
        }
    }
    Ok(())
}

/// Parses and checks `reports.yml`; every error points at its line.
pub fn parse(text: &Arc<str>) -> Result<Vec<ReportSpec>, Problem> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let file: ReportsFile = serde_yaml::from_str(text).map_err(|e| {
        let (offset, short) = pm_core::loader::yaml::error_at(text, &e);
        Problem::new(
            Code::ReportConfig,
            format!("invalid {REPORTS_FILE}: {short}"),
        )
        .in_file(REPORTS_FILE, text.clone())
        .label(offset..offset + 1, short)
        .help("see the README's `pm report` section for the keys a report takes")
    })?;
    let mut seen = std::collections::HashSet::new();
    for r in &file.reports {
        let check = Check { text, r };
        check.name(&mut seen)?;
        check.comparisons()?;
        let columns = check.metrics()?;
        check.charts(&columns)?;
    }
    Ok(file.reports)
}

/// The checks of one report, each error at the line of the key it is about.
struct Check<'a> {
    text: &'a Arc<str>,
    r: &'a ReportSpec,
}

impl<'a> Check<'a> {
    /// The line of `key: value` in the file (1 when it cannot be found).
    fn at(&self, key: &str, value: &str) -> usize {
        line_of(self.text, key, value).unwrap_or(1)
    }

    fn problem(&self, line: usize, message: String, help: &str) -> Problem {
        let range = pm_core::error::line_range(self.text, line);
        Problem::new(Code::ReportConfig, message)
            .in_file(REPORTS_FILE, self.text.clone())
            .label(range, "here")
            .help(help.to_string())
    }

    /// A plain name, declared once; a known timezone; something to show.
    fn name(&self, seen: &mut std::collections::HashSet<String>) -> Result<(), Problem> {
        let line = self.at("name", &self.r.name);
        // The name names a folder under target/reports/ and appears in chats.
        let plain = !self.r.name.is_empty()
            && self.r.name.len() <= 100
            && self
                .r
                .name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
            && !self.r.name.starts_with('.');
        if !plain {
            return Err(self.problem(
                line,
                format!(
                    "report name {} is not a plain name",
                    self.r
                        .name
                        .escape_debug()
                        .collect::<String>()
                        .chars()
                        .take(120)
                        .collect::<String>()
                ),
                "use letters, digits, `_`, `-` and `.` (not first), e.g. daily_kpis",
            ));
        }
        if !seen.insert(self.r.name.clone()) {
            return Err(self.problem(
                line,
                format!("report `{}` is declared twice", self.r.name),
                "give each report its own name",
            ));
        }
        if let Some(tz) = self
            .r
            .timezone
            .as_ref()
            .filter(|tz| tz.parse::<chrono_tz::Tz>().is_err())
        {
            return Err(self.problem(
                self.at("timezone", tz),
                format!("report `{}`: `{tz}` is not a timezone", self.r.name),
                "use an IANA name such as UTC, Europe/Berlin or Asia/Kolkata",
            ));
        }
        if self.r.metrics.is_empty() && self.r.point_in_time.is_empty() {
            return Err(self.problem(
                line,
                format!("report `{}` has no metrics", self.r.name),
                "list the model's columns to show under `metrics:` or `point_in_time:`",
            ));
        }
        Ok(())
    }

    /// Comparisons the period has; no month-to-date sum in a weekly report.
    fn comparisons(&self) -> Result<(), Problem> {
        for c in self.r.comparisons() {
            if !self.r.period.compares(c) {
                return Err(self.problem(
                self.at("comparisons", c.name()),
                format!(
                    "report `{}` covers a {}, and `{}` does not compare one",
                    self.r.name,
                    self.r.period.name(),
                    c.name()
                ),
                "a daily report compares previous_day, same_weekday_last_week and same_day_last_month; a weekly one previous_week and four_weeks_before",
            ));
            }
        }
        if self.r.period == Period::Week {
            if let Some(m) = self.r.metrics.iter().find(|m| m.month_to_date) {
                return Err(self.problem(
                self.at("column", &m.column),
                format!(
                    "report `{}` is weekly: `{}` cannot have a month-to-date sum",
                    self.r.name, m.column
                ),
                "a weekly report shows each metric's total (or average) over the week; remove month_to_date",
            ));
            }
        }
        Ok(())
    }

    /// Each column once, currencies with their code, point-in-time values
    /// without month-to-date sums; the columns, for the charts.
    fn metrics(&self) -> Result<std::collections::HashSet<&'a str>, Problem> {
        let mut columns = std::collections::HashSet::new();
        for m in self.r.all_metrics() {
            if !columns.insert(m.column.as_str()) {
                return Err(self.problem(
                    self.at("column", &m.column),
                    format!("report `{}` lists column `{}` twice", self.r.name, m.column),
                    "list each column once",
                ));
            }
            match (m.format, &m.currency) {
                (Format::Currency, None) => {
                    return Err(self.problem(
                        self.at("column", &m.column),
                        format!(
                            "report `{}`: `{}` is a currency without a code",
                            self.r.name, m.column
                        ),
                        "add `currency: USD` (an ISO 4217 code)",
                    ))
                }
                (Format::Currency, Some(code))
                    if code.len() != 3 || !code.chars().all(|c| c.is_ascii_uppercase()) =>
                {
                    return Err(self.problem(
                        self.at("currency", code),
                        format!(
                            "report `{}`: `{code}` is not an ISO 4217 currency code",
                            self.r.name
                        ),
                        "use three capital letters, e.g. USD, EUR, INR",
                    ))
                }
                (f, Some(code)) if f != Format::Currency => {
                    return Err(self.problem(
                        self.at("currency", code),
                        format!(
                            "report `{}`: `{}` has a currency but its format is {}",
                            self.r.name,
                            m.column,
                            f.name()
                        ),
                        "set `format: currency`, or remove `currency:`",
                    ))
                }
                _ => {}
            }
        }
        for m in &self.r.point_in_time {
            if m.month_to_date {
                return Err(self.problem(
                self.at("column", &m.column),
                format!(
                    "report `{}`: `{}` is a point-in-time value; a month-to-date sum of it means nothing",
                    self.r.name, m.column
                ),
                "remove `month_to_date:`, or list it under `metrics:` if it is additive",
            ));
            }
        }
        Ok(columns)
    }

    /// Charts of listed metrics, of a sensible length and size.
    fn charts(&self, columns: &std::collections::HashSet<&'a str>) -> Result<(), Problem> {
        for c in &self.r.charts {
            if !columns.contains(c.metric.as_str()) {
                let known = pm_core::error::closest(&c.metric, columns.iter().copied());
                return Err(self.problem(
                    self.at("metric", &c.metric),
                    format!(
                        "report `{}` charts `{}`, which is none of its metrics",
                        self.r.name, c.metric
                    ),
                    &pm_core::error::did_you_mean(
                        &known,
                        "chart a column listed under metrics: or point_in_time:",
                    ),
                ));
            }
            if !(2..=3660).contains(&c.days) {
                return Err(self.problem(
                    self.at("metric", &c.metric),
                    format!("report `{}`: a chart of {} days", self.r.name, c.days),
                    "chart between 2 and 3660 days",
                ));
            }
        }
        let ChartSize { width, height } = self.r.chart_size;
        if !(200..=4000).contains(&width) || !(150..=4000).contains(&height) {
            return Err(self.problem(
                pm_core::loader::yaml::line_of_key(self.text, "chart_size")
                    .unwrap_or_else(|| self.at("name", &self.r.name)),
                format!(
                    "report `{}`: charts of {width}×{height} pixels",
                    self.r.name
                ),
                "use a width of 200 to 4000 and a height of 150 to 4000 pixels",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Vec<ReportSpec>, Problem> {
        parse(&Arc::from(text))
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let r = parsed(
            "reports:\n  - name: d\n    model: m\n    metrics:\n      - column: new_users\n",
        )
        .unwrap();
        assert_eq!(r[0].date_column, "date");
        assert_eq!(r[0].timezone_name(), "UTC");
        assert_eq!(r[0].comparisons().len(), 3);
        assert_eq!(r[0].metrics[0].label(), "New users");
        assert_eq!(r[0].metrics[0].format, Format::Count);
        assert_eq!((r[0].chart_size.width, r[0].chart_size.height), (800, 400));
    }

    #[test]
    fn mistakes_point_at_their_line() {
        let cases = [
            ("reports:\n  - name: d\n    model: m\n    metrics:\n      - column: x\n        format: money\n", "unknown variant `money`"),
            ("reports:\n  - name: d\n    model: m\n    timezone: Mars/Base\n    metrics:\n      - column: x\n", "`Mars/Base` is not a timezone"),
            ("reports:\n  - name: d\n    model: m\n    metrics:\n      - column: x\n        format: currency\n", "is a currency without a code"),
            ("reports:\n  - name: d\n    model: m\n    metrics:\n      - column: x\n    charts:\n      - metric: y\n", "charts `y`, which is none of its metrics"),
            ("reports:\n  - name: d\n    model: m\n    metrics:\n      - column: x\n    colour: red\n", "unknown field `colour`"),
            ("reports:\n  - name: ../../escape\n    model: m\n    metrics:\n      - column: x\n", "report name ../../escape is not a plain name"),
            ("reports:\n  - name: \"a\\u001b[31mb\"\n    model: m\n    metrics:\n      - column: x\n", "report name a\\u{1b}[31mb is not a plain name"),
            ("reports:\n  - name: d\n    model: m\n    point_in_time:\n      - column: mrr\n        month_to_date: true\n", "a month-to-date sum of it means nothing"),
        ];
        for (text, message) in cases {
            let p = parsed(text).unwrap_err();
            assert!(p.message.contains(message), "{}", p.message);
            assert!(p.location().is_some(), "{message}: no location");
        }
    }

    #[test]
    fn entries_are_found_in_block_and_flow_style() {
        let text = "reports:\n  - name: d\n    metrics:\n      - {column: a, format: count}\n      - column: b\n";
        assert_eq!(line_of(text, "column", "a"), Some(4));
        assert_eq!(line_of(text, "column", "b"), Some(5));
        assert_eq!(line_of(text, "name", "d"), Some(2));
        assert_eq!(line_of(text, "column", "c"), None);
    }

    #[test]
    fn a_month_before_the_31st_is_the_end_of_a_shorter_month() {
        let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            Comparison::SameDayLastMonth.day_before(d("2026-03-31")),
            Some(d("2026-02-28"))
        );
        assert_eq!(
            Comparison::SameWeekdayLastWeek.day_before(d("2026-03-03")),
            Some(d("2026-02-24"))
        );
        assert_eq!(
            Comparison::PreviousDay.day_before(d("2026-03-01")),
            Some(d("2026-02-28"))
        );
    }
}
