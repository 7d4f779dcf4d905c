//! `postgres`: server hardening for each configured DSN, read over one short-lived
//! connection: TLS, password hashing, connection logging, unexpected superusers, login
//! roles without expiry, row-level security on tenant tables, timeouts, `trust` lines in
//! pg_hba. DSNs are secrets: targets show `host:port/db` only and errors are scrubbed.

use super::Check;
use super::dsn::scrub;
use crate::config::PostgresTargets;
use crate::domain::finding::{Finding, Severity};
use crate::domain::secret::Secret;
use async_trait::async_trait;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::str::FromStr;

pub struct Postgres {
    /// (shown target, DSN)
    dsns: Vec<(String, Secret)>,
    expected_superusers: Vec<String>,
}

impl Postgres {
    pub fn new(settings: &PostgresTargets) -> Self {
        let mut dsns: Vec<(String, Secret)> = Vec::new();
        for (i, dsn) in settings.dsns.iter().enumerate() {
            let mut shown = display(dsn.expose())
                .unwrap_or_else(|| format!("postgres DSN #{} (unparseable)", i + 1));
            if dsns.iter().any(|(s, _)| *s == shown) {
                shown = format!("{shown} #{}", i + 1);
            }
            dsns.push((shown, dsn.clone()));
        }
        Postgres {
            dsns,
            expected_superusers: settings.expected_superusers.clone(),
        }
    }
}

/// `host:port/db` of a DSN, never its user or password.
pub fn display(dsn: &str) -> Option<String> {
    let options = PgConnectOptions::from_str(dsn).ok()?;
    let host: String = options.get_host().chars().take(100).collect();
    let db: String = options
        .get_database()
        .unwrap_or("")
        .chars()
        .take(64)
        .collect();
    Some(format!("{host}:{}/{db}", options.get_port()))
}

fn finding(
    target: &str,
    severity: Severity,
    title: &str,
    evidence: String,
    remediation: &str,
    reference: &str,
) -> Finding {
    Finding::new(
        "postgres",
        target,
        severity,
        title,
        evidence,
        remediation,
        reference,
    )
}

#[async_trait]
impl Check for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn targets(&self) -> Vec<String> {
        self.dsns.iter().map(|(shown, _)| shown.clone()).collect()
    }

    async fn check(&self, target: &str) -> Result<Vec<Finding>, String> {
        let (_, dsn) = self
            .dsns
            .iter()
            .find(|(s, _)| s == target)
            .ok_or("unknown target")?;
        let options = PgConnectOptions::from_str(dsn.expose())
            .map_err(|_| "the DSN cannot be parsed".to_string())?;
        let options = options
            .disable_statement_logging()
            .application_name("opsguard-check");
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(|e| format!("connection failed: {}", scrub(&e.to_string(), dsn.expose())))?;
        let result = self.inspect(&mut conn, target).await;
        let _ = conn.close().await;
        result.map_err(|e| format!("query failed: {}", scrub(&e.to_string(), dsn.expose())))
    }
}

impl Postgres {
    async fn inspect(
        &self,
        conn: &mut PgConnection,
        target: &str,
    ) -> Result<Vec<Finding>, sqlx::Error> {
        let mut found = Vec::new();
        let mut add =
            |severity, title: &str, evidence: String, remediation: &str, reference: &str| {
                found.push(finding(
                    target,
                    severity,
                    title,
                    evidence,
                    remediation,
                    reference,
                ))
            };
        let settings: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, setting FROM pg_settings WHERE name IN ('ssl', 'ssl_min_protocol_version', 'password_encryption', 'log_connections', 'log_disconnections', 'statement_timeout', 'idle_in_transaction_session_timeout')",
        )
        .fetch_all(&mut *conn)
        .await?;
        let get = |name: &str| {
            settings
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.chars().take(60).collect::<String>())
                .unwrap_or_default()
        };
        if get("ssl") != "on" {
            add(
                Severity::High,
                "TLS disabled",
                format!("ssl = {}", get("ssl")),
                "Set ssl = on with a certificate, and require hostssl in pg_hba.conf.",
                "CIS PostgreSQL: Ensure TLS is enabled and configured correctly",
            );
        }
        let min = get("ssl_min_protocol_version");
        if ["TLSv1", "TLSv1.1", ""].contains(&min.as_str()) {
            add(
                Severity::Medium,
                "Old TLS versions allowed",
                format!("ssl_min_protocol_version = {min}"),
                "Set ssl_min_protocol_version = 'TLSv1.2' (or TLSv1.3).",
                "CIS PostgreSQL: Ensure the TLSv1.0 and TLSv1.1 Protocols are Disabled",
            );
        }
        let hashing = get("password_encryption");
        if hashing != "scram-sha-256" {
            add(
                Severity::Medium,
                "Passwords not hashed with SCRAM",
                format!("password_encryption = {hashing}"),
                "Set password_encryption = 'scram-sha-256' and reset md5 passwords.",
                "CIS PostgreSQL: Ensure login via 'host' TCP/IP Socket is configured correctly (scram-sha-256)",
            );
        }
        for (name, title, item) in [
            (
                "log_connections",
                "Connections not logged",
                "CIS PostgreSQL: Ensure 'log_connections' is enabled",
            ),
            (
                "log_disconnections",
                "Disconnections not logged",
                "CIS PostgreSQL: Ensure 'log_disconnections' is enabled",
            ),
        ] {
            let value = get(name);
            if ["off", ""].contains(&value.as_str()) {
                add(
                    Severity::Medium,
                    title,
                    format!("{name} = {value}"),
                    &format!("Set {name} = on."),
                    item,
                );
            }
        }
        for name in ["statement_timeout", "idle_in_transaction_session_timeout"] {
            if get(name) == "0" {
                add(
                    Severity::Low,
                    &format!("{name} not set"),
                    format!("{name} = 0 (no limit)"),
                    &format!(
                        "Set {name} (per database or role) so runaway or forgotten sessions end."
                    ),
                    "PostgreSQL documentation: Client Connection Defaults",
                );
            }
        }
        let supers: Vec<String> = sqlx::query_scalar(
            "SELECT rolname::text FROM pg_roles WHERE rolsuper ORDER BY rolname",
        )
        .fetch_all(&mut *conn)
        .await?;
        let unexpected: Vec<String> = supers
            .into_iter()
            .filter(|r| !self.expected_superusers.contains(r))
            .map(|r| r.chars().take(64).collect())
            .collect();
        if !unexpected.is_empty() {
            add(
                Severity::High,
                "Unexpected superusers",
                unexpected.join(", "),
                "Revoke SUPERUSER from these roles, or list them in [checks.postgres] expected_superusers.",
                "CIS PostgreSQL: Ensure excessive administrative privileges are revoked",
            );
        }
        let forever: Vec<String> = sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE rolcanlogin AND rolvaliduntil IS NULL ORDER BY rolname").fetch_all(&mut *conn).await?;
        if !forever.is_empty() {
            let names: Vec<String> = forever
                .iter()
                .map(|r| r.chars().take(64).collect())
                .collect();
            add(
                Severity::Info,
                "Login roles without password expiry",
                names.join(", "),
                "Set VALID UNTIL on login roles and rotate their passwords.",
                "PostgreSQL documentation: CREATE ROLE … VALID UNTIL",
            );
        }
        let open: Vec<String> = sqlx::query_scalar(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped \
             WHERE c.relkind IN ('r', 'p') AND NOT c.relrowsecurity AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
        )
        .fetch_all(&mut *conn)
        .await?;
        if !open.is_empty() {
            let names: Vec<String> = open.iter().map(|t| t.chars().take(80).collect()).collect();
            add(
                Severity::High,
                "Tenant tables without row-level security",
                names.join(", "),
                "ALTER TABLE … ENABLE ROW LEVEL SECURITY (and FORCE it for the owner) with a tenant_id policy.",
                "CIS PostgreSQL: Ensure Row Level Security (RLS) is configured correctly",
            );
        }
        let hba: Result<Vec<String>, _> = sqlx::query_scalar(
            "SELECT format('line %s: %s %s %s %s', line_number, type, database, user_name, coalesce(address, '')) \
             FROM pg_hba_file_rules WHERE auth_method = 'trust' ORDER BY line_number",
        )
        .fetch_all(&mut *conn)
        .await;
        match hba {
            Ok(lines) if !lines.is_empty() => {
                let shown: Vec<String> = lines
                    .iter()
                    .map(|l| l.chars().take(100).collect())
                    .collect();
                add(
                    Severity::High,
                    "pg_hba.conf trusts connections without a password",
                    shown.join("; "),
                    "Replace trust with scram-sha-256 (or peer for local admin sockets).",
                    "CIS PostgreSQL: Ensure login via 'host' TCP/IP Socket is configured correctly",
                );
            }
            Ok(_) => {}
            Err(_) => {
                // Reading the view takes both grants; pg_read_all_settings covers neither.
                // Grants on pg_catalog objects are per database: name the one checked.
                let (role, db): (String, String) =
                    sqlx::query_as("SELECT quote_ident(current_user), current_database()")
                        .fetch_one(&mut *conn)
                        .await
                        .unwrap_or_else(|_| ("<check role>".into(), "<this database>".into()));
                let grant = format!(
                    "As a superuser, connected to database {db}: GRANT SELECT ON pg_catalog.pg_hba_file_rules TO {role}; \
                     GRANT EXECUTE ON FUNCTION pg_catalog.pg_hba_file_rules() TO {role}; \
                     (or review pg_hba.conf by hand)."
                );
                add(
                    Severity::Info,
                    "pg_hba rules could not be read",
                    format!("pg_hba_file_rules is not readable by {role}"),
                    &grant,
                    "CIS PostgreSQL: Ensure login via 'host' TCP/IP Socket is configured correctly",
                )
            }
        }
        Ok(found)
    }
}
