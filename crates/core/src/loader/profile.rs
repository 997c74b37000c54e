//! profiles.yml: which warehouse a target points at. Only the facts compilation
//! needs are resolved here (name, type, database, schema, threads, user, host);
//! the connection itself belongs to the adapter.

use super::yaml;
use crate::error::{Code, Problem, Result};
use crate::settings::Settings;
use serde_json::Value as Json;
use std::path::Path;
use std::sync::Arc;

/// A password: shown as `****` by Debug, never serialised.
#[derive(Clone, PartialEq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("****")
    }
}

/// The resolved target, as templates see it through `target`.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    pub profile_name: String,
    pub kind: String,
    pub database: String,
    pub schema: String,
    pub threads: usize,
    pub user: String,
    pub host: String,
    pub port: u16,
    /// Where the target came from (a profiles.yml path, or the embedded default).
    pub origin: String,
    /// The output's other keys, password and secrets left out.
    pub extra: serde_json::Map<String, Json>,
    pub password: Option<Secret>,
    /// `PM_DATABASE_URL`: the server that replaces the target's (its
    /// database, user, host and port are copied onto the fields above).
    pub database_url: Option<String>,
    /// Why the embedded database stands in for a profile the project names
    /// (one line, said once per command).
    pub fallback: Option<String>,
}

impl Target {
    /// The embedded local PostgreSQL that pm runs when no profile is configured.
    pub fn embedded(profile_name: &str) -> Target {
        Target {
            name: "dev".into(),
            profile_name: profile_name.into(),
            kind: "postgres".into(),
            database: "pm".into(),
            schema: "public".into(),
            threads: 4,
            user: "postgres".into(),
            host: "localhost".into(),
            port: 5432,
            origin: "embedded".into(),
            database_url: None,
            fallback: None,
            extra: Default::default(),
            password: None,
        }
    }

    /// `target` in templates (no secrets).
    pub fn to_json(&self) -> Json {
        let mut m = self.extra.clone();
        for (k, v) in [
            ("name", Json::from(self.name.clone())),
            ("target_name", Json::from(self.name.clone())),
            ("profile_name", Json::from(self.profile_name.clone())),
            ("type", Json::from(self.kind.clone())),
            ("database", Json::from(self.database.clone())),
            ("dbname", Json::from(self.database.clone())),
            ("schema", Json::from(self.schema.clone())),
            ("threads", Json::from(self.threads)),
            ("user", Json::from(self.user.clone())),
            ("host", Json::from(self.host.clone())),
            ("port", Json::from(self.port)),
        ] {
            m.insert(k.into(), v);
        }
        Json::Object(m)
    }
}

const SECRET_KEYS: &[&str] = &[
    "password",
    "pass",
    "token",
    "private_key",
    "keyfile",
    "secret",
];

/// Resolves the target for `profile_name` (the project's `profile:`).
/// With no profiles.yml, or no entry for the profile, and no `--target`
/// asked for, the embedded default is used.
pub fn resolve(
    settings: &Settings,
    project_root: &Path,
    profile_name: Option<&str>,
) -> Result<Target> {
    let (profiles_dir, target_name, threads) = (
        settings.profiles_dir.as_deref(),
        settings.target_name.as_deref(),
        settings.threads,
    );
    let named = profile_name.is_some();
    let profile_name = profile_name.unwrap_or("default");
    let dirs = settings.profile_dirs(project_root);
    let found = dirs
        .iter()
        .map(|d| d.join("profiles.yml"))
        .find(|p| p.is_file());
    let Some(path) = found else {
        if let Some(d) = profiles_dir {
            return Err(Problem::new(
                Code::ProfileNotFound,
                format!("no profiles.yml in {}", d.display()),
            )
            .help("create profiles.yml there, or leave out --profiles-dir to use the embedded local PostgreSQL")
            .into());
        }
        let mut t = Target::embedded(profile_name);
        if let Some(n) = target_name {
            t.name = n.to_string();
        }
        if let Some(n) = threads {
            t.threads = n;
        }
        if named {
            let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            t.fallback = Some(format!(
                "profile `{profile_name}` is in no profiles.yml (looked in {}); using pm's embedded local PostgreSQL",
                looked.join(", ")
            ));
        }
        return Ok(t);
    };
    let shown = path.display().to_string();
    let text: Arc<str> = std::fs::read_to_string(&path)
        .map_err(|e| Problem::new(Code::ProfileRead, format!("cannot read {shown}: {e}")))?
        .into();
    // What errors show of the file: secrets masked, every other byte in place.
    let shown_text: Arc<str> = redact_secrets(&text).into();
    let doc = yaml::parse(&shown, &text).map_err(|p| p.with_source_text(shown_text.clone()))?;
    let text = shown_text;
    if doc.as_object().is_none_or(|d| d.is_empty()) {
        return Err(Problem::new(
            Code::ProfileShape,
            format!(
                "{shown} holds no profiles: it must map each profile's name to its `target:` and `outputs:`"
            ),
        )
        .in_file(&shown, text.clone())
        .label_line(1, "expected `<profile name>:` mappings here")
        .help(format!("write `{profile_name}:` with `target: dev` and `outputs: {{dev: {{type: postgres, host: ...}}}}`, or delete the file to use the embedded local PostgreSQL"))
        .into());
    }
    let Some(profile) = doc.get(profile_name) else {
        if target_name.is_none() {
            let mut t = Target::embedded(profile_name);
            if let Some(n) = threads {
                t.threads = n;
            }
            if named {
                t.fallback = Some(format!(
                    "profile `{profile_name}` is not in {shown}; using pm's embedded local PostgreSQL"
                ));
            }
            return Ok(t);
        }
        return Err(Problem::new(
            Code::ProfileMissing,
            format!("profile `{profile_name}` is not in {shown}"),
        )
        .in_file(&shown, text.clone())
        .label(0..0, "no such profile here")
        .help(format!("add a `{profile_name}:` entry with `target:` and `outputs:`, or set `profile:` in the project file"))
        .into());
    };
    let chosen = target_name
        .map(str::to_string)
        .or_else(|| profile.get("target").and_then(yaml::as_string))
        .unwrap_or_else(|| "dev".into());
    let outputs = profile.get("outputs").and_then(Json::as_object);
    let Some(out) = outputs
        .and_then(|o| o.get(&chosen))
        .and_then(Json::as_object)
    else {
        let names: Vec<String> = outputs
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        let line = yaml::line_of_entry(&text, "target", &chosen)
            .or_else(|| yaml::line_of_key(&text, profile_name))
            .unwrap_or(1);
        return Err(Problem::new(
            Code::ProfileTarget,
            format!("target `{chosen}` is not an output of profile `{profile_name}` in {shown}"),
        )
        .in_file(&shown, text.clone())
        .label_line(line, "this target")
        .help(if names.is_empty() {
            "add an `outputs:` mapping with this target".to_string()
        } else {
            format!("known targets: {}", names.join(", "))
        })
        .into());
    };
    let vals = render_output(out, &shown, &text, &chosen)?;
    target_of_output(&vals, &shown, &text, chosen, profile_name, threads)
}

/// An output's values with `{{ env_var(...) }}` rendered.
fn render_output(
    out: &serde_json::Map<String, Json>,
    shown: &str,
    text: &Arc<str>,
    chosen: &str,
) -> Result<serde_json::Map<String, Json>> {
    let mut vals = serde_json::Map::new();
    for (k, v) in out {
        let v = match v {
            Json::String(s) if s.contains("{{") => {
                let rendered = render_env(s).map_err(|m| {
                    Problem::new(Code::ProfileRender, format!("in {shown}, `{k}`: {m}"))
                        .in_file(shown, text.clone())
                        .label_line(line_in_output(text, chosen, k), "here")
                        .help("set the environment variable, or give env_var() a default: {{ env_var('X', 'default') }}")
                })?;
                native_value(s, rendered)
            }
            other => other.clone(),
        };
        vals.insert(k.clone(), v);
    }
    Ok(vals)
}

/// The target an output describes, its values checked.
fn target_of_output(
    vals: &serde_json::Map<String, Json>,
    shown: &str,
    text: &Arc<str>,
    chosen: String,
    profile_name: &str,
    threads: Option<usize>,
) -> Result<Target> {
    let get = |k: &str| vals.get(k).and_then(yaml::as_string);
    let at = |key: &str| line_in_output(text, &chosen, key);
    let wrong = |key: &str, msg: String, help: &str| -> crate::error::Problems {
        Problem::new(
            Code::ProfileValue,
            format!("{shown}, target `{chosen}`: {msg}"),
        )
        .in_file(shown, text.clone())
        .label_line(at(key), msg)
        .help(help.to_string())
        .into()
    };
    // A key given a list or a mapping is an error, not a value left out
    // (`host: [a, b]` would otherwise connect to localhost).
    for key in [
        "type",
        "dbname",
        "database",
        "schema",
        "user",
        "host",
        "password",
        "pass",
        "role",
        "search_path",
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "application_name",
    ] {
        if let Some(v) = vals.get(key).filter(|v| v.is_array() || v.is_object()) {
            return Err(wrong(
                key,
                format!(
                    "{key} is {}, not a single value",
                    if v.is_array() { "a list" } else { "a mapping" }
                ),
                "give one value, e.g. host: db.example.com",
            ));
        }
    }
    let kind = get("type").unwrap_or_else(|| "postgres".into());
    if kind != "postgres" && kind != "embedded" {
        return Err(wrong(
            "type",
            format!("type `{kind}` is not supported"),
            "pm builds on PostgreSQL: use type: postgres, or type: embedded for pm's own local PostgreSQL",
        ));
    }
    let number = |key: &str, range: std::ops::RangeInclusive<u64>| -> Result<Option<u64>> {
        let Some(v) = vals.get(key) else {
            return Ok(None);
        };
        let n = v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|n| range.contains(n));
        match n {
            Some(n) => Ok(Some(n)),
            None => Err(wrong(
                key,
                format!(
                    "{key} `{}` is not a whole number from {} to {}",
                    yaml::as_string(v).unwrap_or_else(|| v.to_string()),
                    range.start(),
                    range.end()
                ),
                "give it as a plain number",
            )),
        }
    };
    let port = number("port", 1..=65535)?.unwrap_or(5432) as u16;
    let file_threads = number("threads", 1..=1024)?;
    if kind == "embedded" {
        // pm's own cluster under .pm/, named explicitly (what `pm init` writes).
        let mut t = Target::embedded(profile_name);
        t.name = chosen;
        if let Some(schema) = get("schema") {
            t.schema = schema;
        }
        t.threads = threads.or(file_threads.map(|t| t as usize)).unwrap_or(4);
        return Ok(t);
    }
    number("connect_timeout", 0..=86_400)?;
    number("keepalives_idle", 0..=86_400)?;
    let mut extra = serde_json::Map::new();
    for (k, v) in vals {
        if !SECRET_KEYS.contains(&k.as_str()) {
            extra.insert(k.clone(), v.clone());
        }
    }
    Ok(Target {
        name: chosen,
        profile_name: profile_name.to_string(),
        kind,
        database: get("dbname")
            .or_else(|| get("database"))
            .unwrap_or_else(|| "postgres".into()),
        schema: get("schema").unwrap_or_else(|| "public".into()),
        threads: threads.or(file_threads.map(|t| t as usize)).unwrap_or(4),
        user: get("user").unwrap_or_default(),
        host: get("host").unwrap_or_else(|| "localhost".into()),
        port,
        origin: shown.to_string(),
        database_url: None,
        fallback: None,
        extra,
        password: get("password").or_else(|| get("pass")).map(Secret),
    })
}

/// The 1-based line of `key:` inside output `target` (else the first such
/// key in the file, else line 1).
fn line_in_output(text: &str, target: &str, key: &str) -> usize {
    let finder = yaml::EntryFinder::new(text);
    let header = finder.lines().iter().position(|l| {
        let t = l.trim();
        t.strip_suffix(':')
            .map(|k| k.trim_matches(|c| c == '"' || c == '\''))
            == Some(target)
    });
    header
        .and_then(|h| {
            finder.lines()[h + 1..]
                .iter()
                .position(|l| yaml::line_of_key(l, key).is_some())
                .map(|i| h + 2 + i)
        })
        .or_else(|| yaml::line_of_key(text, key))
        .unwrap_or(1)
}

/// A profiles.yml text with the value of every secret key (`password:`,
/// `token:`, ...) replaced by `****` and spaces, byte for byte, so that an
/// error's snippet never shows a secret and its positions stay right.
pub fn redact_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let t = body.trim_start();
        let t = t.strip_prefix("- ").map(str::trim_start).unwrap_or(t);
        let key_end = t.find(':').unwrap_or(0);
        let key = t[..key_end].trim().trim_matches(|c| c == '"' || c == '\'');
        if key_end == 0 || !SECRET_KEYS.contains(&key.to_ascii_lowercase().as_str()) {
            out.push_str(line);
            continue;
        }
        let value_at = body.len() - t.len() + key_end + 1;
        let value = &body[value_at..];
        let lead = value.len() - value.trim_start().len();
        let secret_len = value.len() - lead;
        out.push_str(&body[..value_at + lead]);
        if secret_len > 0 {
            let stars = secret_len.min(4);
            out.push_str(&"*".repeat(stars));
            out.push_str(&" ".repeat(secret_len - stars));
        }
        out.push_str(&line[body.len()..]);
    }
    out
}

/// A rendered profile value as dbt keeps it: text, unless the template ends
/// in `as_number`, `as_bool` or `as_native`, which make it the number, the
/// boolean or the YAML value the text spells.
fn native_value(template: &str, rendered: String) -> Json {
    let native = ["as_number", "as_bool", "as_native"]
        .iter()
        .any(|f| template.contains(f));
    if !native {
        return Json::String(rendered);
    }
    let text: Arc<str> = Arc::from(rendered.as_str());
    match yaml::parse("profiles.yml", &text) {
        Ok(v @ (Json::Number(_) | Json::Bool(_) | Json::Array(_) | Json::Object(_))) => v,
        _ => Json::String(rendered),
    }
}

/// Renders `{{ env_var('X', 'default') }}` in a profile value, with dbt's
/// `as_number`, `as_bool`, `as_native` and `as_text` filters.
pub fn render_env(s: &str) -> std::result::Result<String, String> {
    let mut env = minijinja::Environment::new();
    for filter in ["as_number", "as_bool", "as_native", "as_text"] {
        env.add_filter(filter, |v: minijinja::Value| v);
    }
    env.add_function(
        "env_var",
        |name: &str, default: Option<minijinja::Value>| match std::env::var(name) {
            Ok(v) => Ok(minijinja::Value::from(v)),
            Err(_) => default.ok_or_else(|| {
                minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    format!("env_var('{name}') is not set and has no default"),
                )
            }),
        },
    );
    env.render_str(s, ()).map_err(|e| {
        e.detail()
            .map(str::to_string)
            .unwrap_or_else(|| e.to_string())
    })
}
