//! A rotation never gets stuck (issue 15): the target's admin role has CREATEROLE but lost
//! `pg_signal_backend`, so a retirement removes the old password but cannot end the old
//! sessions. It is retried with backoff (not on every tick), alerted once, shown by
//! `/secrets`; the next `/rotate` is refused up front naming the grant and changing nothing,
//! and once it is granted the next rotation works and the old sessions are ended (not the
//! new ones). Each test has its own admin role, managed roles and database.

use super::*;
use crate::gates::add;
use crate::helpers::{TestApp, pg_url, spawn_app_with};
use crate::secrets::{Scratch, api_key, env_value, fingerprint, rotate, with_vault};
use opsguard::config::{SecretSettings, TargetSettings};
use std::path::Path;
use std::time::Instant;

/// An admin role `og_adm_<8 hex>` with CREATEROLE and `pg_signal_backend` if asked, and
/// `pg_read_all_stats`,
/// logging in over trust; dropped on drop.
pub struct AdminRole {
    pub name: String,
}

impl AdminRole {
    pub async fn create(createrole: bool, signal: bool) -> AdminRole {
        let name = format!("og_adm_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let create = if createrole { "CREATEROLE" } else { "" };
        exec(format!("CREATE ROLE \"{name}\" LOGIN {create}")).await;
        exec(format!("GRANT pg_read_all_stats TO \"{name}\"")).await;
        let role = AdminRole { name };
        if signal {
            role.signal(true).await;
        }
        role
    }

    /// GRANT or REVOKE pg_signal_backend.
    pub async fn signal(&self, granted: bool) {
        let sql = match granted {
            true => format!("GRANT pg_signal_backend TO \"{}\"", self.name),
            false => format!("REVOKE pg_signal_backend FROM \"{}\"", self.name),
        };
        exec(sql).await;
    }

    pub fn dsn(&self) -> String {
        pg_url(Some(&self.name), None, "postgres")
    }
}

impl Drop for AdminRole {
    fn drop(&mut self) {
        let name = self.name.clone();
        on_own_runtime(async move {
            if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
                let sql = format!("DROP ROLE IF EXISTS \"{name}\"");
                let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await;
            }
        });
    }
}

/// `app-db`, alternating users of `roles`, administered by `admin`, a grace of `grace` s.
pub fn app_db(env: &Path, roles: &Roles, admin: &AdminRole, grace: u64) -> SecretSettings {
    let mut s = api_key("app-db", env, false);
    s.kind = "postgres_role".into();
    s.target = TargetSettings {
        dsn: Some(Secret::new(admin.dsn())),
        role: Some(roles.group.clone()),
        ..Default::default()
    };
    s.policy.grace_secs = Some(grace);
    s
}

/// (version, state, retire_attempts, retire_error, sessions pending, sessions ended)
type Row = (i32, String, i32, Option<String>, bool, bool);

pub async fn versions(app: &TestApp) -> Vec<Row> {
    sqlx::query_as(
        "SELECT version, state, retire_attempts, retire_error,
                sessions_before IS NOT NULL AND sessions_ended_at IS NULL,
                sessions_ended_at IS NOT NULL
         FROM secret_versions ORDER BY version",
    )
    .fetch_all(app.pool())
    .await
    .unwrap()
}

/// Polls (up to 30 s) until `done` holds of version 1's row; its row then.
async fn until_v1(app: &TestApp, done: impl Fn(&Row) -> bool) -> Row {
    for _ in 0..300 {
        let rows = versions(app).await;
        if let Some(v1) = rows.iter().find(|r| r.0 == 1).filter(|r| done(r)) {
            return v1.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("version 1 never got there: {:?}", versions(app).await);
}

pub async fn alerts(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT html FROM outbox WHERE chat_id = -100555 ORDER BY id")
        .fetch_all(app.pool())
        .await
        .unwrap()
}

async fn rotations(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM rotations")
        .fetch_one(app.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn sessions_that_cannot_be_ended_back_off_alert_once_and_never_block_the_next_rotation() {
    let dir = Scratch::new();
    let env = dir.file("db.env");
    let roles = Roles::create(false).await;
    let admin = AdminRole::create(true, true).await;
    let app = spawn_app_with(|s| {
        with_vault(s, vec![app_db(&env, &roles, &admin, 3)]);
        s.rotation.worker_interval_ms = 100;
        s.rotation.backoff_base_secs = 1;
        s.rotation.backoff_cap_secs = 1;
    })
    .await;
    add(&app, 42, "admin").await;
    assert!(rotate(&app, 42, "app-db").await.contains("Rotated"));
    let first = env_value(&env, "APP_DB_PASSWORD").unwrap();
    let mut old_session = login(&roles.a(), &first).await.unwrap();
    assert!(rotate(&app, 42, "app-db").await.contains("Rotated"));
    // The privilege is lost (before v1's grace is over).
    admin.signal(false).await;

    // Inside v1's grace a new value would need v1's role: refused with the time, no change.
    let too_soon = rotate(&app, 42, "app-db").await;
    assert!(
        too_soon.contains("version 1 is promised to keep working until")
            && too_soon.contains("Rotate again from then"),
        "{too_soon}"
    );
    assert_eq!(rotations(&app).await, 2);
    let listed = app.say(42, "/secrets").await.text();
    assert!(
        listed.contains("a new rotation would cut this short and is possible from"),
        "{listed}"
    );

    // Once the grace is over the worker retires v1: the password goes, the sessions stay.
    let v1 = until_v1(&app, |r| r.2 >= 1).await;
    let (seen, failing_since) = (v1.2, Instant::now());
    assert_eq!(v1.1, "revoked", "the password is off the target: {v1:?}");
    assert!(v1.4, "its sessions are still to be ended: {v1:?}");
    assert!(
        v1.3.as_deref()
            .unwrap_or_default()
            .contains("member of pg_signal_backend"),
        "{v1:?}"
    );
    assert_refused(&roles.a(), &first).await;
    // Retried with the backoff (1 s here), not on every tick (100 ms): the two attempts
    // after this one are at least a backoff apart.
    let v1 = until_v1(&app, |r| r.2 >= seen + 2).await;
    assert!(
        failing_since.elapsed() >= Duration::from_millis(900),
        "two attempts within {:?}: the backoff was not kept",
        failing_since.elapsed()
    );
    assert!(v1.4, "{v1:?}");
    sqlx::query("SELECT 1")
        .execute(&mut old_session)
        .await
        .expect("the old session was not ended yet");
    let sent = alerts(&app).await;
    assert_eq!(sent.len(), 1, "one alert: {sent:?}");
    assert!(
        sent[0].contains("Retiring version 1 of <b>app-db</b> failed")
            && sent[0].contains("sessions opened with it are still open")
            && sent[0].contains(&format!(
                "GRANT pg_signal_backend TO &quot;{}&quot;",
                admin.name
            )),
        "{}",
        sent[0]
    );
    let listed = app.say(42, "/secrets").await.text();
    assert!(
        listed.contains(&format!(
            "retired v1 <code>sha256:{}</code> revoked",
            fingerprint(&first)
        )) && listed.contains("its sessions are still open; ending them is failing (attempt")
            && listed.contains("member of pg_signal_backend"),
        "{listed}"
    );

    // The next rotation is refused up front, naming the grant, and changes nothing.
    let before = versions(&app).await;
    let refused = rotate(&app, 42, "app-db").await;
    assert!(
        refused.contains("refused, nothing changed")
            && refused.contains(&format!(
                "GRANT pg_signal_backend TO &quot;{}&quot;",
                admin.name
            )),
        "{refused}"
    );
    assert_eq!(rotations(&app).await, 2);
    let after: Vec<_> = versions(&app)
        .await
        .into_iter()
        .map(|r| (r.0, r.1))
        .collect();
    let before: Vec<_> = before.into_iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(after, before);

    // Granted: the next rotation works at once (v3 on v1's role), the old sessions are
    // ended by the retry, the sessions made with the new password are not.
    admin.signal(true).await;
    assert!(rotate(&app, 42, "app-db").await.contains("Rotated"));
    let third = env_value(&env, "APP_DB_PASSWORD").unwrap();
    assert_eq!(env_value(&env, "APP_DB_USER").unwrap(), roles.a());
    let mut new_session = login(&roles.a(), &third).await.unwrap();
    let v1 = until_v1(&app, |r| r.5).await;
    assert!(v1.3.is_none(), "{v1:?}");
    let mut ended = false;
    for _ in 0..50 {
        if sqlx::query("SELECT 1")
            .execute(&mut old_session)
            .await
            .is_err()
        {
            ended = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ended, "the old session lives on");
    sqlx::query("SELECT 1")
        .execute(&mut new_session)
        .await
        .expect("a session with the new password was ended");
    let listed = app.say(42, "/secrets").await.text();
    assert!(listed.contains("sessions ended"), "{listed}");
    assert_eq!(alerts(&app).await.len(), 1, "still one alert");
}
