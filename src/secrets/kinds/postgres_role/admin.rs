//! The statements `postgres_role` runs over the admin DSN, one short-lived connection per
//! step: role existence, CREATE ROLE, GRANT, password changes (as SCRAM verifiers computed
//! here, so no plaintext reaches the server or its logs) and ending a role's sessions.
//! Values are bound; role names are validated by the kind and quoted here as identifiers.

use super::connect::classify;
use crate::domain::secret::Secret;
use crate::secrets::kind::KindError;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// A role name as a double-quoted SQL identifier.
pub(super) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A SCRAM verifier as a SQL string literal. Verifiers are base64 and `$:` only; anything
/// else is refused rather than quoted.
fn quote_verifier(verifier: &str) -> Option<String> {
    let safe = |c: char| c.is_ascii_alphanumeric() || "+/=$:-".contains(c);
    (verifier.starts_with("SCRAM-SHA-256$") && verifier.chars().all(safe))
        .then(|| format!("'{verifier}'"))
}

/// An open admin connection and the DSN its errors are scrubbed of.
pub(super) struct Admin<'a> {
    conn: PgConnection,
    dsn: &'a Secret,
}

impl<'a> Admin<'a> {
    pub(super) async fn connect(
        options: &PgConnectOptions,
        dsn: &'a Secret,
    ) -> Result<Admin<'a>, KindError> {
        let conn = PgConnection::connect_with(options)
            .await
            .map_err(|e| classify(e, dsn, &[], "connecting with the admin DSN"))?;
        Ok(Admin { conn, dsn })
    }

    pub(super) async fn close(self) {
        let _ = self.conn.close().await;
    }

    pub(super) fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    pub(super) fn fail(&self, e: sqlx::Error, secrets: &[&str], doing: &str) -> KindError {
        classify(e, self.dsn, secrets, doing)
    }

    pub(super) async fn role_exists(&mut self, role: &str) -> Result<bool, KindError> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(role)
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.fail(e, &[], "looking up the role"))
    }

    /// CREATE ROLE … LOGIN; a role created meanwhile by someone else is fine.
    pub(super) async fn create_login(&mut self, role: &str) -> Result<(), KindError> {
        let sql = format!("CREATE ROLE {} LOGIN", quote_ident(role));
        match sqlx::query(AssertSqlSafe(sql))
            .execute(&mut self.conn)
            .await
        {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42710") => Ok(()),
            Err(e) => Err(self.fail(e, &[], &format!("creating role {role}"))),
        }
    }

    /// GRANT group TO member (a no-op with a notice when it is already granted).
    pub(super) async fn grant(&mut self, group: &str, member: &str) -> Result<(), KindError> {
        let sql = format!("GRANT {} TO {}", quote_ident(group), quote_ident(member));
        sqlx::query(AssertSqlSafe(sql))
            .execute(&mut self.conn)
            .await
            .map(|_| ())
            .map_err(|e| self.fail(e, &[], &format!("granting {group} to {member}")))
    }

    /// Sets `role`'s password to a SCRAM verifier of `password` (and LOGIN with `login`).
    pub(super) async fn set_password(
        &mut self,
        role: &str,
        password: &Secret,
        login: bool,
    ) -> Result<(), KindError> {
        let verifier = postgres_protocol::password::scram_sha_256(password.expose().as_bytes());
        let literal = quote_verifier(&verifier).ok_or_else(|| {
            KindError::Refused("the SCRAM verifier has unexpected characters".into())
        })?;
        let with = if login { "WITH LOGIN" } else { "WITH" };
        let sql = format!("ALTER ROLE {} {with} PASSWORD {literal}", quote_ident(role));
        sqlx::query(AssertSqlSafe(sql))
            .execute(&mut self.conn)
            .await
            .map(|_| ())
            .map_err(|e| {
                let secrets = [password.expose(), verifier.as_str()];
                self.fail(e, &secrets, &format!("setting the password of {role}"))
            })
    }

    /// ALTER ROLE … PASSWORD NULL: no password login any more. A missing role is fine.
    pub(super) async fn null_password(&mut self, role: &str) -> Result<(), KindError> {
        if !self.role_exists(role).await? {
            return Ok(());
        }
        let sql = format!("ALTER ROLE {} WITH PASSWORD NULL", quote_ident(role));
        sqlx::query(AssertSqlSafe(sql))
            .execute(&mut self.conn)
            .await
            .map(|_| ())
            .map_err(|e| self.fail(e, &[], &format!("removing the password of {role}")))
    }

    /// Ends the sessions of `role` (those that started before `started_before`, if given),
    /// never this one. Returns how many were signalled. With a time, every session of the
    /// role must show when it started (`pg_read_all_stats`): a hidden `backend_start` is an
    /// error, never a session silently left open.
    pub(super) async fn terminate(
        &mut self,
        role: &str,
        started_before: Option<DateTime<Utc>>,
    ) -> Result<usize, KindError> {
        let doing = format!("ending the sessions of {role}");
        if started_before.is_some() {
            let (me, hidden): (String, i64) = sqlx::query_as(
                "SELECT current_user::text, (SELECT count(*) FROM pg_stat_activity
                     WHERE usename = $1 AND pid <> pg_backend_pid() AND backend_start IS NULL)",
            )
            .bind(role)
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.fail(e, &[], &doing))?;
            if hidden > 0 {
                return Err(KindError::Refused(format!(
                    "{doing}: cannot see when they started, so cannot tell those of the retired credential (GRANT pg_read_all_stats TO {})",
                    quote_ident(&me)
                )));
            }
        }
        let ended: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE usename = $1 AND pid <> pg_backend_pid()
               AND ($2::timestamptz IS NULL OR backend_start < $2)",
        )
        .bind(role)
        .bind(started_before)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.fail(e, &[], &doing))?;
        Ok(ended.into_iter().filter(|ok| *ok).count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_verifiers_are_quoted_or_refused() {
        assert_eq!(quote_ident("app_a"), "\"app_a\"");
        assert_eq!(quote_ident("x\"y"), "\"x\"\"y\"");
        let v = postgres_protocol::password::scram_sha_256(b"canary-pw");
        assert_eq!(quote_verifier(&v), Some(format!("'{v}'")));
        assert_eq!(quote_verifier("SCRAM-SHA-256$1:a'; DROP"), None);
        assert_eq!(quote_verifier("md5abc"), None);
    }
}
