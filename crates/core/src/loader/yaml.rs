//! YAML reading with errors that point at the line.

use crate::error::{offset_of, Code, Problem};
use serde_json::Value as Json;
use std::sync::Arc;

/// Where in `text` a YAML error is (a byte offset), and its message without
/// the position serde_yaml appends.
pub fn error_at(text: &str, e: &serde_yaml::Error) -> (usize, String) {
    let offset = e
        .location()
        .map(|l| offset_of(text, l.line(), l.column()))
        .unwrap_or(0);
    let msg = e.to_string();
    let short = msg.split(" at line ").next().unwrap_or(&msg).to_string();
    (offset, short)
}

/// Parses YAML text into JSON values (anchors and `<<` merge keys applied).
/// An empty file is an empty mapping.
pub fn parse(name: &str, text: &Arc<str>) -> Result<Json, Problem> {
    if text.trim().is_empty() {
        return Ok(Json::Object(Default::default()));
    }
    let syntax_error = |e: serde_yaml::Error| {
        let (offset, short) = error_at(text, &e);
        // A duplicate key: the error is placed at its mapping; mark the second key.
        let duplicate = short
            .split_once("duplicate key `")
            .and_then(|(_, rest)| rest.split_once('`'))
            .map(|(key, _)| key.to_string());
        if let Some(key) = duplicate {
            let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
            let second = text[line_start..]
                .split_inclusive('\n')
                .scan(line_start, |at, line| {
                    let here = *at;
                    *at += line.len();
                    Some((here, line))
                })
                .filter(|(_, line)| value_of(line, &key).is_some())
                .nth(1)
                .map_or(offset, |(at, line)| {
                    at + line.len() - line.trim_start().len()
                });
            return Problem::new(
                Code::YamlDuplicateKey,
                format!("`{key}` appears twice in one mapping in {name}"),
            )
            .in_file(name, text.clone())
            .label(second..second + key.len(), "second time")
            .help("keep one of them: YAML would silently use the last");
        }
        Problem::new(Code::YamlSyntax, format!("invalid YAML in {name}: {short}"))
            .in_file(name, text.clone())
            .label(offset..offset + 1, short)
            .help("fix the YAML syntax at the marked position (indentation, a missing colon or an unclosed quote are the usual causes)")
    };
    // Without merge keys, straight to JSON values: one pass instead of two.
    if !text.contains("<<") {
        return serde_yaml::from_str::<Strict>(text)
            .map(|s| s.0)
            .map_err(syntax_error);
    }
    // serde_yaml's own mappings refuse duplicate keys too.
    let mut value: serde_yaml::Value = serde_yaml::from_str(text).map_err(syntax_error)?;
    value.apply_merge().map_err(|e| {
        Problem::new(
            Code::YamlMerge,
            format!("invalid YAML merge key in {name}: {e}"),
        )
        .in_file(name, text.clone())
    })?;
    serde_json::to_value(&value).map_err(|e| {
        Problem::new(
            Code::YamlValue,
            format!("unsupported YAML value in {name}: {e}"),
        )
        .in_file(name, text.clone())
        .help("mapping keys must be strings or numbers")
    })
}

/// A JSON value read from YAML that refuses a mapping with a key twice (a
/// plain read keeps the last value, silently).
struct Strict(Json);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Json::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<Strict>()? {
            let key = match key.0 {
                Json::String(s) => s,
                other => other.to_string(),
            };
            let Strict(value) = map.next_value()?;
            if out.insert(key.clone(), value).is_some() {
                return Err(serde::de::Error::custom(format!(
                    "duplicate key `{key}` (the second would silently replace the first)"
                )));
            }
        }
        Ok(Json::Object(out))
    }
}

/// Finds `key: value` entries line by line, moving forward only: entries of a
/// properties file are looked up in document order, so the whole file is
/// scanned about once.
pub struct EntryFinder<'a> {
    lines: Vec<&'a str>,
}

impl<'a> EntryFinder<'a> {
    pub fn new(text: &'a str) -> Self {
        EntryFinder {
            lines: text.lines().collect(),
        }
    }

    pub fn lines(&self) -> &[&'a str] {
        &self.lines
    }

    /// The 1-based line of the first `key: value` at or after line `from`.
    pub fn find(&self, from: usize, key: &str, value: &str) -> Option<usize> {
        let start = from.saturating_sub(1).min(self.lines.len());
        self.lines[start..]
            .iter()
            .position(|l| is_entry(l, key, value))
            .map(|i| start + i + 1)
    }
}

/// The value after `key:` on a line (list dash, comment and quotes removed).
fn value_of<'l>(line: &'l str, key: &str) -> Option<&'l str> {
    let t = line.trim_start();
    let t = t.strip_prefix("- ").map(str::trim_start).unwrap_or(t);
    let rest = t.strip_prefix(key)?.trim_start().strip_prefix(':')?;
    let rest = rest.split(" #").next().unwrap_or(rest).trim();
    Some(rest.trim_matches(|c| c == '"' || c == '\''))
}

/// Whether a line's key is `key` (any value, a list item's too).
pub fn is_key_line(line: &str, key: &str) -> bool {
    value_of(line, key).is_some()
}

fn is_entry(line: &str, key: &str, value: &str) -> bool {
    value_of(line, key) == Some(value)
}

/// The 1-based line of the first `name: <value>` entry (list item or key) in a
/// YAML text, used to point errors at a resource's entry.
pub fn line_of_entry(text: &str, key: &str, value: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let t = line.trim_start();
            let t = t.strip_prefix("- ").map(str::trim_start).unwrap_or(t);
            let Some(rest) = t.strip_prefix(key) else {
                return false;
            };
            let Some(rest) = rest.trim_start().strip_prefix(':') else {
                return false;
            };
            let rest = rest.split(" #").next().unwrap_or(rest).trim();
            let rest = rest.trim_matches(|c| c == '"' || c == '\'');
            rest == value
        })
        .map(|i| i + 1)
}

/// The 1-based line of the first line whose key is `key:` (any value).
pub fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| is_key_line(line, key))
        .map(|i| i + 1)
}

/// A string value, accepting numbers and booleans written unquoted.
pub fn as_string(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A list of strings from a string or a list of strings.
pub fn string_list(v: Option<&Json>) -> Vec<String> {
    match v {
        Some(Json::Array(a)) => a.iter().filter_map(as_string).collect(),
        Some(other) => as_string(other).into_iter().collect(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_error_points_at_line() {
        let text: Arc<str> = Arc::from("models:\n  - name: a\n   bad: [\n");
        let err = parse("m.yml", &text).unwrap_err();
        assert!(
            err.message.starts_with("invalid YAML in m.yml"),
            "{}",
            err.message
        );
        assert!(err.location().is_some());
    }

    #[test]
    fn merge_keys_apply() {
        let text: Arc<str> = Arc::from("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n");
        let v = parse("a.yml", &text).unwrap();
        assert_eq!(v["other"]["x"], 1);
    }

    #[test]
    fn finds_entries() {
        let t = "models:\n  - name: a\n  - name: 'b' # c\n";
        assert_eq!(line_of_entry(t, "name", "b"), Some(3));
        assert_eq!(line_of_key(t, "models"), Some(1));
    }
}
