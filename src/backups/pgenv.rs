//! A target's DSN as the environment of `pg_dump` / `pg_restore` (`PGHOST`, `PGPASSWORD`, …),
//! so no credential ever appears on a command line, and as a display that shows none.

use crate::domain::secret::Secret;
use reqwest::Url;

/// The connection variables libpq reads, built from a `postgres://` URL.
#[derive(Clone)]
pub struct PgEnv {
    vars: Vec<(&'static str, String)>,
    display: String,
}

impl std::fmt::Debug for PgEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgEnv({})", self.display)
    }
}

impl PgEnv {
    pub fn parse(dsn: &Secret) -> Result<Self, String> {
        let url = Url::parse(dsn.expose()).map_err(|_| "the DSN is not a valid URL".to_string())?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err("the DSN must be a postgres:// URL".into());
        }
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| "the DSN has bad percent-encoding".to_string())
        };
        let host = url
            .host_str()
            .unwrap_or("127.0.0.1")
            .trim_matches(['[', ']'])
            .to_string();
        let port = url.port().unwrap_or(5432).to_string();
        let database = decode(url.path().trim_start_matches('/'))?;
        let mut vars = vec![("PGHOST", host.clone()), ("PGPORT", port.clone())];
        if !url.username().is_empty() {
            vars.push(("PGUSER", decode(url.username())?));
        }
        if let Some(password) = url.password() {
            vars.push(("PGPASSWORD", decode(password)?));
        }
        if !database.is_empty() {
            vars.push(("PGDATABASE", database.clone()));
        }
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "sslmode" => vars.push(("PGSSLMODE", value.into_owned())),
                "password" => vars.push(("PGPASSWORD", value.into_owned())),
                _ => {}
            }
        }
        Ok(PgEnv {
            vars,
            display: format!("{host}:{port}/{database}"),
        })
    }

    /// The same server, another database (a restore test's scratch database).
    pub fn with_database(&self, database: &str) -> PgEnv {
        let mut vars: Vec<_> = self
            .vars
            .iter()
            .filter(|(k, _)| *k != "PGDATABASE")
            .cloned()
            .collect();
        vars.push(("PGDATABASE", database.to_string()));
        let server = self.display.rsplit_once('/').map_or("", |(s, _)| s);
        PgEnv {
            vars,
            display: format!("{server}/{database}"),
        }
    }

    /// `host:port/database`: what replies and logs may show.
    pub fn display(&self) -> &str {
        &self.display
    }

    pub fn database(&self) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| *k == "PGDATABASE")
            .map(|(_, v)| v.as_str())
    }

    /// Apply to a command: a clean environment (none of opsguard's own secrets, no stray
    /// libpq variables) holding only ours, a connect timeout and the locale basics.
    pub fn apply(&self, cmd: &mut std::process::Command) {
        cmd.env_clear();
        for keep in ["PATH", "HOME", "LANG", "LC_ALL", "TZ"] {
            if let Some(value) = std::env::var_os(keep) {
                cmd.env(keep, value);
            }
        }
        cmd.env("PGCONNECT_TIMEOUT", "30");
        cmd.envs(self.vars.iter().map(|(k, v)| (*k, v.as_str())));
    }

    /// sqlx connect options for the same database.
    pub fn connect_options(&self) -> sqlx::postgres::PgConnectOptions {
        let get = |key: &str| {
            self.vars
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_str())
        };
        let mut options = sqlx::postgres::PgConnectOptions::new_without_pgpass()
            .host(get("PGHOST").unwrap_or("127.0.0.1"))
            .port(get("PGPORT").and_then(|p| p.parse().ok()).unwrap_or(5432))
            .application_name("opsguard-backup");
        if let Some(user) = get("PGUSER") {
            options = options.username(user);
        }
        if let Some(password) = get("PGPASSWORD") {
            options = options.password(password);
        }
        if let Some(db) = get("PGDATABASE") {
            options = options.database(db);
        }
        if let Some(mode) = get("PGSSLMODE").and_then(|m| m.parse().ok()) {
            options = options.ssl_mode(mode);
        }
        options
    }
}

fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_goes_to_the_environment_and_never_to_the_display() {
        let env = PgEnv::parse(&Secret::new(
            "postgres://app:p%40ss@db.internal:6432/main?sslmode=require",
        ))
        .unwrap();
        assert_eq!(env.display(), "db.internal:6432/main");
        assert!(env.vars.contains(&("PGPASSWORD", "p@ss".into())));
        assert!(env.vars.contains(&("PGUSER", "app".into())));
        assert!(env.vars.contains(&("PGSSLMODE", "require".into())));
        assert!(!format!("{env:?}").contains("p@ss"));
        let scratch = env.with_database("opsguard_restore_1");
        assert_eq!(scratch.database(), Some("opsguard_restore_1"));
        assert_eq!(scratch.display(), "db.internal:6432/opsguard_restore_1");
        assert!(PgEnv::parse(&Secret::new("mysql://x@y/z")).is_err());
    }
}
