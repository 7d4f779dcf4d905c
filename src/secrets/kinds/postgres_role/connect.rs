//! Connections of `postgres_role` beyond the admin one: the login a `test` step makes as
//! the pending role, the URL sinks deliver, and how a driver error becomes a `KindError`
//! whose text holds neither the admin DSN's password nor any value of the secret.

use crate::checks::dsn::scrub;
use crate::domain::secret::Secret;
use crate::secrets::kind::KindError;
use crate::secrets::kind::percent_encode as encode;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{Connection, PgConnection};

/// Connection failures, timeouts and "try again later" server states are worth retrying
/// (`Unreachable`); refused logins, permissions and bad settings are not (`Refused`).
pub(super) fn classify(e: sqlx::Error, dsn: &Secret, secrets: &[&str], doing: &str) -> KindError {
    let transient = match &e {
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            ["08", "40", "53", "57"].iter().any(|c| code.starts_with(c))
        }
        sqlx::Error::Configuration(_) | sqlx::Error::Tls(_) => false,
        _ => true,
    };
    let mut text = format!("{doing}: {e}");
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret, "<secret>");
    }
    let text = scrub(&text, dsn.expose());
    if transient {
        KindError::Unreachable(text)
    } else {
        KindError::Refused(text)
    }
}

/// Logs in as `role` with `password` on the admin DSN's host, port and database, runs
/// `SELECT 1` and closes.
pub(super) async fn login(
    admin: &PgConnectOptions,
    dsn: &Secret,
    role: &str,
    password: &Secret,
) -> Result<(), KindError> {
    let options = admin
        .clone()
        .username(role)
        .password(password.expose())
        .application_name("opsguard-rotation-test");
    let doing = format!("logging in as {role} with the new password");
    let fail = |e| classify(e, dsn, &[password.expose()], &doing);
    let mut conn = PgConnection::connect_with(&options).await.map_err(fail)?;
    let one: Result<i32, _> = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await;
    let _ = conn.close().await;
    match one {
        Ok(1) => Ok(()),
        Ok(other) => Err(KindError::Refused(format!(
            "{doing}: SELECT 1 returned {other}"
        ))),
        Err(e) => Err(fail(e)),
    }
}

/// `postgres://user:password@host:port/db` on the admin DSN's server, user and password
/// percent-encoded; a socket directory and a TLS mode other than the default are kept.
pub(super) fn url(admin: &PgConnectOptions, user: &str, password: &str) -> String {
    let host = admin.get_host();
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        encode(host)
    };
    let db = admin
        .get_database()
        .map(|d| format!("/{}", encode(d)))
        .unwrap_or_default();
    let mut query = Vec::new();
    if let Some(socket) = admin.get_socket() {
        query.push(format!("host={}", encode(&socket.to_string_lossy())));
    }
    let mode = match admin.get_ssl_mode() {
        PgSslMode::Prefer => None,
        PgSslMode::Disable => Some("disable"),
        PgSslMode::Allow => Some("allow"),
        PgSslMode::Require => Some("require"),
        PgSslMode::VerifyCa => Some("verify-ca"),
        PgSslMode::VerifyFull => Some("verify-full"),
    };
    query.extend(mode.map(|m| format!("sslmode={m}")));
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    format!(
        "postgres://{}:{}@{host}:{}{db}{query}",
        encode(user),
        encode(password),
        admin.get_port()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn urls_encode_user_and_password_and_keep_the_server() {
        let admin = PgConnectOptions::from_str(
            "postgres://root:adm1n@db.internal:6432/app?sslmode=require",
        )
        .unwrap();
        let url = url(&admin, "app_a", "p@ss:w/rd");
        assert_eq!(
            url,
            "postgres://app_a:p%40ss%3Aw%2Frd@db.internal:6432/app?sslmode=require"
        );
        assert!(!url.contains("adm1n"));
        let parsed = PgConnectOptions::from_str(&url).unwrap();
        assert_eq!(parsed.get_username(), "app_a");
    }
}
