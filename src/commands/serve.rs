//! `pm serve`: the project's metrics over HTTP (pm-serve), configured by
//! `serve.yml`, with the token key from the environment; or, with
//! `--mint-token ROLE`, a token for tests and scripts.

use super::Session;
use crate::cli::ServeArgs;
use pm_core::error::{Code, Problem, Problems, Result};
use pm_core::output::{Log, LogFormat};
use pm_core::settings::Settings;
use pm_serve::auth::{self, TokenKey};
use pm_serve::config::{self, SERVE_FILE};
use std::io::Write;
use std::sync::Arc;

pub fn run(g: &Settings, args: &ServeArgs, log: Log) -> Result<i32> {
    let s = Session::open(g, "serve", log)?;
    let config = read_config(&s)?;
    if let Some(role) = &args.mint_token {
        return mint(&config, role, args);
    }
    // The key is read before anything starts: a server without one answers nobody.
    let key = token_key()?;
    let c = s.compile()?;
    let endpoint = s.endpoint()?;
    let title = c.manifest.project_name.clone();
    // The server lives as long as the process: its nodes are kept for good.
    let nodes: &'static [pm_core::manifest::Node] = Box::leak(c.manifest.nodes.into_boxed_slice());
    pm_serve::serve(pm_serve::ServeOptions {
        host: args.host.clone(),
        port: args.port,
        nodes,
        endpoint,
        config,
        key,
        json_log: log.format == LogFormat::Json,
        title,
    })?;
    Ok(0)
}

fn read_config(s: &Session) -> Result<config::ServeConfig> {
    let path = s.project.root.join(SERVE_FILE);
    let text: Arc<str> = std::fs::read_to_string(&path)
        .map_err(|e| {
            Problems::from(
                Problem::new(Code::ServeConfig, format!("cannot read {}: {e}", path.display()))
                    .help(format!(
                        "pm serve needs {SERVE_FILE} beside dbt_project.yml, listing the roles tokens may name:\nserve:\n  roles: [reader, analyst]"
                    )),
            )
        })?
        .into();
    Ok(config::parse(&text)?)
}

/// `PM_JWT_SECRET` (HS256) or the PEM file `PM_JWT_PUBLIC_KEY_FILE` names;
/// read here, where it is used, never kept in Settings (which prints with
/// Debug) nor taken from the command line.
fn token_key() -> Result<TokenKey> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    match (var("PM_JWT_SECRET"), var("PM_JWT_PUBLIC_KEY_FILE")) {
        (Some(_), Some(_)) => Err(Problem::new(
            Code::ServeKey,
            "both PM_JWT_SECRET and PM_JWT_PUBLIC_KEY_FILE are set: tokens are checked one way",
        )
        .help("unset the one you do not use")
        .into()),
        (Some(secret), None) => Ok(TokenKey::Secret(secret.into_bytes())),
        (None, Some(file)) => std::fs::read(&file).map(TokenKey::PublicKeyPem).map_err(|e| {
            Problem::new(Code::ServeKey, format!("cannot read PM_JWT_PUBLIC_KEY_FILE {file}: {e}")).into()
        }),
        (None, None) => Err(Problem::new(
            Code::ServeKey,
            "no token key: set PM_JWT_SECRET (HS256) or PM_JWT_PUBLIC_KEY_FILE (RS256, ES256)",
        )
        .help("e.g. `export PM_JWT_SECRET=$(openssl rand -hex 32)`; then `pm serve --mint-token reader` prints a token")
        .into()),
    }
}

fn mint(config: &config::ServeConfig, role: &str, args: &ServeArgs) -> Result<i32> {
    let Some(secret) = std::env::var("PM_JWT_SECRET")
        .ok()
        .filter(|v| !v.trim().is_empty())
    else {
        return Err(Problem::new(
            Code::ServeToken,
            "--mint-token signs with PM_JWT_SECRET, which is not set",
        )
        .help("RS256 and ES256 tokens come from whoever holds the private key")
        .into());
    };
    if !config.roles.iter().any(|r| r == role) {
        return Err(Problem::new(
            Code::ServeToken,
            format!(
                "role `{role}` is not in serve.yml's roles ({})",
                config.roles.join(", ")
            ),
        )
        .into());
    }
    let token = auth::mint(
        config,
        secret.as_bytes(),
        &auth::Minted {
            role,
            subject: args.subject.as_deref(),
            expires_in_seconds: args.expires_in,
        },
    )?;
    let _ = writeln!(std::io::stdout().lock(), "{token}");
    Ok(0)
}
