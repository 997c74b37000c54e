//! profiles.yml: which warehouse a target points at. Only the facts compilation
//! needs are resolved here (name, type, database, schema, threads, user, host);
//! the connection itself belongs to the adapter.

use super::yaml;
use crate::error::{Problem, Result};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
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

/// Where profiles.yml is looked for, first match wins: `--profiles-dir`,
/// `PM_PROFILES_DIR`, the project folder, `~/.pm`, `~/.dbt`.
pub fn candidate_dirs(project_root: &Path, profiles_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(d) = profiles_dir {
        v.push(d.to_path_buf());
    }
    if let Ok(d) = std::env::var("PM_PROFILES_DIR") {
        v.push(PathBuf::from(d));
    }
    v.push(project_root.to_path_buf());
    if let Some(home) = std::env::var_os("HOME") {
        v.push(PathBuf::from(&home).join(".pm"));
        v.push(PathBuf::from(home).join(".dbt"));
    }
    v
}

/// Resolves the target for `profile_name` (the project's `profile:`).
/// With no profiles.yml, or no entry for the profile, and no `--target`
/// asked for, the embedded default is used.
pub fn resolve(
    project_root: &Path,
    profiles_dir: Option<&Path>,
    profile_name: Option<&str>,
    target_name: Option<&str>,
    threads: Option<usize>,
) -> Result<Target> {
    let profile_name = profile_name.unwrap_or("default");
    let found = candidate_dirs(project_root, profiles_dir)
        .into_iter()
        .map(|d| d.join("profiles.yml"))
        .find(|p| p.is_file());
    let Some(path) = found else {
        if let Some(d) = profiles_dir {
            return Err(Problem::new(
                "profile::not_found",
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
        return Ok(t);
    };
    let shown = path.display().to_string();
    let text: Arc<str> = std::fs::read_to_string(&path)
        .map_err(|e| Problem::new("profile::read", format!("cannot read {shown}: {e}")))?
        .into();
    let doc = yaml::parse(&shown, &text)?;
    let Some(profile) = doc.get(profile_name) else {
        if target_name.is_none() {
            let mut t = Target::embedded(profile_name);
            if let Some(n) = threads {
                t.threads = n;
            }
            return Ok(t);
        }
        return Err(Problem::new(
            "profile::missing",
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
            "profile::target",
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
    let mut vals = serde_json::Map::new();
    for (k, v) in out {
        let v = match v {
            Json::String(s) if s.contains("{{") => Json::String(render_env(s).map_err(|m| {
                Problem::new("profile::render", format!("in {shown}, `{k}`: {m}"))
                    .in_file(&shown, text.clone())
                    .label_line(yaml::line_of_key(&text, k).unwrap_or(1), "here")
                    .help("set the environment variable, or give env_var() a default: {{ env_var('X', 'default') }}")
            })?),
            other => other.clone(),
        };
        vals.insert(k.clone(), v);
    }
    let get = |k: &str| vals.get(k).and_then(yaml::as_string);
    let kind = get("type").unwrap_or_else(|| "postgres".into());
    let mut extra = serde_json::Map::new();
    for (k, v) in &vals {
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
        threads: threads
            .or_else(|| get("threads").and_then(|t| t.parse().ok()))
            .unwrap_or(4),
        user: get("user").unwrap_or_default(),
        host: get("host").unwrap_or_else(|| "localhost".into()),
        port: get("port").and_then(|p| p.parse().ok()).unwrap_or(5432),
        origin: shown,
        extra,
        password: get("password").or_else(|| get("pass")).map(Secret),
    })
}

/// Renders `{{ env_var('X', 'default') }}` in a profile value.
pub fn render_env(s: &str) -> std::result::Result<String, String> {
    let mut env = minijinja::Environment::new();
    env.add_function("env_var", crate::compile::context::env_var);
    env.render_str(s, ()).map_err(|e| {
        e.detail()
            .map(str::to_string)
            .unwrap_or_else(|| e.to_string())
    })
}
