//! The digest of one day: each metric's value, its change against the
//! comparison days, month-to-date sums. Pure: day rows in, numbers out.

use super::config::{Aggregate, Comparison, Format, MetricSpec, Period, ReportSpec};
use chrono::{Datelike, NaiveDate};
use std::collections::{BTreeMap, HashMap};

/// The model's rows by day: column → value (None for NULL).
pub type DayRows = BTreeMap<NaiveDate, HashMap<String, Option<f64>>>;

#[derive(Debug, Clone)]
pub struct Digest {
    pub report: String,
    pub title: String,
    pub model: String,
    /// The day reported, or the first day (Monday) of the week reported.
    pub day: NaiveDate,
    pub period: Period,
    pub timezone: String,
    pub comparisons: Vec<Comparison>,
    pub metrics: Vec<MetricLine>,
    pub point_in_time: Vec<MetricLine>,
    pub month_to_date: Vec<MonthToDate>,
    /// Comparison days the model has no row for.
    pub missing_days: Vec<NaiveDate>,
    /// Chart files, relative to the project root.
    pub charts: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct MetricLine {
    pub column: String,
    pub label: String,
    pub format: Format,
    pub currency: Option<String>,
    pub higher_is_better: bool,
    pub value: Option<f64>,
    pub comparisons: Vec<Compared>,
}

/// A value against the value of an earlier day.
#[derive(Debug, Clone)]
pub struct Compared {
    pub comparison: Comparison,
    pub day: NaiveDate,
    pub base: Option<f64>,
    pub change: Change,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// The change in percent of the base (signed).
    Percent(f64),
    /// The base is 0 and the value is not: no percentage exists.
    FromZero,
    /// 0 then, 0 now.
    BothZero,
    /// No row for the comparison day, or a NULL on either side.
    NoData,
}

impl Change {
    /// +1 up, -1 down, 0 flat or unknown.
    pub fn direction(self, value: Option<f64>) -> i8 {
        match self {
            Change::Percent(p) if p > 0.0 => 1,
            Change::Percent(p) if p < 0.0 => -1,
            Change::FromZero => {
                if value.unwrap_or(0.0) > 0.0 {
                    1
                } else {
                    -1
                }
            }
            _ => 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct MonthToDate {
    pub column: String,
    pub label: String,
    pub format: Format,
    pub currency: Option<String>,
    pub from: NaiveDate,
    pub sum: f64,
    /// Days of the month with a row (of `from`..=day).
    pub days_with_data: u32,
    /// The same days of the previous month (seed 000): its sum, and the change.
    pub previous: PreviousMonth,
}

/// The same days of the previous month: its first day to the same day of
/// the month (the last day of a shorter month).
#[derive(Debug, Clone)]
pub struct PreviousMonth {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// None when the model has no row in those days.
    pub sum: Option<f64>,
    pub change: Change,
}

/// The previous month's days matching `from`..=`day` of this month.
pub fn previous_month_days(day: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    let to = day.checked_sub_months(chrono::Months::new(1))?;
    Some((to.with_day(1)?, to))
}

/// The first day (Monday) of the ISO week holding `day`.
pub fn week_start(day: NaiveDate) -> NaiveDate {
    day - chrono::Days::new(u64::from(day.weekday().num_days_from_monday()))
}

/// The first day of what a report is about when `day` is asked for: the day
/// itself, or the Monday of the last complete week ending on or before it.
pub fn period_start(spec: &ReportSpec, day: NaiveDate) -> NaiveDate {
    match spec.period {
        Period::Day => day,
        Period::Week => {
            let sunday = if day.weekday() == chrono::Weekday::Sun {
                day
            } else {
                week_start(day).pred_opt().unwrap_or(day)
            };
            week_start(sunday)
        }
    }
}

/// The last day of the period starting on `start`.
pub fn period_end(spec: &ReportSpec, start: NaiveDate) -> NaiveDate {
    match spec.period {
        Period::Day => start,
        Period::Week => start + chrono::Days::new(6),
    }
}

/// A weekly report's rows: by week (its Monday), each metric made of its
/// week's days as [`MetricSpec::aggregate`] says; point-in-time metrics are
/// the week's last day's.
fn weekly_rows(spec: &ReportSpec, rows: &DayRows) -> DayRows {
    let mut days_by_week: BTreeMap<NaiveDate, Vec<NaiveDate>> = BTreeMap::new();
    for day in rows.keys() {
        days_by_week.entry(week_start(*day)).or_default().push(*day);
    }
    let how = spec.metrics.iter().map(|m| (m, m.aggregate())).chain(
        spec.point_in_time
            .iter()
            .map(|m| (m, m.aggregate.unwrap_or(Aggregate::Last))),
    );
    let mut out = DayRows::new();
    for (week, days) in days_by_week {
        let mut row = HashMap::new();
        for (m, aggregate) in how.clone() {
            let values: Vec<f64> = days
                .iter()
                .filter_map(|d| value_on(rows, *d, &m.column))
                .collect();
            let value = match aggregate {
                _ if values.is_empty() => None,
                Aggregate::Sum => Some(values.iter().sum()),
                Aggregate::Average => Some(values.iter().sum::<f64>() / values.len() as f64),
                Aggregate::Last => days
                    .iter()
                    .rev()
                    .find_map(|d| value_on(rows, *d, &m.column)),
            };
            row.insert(m.column.clone(), value);
        }
        out.insert(week, row);
    }
    out
}

/// The digest of the period starting on `start` (see [`period_start`]):
/// a day's, or a week's with each metric made of its days.
pub fn digest_of(spec: &ReportSpec, rows: &DayRows, start: NaiveDate) -> Digest {
    match spec.period {
        Period::Day => digest(spec, rows, start),
        Period::Week => digest(spec, &weekly_rows(spec, rows), start),
    }
}

/// The first day whose row the digest of `day` needs.
pub fn first_day_needed(spec: &ReportSpec, day: NaiveDate) -> NaiveDate {
    if spec.period == Period::Week {
        // The week's Monday, and the weeks it is compared with.
        let start = week_start(day);
        let mut first = start;
        for c in &spec.comparisons() {
            if let Some(d) = c.day_before(start) {
                first = first.min(d);
            }
        }
        for chart in &spec.charts {
            if let Some(d) = day.checked_sub_days(chrono::Days::new(u64::from(chart.days) - 1)) {
                first = first.min(d);
            }
        }
        return first;
    }
    let mut first = day.with_day(1).unwrap_or(day);
    if spec.metrics.iter().any(|m| m.month_to_date) {
        if let Some((from, _)) = previous_month_days(day) {
            first = first.min(from);
        }
    }
    for c in &spec.comparisons() {
        if let Some(d) = c.day_before(day) {
            first = first.min(d);
        }
    }
    for chart in &spec.charts {
        if let Some(d) = day.checked_sub_days(chrono::Days::new(u64::from(chart.days) - 1)) {
            first = first.min(d);
        }
    }
    first
}

/// The change from `base` to `value`.
pub fn change(value: Option<f64>, base: Option<f64>) -> Change {
    match (value, base) {
        (Some(v), Some(b)) if b == 0.0 && v == 0.0 => Change::BothZero,
        (Some(_), Some(0.0)) => Change::FromZero,
        (Some(v), Some(b)) => Change::Percent((v - b) / b.abs() * 100.0),
        _ => Change::NoData,
    }
}

fn value_on(rows: &DayRows, day: NaiveDate, column: &str) -> Option<f64> {
    rows.get(&day)
        .and_then(|r| r.get(column).copied().flatten())
}

fn line(spec: &ReportSpec, m: &MetricSpec, rows: &DayRows, day: NaiveDate) -> MetricLine {
    let value = value_on(rows, day, &m.column);
    let comparisons = spec
        .comparisons()
        .into_iter()
        .filter_map(|c| {
            let then = c.day_before(day)?;
            let base = value_on(rows, then, &m.column);
            Some(Compared {
                comparison: c,
                day: then,
                base,
                change: change(value, base),
            })
        })
        .collect();
    MetricLine {
        column: m.column.clone(),
        label: m.label(),
        format: m.format,
        currency: m.currency.clone(),
        higher_is_better: m.higher_is_better,
        value,
        comparisons,
    }
}

/// The digest of `day` from the model's rows (which must hold `day`).
pub fn digest(spec: &ReportSpec, rows: &DayRows, day: NaiveDate) -> Digest {
    let from = day.with_day(1).unwrap_or(day);
    let month_to_date = spec
        .metrics
        .iter()
        .filter(|m| m.month_to_date)
        .map(|m| {
            let values = |from: NaiveDate, to: NaiveDate| -> Vec<f64> {
                rows.range(from..=to)
                    .filter_map(|(_, r)| r.get(&m.column).copied().flatten())
                    .collect()
            };
            let this = values(from, day);
            let sum: f64 = this.iter().sum();
            let (prev_from, prev_to) = previous_month_days(day).unwrap_or((from, day));
            let before = values(prev_from, prev_to);
            let before_sum = (!before.is_empty()).then(|| before.iter().sum::<f64>());
            MonthToDate {
                column: m.column.clone(),
                label: m.label(),
                format: m.format,
                currency: m.currency.clone(),
                from,
                sum,
                days_with_data: this.len() as u32,
                previous: PreviousMonth {
                    from: prev_from,
                    to: prev_to,
                    sum: before_sum,
                    change: change(Some(sum), before_sum),
                },
            }
        })
        .collect();
    Digest {
        report: spec.name.clone(),
        title: spec.title(),
        model: spec.model.clone(),
        day,
        period: spec.period,
        timezone: spec.timezone_name().to_string(),
        comparisons: spec.comparisons(),
        metrics: spec
            .metrics
            .iter()
            .map(|m| line(spec, m, rows, day))
            .collect(),
        point_in_time: spec
            .point_in_time
            .iter()
            .map(|m| line(spec, m, rows, day))
            .collect(),
        month_to_date,
        missing_days: spec
            .comparisons()
            .iter()
            .filter_map(|c| c.day_before(day))
            .filter(|d| !rows.contains_key(d))
            .collect(),
        charts: Vec::new(),
    }
}

/// The points of a chart: the `days` days ending on `day`, with a value or
/// a gap (no row, or NULL).
pub fn series(
    rows: &DayRows,
    column: &str,
    day: NaiveDate,
    days: u32,
) -> Vec<(NaiveDate, Option<f64>)> {
    (0..days)
        .rev()
        .filter_map(|back| day.checked_sub_days(chrono::Days::new(u64::from(back))))
        .map(|d| (d, value_on(rows, d, column)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_to_date_compares_the_same_days_of_the_previous_month() {
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(
            previous_month_days(day("2024-03-31")),
            Some((day("2024-02-01"), day("2024-02-29")))
        );
        assert_eq!(
            previous_month_days(day("2024-03-10")),
            Some((day("2024-02-01"), day("2024-02-10")))
        );
    }

    #[test]
    fn a_month_to_date_sum_is_compared_with_the_same_days_before() {
        let text: std::sync::Arc<str> = "reports:\n  - name: d\n    model: m\n    metrics:\n      - {column: n, month_to_date: true}\n".into();
        let spec = &super::super::config::parse(&text).unwrap()[0];
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        let mut rows = DayRows::new();
        // February: 1 a day; March: 2 a day.
        for (from, to, n) in [
            ("2024-02-01", "2024-02-29", 1.0),
            ("2024-03-01", "2024-03-10", 2.0),
        ] {
            let mut d = day(from);
            while d <= day(to) {
                rows.insert(d, HashMap::from([("n".to_string(), Some(n))]));
                d = d.succ_opt().unwrap();
            }
        }
        assert_eq!(first_day_needed(spec, day("2024-03-10")), day("2024-02-01"));
        let t = &digest(spec, &rows, day("2024-03-10")).month_to_date[0];
        assert_eq!(t.sum, 20.0);
        assert_eq!(
            (t.previous.from, t.previous.to),
            (day("2024-02-01"), day("2024-02-10"))
        );
        assert_eq!(t.previous.sum, Some(10.0));
        assert_eq!(t.previous.change, Change::Percent(100.0));
    }

    #[test]
    fn a_weekly_digest_is_the_last_complete_week_summed_or_averaged() {
        let text: std::sync::Arc<str> = "reports:\n  - name: w\n    model: m\n    period: week\n    metrics:\n      - {column: n}\n      - {column: r, format: percent}\n    point_in_time:\n      - {column: p}\n".into();
        let spec = &super::super::config::parse(&text).unwrap()[0];
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        // Tuesday 2024-08-27: the last complete week is Monday 19 to Sunday 25.
        assert_eq!(period_start(spec, day("2024-08-27")), day("2024-08-19"));
        assert_eq!(period_start(spec, day("2024-08-25")), day("2024-08-19"));
        assert_eq!(period_end(spec, day("2024-08-19")), day("2024-08-25"));
        let mut rows = DayRows::new();
        let mut d = day("2024-08-05");
        let mut k = 1.0;
        while d <= day("2024-08-27") {
            rows.insert(
                d,
                HashMap::from([
                    ("n".to_string(), Some(k)),
                    ("r".to_string(), Some(0.5)),
                    ("p".to_string(), Some(100.0 * k)),
                ]),
            );
            d = d.succ_opt().unwrap();
            k += 1.0;
        }
        let digest = digest_of(spec, &rows, day("2024-08-19"));
        // Days 15..=21 of the rows: n sums to 126; p is Sunday's; r averages.
        assert_eq!(digest.metrics[0].value, Some(126.0));
        assert_eq!(digest.metrics[1].value, Some(0.5));
        assert_eq!(digest.point_in_time[0].value, Some(2100.0));
        // Week over week: the week before summed 77.
        let c = &digest.metrics[0].comparisons[0];
        assert_eq!(
            (c.comparison, c.day, c.base),
            (Comparison::PreviousWeek, day("2024-08-12"), Some(77.0))
        );
        assert_eq!(digest.period, Period::Week);
        // Monthly sums are refused in a weekly report.
        let bad: std::sync::Arc<str> = "reports:\n  - name: w\n    model: m\n    period: week\n    metrics:\n      - {column: n, month_to_date: true}\n".into();
        assert!(super::super::config::parse(&bad)
            .unwrap_err()
            .message
            .contains("cannot have a month-to-date sum"));
        let bad: std::sync::Arc<str> = "reports:\n  - name: w\n    model: m\n    period: week\n    comparisons: [previous_day]\n    metrics:\n      - {column: n}\n".into();
        assert!(super::super::config::parse(&bad)
            .unwrap_err()
            .message
            .contains("does not compare one"));
    }

    #[test]
    fn changes_are_honest_about_zero_and_missing_bases() {
        assert_eq!(change(Some(110.0), Some(100.0)), Change::Percent(10.0));
        assert_eq!(change(Some(90.0), Some(100.0)), Change::Percent(-10.0));
        assert_eq!(change(Some(5.0), Some(0.0)), Change::FromZero);
        assert_eq!(change(Some(0.0), Some(0.0)), Change::BothZero);
        assert_eq!(change(Some(5.0), None), Change::NoData);
        assert_eq!(change(None, Some(5.0)), Change::NoData);
        // A negative base (net cash-in after refunds): growth is still up.
        assert_eq!(change(Some(-50.0), Some(-100.0)), Change::Percent(50.0));
    }
}
