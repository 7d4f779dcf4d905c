//! The permission cache's two safety nets: a revoke whose change notification is lost is in
//! force within `authz.cache_ttl_secs`, and a listener whose connection is dropped
//! reconnects, so a later revoke is heard again.

use super::helpers::*;
use opsguard::domain::{RoleName, UserId};
use opsguard::engine::EngineEvent;
use opsguard::storage;
use sqlx::{Connection, PgConnection};
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

const ADMIN: i64 = 42;

/// Whether `user` still holds `role` in the engine's eyes (its cache, or the database once
/// the cached entry expired).
async fn holds(app: &TestApp, user: i64, role: &str) -> bool {
    app.engine
        .authz()
        .principal(UserId(user))
        .await
        .unwrap()
        .is_some_and(|p| p.user.roles.iter().any(|r| r == role))
}

/// Revoke every role of `user` in a transaction that disables the trigger sending the
/// change notification: the commit reaches the database and no replica hears of it.
async fn revoke_silently(app: &TestApp, user: i64) {
    let mut tx = app.pool().begin().await.unwrap();
    sqlx::query("ALTER TABLE user_roles DISABLE TRIGGER user_roles_authz")
        .execute(&mut *tx)
        .await
        .unwrap();
    let gone = sqlx::query("DELETE FROM user_roles WHERE telegram_id = $1")
        .bind(user)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(gone.rows_affected(), 1);
    sqlx::query("ALTER TABLE user_roles ENABLE TRIGGER user_roles_authz")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Wait until this replica has heard a marker notification sent now, so every change
/// notification committed before it has been applied.
async fn heard_everything_so_far(app: &TestApp) {
    const MARKER: i64 = -1;
    let mut events = app.engine.subscribe();
    sqlx::query("SELECT pg_notify('opsguard_authz', $1)")
        .bind(MARKER.to_string())
        .execute(app.pool())
        .await
        .unwrap();
    let marker = EngineEvent::PermissionsChanged(UserId(MARKER));
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match events.recv().await {
                Ok(event) if event == marker => return,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => panic!("the engine stopped"),
            }
        }
    })
    .await
    .expect("the marker notification is heard");
}

#[tokio::test]
async fn a_revoke_whose_notification_is_lost_is_in_force_within_the_cache_ttl() {
    const TTL: Duration = Duration::from_secs(3);
    let app = spawn_app_with(|s| s.authz.cache_ttl_secs = TTL.as_secs()).await;
    app.add_user(ADMIN, "admin").await;
    // The notifications of adding the admin may still be on their way: once a marker sent
    // after them is heard, none of them can evict the entry cached below.
    heard_everything_so_far(&app).await;
    // Cache the admin afresh: the entry is at most TTL old from here on.
    app.engine.authz().evict(UserId(ADMIN));
    assert!(holds(&app, ADMIN, "admin").await);
    let cached_at = Instant::now();
    revoke_silently(&app, ADMIN).await;
    // The notification was lost: the cache still serves the old rights (checked only while
    // the entry is surely younger than its TTL, so a slow machine cannot fail this).
    let still_admin = holds(&app, ADMIN, "admin").await;
    if cached_at.elapsed() < TTL - Duration::from_millis(500) {
        assert!(still_admin, "the change notification was not lost");
    }
    wait_for(
        "the revoke to take effect without a notification",
        || async { !holds(&app, ADMIN, "admin").await },
    )
    .await;
    let took = cached_at.elapsed();
    assert!(
        took <= TTL + Duration::from_secs(1),
        "the revoke took {took:?}, more than the {TTL:?} cache TTL"
    );
    let reply = app.say(ADMIN, "/users").await;
    assert_eq!(reply.text(), "⛔ You may not run /users.");
}

/// Refuse or allow new connections to the test's database (existing ones are kept), from
/// the server's maintenance database.
async fn allow_connections(admin: &mut PgConnection, db: &str, allow: bool) {
    // The name is the test's own generated one and `allow` a bool.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS {allow}"
    )))
    .execute(admin)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_dropped_listener_connection_reconnects_and_hears_a_later_revoke() {
    // The longest TTL allowed: only a notification can end the admin's rights in time.
    let app = spawn_app_with(|s| s.authz.cache_ttl_secs = 300).await;
    app.add_user(ADMIN, "admin").await;
    let mut admin = PgConnection::connect(&admin_url()).await.unwrap();
    // Drop every connection to the database, the listener's among them, while new ones are
    // refused: the listener cannot get its connection back at once and has to wait and try
    // again.
    allow_connections(&mut admin, &app.db.name, false).await;
    let dropped: i64 = sqlx::query_scalar(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM (
             SELECT pid FROM pg_stat_activity WHERE datname = $1 OFFSET 0) backends",
    )
    .bind(&app.db.name)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(dropped >= 1, "the listener's connection was dropped");
    wait_for("the listener to lose its connection", || async {
        !app.engine.authz().is_listening()
    })
    .await;
    allow_connections(&mut admin, &app.db.name, true).await;
    wait_for("the listener to connect again", || async {
        app.engine.authz().is_listening()
    })
    .await;
    assert!(holds(&app, ADMIN, "admin").await);
    // An ordinary revoke (the shell's), notified on commit.
    let admin = RoleName::parse("admin").unwrap();
    assert!(
        storage::users::revoke(app.pool(), UserId(ADMIN), &admin)
            .await
            .unwrap()
    );
    wait_for("the revoke to reach the reconnected listener", || async {
        !holds(&app, ADMIN, "admin").await
    })
    .await;
    let reply = app.say(ADMIN, "/users").await;
    assert_eq!(reply.text(), "⛔ You may not run /users.");
}
