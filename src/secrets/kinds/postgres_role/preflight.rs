//! What `postgres_role` needs of its admin role, read from the catalogue without changing
//! anything: altering the managed roles (superuser, or CREATEROLE — and from PostgreSQL 16
//! also ADMIN OPTION on each role that exists, which a creator gets by itself), ending
//! their sessions (superuser, or the privileges of `pg_signal_backend`) and seeing when
//! those started (`pg_read_all_stats`: `pg_stat_activity` hides `backend_start` of other
//! roles' sessions, and only sessions older than a time are ended where the role may be
//! live). Each missing privilege is named as the statement that grants it.

use super::admin::{Admin, quote_ident};
use crate::secrets::kind::KindError;

/// The admin role as the server sees it.
#[derive(Debug, sqlx::FromRow)]
struct Me {
    name: String,
    superuser: bool,
    createrole: bool,
    signal: bool,
    stats: bool,
    version: i32,
}

impl Admin<'_> {
    /// The grants the admin role lacks to rotate `roles` (the login roles, then the group
    /// role it grants to new login roles, if any), each as a statement.
    pub(super) async fn missing_grants(
        &mut self,
        roles: &[String],
        group: Option<&str>,
    ) -> Result<Vec<String>, KindError> {
        let me: Me = sqlx::query_as(
            "SELECT current_user::text AS name, r.rolsuper AS superuser,
                    r.rolcreaterole AS createrole,
                    pg_has_role(current_user, 'pg_signal_backend', 'USAGE') AS signal,
                    pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS stats,
                    current_setting('server_version_num')::int AS version
             FROM pg_roles r WHERE r.rolname = current_user",
        )
        .fetch_one(self.conn())
        .await
        .map_err(|e| self.fail(e, &[], "reading the admin role's privileges"))?;
        if me.superuser {
            return Ok(Vec::new());
        }
        let admin = quote_ident(&me.name);
        let mut missing = Vec::new();
        if !me.createrole {
            missing.push(format!(
                "ALTER ROLE {admin} CREATEROLE (to create the login roles and change their passwords)"
            ));
        }
        // PostgreSQL 16 and later: CREATEROLE alters only roles one has ADMIN OPTION on.
        if me.version >= 160000 {
            for role in roles.iter().map(String::as_str).chain(group) {
                if self.role_exists(role).await? && !self.is_admin_of(role).await? {
                    missing.push(format!(
                        "GRANT {} TO {admin} WITH ADMIN OPTION (to alter {role})",
                        quote_ident(role)
                    ));
                }
            }
        }
        if !me.signal {
            missing.push(format!(
                "GRANT pg_signal_backend TO {admin} (to end the sessions of a retired credential)"
            ));
        }
        if !me.stats {
            missing.push(format!(
                "GRANT pg_read_all_stats TO {admin} (to tell the sessions of a retired credential from newer ones by when they started)"
            ));
        }
        Ok(missing)
    }

    async fn is_admin_of(&mut self, role: &str) -> Result<bool, KindError> {
        sqlx::query_scalar("SELECT pg_has_role(current_user, $1, 'MEMBER WITH ADMIN OPTION')")
            .bind(role)
            .fetch_one(self.conn())
            .await
            .map_err(|e| self.fail(e, &[], &format!("reading the admin option on {role}")))
    }

    /// The server's clock (sessions are compared with the server's `backend_start`).
    pub(super) async fn server_now(&mut self) -> Result<chrono::DateTime<chrono::Utc>, KindError> {
        sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(self.conn())
            .await
            .map_err(|e| self.fail(e, &[], "reading the server's clock"))
    }
}
