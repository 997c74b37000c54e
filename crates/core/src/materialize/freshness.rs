//! Source freshness: the query that finds a source table's newest row, and
//! the verdict against its `warn_after` / `error_after`. Pure.

use crate::error::{Code, Problem};
use crate::manifest::Node;
use serde_json::Value as Json;

/// `{count: 12, period: hour}`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub count: f64,
    pub seconds_per: f64,
}

impl Threshold {
    pub fn seconds(&self) -> f64 {
        self.count * self.seconds_per
    }
}

/// A source table's freshness criteria.
#[derive(Debug, Clone, PartialEq)]
pub struct Criteria {
    pub loaded_at_field: String,
    pub warn_after: Option<Threshold>,
    pub error_after: Option<Threshold>,
    pub filter: Option<String>,
    /// As given, for sources.json.
    pub raw: Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Pass,
    Warn,
    Error,
}

impl Freshness {
    pub fn as_str(self) -> &'static str {
        match self {
            Freshness::Pass => "pass",
            Freshness::Warn => "warn",
            Freshness::Error => "error",
        }
    }
}

fn threshold(node: &Node, v: Option<&Json>, key: &str) -> Result<Option<Threshold>, Problem> {
    let Some(Json::Object(o)) = v else {
        return Ok(None);
    };
    let count = o.get("count").and_then(|c| {
        c.as_f64()
            .or_else(|| c.as_str().and_then(|s| s.trim().parse().ok()))
    });
    let period = o.get("period").and_then(Json::as_str);
    let bad = |what: String| {
        Problem::new(
            Code::FreshnessConfig,
            format!("source `{}`: {key} {what}", node.name),
        )
        .help(format!(
            "write it like `{key}: {{count: 12, period: hour}}` (period: minute, hour or day)"
        ))
    };
    let (Some(count), Some(period)) = (count, period) else {
        // dbt: a threshold without count or period is no threshold.
        if o.get("count").is_none_or(Json::is_null) && o.get("period").is_none_or(Json::is_null) {
            return Ok(None);
        }
        return Err(bad("needs both a count and a period".into()));
    };
    let seconds_per = match period {
        "minute" => 60.0,
        "hour" => 3600.0,
        "day" => 86400.0,
        other => return Err(bad(format!("has period `{other}`"))),
    };
    Ok(Some(Threshold { count, seconds_per }))
}

/// The criteria of a source node, or None when it has no freshness check
/// (no `loaded_at_field`, or neither threshold).
pub fn criteria(node: &Node) -> Result<Option<Criteria>, Problem> {
    let Some(src) = &node.source else {
        return Ok(None);
    };
    let Some(field) = src.loaded_at_field.clone().filter(|f| !f.trim().is_empty()) else {
        return Ok(None);
    };
    let f = &src.freshness;
    let warn_after = threshold(node, f.get("warn_after"), "warn_after")?;
    let error_after = threshold(node, f.get("error_after"), "error_after")?;
    if warn_after.is_none() && error_after.is_none() {
        return Ok(None);
    }
    Ok(Some(Criteria {
        loaded_at_field: field,
        warn_after,
        error_after,
        filter: f
            .get("filter")
            .and_then(Json::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string),
        raw: f.clone(),
    }))
}

/// The newest load time (as UTC text) and its age in seconds. The session
/// runs in UTC, so a `timestamp` column is read as UTC, as dbt does.
pub fn query(relation: &str, c: &Criteria) -> String {
    let filter = c
        .filter
        .as_ref()
        .map(|f| format!("\nwhere {f}"))
        .unwrap_or_default();
    format!(
        "select to_char(max_loaded_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), \
         to_char(now(), 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), \
         extract(epoch from now() - max_loaded_at)::float8\n\
         from (select max({field})::timestamptz as max_loaded_at from {relation}{filter}) pm_freshness",
        field = c.loaded_at_field
    )
}

/// dbt's verdict: error past error_after, else warn past warn_after.
pub fn judge(c: &Criteria, age_seconds: f64) -> Freshness {
    if c.error_after.is_some_and(|t| age_seconds > t.seconds()) {
        Freshness::Error
    } else if c.warn_after.is_some_and(|t| age_seconds > t.seconds()) {
        Freshness::Warn
    } else {
        Freshness::Pass
    }
}

/// `2d 3h`, `5h 12m`, `40m 2s`.
pub fn human_age(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    let (d, h, m, sec) = (s / 86400, s % 86400 / 3600, s % 3600 / 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m {sec}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(warn: Option<f64>, error: Option<f64>) -> Criteria {
        let t = |h: f64| Threshold {
            count: h,
            seconds_per: 3600.0,
        };
        Criteria {
            loaded_at_field: "loaded_at".into(),
            warn_after: warn.map(t),
            error_after: error.map(t),
            filter: None,
            raw: Json::Null,
        }
    }

    #[test]
    fn verdicts() {
        let both = c(Some(1.0), Some(24.0));
        assert_eq!(judge(&both, 600.0), Freshness::Pass);
        assert_eq!(judge(&both, 7200.0), Freshness::Warn);
        assert_eq!(judge(&both, 90000.0), Freshness::Error);
        assert_eq!(judge(&c(None, Some(1.0)), 7200.0), Freshness::Error);
        assert_eq!(judge(&c(Some(1.0), None), 1e9), Freshness::Warn);
        assert_eq!(human_age(93784.0), "1d 2h");
        assert_eq!(human_age(3725.0), "1h 2m");
    }

    #[test]
    fn the_query_filters() {
        let mut k = c(Some(1.0), None);
        k.filter = Some("kind = 'x'".into());
        let q = query("\"pm\".\"raw\".\"events\"", &k);
        assert!(q.ends_with("from (select max(loaded_at)::timestamptz as max_loaded_at from \"pm\".\"raw\".\"events\"\nwhere kind = 'x') pm_freshness"), "{q}");
    }
}
