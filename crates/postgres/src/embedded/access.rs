//! Who may connect to the embedded cluster: the access files written at
//! every start, and the passwords `pm db url --role` gives roles.

use super::{problem, Cluster, DATABASE, SERVER_SETTINGS};
use crate::embedded::conf_string;
use crate::{error_text, Endpoint};
use pm_core::error::{Code, Result};
use std::path::PathBuf;

/// A field of a libpq password file, with `:` and `\\` escaped.
pub(super) fn passfile_field(text: &str) -> String {
    text.replace('\\', "\\\\").replace(':', "\\:")
}

/// The password of a password-file line (`host:port:database:user:password`)
/// when it is for `database` and `user` (or `*`).
pub fn passfile_password(line: &str, database: &str, user: &str) -> Option<String> {
    if line.starts_with('#') {
        return None;
    }
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => field.extend(chars.next()),
            ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    let [_, _, db, u, password] = <[String; 5]>::try_from(fields).ok()?;
    ((db == "*" || db == database) && (u == "*" || u == user)).then_some(password)
}

/// A user name for pg_hba.conf / pg_ident.conf, quoted.
pub(super) fn hba_word(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Cluster {
    /// Who may connect, written at every start: the server's OS user and
    /// root as the superuser (peer authentication, through a user map), any
    /// other role with its password (scram-sha-256; `pm db url --role`).
    /// The socket folder's mode keeps every other OS user out in any case.
    pub(super) fn write_access_files(&self) -> Result<()> {
        let hba = format!(
            "# Written by pm at every start: edits are lost.\n\
             # The project's owner (the server's OS user) and root connect as the\n\
             # superuser; other roles with a password (`pm db url --role NAME`).\n\
             # TYPE  DATABASE  USER  METHOD\n\
             local   all       {su}  peer map=pm_owner\n\
             local   all       all   scram-sha-256\n",
            su = hba_word(&self.superuser),
        );
        let ident = format!(
            "# Written by pm at every start: edits are lost.\n\
             # MAPNAME  SYSTEM-USERNAME  PG-USERNAME\n\
             pm_owner   {os}  {su}\n\
             pm_owner   root  {su}\n",
            os = hba_word(&self.server_os_user()),
            su = hba_word(&self.superuser),
        );
        let settings = format!(
            "# Written by pm at every start: the socket follows the project folder.\n\
             # data folder: {}\n\
             listen_addresses = ''\n\
             unix_socket_directories = {}\n\
             unix_socket_permissions = 0700\n\
             port = {}\n\
             password_encryption = 'scram-sha-256'\n",
            self.data_dir.display(),
            conf_string(&self.socket_dir.to_string_lossy()),
            self.port
        );
        for (file, text) in [
            ("pg_hba.conf", hba),
            ("pg_ident.conf", ident),
            (SERVER_SETTINGS, settings),
        ] {
            self.write_data_file(file, &text)?;
        }
        let conf =
            std::fs::read_to_string(self.data_dir.join("postgresql.conf")).unwrap_or_default();
        let include = format!("include_if_exists = '{SERVER_SETTINGS}'");
        if !conf.lines().any(|l| l.trim() == include) {
            self.append_config(&format!(
                "\n# pm: the socket, port and access, set at every start\n{include}\n"
            ))?;
        }
        Ok(())
    }

    /// The owner-only file of the passwords pm gave roles (libpq's passfile format).
    pub fn passwords_file(&self) -> PathBuf {
        self.root.join(".pm").join("passwords")
    }

    /// `pm db url --role NAME`: the role's password (made on first use and
    /// kept in [`Cluster::passwords_file`]) set on the server, as a SCRAM
    /// verifier so the password itself never reaches it; a URL naming the
    /// file as its passfile (libpq and PM_DATABASE_URL read it).
    pub async fn role_url(&self, role: &str) -> Result<String> {
        if role == self.superuser {
            return Ok(self.url());
        }
        let client = Endpoint::Embedded(Box::new(self.clone()))
            .connect_client()
            .await?;
        let failed = |what: &str, e: tokio_postgres::Error| {
            problem(
                Code::DbRole,
                format!("{what} failed: {}", error_text(&e)),
                "see the message above",
            )
        };
        let can_login: Option<bool> = client
            .query_opt(
                "select rolcanlogin from pg_roles where rolname = $1",
                &[&role],
            )
            .await
            .map_err(|e| failed("reading the roles", e))?
            .map(|r| r.get(0));
        match can_login {
            None => {
                return Err(problem(
                    Code::DbRole,
                    format!("there is no role `{role}` in the local database"),
                    "create it first (PulseMetrics' roles are made by `pm generate`), or check its name",
                )
                .into())
            }
            Some(false) => {
                return Err(problem(
                    Code::DbRole,
                    format!("role `{role}` cannot log in (it has NOLOGIN)"),
                    format!("alter role {} login, if it should", pm_core::text::quote_ident(role)),
                )
                .into())
            }
            Some(true) => {}
        }
        let password = self.role_password(role)?;
        let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
        client
            .batch_execute(&format!(
                "alter role {} password {}",
                pm_core::text::quote_ident(role),
                pm_core::text::quote_literal(&verifier)
            ))
            .await
            .map_err(|e| failed("setting the role's password", e))?;
        Ok(format!(
            "postgresql://{}@/{DATABASE}?host={}&port={}&passfile={}",
            pm_core::text::percent_encode(role),
            pm_core::text::percent_encode(&self.socket_dir.to_string_lossy()),
            self.port,
            pm_core::text::percent_encode(&self.passwords_file().to_string_lossy()),
        ))
    }

    /// The password kept for `role`, made (and written to the owner-only
    /// passwords file) when there is none.
    fn role_password(&self, role: &str) -> Result<String> {
        let path = self.passwords_file();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(p) = text
            .lines()
            .find_map(|l| passfile_password(l, DATABASE, role))
        {
            return Ok(p);
        }
        let failed = |e: std::io::Error| -> pm_core::error::Problems {
            problem(
                Code::DbPasswords,
                format!("cannot write {}: {e}", path.display()),
                "check that the project folder is yours and writable",
            )
            .into()
        };
        let mut bytes = [0u8; 18];
        std::io::Read::read_exact(
            &mut std::fs::File::open("/dev/urandom").map_err(failed)?,
            &mut bytes,
        )
        .map_err(failed)?;
        let password = pm_core::text::hex(&bytes);
        let line = format!(
            "*:*:{}:{}:{password}\n",
            passfile_field(DATABASE),
            passfile_field(role)
        );
        let tmp = path.with_extension("new");
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let _ = std::fs::remove_file(&tmp);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(failed)?;
            f.write_all(format!("{text}{line}").as_bytes())
                .map_err(failed)?;
            f.sync_all().map_err(failed)?;
        }
        std::fs::rename(&tmp, &path).map_err(failed)?;
        Ok(password)
    }
}
