//! `postgres_role`: the password of a PostgreSQL login role, set through an admin DSN.
//! `alternating` (the default) keeps two login roles, `<role>_a` and `<role>_b` (members of
//! the group role `<role>` when it exists), and gives the idle one a new password while the
//! live one keeps working. `single` changes the password of `<role>` itself: from `set` on,
//! new logins with the old password are refused until services get the new one.
//! Passwords reach the server only as SCRAM verifiers; errors never hold a password.

mod admin;
mod connect;
mod preflight;

use crate::checks::dsn::scrub;
use crate::domain::secret::Secret;
use crate::secrets::kind::{KindError, Material, Revocation, SecretKind, Version, random_token};
use admin::Admin;
use chrono::{DateTime, Utc};
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Alternating,
    Single,
}

impl Strategy {
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        match raw.unwrap_or("alternating") {
            "alternating" => Ok(Strategy::Alternating),
            "single" => Ok(Strategy::Single),
            other => Err(format!("target.strategy '{other}': alternating or single")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Alternating => "alternating",
            Strategy::Single => "single",
        }
    }
}

/// `[a-z_][a-z0-9_]{0,50}`: short enough for the `_a`/`_b` suffix, never needs escaping.
fn valid_role(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 51
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The role a version names in its public part, as stored.
fn public_role(version: &Version) -> Option<&str> {
    version.material.public.get("role")?.as_str()
}

pub struct PostgresRole {
    dsn: Secret,
    options: PgConnectOptions,
    role: String,
    strategy: Strategy,
    timeout: Duration,
}

impl PostgresRole {
    pub fn new(
        dsn: Secret,
        role: &str,
        strategy: Strategy,
        timeout: Duration,
    ) -> Result<Self, String> {
        if !valid_role(role) {
            let shown: String = role.chars().take(60).collect();
            return Err(format!(
                "target.role {shown:?}: lower-case letters, digits and _, at most 51, not starting with a digit"
            ));
        }
        let options = PgConnectOptions::from_str(dsn.expose())
            .map_err(|e| {
                let why = scrub(&e.to_string(), dsn.expose());
                format!("target.dsn cannot be parsed: {why}")
            })?
            .application_name("opsguard-rotation")
            .disable_statement_logging();
        Ok(PostgresRole {
            dsn,
            options,
            role: role.to_string(),
            strategy,
            timeout,
        })
    }

    /// The role and strategy `version` was made for: one this secret manages, or refused.
    fn role_of(&self, version: &Version) -> Result<(String, Strategy), KindError> {
        let strategy = match version
            .material
            .public
            .get("strategy")
            .and_then(|s| s.as_str())
        {
            Some(raw) => Strategy::parse(Some(raw)).map_err(KindError::Refused)?,
            None => self.strategy,
        };
        let role = public_role(version).unwrap_or_default();
        let managed = match strategy {
            Strategy::Alternating => {
                [self.login_role('a'), self.login_role('b')].contains(&role.to_string())
            }
            Strategy::Single => role == self.role,
        };
        if !managed {
            let shown: String = role.chars().take(60).collect();
            return Err(KindError::Refused(format!(
                "version {} names role {shown:?}, which this secret does not manage",
                version.number
            )));
        }
        Ok((role.to_string(), strategy))
    }

    fn login_role(&self, which: char) -> String {
        format!("{}_{which}", self.role)
    }

    /// Runs `work` within the timeout; running out of time is `Unreachable`.
    async fn bounded<T>(
        &self,
        doing: &str,
        work: impl Future<Output = Result<T, KindError>>,
    ) -> Result<T, KindError> {
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(KindError::Unreachable(format!(
                    "{doing}: no answer within {} ms",
                    self.timeout.as_millis()
                )))
            })
    }

    async fn admin(&self) -> Result<Admin<'_>, KindError> {
        Admin::connect(&self.options, &self.dsn).await
    }

    async fn apply(
        &self,
        role: &str,
        strategy: Strategy,
        password: &Secret,
    ) -> Result<(), KindError> {
        let mut admin = self.admin().await?;
        let done = async {
            match strategy {
                Strategy::Alternating => {
                    if !admin.role_exists(role).await? {
                        admin.create_login(role).await?;
                    }
                    if admin.role_exists(&self.role).await? {
                        admin.grant(&self.role, role).await?;
                    }
                    admin.set_password(role, password, true).await
                }
                Strategy::Single => {
                    if !admin.role_exists(role).await? {
                        return Err(KindError::Refused(format!("role {role} does not exist")));
                    }
                    admin.set_password(role, password, false).await
                }
            }
        }
        .await;
        admin.close().await;
        done
    }

    async fn take_away(&self, version: &Version, why: Revocation<'_>) -> Result<(), KindError> {
        let (role, strategy) = self.role_of(version)?;
        let (current, retired) = match why {
            Revocation::Retired { current } => (current, true),
            Revocation::RolledBack { current } => (current, false),
        };
        let live = current.filter(|c| public_role(c) == Some(role.as_str()));
        let mut admin = self.admin().await?;
        let done = async {
            match (live, strategy, retired) {
                // Never touch the live role of an alternating pair.
                (Some(_), Strategy::Alternating, _) => Ok(()),
                // The password is the current one: only end sessions older than it.
                (Some(current), Strategy::Single, true) => match current.promoted_at {
                    Some(promoted) => {
                        sessions(admin.terminate(&role, Some(promoted)).await, promoted)
                    }
                    None => Ok(()),
                },
                // Put the current password back, so the old credential works again.
                (Some(current), Strategy::Single, false) => {
                    admin
                        .set_password(&role, &current.material.value, false)
                        .await
                }
                // The role is idle: every session of it used the retired password. A retry
                // ends only those older than now (the role may be live again by then).
                (None, _, true) => {
                    admin.null_password(&role).await?;
                    let before = admin.server_now().await?;
                    sessions(admin.terminate(&role, None).await, before)
                }
                // A first rotation of a single role that gives up: its original password
                // was never known to the vault, so nothing can be put back; leave it.
                (None, Strategy::Single, false) => Ok(()),
                (None, _, false) => admin.null_password(&role).await,
            }
        }
        .await;
        admin.close().await;
        done
    }
}

/// A failure to end sessions once the credential is off the target: `SessionsLive`.
fn sessions(ended: Result<usize, KindError>, before: DateTime<Utc>) -> Result<(), KindError> {
    ended.map(drop).map_err(|e| match e {
        KindError::Refused(error) | KindError::Unreachable(error) => {
            KindError::SessionsLive { error, before }
        }
        other => other,
    })
}

#[async_trait::async_trait]
impl SecretKind for PostgresRole {
    fn kind(&self) -> &'static str {
        "postgres_role"
    }

    fn reuses_previous_slot(&self) -> bool {
        self.strategy == Strategy::Alternating
    }

    fn ends_sessions(&self) -> bool {
        true
    }

    /// Single: retiring the version before the previous one would end the sessions of
    /// every version older than the current one, the previous one's too.
    fn waits_for_grace(&self) -> bool {
        true
    }

    async fn preflight(&self) -> Result<Vec<String>, KindError> {
        let (roles, group) = match self.strategy {
            Strategy::Alternating => (
                vec![self.login_role('a'), self.login_role('b')],
                Some(self.role.as_str()),
            ),
            Strategy::Single => (vec![self.role.clone()], None),
        };
        let check = async {
            let mut admin = self.admin().await?;
            let missing = admin.missing_grants(&roles, group).await;
            admin.close().await;
            missing
        };
        self.bounded("checking the admin role's privileges", check)
            .await
    }

    async fn end_sessions(
        &self,
        version: &Version,
        before: DateTime<Utc>,
    ) -> Result<(), KindError> {
        let (role, _) = self.role_of(version)?;
        let end = async {
            let mut admin = self.admin().await?;
            let ended = admin.terminate(&role, Some(before)).await;
            admin.close().await;
            ended.map(drop)
        };
        self.bounded(&format!("ending the sessions of {role}"), end)
            .await
    }

    fn generate(&self, current: Option<&Version>) -> Result<Material, KindError> {
        let role = match self.strategy {
            Strategy::Single => self.role.clone(),
            Strategy::Alternating
                if current.and_then(public_role) == Some(&self.login_role('a')) =>
            {
                self.login_role('b')
            }
            Strategy::Alternating => self.login_role('a'),
        };
        Ok(Material {
            value: random_token(),
            public: serde_json::json!({ "role": role, "strategy": self.strategy.as_str() }),
        })
    }

    async fn set(&self, pending: &Version, current: Option<&Version>) -> Result<(), KindError> {
        let (role, strategy) = self.role_of(pending)?;
        if strategy == Strategy::Alternating && current.and_then(public_role) == Some(&role) {
            return Err(KindError::Refused(format!(
                "role {role} is the live one: refusing to change its password"
            )));
        }
        let doing = format!("setting the password of {role}");
        self.bounded(&doing, self.apply(&role, strategy, &pending.material.value))
            .await
    }

    async fn test(&self, pending: &Version) -> Result<(), KindError> {
        let (role, _) = self.role_of(pending)?;
        let login = connect::login(&self.options, &self.dsn, &role, &pending.material.value);
        self.bounded(&format!("logging in as {role}"), login).await
    }

    async fn revoke(&self, version: &Version, why: Revocation<'_>) -> Result<(), KindError> {
        let doing = format!("revoking version {}", version.number);
        self.bounded(&doing, self.take_away(version, why)).await
    }

    fn delivery(&self, prefix: &str, version: &Version) -> Vec<(String, Secret)> {
        let role = public_role(version).unwrap_or(&self.role);
        let password = &version.material.value;
        let url = connect::url(&self.options, role, password.expose());
        vec![
            (format!("{prefix}_USER"), Secret::new(role)),
            (format!("{prefix}_PASSWORD"), password.clone()),
            (format!("{prefix}_URL"), Secret::new(url)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_checked() {
        for good in ["app", "_x", "app_db2", &"a".repeat(51)] {
            assert!(valid_role(good), "{good}");
        }
        for bad in [
            "",
            "App",
            "1app",
            "app-db",
            "a\"b",
            "app db",
            &"a".repeat(52),
        ] {
            assert!(!valid_role(bad), "{bad}");
        }
        let dsn = Secret::new("postgres://root:canary-adm1n@127.0.0.1:5432/postgres");
        let t = Duration::from_secs(1);
        assert!(PostgresRole::new(dsn.clone(), "Bad-Role", Strategy::Single, t).is_err());
        let bad_dsn = Secret::new("postgres://root:canary-adm1n@127.0.0.1:notaport/x");
        let err = PostgresRole::new(bad_dsn, "app", Strategy::Single, t)
            .err()
            .expect("refused");
        assert!(!err.contains("canary-adm1n"), "{err}");
    }
}
