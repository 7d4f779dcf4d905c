//! Command menus cost a Bot API call only when they change (issue 24): a restart with 50
//! users sends no `setMyCommands` at all; a grant changes exactly that user's menu, on the
//! next start as while running.

use crate::fake_telegram::Call;
use crate::helpers::*;
use opsguard::domain::{RoleName, UserId};
use opsguard::storage;
use serde_json::json;

fn users() -> std::ops::RangeInclusive<i64> {
    5001..=5050
}
/// The last user in id order: the start-up pass reaches them last.
const LAST: i64 = 5050;

fn menu_for(user: i64) -> impl Fn(&Call) -> bool {
    move |c| c.method == "setMyCommands" && c.body.pointer("/scope/chat_id") == Some(&json!(user))
}

fn menu_calls(calls: &[Call]) -> Vec<&Call> {
    calls
        .iter()
        .filter(|c| c.method == "setMyCommands" || c.method == "deleteMyCommands")
        .collect()
}

async fn grant(db: &TestDb, user: i64, role: &str) {
    let role = RoleName::parse(role).unwrap();
    storage::users::grant(&db.pool, UserId(user), &role, "test")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_restart_sends_no_unchanged_menu_and_a_grant_changes_exactly_that_users_menu() {
    let db = TestDb::create().await;
    for user in users() {
        storage::users::upsert(&db.pool, UserId(user), &format!("User{user}"))
            .await
            .unwrap();
        grant(&db, user, "viewer").await;
    }
    let first = spawn_app_on(db.clone(), |_| {}).await;
    let calls = first
        .telegram
        .wait_until("the menus of all 50 users", |calls| {
            users().all(|u| calls.iter().any(menu_for(u)))
        })
        .await;
    assert_eq!(
        menu_calls(&calls).len(),
        51,
        "50 menus and the default one cleared"
    );
    first.shutdown.cancel();
    drop(first);

    // While it is down, user 5050 becomes an operator.
    grant(&db, LAST, "operator").await;
    let second = spawn_app_on(db.clone(), |_| {}).await;
    // The pass goes in id order: 5050's menu is proof that every other user was looked at.
    let calls = second
        .telegram
        .wait_until("the new menu of user 5050", |calls| {
            calls.iter().any(menu_for(LAST))
        })
        .await;
    let sent = menu_calls(&calls);
    assert_eq!(sent.len(), 1, "only the changed menu: {sent:#?}");
    assert!(sent[0].raw().contains("\"check\""), "{}", sent[0].raw());

    // Running: a grant to user 5001 sends 5001's menu and nobody else's.
    grant(&db, 5001, "operator").await;
    let calls = second
        .telegram
        .wait_until("the new menu of user 5001", |calls| {
            calls.iter().any(menu_for(5001))
        })
        .await;
    let sent = menu_calls(&calls);
    assert_eq!(sent.len(), 2, "{sent:#?}");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM menu_sent WHERE scope = 'chat'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 50);
}

#[tokio::test]
async fn the_permission_cache_holds_at_most_its_configured_size() {
    let app = spawn_app_with(|s| s.authz.cache_max_users = 8).await;
    for user in 6001..=6040 {
        app.add_user(user, "viewer").await;
    }
    // Strangers too: each lookup of an unknown id is cached.
    for stranger in 7001..=7100 {
        let p = app
            .engine
            .authz()
            .principal(UserId(stranger))
            .await
            .unwrap();
        assert!(p.is_none());
        assert!(app.engine.authz().cached() <= 8);
    }
    // Evicted users are read again, still right.
    let p = app.engine.authz().principal(UserId(6001)).await.unwrap();
    assert!(p.is_some_and(|p| p.user.roles.contains(&"viewer".to_string())));
    assert!(app.engine.authz().cached() <= 8);
}
