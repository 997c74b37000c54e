//! User-facing diagnostics.
//!
//! Every problem pm reports is a [`Problem`]: a code, a message, optionally the
//! file it came from with labelled spans, and a help line saying what to do.
//! Commands return [`Problems`] so that several independent errors (three
//! unknown refs in three models, say) are reported in one go.

mod codes;

pub use codes::Code;
use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};
use std::fmt;
use std::sync::Arc;

/// One diagnostic with an optional source file and labelled spans in it.
#[derive(Debug, Clone)]
pub struct Problem {
    pub code: Code,
    pub message: String,
    pub file: Option<Box<SourceFile>>,
    pub labels: Vec<(SourceSpan, String)>,
    pub help: Option<String>,
    /// Further diagnostics shown under this one (e.g. other members of a cycle).
    pub related: Vec<Problem>,
}

/// A file's name (relative to the project root) and its full text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: Arc<str>,
    named: Arc<NamedSource<Arc<str>>>,
}

impl Problem {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Problem {
            code,
            message: message.into(),
            file: None,
            labels: Vec::new(),
            help: None,
            related: Vec::new(),
        }
    }

    pub fn in_file(mut self, name: impl Into<String>, text: Arc<str>) -> Self {
        let name = name.into();
        self.file = Some(Box::new(SourceFile {
            named: Arc::new(NamedSource::new(name.clone(), text.clone()).with_language("sql")),
            name,
            text,
        }));
        self
    }

    /// The same problem shown on another text of its file (one of the same
    /// length, e.g. with secrets masked).
    pub fn with_source_text(self, text: Arc<str>) -> Self {
        match self.file.as_ref().map(|f| f.name.clone()) {
            Some(name) => self.in_file(name, text),
            None => self,
        }
    }

    /// Adds a label on a byte range of the file. Ranges past the end are clamped.
    pub fn label(mut self, range: std::ops::Range<usize>, label: impl Into<String>) -> Self {
        let text = self
            .file
            .as_ref()
            .map(|f| f.text.clone())
            .unwrap_or_else(|| Arc::from(""));
        let len = text.len();
        // A position at the very end (YAML's "unexpected end") is shown on the last character.
        let last = text.trim_end().len().saturating_sub(1);
        let start = if range.start >= len {
            last.min(len)
        } else {
            range.start
        };
        let range = start..range.end.max(start);
        let end = range
            .end
            .clamp(start, len)
            .max((start + 1).min(text.trim_end().len().max(start)));
        self.labels
            .push((SourceSpan::from(start..end), label.into()));
        self
    }

    /// Labels the whole of a 1-based line of the file.
    pub fn label_line(self, line: usize, text: impl Into<String>) -> Self {
        let range = self
            .file
            .as_ref()
            .map(|f| line_range(&f.text, line))
            .unwrap_or(0..0);
        self.label(range, text)
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn related(mut self, other: Problem) -> Self {
        self.related.push(other);
        self
    }

    /// 1-based line and column of the first label, for line-oriented output.
    pub fn location(&self) -> Option<(usize, usize)> {
        let file = self.file.as_ref()?;
        let offset = self.labels.first().map(|(s, _)| s.offset()).unwrap_or(0);
        Some(line_col(&file.text, offset))
    }

    /// The problem as one JSON object (for `--log-format json`).
    pub fn to_json(&self) -> serde_json::Value {
        let (line, col) = self.location().unzip();
        serde_json::json!({
            "level": "error",
            "code": self.code,
            "message": self.message,
            "file": self.file.as_ref().map(|f| f.name.clone()),
            "line": line,
            "column": col,
            "labels": self.labels.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>(),
            "help": self.help,
            "related": self.related.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
        })
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.file
            .as_ref()
            .map(|f| f.named.as_ref() as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.labels.iter().map(|(span, text)| {
            LabeledSpan::new_with_span(Some(text.clone()), *span)
        })))
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.related.is_empty() {
            return None;
        }
        Some(Box::new(self.related.iter().map(|p| p as &dyn Diagnostic)))
    }
}

impl Problem {
    /// A miette report, for rendering.
    pub fn into_report(self) -> miette::Report {
        miette::Report::new(self)
    }
}

/// A non-empty list of problems, the error type of every command.
#[derive(Debug, Clone, Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn push(&mut self, p: Problem) {
        self.0.push(p);
    }
    /// Ok(()) when empty, otherwise Err(self), sorted by file and position so
    /// output is deterministic whatever order parallel work finished in.
    pub fn into_result(mut self) -> Result<(), Problems> {
        if self.0.is_empty() {
            return Ok(());
        }
        self.0.sort_by(|a, b| {
            let ka = (a.file.as_ref().map(|f| f.name.clone()), a.location());
            let kb = (b.file.as_ref().map(|f| f.name.clone()), b.location());
            ka.cmp(&kb).then_with(|| a.message.cmp(&b.message))
        });
        Err(self)
    }
}

impl From<Problem> for Problems {
    fn from(p: Problem) -> Self {
        Problems(vec![p])
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", p.message)?;
        }
        Ok(())
    }
}

pub type Result<T, E = Problems> = std::result::Result<T, E>;

/// Byte range of a 1-based line (without its newline).
pub fn line_range(text: &str, line: usize) -> std::ops::Range<usize> {
    let mut start = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let trimmed = l.trim_end_matches(['\n', '\r']);
            return start..start + trimmed.len();
        }
        start += l.len();
    }
    text.len()..text.len()
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|s| s.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// Byte offset of a 1-based line and column.
pub fn offset_of(text: &str, line: usize, col: usize) -> usize {
    let r = line_range(text, line);
    let line_text = &text[r.clone()];
    let byte_col: usize = line_text
        .chars()
        .take(col.saturating_sub(1))
        .map(char::len_utf8)
        .sum();
    r.start + byte_col
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Names among `candidates` closest to `name` (for "did you mean" help).
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut scored: Vec<(f64, &str)> = candidates
        .map(|c| (strsim::normalized_damerau_levenshtein(name, c), c))
        .filter(|(s, _)| *s >= 0.6)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(3)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// "did you mean `a`, `b`?" or a fallback text.
pub fn did_you_mean(suggestions: &[String], fallback: &str) -> String {
    if suggestions.is_empty() {
        fallback.to_string()
    } else {
        let list: Vec<String> = suggestions.iter().map(|s| format!("`{s}`")).collect();
        format!("did you mean {}?", list.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_offset_round_trip() {
        let t = "ab\ncdé\nf";
        assert_eq!(line_range(t, 2), 3..7);
        assert_eq!(line_col(t, 4), (2, 2));
        assert_eq!(offset_of(t, 2, 3), 5);
        assert_eq!(line_range(t, 9), 9..9);
    }

    #[test]
    fn closest_names() {
        let c = ["stg_users", "stg_sessions", "fct_daily_metrics"];
        assert_eq!(closest("stg_user", c.iter().copied()), vec!["stg_users"]);
        assert!(closest("zzz", c.iter().copied()).is_empty());
    }
}
