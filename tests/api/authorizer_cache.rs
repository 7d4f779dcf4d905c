//! The permission cache's two safety nets: a revoke whose change notification is lost is in
//! force within `authz.cache_ttl_secs`, and a listener whose connection is dropped
//! reconnects, so a later revoke is heard again.

use super::helpers::*;
use opsguard::domain::{RoleName, UserId};
use opsguard::storage;
use std::time::{Duration, Instant};

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

#[tokio::test]
async fn a_revoke_whose_notification_is_lost_is_in_force_within_the_cache_ttl() {
    const TTL: Duration = Duration::from_secs(3);
    let app = spawn_app_with(|s| s.authz.cache_ttl_secs = TTL.as_secs()).await;
    app.add_user(ADMIN, "admin").await;
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

/// The backend of this app's LISTEN connection.
async fn listener_pid(app: &TestApp) -> Option<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity
         WHERE datname = current_database() AND query ILIKE 'LISTEN%opsguard_authz%'
         ORDER BY backend_start DESC LIMIT 1",
    )
    .fetch_optional(app.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_dropped_listener_connection_reconnects_and_hears_a_later_revoke() {
    // The longest TTL allowed: only a notification can end the admin's rights in time.
    let app = spawn_app_with(|s| s.authz.cache_ttl_secs = 300).await;
    app.add_user(ADMIN, "admin").await;
    let first = listener_pid(&app).await.expect("the listener is connected");
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(first)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(killed);
    wait_for("the listener to connect again", || async {
        listener_pid(&app).await.is_some_and(|pid| pid != first)
            && app.engine.authz().is_listening()
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
