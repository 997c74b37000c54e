//! `serve.yml`: who may call `pm serve` and how much it answers. dbt never
//! reads the file, so a project that serves its metrics still runs under
//! dbt unchanged. Secrets are not here: the token key comes from the
//! environment (`PM_JWT_SECRET` or the file `PM_JWT_PUBLIC_KEY_FILE` names).

use pm_core::error::{Code, Problem};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where a project configures `pm serve`, relative to its root.
pub const SERVE_FILE: &str = "serve.yml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeFile {
    #[allow(dead_code)]
    version: Option<u32>,
    serve: ServeConfig,
}

/// A token's signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Algorithm {
    HS256,
    RS256,
    ES256,
}

/// How `pm serve` checks callers and bounds its answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// The PostgreSQL roles a token may name; any other is refused (403).
    pub roles: Vec<String>,
    /// The claim that names the role.
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
    /// The tokens' algorithm: HS256 (with `PM_JWT_SECRET`), RS256 or ES256
    /// (with the public key in `PM_JWT_PUBLIC_KEY_FILE`).
    #[serde(default)]
    pub algorithm: Option<Algorithm>,
    /// When set, a token's `iss` must be this.
    #[serde(default)]
    pub issuer: Option<String>,
    /// When set, a token's `aud` must include this.
    #[serde(default)]
    pub audience: Option<String>,
    /// Seconds of clock difference allowed on `exp` and `nbf`.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// Machine clients: a token whose `sub` is listed gets that role
    /// whatever its role claim says (a claim naming another is refused).
    #[serde(default)]
    pub pinned_roles: BTreeMap<String, String>,
    /// At most this many rows per answer; the answer says when it was cut.
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    /// Each request's statement_timeout.
    #[serde(default = "default_statement_timeout")]
    pub statement_timeout_ms: u64,
    /// Connections to the warehouse, at most.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Answers kept (per query and role); 0 keeps none.
    #[serde(default = "default_cache_entries")]
    pub cache_entries: usize,
}

fn default_role_claim() -> String {
    "role".into()
}
fn default_leeway() -> u64 {
    30
}
fn default_max_rows() -> usize {
    10_000
}
fn default_statement_timeout() -> u64 {
    10_000
}
fn default_pool_size() -> usize {
    4
}
fn default_cache_entries() -> usize {
    1_000
}

/// A role name as PostgreSQL's unquoted identifiers are: it is quoted when
/// sent anyway, but a configuration naming `"x; drop"` is a mistake.
fn is_plain_role(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Parses and checks `serve.yml`; every error points at its line.
pub fn parse(text: &Arc<str>) -> Result<ServeConfig, Problem> {
    let file: ServeFile = serde_yaml::from_str(text).map_err(|e| {
        let (offset, short) = pm_core::loader::yaml::error_at(text, &e);
        Problem::new(Code::ServeConfig, format!("invalid {SERVE_FILE}: {short}"))
            .in_file(SERVE_FILE, text.clone())
            .label(offset..offset + 1, short)
            .help("see the README's `pm serve` section for the keys serve.yml takes")
    })?;
    let config = file.serve;
    let at = |value: &str, message: String, help: &str| {
        let line = text
            .lines()
            .position(|l| l.contains(value))
            .map_or(1, |i| i + 1);
        Problem::new(Code::ServeConfig, message)
            .in_file(SERVE_FILE, text.clone())
            .label(pm_core::error::line_range(text, line), "here")
            .help(help.to_string())
    };
    if config.roles.is_empty() {
        return Err(at(
            "roles",
            "serve.yml lists no roles: no caller could be answered".into(),
            "list the PostgreSQL roles tokens may name: `roles: [reader, analyst]`",
        ));
    }
    for role in config.roles.iter().chain(config.pinned_roles.values()) {
        if !is_plain_role(role) {
            return Err(at(
                role,
                format!("`{role}` is not a plain role name"),
                "role names are lower-case letters, digits and underscores",
            ));
        }
    }
    for (subject, role) in &config.pinned_roles {
        if !config.roles.contains(role) {
            return Err(at(
                subject,
                format!(
                    "token subject `{subject}` is pinned to `{role}`, which `roles` does not list"
                ),
                "add the role to `roles`, or pin the subject to a listed one",
            ));
        }
    }
    if config.max_rows == 0 || config.pool_size == 0 || config.statement_timeout_ms == 0 {
        return Err(at(
            "serve",
            "max_rows, pool_size and statement_timeout_ms must be above 0".into(),
            "leave a key out for its default",
        ));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::parse;
    use std::sync::Arc;

    #[test]
    fn a_role_outside_the_list_or_not_plain_is_refused_at_its_line() {
        let text: Arc<str> =
            "serve:\n  roles: [reader]\n  pinned_roles:\n    dashboard: finance\n".into();
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("pinned to `finance`"), "{}", e.message);
        let text: Arc<str> = "serve:\n  roles: [reader, \"x; drop\"]\n".into();
        assert!(parse(&text)
            .unwrap_err()
            .message
            .contains("not a plain role"));
        let text: Arc<str> = "serve:\n  roles: [reader]\n  max_row: 5\n".into();
        assert!(parse(&text).unwrap_err().message.contains("max_row"));
        let ok: Arc<str> = "version: 1\nserve:\n  roles: [reader]\n  audience: pm\n".into();
        let c = parse(&ok).unwrap();
        assert_eq!(c.max_rows, 10_000);
        assert_eq!(c.role_claim, "role");
    }
}
