//! A digest written as text (for a terminal or a chat's code block),
//! Markdown or JSON.

use super::config::Format;
use super::digest::{Change, Compared, Digest, MetricLine, MonthToDate};
use chrono::NaiveDate;
use serde_json::{json, Value as Json};

/// "12,345" (`decimals` after the point).
fn grouped(v: f64, decimals: usize) -> String {
    let s = format!("{:.*}", decimals, v.abs());
    let (int, frac) = s
        .split_once('.')
        .map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let mut out = String::new();
    for (k, ch) in int.chars().enumerate() {
        if k > 0 && (int.len() - k) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    let negative = v < 0.0 && out.chars().any(|c| c.is_ascii_digit() && c != '0');
    if negative {
        format!("-{out}")
    } else {
        out
    }
}

fn currency_symbol(code: &str) -> Option<&'static str> {
    Some(match code {
        "USD" => "$",
        "EUR" => "€",
        "GBP" => "£",
        "INR" => "₹",
        "JPY" => "¥",
        _ => return None,
    })
}

/// A value as its metric's format writes it; "—" when there is none.
pub fn value(v: Option<f64>, format: Format, currency: Option<&str>) -> String {
    let Some(v) = v else {
        return "—".into();
    };
    match format {
        Format::Count => grouped(v.round(), 0),
        Format::Number => grouped(v, 2),
        Format::Percent => format!("{:.1}%", v * 100.0),
        Format::Currency => {
            let code = currency.unwrap_or("");
            let decimals = if code == "JPY" { 0 } else { 2 };
            let amount = grouped(v.abs(), decimals);
            let sign = if v < 0.0 && amount.chars().any(|c| c.is_ascii_digit() && c != '0') {
                "-"
            } else {
                ""
            };
            match currency_symbol(code) {
                Some(s) => format!("{sign}{s}{amount}"),
                None => format!("{sign}{code} {amount}"),
            }
        }
        Format::Duration => {
            let secs = v.round().max(0.0) as u64;
            let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
            if h > 0 {
                format!("{h}h {m:02}m")
            } else if m > 0 {
                format!("{m}m {s:02}s")
            } else {
                format!("{s}s")
            }
        }
    }
}

/// "▲ 10.5% (38)", "▼ 4.0% (50)", "= 0.0% (7)", "▲ 3.4 pp (86.7%)" for a
/// rate, "▲ from 0", "= 0 both days", "no data".
pub fn change_cell(m: &MetricLine, c: &Compared) -> String {
    let base = || value(c.base, m.format, m.currency.as_deref());
    let arrow = match c.change.direction(m.value) {
        1 => "▲",
        -1 => "▼",
        _ => "=",
    };
    match c.change {
        // A rate changes by percentage points: 86.7% to 90.1% is +3.4 pp.
        Change::Percent(_) if m.format == Format::Percent => {
            let points = (m.value.unwrap_or(0.0) - c.base.unwrap_or(0.0)) * 100.0;
            format!("{arrow} {:.1} pp ({})", points.abs(), base())
        }
        Change::Percent(p) => format!("{arrow} {:.1}% ({})", p.abs(), base()),
        Change::FromZero => format!("{arrow} from 0"),
        Change::BothZero => "= 0 both days".into(),
        Change::NoData => "no data".into(),
    }
}

/// Whether a change is good news (Some(true)), bad news, or neither.
fn good_news(m: &MetricLine, c: &Compared) -> Option<bool> {
    match c.change.direction(m.value) {
        0 => None,
        d => Some((d > 0) == m.higher_is_better),
    }
}

/// Text cells and their colours (for a terminal).
struct Table {
    rows: Vec<Vec<(String, Option<bool>)>>,
    right_aligned: Vec<bool>,
}

impl Table {
    fn render(&self, color: bool) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..cols)
            .map(|k| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(k))
                    .map(|(s, _)| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (k, (cell, news)) in row.iter().enumerate() {
                let pad = " ".repeat(widths[k] - cell.chars().count());
                let shown = match (color, news) {
                    (true, Some(true)) => format!("\x1b[32m{cell}\x1b[0m"),
                    (true, Some(false)) => format!("\x1b[31m{cell}\x1b[0m"),
                    _ => cell.clone(),
                };
                if k > 0 {
                    line.push_str("   ");
                }
                if self.right_aligned.get(k).copied().unwrap_or(false) {
                    line.push_str(&pad);
                    line.push_str(&shown);
                } else {
                    line.push_str(&shown);
                    line.push_str(&pad);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

fn metric_table(d: &Digest, lines: &[MetricLine], first_heading: &str) -> Table {
    let mut rows = vec![std::iter::once(first_heading.to_string())
        .chain(std::iter::once("value".to_string()))
        .chain(d.comparisons.iter().map(|c| c.heading().to_string()))
        .map(|s| (s, None))
        .collect::<Vec<_>>()];
    for m in lines {
        let mut row = vec![
            (m.label.clone(), None),
            (value(m.value, m.format, m.currency.as_deref()), None),
        ];
        for c in &m.comparisons {
            row.push((change_cell(m, c), good_news(m, c)));
        }
        rows.push(row);
    }
    Table {
        rows,
        right_aligned: vec![false, true],
    }
}

/// A month-to-date sum against the same days of the previous month:
/// "▲ 5.0% (3,291)", "▲ from 0", "no data".
fn mtd_change_cell(t: &MonthToDate) -> String {
    let p = &t.previous;
    let arrow = match p.change.direction(Some(t.sum)) {
        1 => "▲",
        -1 => "▼",
        _ => "=",
    };
    match p.change {
        Change::Percent(pct) => format!(
            "{arrow} {:.1}% ({})",
            pct.abs(),
            value(p.sum, t.format, t.currency.as_deref())
        ),
        Change::FromZero => format!("{arrow} from 0"),
        Change::BothZero => "= 0 both months".into(),
        Change::NoData => "no data".into(),
    }
}

/// Whether a month-to-date change is good news.
fn mtd_good_news(t: &MonthToDate, higher_is_better: bool) -> Option<bool> {
    match t.previous.change.direction(Some(t.sum)) {
        0 => None,
        d => Some((d > 0) == higher_is_better),
    }
}

/// "Feb 1–29": a run of days of one month, short.
fn short_days(from: NaiveDate, to: NaiveDate) -> String {
    format!(
        "{} {}–{}",
        from.format("%b"),
        from.format("%-d"),
        to.format("%-d")
    )
}

fn mtd_table(d: &Digest, items: &[MonthToDate]) -> Table {
    Table {
        rows: items
            .iter()
            .map(|t| {
                let better = d
                    .metrics
                    .iter()
                    .find(|m| m.column == t.column)
                    .is_none_or(|m| m.higher_is_better);
                vec![
                    (t.label.clone(), None),
                    (value(Some(t.sum), t.format, t.currency.as_deref()), None),
                    (mtd_change_cell(t), mtd_good_news(t, better)),
                ]
            })
            .collect(),
        right_aligned: vec![false, true],
    }
}

/// The month-to-date heading's two periods.
fn mtd_periods(d: &Digest) -> Option<(String, String)> {
    let t = d.month_to_date.first()?;
    Some((
        short_days(t.from, d.day),
        short_days(t.previous.from, t.previous.to),
    ))
}

/// "Saturday 2026-11-28", or "week 48, 2026-11-23 to 2026-11-29".
fn day_heading(d: &Digest) -> String {
    match d.period {
        super::config::Period::Day => format!("{} {}", d.day.format("%A"), d.day),
        super::config::Period::Week => format!(
            "week {}, {} to {}",
            d.day.format("%V"),
            d.day,
            d.day + chrono::Days::new(6)
        ),
    }
}

/// Footnotes: comparison days the model has no row for.
fn missing_notes(d: &Digest) -> Vec<String> {
    let mut notes = Vec::new();
    let any_line = d.metrics.iter().chain(&d.point_in_time).next();
    if let Some(m) = any_line {
        for c in &m.comparisons {
            if d.missing_days.contains(&c.day) {
                notes.push(format!(
                    "No row in {} for {} ({}): no comparison.",
                    d.model,
                    c.day,
                    c.comparison.heading().trim_start_matches("vs ")
                ));
            }
        }
    }
    notes
}

/// The digest as text; `color` adds green/red for good and bad news.
pub fn text(d: &Digest, color: bool) -> String {
    format!("{}\n\n{}", heading(d), tables(d, color))
}

/// The digest's first line: "Daily — Tuesday 2026-03-31 (UTC)".
pub fn heading(d: &Digest) -> String {
    format!("{} — {} ({})", d.title, day_heading(d), d.timezone)
}

/// The digest's tables and notes, under its heading.
pub fn tables(d: &Digest, color: bool) -> String {
    let mut out = String::new();
    if !d.metrics.is_empty() {
        out.push_str(&metric_table(d, &d.metrics, "metric").render(color));
    }
    if let Some((now, then)) = mtd_periods(d) {
        out.push_str(&format!(
            "\nMonth to date ({now}), vs the same days of last month ({then})\n"
        ));
        out.push_str(&mtd_table(d, &d.month_to_date).render(color));
    }
    if !d.point_in_time.is_empty() {
        out.push('\n');
        out.push_str(
            &metric_table(
                d,
                &d.point_in_time,
                &format!("at the {}'s end", d.period.name()),
            )
            .render(color),
        );
    }
    let notes = missing_notes(d);
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            out.push_str(&n);
            out.push('\n');
        }
    }
    out
}

/// The widest line a chat shows on a phone without wrapping.
pub const CHAT_WIDTH: usize = 45;

/// Wraps `line` at spaces to [`CHAT_WIDTH`], continuing with `indent`.
fn wrap(line: &str, indent: &str, out: &mut String) {
    let body = line.trim_start_matches(' ');
    let mut current = line[..line.len() - body.len()].to_string();
    let mut empty = true;
    for word in body.split(' ') {
        let fits = current.chars().count() + 1 + word.chars().count() <= CHAT_WIDTH;
        if !empty && !fits {
            out.push_str(current.trim_end());
            out.push('\n');
            current = indent.to_string();
            empty = true;
        }
        if !empty {
            current.push(' ');
        }
        current.push_str(word);
        empty = false;
    }
    out.push_str(current.trim_end());
    out.push('\n');
}

/// A metric for a chat: "Signups: 123", then each comparison on a line below.
fn chat_metric(m: &MetricLine, out: &mut String) {
    wrap(
        &format!(
            "{}: {}",
            m.label,
            value(m.value, m.format, m.currency.as_deref())
        ),
        "  ",
        out,
    );
    for c in &m.comparisons {
        wrap(
            &format!("  {} {}", change_cell(m, c), c.comparison.short_heading()),
            "    ",
            out,
        );
    }
}

/// The digest for a chat (Slack, Telegram): one metric per line with its
/// changes below it, no line wider than [`CHAT_WIDTH`] characters, so that
/// a phone shows it without wrapping.
pub fn chat(d: &Digest) -> String {
    let mut out = String::new();
    for m in &d.metrics {
        chat_metric(m, &mut out);
    }
    if let Some((now, then)) = mtd_periods(d) {
        out.push('\n');
        wrap(&format!("Month to date ({now}):"), "  ", &mut out);
        for t in &d.month_to_date {
            wrap(
                &format!(
                    "{}: {}",
                    t.label,
                    value(Some(t.sum), t.format, t.currency.as_deref())
                ),
                "  ",
                &mut out,
            );
            wrap(
                &format!("  {} vs {then}", mtd_change_cell(t)),
                "    ",
                &mut out,
            );
        }
    }
    if !d.point_in_time.is_empty() {
        out.push_str(&format!("\nAt the {}'s end:\n", d.period.name()));
        for m in &d.point_in_time {
            chat_metric(m, &mut out);
        }
    }
    let notes = missing_notes(d);
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            wrap(&n, "  ", &mut out);
        }
    }
    out
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

fn md_table(t: &Table, align: &[&str]) -> String {
    let mut out = String::new();
    for (k, row) in t.rows.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|(s, _)| md_escape(s)).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
        if k == 0 {
            let rule: Vec<&str> = (0..row.len())
                .map(|i| align.get(i).copied().unwrap_or("---"))
                .collect();
            out.push_str(&format!("|{}|\n", rule.join("|")));
        }
    }
    out
}

/// The digest as Markdown (tables; charts as images).
pub fn markdown(d: &Digest) -> String {
    let mut out = format!(
        "### {} — {} ({})\n\n",
        md_escape(&d.title),
        day_heading(d),
        d.timezone
    );
    if !d.metrics.is_empty() {
        out.push_str(&md_table(
            &metric_table(d, &d.metrics, "Metric"),
            &["---", "--:"],
        ));
    }
    if let Some((now, then)) = mtd_periods(d) {
        out.push_str(&format!("\n**Month to date** ({now})\n\n"));
        let mut t = mtd_table(d, &d.month_to_date);
        t.rows.insert(
            0,
            vec![
                ("Metric".into(), None),
                ("Sum".into(), None),
                (format!("vs {then}"), None),
            ],
        );
        out.push_str(&md_table(&t, &["---", "--:", "--:"]));
    }
    if !d.point_in_time.is_empty() {
        out.push_str(&format!("\n**At the {}'s end**\n\n", d.period.name()));
        out.push_str(&md_table(
            &metric_table(d, &d.point_in_time, "Metric"),
            &["---", "--:"],
        ));
    }
    for n in missing_notes(d) {
        out.push_str(&format!("\n_{n}_\n"));
    }
    for c in &d.charts {
        out.push_str(&format!("\n![{}]({c})\n", md_escape(c)));
    }
    out
}

fn metric_json(m: &MetricLine) -> Json {
    json!({
        "column": m.column,
        "label": m.label,
        "format": m.format.name(),
        "currency": m.currency,
        "value": m.value,
        "formatted": value(m.value, m.format, m.currency.as_deref()),
        "comparisons": m.comparisons.iter().map(|c| {
            let (percent, note) = match c.change {
                Change::Percent(p) => (Some(p), None),
                Change::FromZero => (None, Some("the base is 0")),
                Change::BothZero => (None, Some("0 on both days")),
                Change::NoData => (None, Some("no data on the comparison day")),
            };
            json!({
                "comparison": c.comparison.name(),
                "date": c.day.to_string(),
                "base": c.base,
                "change_percent": percent.map(|p| (p * 100.0).round() / 100.0),
                "change_points": match (m.format, m.value, c.base) {
                    (Format::Percent, Some(v), Some(b)) => Some(((v - b) * 10000.0).round() / 100.0),
                    _ => None,
                },
                "direction": match c.change.direction(m.value) { 1 => "up", -1 => "down", _ => "flat" },
                "good_news": good_news(m, c),
                "note": note,
            })
        }).collect::<Vec<_>>(),
    })
}

/// The digest as one JSON document.
pub fn json(d: &Digest) -> Json {
    json!({
        "report": d.report,
        "title": d.title,
        "model": d.model,
        "date": d.day.to_string(),
        "period": d.period.name(),
        "timezone": d.timezone,
        "metrics": d.metrics.iter().map(metric_json).collect::<Vec<_>>(),
        "month_to_date": d.month_to_date.iter().map(|t| json!({
            "column": t.column,
            "label": t.label,
            "from": t.from.to_string(),
            "to": d.day.to_string(),
            "sum": t.sum,
            "formatted": value(Some(t.sum), t.format, t.currency.as_deref()),
            "days_with_data": t.days_with_data,
            "previous_month": {
                "from": t.previous.from.to_string(),
                "to": t.previous.to.to_string(),
                "sum": t.previous.sum,
                "change_percent": match t.previous.change {
                    Change::Percent(p) => Some((p * 100.0).round() / 100.0),
                    _ => None,
                },
            },
        })).collect::<Vec<_>>(),
        "point_in_time": d.point_in_time.iter().map(metric_json).collect::<Vec<_>>(),
        "missing_days": d.missing_days.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
        "charts": d.charts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_lines_wrap_at_a_phones_width_keeping_their_indent() {
        let mut out = String::new();
        wrap(
            "Trial → paid (of trials ending that day): 45.0%",
            "  ",
            &mut out,
        );
        wrap(
            "  ▲ 12.3% ($12,345.67) vs a month before and then some more words",
            "    ",
            &mut out,
        );
        assert_eq!(
            out,
            "Trial → paid (of trials ending that day):\n  45.0%\n  ▲ 12.3% ($12,345.67) vs a month before and\n    then some more words\n"
        );
        assert!(out.lines().all(|l| l.chars().count() <= CHAT_WIDTH));
    }

    #[test]
    fn values_are_written_as_their_format_says() {
        assert_eq!(value(Some(1234567.0), Format::Count, None), "1,234,567");
        assert_eq!(value(Some(-1234.4), Format::Count, None), "-1,234");
        assert_eq!(
            value(Some(1234.5), Format::Currency, Some("USD")),
            "$1,234.50"
        );
        assert_eq!(value(Some(-20.0), Format::Currency, Some("EUR")), "-€20.00");
        assert_eq!(
            value(Some(99.0), Format::Currency, Some("CHF")),
            "CHF 99.00"
        );
        assert_eq!(value(Some(0.2534), Format::Percent, None), "25.3%");
        assert_eq!(value(Some(3725.0), Format::Duration, None), "1h 02m");
        assert_eq!(value(Some(250.0), Format::Duration, None), "4m 10s");
        assert_eq!(value(Some(12.0), Format::Duration, None), "12s");
        assert_eq!(value(None, Format::Count, None), "—");
        assert_eq!(value(Some(-0.001), Format::Number, None), "0.00");
    }
}
