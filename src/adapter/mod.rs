//! Everything that talks to PostgreSQL: connections and pm's embedded
//! local cluster. The only module that sends SQL.

pub mod build;
pub mod embedded;
pub mod load;
pub mod meta;

use crate::error::{Problem, Result};
use crate::loader::profile::Target;
use std::path::Path;

/// Where a command's connection goes.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// `PM_DATABASE_URL`.
    Url(String),
    /// A profiles.yml output.
    Profile(Box<Target>),
    /// pm's own cluster for the project.
    Embedded(Box<embedded::Cluster>),
}

impl Endpoint {
    /// `PM_DATABASE_URL` wins; then a configured target; else the embedded cluster.
    pub fn resolve(root: &Path, target: &Target) -> Result<Endpoint> {
        if let Ok(url) = std::env::var("PM_DATABASE_URL") {
            if !url.is_empty() {
                return Ok(Endpoint::Url(url));
            }
        }
        if target.origin != "embedded" {
            return Ok(Endpoint::Profile(Box::new(target.clone())));
        }
        Ok(Endpoint::Embedded(Box::new(
            embedded::Cluster::for_project(root)?,
        )))
    }

    /// Where it points, with no secrets.
    pub fn describe(&self) -> String {
        match self {
            Endpoint::Url(u) => format!("PM_DATABASE_URL ({})", mask_url(u)),
            Endpoint::Profile(t) => format!(
                "profile {} target {} ({}@{}:{}/{}, from {})",
                t.profile_name, t.name, t.user, t.host, t.port, t.database, t.origin
            ),
            Endpoint::Embedded(c) => format!("embedded PostgreSQL ({})", c.url()),
        }
    }

    fn config(&self) -> Result<tokio_postgres::Config> {
        match self {
            Endpoint::Url(u) => u.parse::<tokio_postgres::Config>().map_err(|e| {
                Problem::new(
                    "connect::url",
                    format!("PM_DATABASE_URL is not a valid connection string: {e}"),
                )
                .help("write it like postgresql://user:password@host:5432/dbname")
                .into()
            }),
            Endpoint::Profile(t) => {
                let mut c = tokio_postgres::Config::new();
                c.host(&t.host)
                    .port(t.port)
                    .user(&t.user)
                    .dbname(&t.database)
                    .application_name("pm");
                if let Some(p) = &t.password {
                    c.password(p.expose());
                }
                if let Some(s) = t.extra.get("connect_timeout").and_then(|v| v.as_u64()) {
                    c.connect_timeout(std::time::Duration::from_secs(s));
                }
                Ok(c)
            }
            Endpoint::Embedded(cluster) => {
                cluster.start()?;
                Ok(cluster.config(embedded::DATABASE))
            }
        }
    }

    /// Connects (starting the embedded cluster and creating its database when needed).
    pub async fn connect(&self) -> Result<tokio_postgres::Client> {
        let config = self.config()?;
        let first = connect_with(&config).await;
        match (first, self) {
            (Ok(c), _) => Ok(c),
            // First connection to a new embedded cluster: create its database.
            (Err(e), Endpoint::Embedded(cluster)) if is_missing_database(&e) => {
                let admin = connect_with(&cluster.config("postgres"))
                    .await
                    .map_err(|e| self.connect_problem(e))?;
                admin
                    .batch_execute(&format!("create database {}", embedded::DATABASE))
                    .await
                    .or_else(|e| {
                        if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })
                    .map_err(|e| self.connect_problem(e))?;
                connect_with(&config)
                    .await
                    .map_err(|e| self.connect_problem(e))
            }
            (Err(e), _) => Err(self.connect_problem(e)),
        }
    }

    fn connect_problem(&self, e: tokio_postgres::Error) -> crate::error::Problems {
        let detail = e
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_else(|| {
                let mut s = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(inner) = src {
                    s.push_str(&format!(": {inner}"));
                    src = inner.source();
                }
                s
            });
        Problem::new("connect::failed", format!("cannot connect to {}: {detail}", self.describe()))
            .help(match self {
                Endpoint::Embedded(c) => format!("see the server log {}; `pm db status` tells its state", c.log_file.display()),
                _ => "check the host, port, user, password and database of the target, and that the server is running".into(),
            })
            .into()
    }
}

fn is_missing_database(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME)
}

async fn connect_with(
    config: &tokio_postgres::Config,
) -> std::result::Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// `postgresql://user:secret@host/db` → `postgresql://user:****@host/db`.
pub fn mask_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let Some(at) = rest.find('@') else {
        return url.to_string();
    };
    let creds = &rest[..at];
    match creds.split_once(':') {
        Some((user, _)) => format!("{}{user}:****{}", &url[..scheme_end + 3], &rest[at..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks_passwords() {
        assert_eq!(
            super::mask_url("postgresql://me:s3cret@db:5432/x"),
            "postgresql://me:****@db:5432/x"
        );
        assert_eq!(
            super::mask_url("postgresql://me@db/x"),
            "postgresql://me@db/x"
        );
    }
}
