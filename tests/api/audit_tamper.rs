//! The audit log against someone holding opsguard's own database credentials (issue 13 §1).
//! With two roles, the runtime role cannot delete, rewrite or insert audit rows at all, and
//! what it can append through the functions without the key is named by verify. With one
//! (non-superuser) role that owns the log, (a) cutting rows off the end and moving the head
//! back, (b) changing a row and re-hashing everything after it, and (c) inserting past the
//! head all succeed in SQL, and verify names the first bad row each time: through the HMAC
//! chain and the signed checkpoints kept outside the database.

use super::helpers::*;

mod owner;
mod recent;
mod runtime_role;
use opsguard::domain::secret::Secret;
use sqlx::{Connection, PgConnection, PgPool};
use std::sync::Arc;
use std::time::Duration;

pub const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
pub const CHECKPOINT_CHAT: i64 = -100_777;

pub use super::helpers::base;

/// `base()` as another role, on database `db`.
pub fn url_as(role: &str, db: &str) -> String {
    let mut url = reqwest::Url::parse(&base()).unwrap();
    url.set_username(role).unwrap();
    url.set_password(None).unwrap();
    url.set_path(db);
    url.to_string()
}

pub async fn as_root(sql: &str) {
    let mut admin = PgConnection::connect(&format!("{}/postgres", base()))
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Two login roles of this test's own (cluster-wide), dropped after everything else.
pub struct Roles {
    pub owner: String,
    pub runtime: String,
}

impl Roles {
    pub async fn create() -> Roles {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let roles = Roles {
            owner: format!("og_owner_{}", &tag[..12]),
            runtime: format!("og_app_{}", &tag[..12]),
        };
        for role in [&roles.owner, &roles.runtime] {
            as_root(&format!(
                "CREATE ROLE \"{role}\" LOGIN NOSUPERUSER NOCREATEROLE"
            ))
            .await;
        }
        roles
    }
}

impl Drop for Roles {
    fn drop(&mut self) {
        let roles = [self.owner.clone(), self.runtime.clone()];
        on_own_runtime(async move {
            for role in roles {
                // The test's database is dropped first (TestDb lives in the app); wait for it.
                for _ in 0..50 {
                    let mut admin = PgConnection::connect(&format!("{}/postgres", base()))
                        .await
                        .unwrap();
                    let sql = format!("DROP ROLE IF EXISTS \"{role}\"");
                    if sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut admin)
                        .await
                        .is_ok()
                    {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
    }
}

/// A database owned by `roles.owner` (not a superuser), migrated by it; `url` connects as
/// the owner (the single-role set-up) until a test points the app elsewhere.
pub async fn owned_db(roles: &Roles) -> Arc<TestDb> {
    let name = format!("opsguard_test_{}", uuid::Uuid::new_v4().simple());
    as_root(&format!(
        "CREATE DATABASE \"{name}\" OWNER \"{}\"",
        roles.owner
    ))
    .await;
    TestDb::migrated(name.clone(), url_as(&roles.owner, &name)).await
}

pub fn keyed(s: &mut opsguard::config::Settings) {
    s.master_key = Some(Secret::new(MASTER_KEY));
    s.audit.checkpoint_chats = vec![CHECKPOINT_CHAT];
}

pub async fn run_as(pool: &PgPool, sql: &str) -> Result<u64, String> {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
        .map_err(|e| e.to_string())
}

pub async fn verify_all(app: &TestApp) -> opsguard::audit::FullReport {
    opsguard::audit::verify_all(
        app.pool(),
        app.engine.settings(),
        app.engine.audit_keys(),
        &[],
    )
    .await
    .unwrap()
}

pub fn broken_seq(report: &opsguard::audit::FullReport) -> Option<i64> {
    report.chain.broken.as_ref().map(|b| b.seq)
}

/// Some traffic, then a checkpoint through the bot; returns the line sent to the chat.
pub async fn traffic_and_checkpoint(app: &TestApp) -> String {
    app.add_user(42, "admin").await;
    for _ in 0..3 {
        app.say(42, "/whoami").await;
    }
    let reply = app.say(42, "/audit checkpoint").await.text();
    assert!(reply.contains("Checkpoint of row"), "{reply}");
    let calls = app
        .telegram
        .wait_until("the checkpoint message", |calls| {
            calls.iter().any(|c| c.chat_id() == Some(CHECKPOINT_CHAT))
        })
        .await;
    let text = calls
        .iter()
        .find(|c| c.chat_id() == Some(CHECKPOINT_CHAT))
        .unwrap()
        .text();
    let start = text
        .find("opsguard-audit-checkpoint v1")
        .expect("a checkpoint line");
    let line = &text[start..];
    line[..line.find("</code>").unwrap()].to_string()
}

/// Run the real binary against `url` with the test master key and `checkpoints` as the
/// checkpoint storage: (exit code, stdout, stderr).
pub async fn opsguard_cli(
    url: &str,
    checkpoints: &std::path::Path,
    args: &[&str],
) -> (Option<i32>, String, String) {
    let envs = [
        ("OPSGUARD_MASTER_KEY", std::ffi::OsStr::new(MASTER_KEY)),
        (
            "OPSGUARD__AUDIT__CHECKPOINT_STORAGE",
            checkpoints.as_os_str(),
        ),
    ];
    run_opsguard(url, &envs, args).await
}
