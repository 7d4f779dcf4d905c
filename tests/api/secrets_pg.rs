//! The `postgres_role` secret kind against the real PostgreSQL: alternating and single
//! strategies, set / test / revoke through the `SecretKind` trait, real password checks.
//! Roles are cluster-global: each test makes its own (`og_<8 hex>`, members of the group
//! role `opsguard_pwtest`, which scripts/test.sh makes log in with scram-sha-256 even where
//! 127.0.0.1 is trust) and drops them at the end. Missing grants: `preflight`; a retirement
//! that cannot end sessions: `stuck`.

mod failures;
mod preflight;
mod revoke;
mod stuck;

use crate::helpers::on_own_runtime;
use opsguard::domain::rotation::SecretName;
use opsguard::domain::secret::Secret;
use opsguard::secrets::kind::{Material, SecretKind, Version};
use opsguard::secrets::kinds::postgres_role::{PostgresRole, Strategy};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::str::FromStr;
use std::time::Duration;

pub use super::helpers::admin_url;

async fn admin() -> PgConnection {
    PgConnection::connect(&admin_url())
        .await
        .expect("PostgreSQL on 127.0.0.1")
}

async fn exec(sql: String) {
    let mut conn = admin().await;
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
}

/// A group role `og_<8 hex>` of one's own (and its `_a`/`_b` logins), dropped on drop.
pub struct Roles {
    pub group: String,
}

impl Roles {
    /// `login`: the group role itself logs in (the single strategy's role).
    pub async fn create(login: bool) -> Roles {
        let group = format!("og_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        exec(
            "DO $$ BEGIN CREATE ROLE opsguard_pwtest NOLOGIN; \
              EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
                .into(),
        )
        .await;
        let login = if login { "LOGIN" } else { "NOLOGIN" };
        exec(format!("CREATE ROLE \"{group}\" {login}")).await;
        exec(format!("GRANT opsguard_pwtest TO \"{group}\"")).await;
        Roles { group }
    }

    pub fn kind(&self, strategy: Strategy) -> PostgresRole {
        let dsn = Secret::new(admin_url());
        PostgresRole::new(dsn, &self.group, strategy, Duration::from_secs(10)).unwrap()
    }

    pub fn a(&self) -> String {
        format!("{}_a", self.group)
    }

    pub fn b(&self) -> String {
        format!("{}_b", self.group)
    }
}

impl Drop for Roles {
    fn drop(&mut self) {
        let group = self.group.clone();
        on_own_runtime(async move {
            let Ok(mut conn) = PgConnection::connect(&admin_url()).await else {
                return;
            };
            for role in [format!("{group}_a"), format!("{group}_b"), group] {
                let _ = sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                )
                .bind(&role)
                .execute(&mut conn)
                .await;
                let sql = format!("DROP ROLE IF EXISTS \"{role}\"");
                let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await;
            }
        });
    }
}

/// A version of `app-db` (promoted `promoted` ago, or pending).
pub fn version(number: i32, material: Material, promoted: bool) -> Version {
    Version {
        secret: SecretName::parse("app-db").unwrap(),
        number,
        material,
        promoted_at: promoted.then(chrono::Utc::now),
    }
}

pub fn role_of(v: &Version) -> String {
    v.material.public["role"].as_str().unwrap().to_string()
}

/// A fresh login over 127.0.0.1 as `role` with `password`.
pub async fn login(role: &str, password: &str) -> Result<PgConnection, sqlx::Error> {
    PgConnectOptions::from_str(&admin_url())
        .unwrap()
        .username(role)
        .password(password)
        .connect()
        .await
}

/// Asserts a login with `password` is refused by the server's password check.
pub async fn assert_refused(role: &str, password: &str) {
    match login(role, password).await {
        Ok(_) => panic!(
            "{role} logged in with a wrong password: PostgreSQL does not check passwords for \
             members of opsguard_pwtest on 127.0.0.1 (run scripts/test.sh, which adds the \
             scram-sha-256 line to pg_hba.conf)"
        ),
        Err(sqlx::Error::Database(db)) => assert_eq!(db.code().as_deref(), Some("28P01")),
        Err(e) => panic!("{role}: not an authentication failure: {e}"),
    }
}

pub async fn assert_logs_in(role: &str, password: &Secret) {
    let mut conn = login(role, password.expose())
        .await
        .unwrap_or_else(|e| panic!("{role} cannot log in: {e}"));
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    let _ = conn.close().await;
}

#[tokio::test]
async fn alternating_sets_the_idle_role_while_the_live_one_keeps_working() {
    let roles = Roles::create(false).await;
    let kind = roles.kind(Strategy::Alternating);
    let v1 = version(1, kind.generate(None).unwrap(), false);
    assert_eq!(role_of(&v1), roles.a());
    assert_eq!(v1.material.public["strategy"], "alternating");
    kind.set(&v1, None).await.unwrap();
    kind.set(&v1, None).await.unwrap(); // idempotent
    kind.test(&v1).await.unwrap();
    assert_logs_in(&roles.a(), &v1.material.value).await;
    assert_refused(&roles.a(), "not-the-password").await;
    let v1 = version(1, v1.material, true);

    let v2 = version(2, kind.generate(Some(&v1)).unwrap(), false);
    assert_eq!(role_of(&v2), roles.b());
    kind.set(&v2, Some(&v1)).await.unwrap();
    assert_logs_in(&roles.a(), &v1.material.value).await;
    kind.test(&v2).await.unwrap();
    assert_logs_in(&roles.b(), &v2.material.value).await;
    assert_refused(&roles.b(), v1.material.value.expose()).await;
    assert_logs_in(&roles.a(), &v1.material.value).await;

    // The new login role gets the group role's privileges.
    let mut conn = admin().await;
    let member: bool = sqlx::query_scalar("SELECT pg_has_role($1, $2, 'MEMBER')")
        .bind(roles.b())
        .bind(&roles.group)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(member);

    let v2 = version(2, v2.material, true);
    let v3 = kind.generate(Some(&v2)).unwrap();
    assert_eq!(v3.public["role"], roles.a().as_str());
    // The live role is never set.
    let err = kind.set(&v2, Some(&v2)).await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert_logs_in(&roles.b(), &v2.material.value).await;
}

#[tokio::test]
async fn the_server_only_ever_sees_a_scram_verifier() {
    let roles = Roles::create(false).await;
    let kind = roles.kind(Strategy::Alternating);
    let v1 = version(1, kind.generate(None).unwrap(), false);
    kind.set(&v1, None).await.unwrap();
    let mut conn = admin().await;
    let stored: String = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(roles.a())
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(stored.starts_with("SCRAM-SHA-256$"), "{stored}");
    assert!(!stored.contains(v1.material.value.expose()));
}

#[tokio::test]
async fn delivery_names_the_user_the_password_and_a_working_url() {
    let roles = Roles::create(false).await;
    let kind = roles.kind(Strategy::Alternating);
    let v1 = version(1, kind.generate(None).unwrap(), false);
    kind.set(&v1, None).await.unwrap();
    let delivered = kind.delivery("APP_DB", &v1);
    let get = |name: &str| {
        let found = delivered.iter().find(|(n, _)| n == name);
        found.unwrap_or_else(|| panic!("{name} missing")).1.clone()
    };
    assert_eq!(get("APP_DB_USER").expose(), roles.a());
    assert_eq!(get("APP_DB_PASSWORD"), v1.material.value);
    let url = get("APP_DB_URL");
    assert!(
        url.expose()
            .starts_with(&format!("postgres://{}:", roles.a()))
    );
    let mut conn = PgConnection::connect(url.expose()).await.unwrap();
    let user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(user, roles.a());
    let _ = conn.close().await;
}
