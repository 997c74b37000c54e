//! Log lines for people (text, coloured on a terminal) or machines (JSON).
//! Logs go to stderr; what a command is asked to print (ls, a compiled
//! query) goes to stdout.

use std::io::{IsTerminal, Write};

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy)]
pub struct Log {
    pub format: LogFormat,
    pub quiet: bool,
    pub color: bool,
    /// `TERM=dumb`: the terminal cannot redraw a progress bar.
    pub dumb_terminal: bool,
}

impl Log {
    /// `no_color`: `--no-color` or `NO_COLOR`; `dumb_terminal`: `TERM=dumb`
    /// (both read by `settings`).
    pub fn new(format: LogFormat, quiet: bool, no_color: bool, dumb_terminal: bool) -> Log {
        let color = !no_color && format == LogFormat::Text && std::io::stderr().is_terminal();
        Log {
            format,
            quiet,
            color,
            dumb_terminal,
        }
    }

    fn emit(&self, level: &str, msg: &str) {
        // A live progress bar is lifted while the line is written under it.
        let bar = BAR.lock().ok().and_then(|b| b.clone());
        match bar {
            Some(bar) => bar.suspend(|| self.write_line(level, msg)),
            None => self.write_line(level, msg),
        }
    }

    fn write_line(&self, level: &str, msg: &str) {
        let mut err = std::io::stderr().lock();
        match self.format {
            LogFormat::Json => {
                let line = serde_json::json!({
                    "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "level": level,
                    "msg": msg,
                });
                let _ = writeln!(err, "{line}");
            }
            LogFormat::Text => {
                let (pre, post) = match (self.color, level) {
                    (true, "warn") => ("\x1b[33mwarning:\x1b[0m ", ""),
                    (false, "warn") => ("warning: ", ""),
                    _ => ("", ""),
                };
                let _ = writeln!(err, "{pre}{msg}{post}");
            }
        }
    }

    pub fn info(&self, msg: &str) {
        if !self.quiet {
            self.emit("info", msg);
        }
    }

    pub fn warn(&self, msg: &str) {
        self.emit("warn", msg);
    }

    /// A block the user must see even with `-q` (a failing test's report).
    pub fn report(&self, text: &str) {
        let bar = BAR.lock().ok().and_then(|b| b.clone());
        match bar {
            Some(bar) => bar.suspend(|| self.write_line("report", text)),
            None => self.write_line("report", text),
        }
    }

    /// Problems as miette reports (text) or JSON lines.
    pub fn problems(&self, problems: crate::error::Problems) {
        for p in problems.0 {
            match self.format {
                LogFormat::Json => {
                    let _ = writeln!(std::io::stderr().lock(), "{}", p.to_json());
                }
                LogFormat::Text => {
                    let _ = writeln!(std::io::stderr().lock(), "{:?}", p.into_report());
                }
            }
        }
    }
}

/// Rows as a plain text table: a header, a rule, one line per row (long
/// values cut at 40 characters).
pub fn table(columns: &[String], rows: &[Vec<String>]) -> String {
    let cut = |v: &str| -> String {
        let v = v.replace('\n', " ");
        if v.chars().count() > 40 {
            format!("{}…", v.chars().take(39).collect::<String>())
        } else {
            v
        }
    };
    let head: Vec<String> = columns.iter().map(|c| cut(c)).collect();
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|v| cut(v)).collect())
        .collect();
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in &body {
        for (k, v) in r.iter().enumerate() {
            if k < widths.len() {
                widths[k] = widths[k].max(v.chars().count());
            }
        }
    }
    let line = |cells: &[String]| -> String {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, &w)| format!("{c}{}", " ".repeat(w.saturating_sub(c.chars().count()))))
            .collect();
        format!("| {} |", parts.join(" | "))
    };
    let mut out = line(&head);
    out.push('\n');
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    out.push_str(&format!("|-{}-|", rule.join("-|-")));
    for r in &body {
        out.push('\n');
        out.push_str(&line(r));
    }
    out
}

/// The progress bar shown while one is live (log lines go above it).
static BAR: std::sync::Mutex<Option<indicatif::ProgressBar>> = std::sync::Mutex::new(None);

/// A progress bar for long work, on a terminal only: with `--log-format
/// json`, `-q`, `TERM=dumb` or output that is not a terminal, it does
/// nothing and the work's own lines are all there is.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    pub fn new(log: &Log, total: usize, what: &str) -> Progress {
        let live = log.format == LogFormat::Text
            && !log.quiet
            && std::io::stderr().is_terminal()
            && !log.dumb_terminal;
        if !live {
            return Progress { bar: None };
        }
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total as u64),
            indicatif::ProgressDrawTarget::stderr(),
        );
        let template = format!(
            "{{spinner}} {what} [{{elapsed_precise}}] {{bar:30.cyan/blue}} {{pos}}/{{len}} {{wide_msg}}"
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        if let Ok(mut slot) = BAR.lock() {
            *slot = Some(bar.clone());
        }
        Progress { bar: Some(bar) }
    }

    /// Whether a bar is shown (start lines are then left to it).
    pub fn is_live(&self) -> bool {
        self.bar.is_some()
    }

    /// What is running now.
    pub fn running<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        if let Some(bar) = &self.bar {
            let names: Vec<&str> = names.into_iter().collect();
            bar.set_message(names.join(", "));
        }
    }

    /// How many items are finished (skipped ones count).
    pub fn set_position(&self, done: usize) {
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            if let Ok(mut slot) = BAR.lock() {
                *slot = None;
            }
            bar.finish_and_clear();
        }
    }
}

static TIMINGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Phase durations on stderr when `PM_TIMINGS=1`, for finding where time goes.
pub struct PhaseTimer {
    on: bool,
    scope: &'static str,
    last: std::time::Instant,
    phase: &'static str,
}

impl PhaseTimer {
    /// Turns the timings on for the process (main does, from the settings).
    pub fn enable(on: bool) {
        TIMINGS.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn new(scope: &'static str) -> PhaseTimer {
        PhaseTimer {
            on: TIMINGS.load(std::sync::atomic::Ordering::Relaxed),
            scope,
            last: std::time::Instant::now(),
            phase: "start",
        }
    }

    /// Ends the current phase (printing its time) and starts `next`.
    pub fn lap(&mut self, next: &'static str) {
        if self.on {
            let now = std::time::Instant::now();
            let rss_mib = std::fs::read_to_string("/proc/self/statm")
                .ok()
                .and_then(|s| {
                    s.split_whitespace()
                        .nth(1)
                        .and_then(|p| p.parse::<u64>().ok())
                })
                .map(|pages| pages * 4096 / (1 << 20))
                .unwrap_or(0);
            eprintln!(
                "[timing] {}: {:<48} {:>8.1} ms  rss {:>4} MiB",
                self.scope,
                self.phase,
                (now - self.last).as_secs_f64() * 1000.0,
                rss_mib
            );
            self.last = now;
        }
        self.phase = next;
    }
}

/// A query's rows as CSV: a header of the column names, then one row a
/// line; NULL is an empty field, text as it is, other values as JSON.
/// (`pm query --output csv`, `pm serve` with `Accept: text/csv`.)
pub fn rows_as_csv(
    columns: &[(String, String)],
    rows: &[Vec<serde_json::Value>],
) -> Result<String, csv::Error> {
    use serde_json::Value as Json;
    let text = |v: &Json| match v {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(columns.iter().map(|(n, _)| n.as_str()))?;
    for row in rows {
        w.write_record(row.iter().map(text))?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A query's rows as `{"columns": [{"name", "type"}…], "rows": [[…]…]}`.
pub fn rows_as_json(
    columns: &[(String, String)],
    rows: &[Vec<serde_json::Value>],
) -> serde_json::Value {
    serde_json::json!({
        "columns": columns.iter().map(|(n, t)| serde_json::json!({"name": n, "type": t})).collect::<Vec<_>>(),
        "rows": rows,
    })
}
