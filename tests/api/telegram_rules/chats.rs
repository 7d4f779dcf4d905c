//! Chats as Telegram knows them: a user added before they opened the bot gets their menu
//! when they first write; a group upgraded to a supergroup is followed by the outbox (its
//! allow-list entry, queued rows and pending actions move on one refusal) and by a reply.

use crate::helpers::*;
use opsguard::domain::{ActionId, ChatId, Reply, UserId};
use opsguard::storage::pending::{self, Kind, NewPending};
use opsguard::{outbox, storage::chats};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_user_added_before_opening_the_bot_gets_their_menu_on_first_message() {
    let app = spawn_app().await;
    app.telegram.unseen_chat(77);
    app.add_user(77, "viewer").await;
    let mut pending = false;
    for _ in 0..250 {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM menu_pending WHERE user_id = 77")
            .fetch_one(app.pool())
            .await
            .unwrap();
        if n == 1 {
            pending = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(pending, "Telegram's 'chat not found' is remembered");
    let menu_for_77 = |c: &crate::fake_telegram::Call| {
        c.method == "setMyCommands" && c.body.pointer("/scope/chat_id") == Some(&json!(77))
    };
    assert!(!app.telegram.calls().iter().any(menu_for_77));
    // The user opens the bot.
    app.telegram.meet(77);
    app.say(77, "/start").await;
    let calls = app
        .telegram
        .wait_until("the menu of user 77", |calls| calls.iter().any(menu_for_77))
        .await;
    let menu = calls.iter().find(|c| menu_for_77(c)).unwrap();
    let names: Vec<&str> = menu.body["commands"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["command"].as_str())
        .collect();
    assert!(names.contains(&"whoami"), "{names:?}");
    assert!(!names.contains(&"rotate"), "a viewer's menu: {names:?}");
    app.settle().await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM menu_pending")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// The chat id a pending action is bound to now.
async fn action_chat(app: &TestApp, id: &ActionId) -> i64 {
    sqlx::query_scalar("SELECT chat_id FROM pending_actions WHERE id = $1")
        .bind(id.as_str())
        .fetch_one(app.pool())
        .await
        .unwrap()
}

/// (chat id, status) of an outbox row.
async fn row_of(app: &TestApp, id: i64) -> (i64, String) {
    sqlx::query_as("SELECT chat_id, status FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn pushes_to_a_group_upgraded_to_a_supergroup_follow_it() {
    let app = spawn_app_with(|s| s.outbox.poll_interval_ms = 20).await;
    app.add_user(42, "viewer").await;
    let (old, new) = (-4_242, -1_004_242);
    chats::allow(app.pool(), ChatId(old), "ops").await.unwrap();
    // Before the upgrade: an approval waiting in the group, two pushes due and one queued
    // for an hour from now (behind them, so it holds nothing up), in one transaction so the
    // outbox sees them all at once.
    let approval = pending::create(
        app.pool(),
        NewPending {
            kind: Kind::Approval,
            user: UserId(42),
            chat_id: old,
            command: "/grant 7 operator",
            need_stepup: false,
            need_approval: true,
            request_id: "upgrade-test",
            ttl: chrono::Duration::hours(1),
        },
    )
    .await
    .unwrap();
    app.telegram.upgrade_group(old, new);
    let mut tx = app.pool().begin().await.unwrap();
    for text in ["first", "second"] {
        outbox::enqueue(&mut *tx, old, &Reply::html(text), "test")
            .await
            .unwrap();
    }
    let queued = outbox::enqueue(&mut *tx, old, &Reply::html("in an hour"), "test")
        .await
        .unwrap();
    sqlx::query("UPDATE outbox SET not_before = now() + interval '1 hour' WHERE id = $1")
        .bind(queued)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    app.telegram
        .wait_until("both pushes in the supergroup", |_| {
            app.telegram.sent_to(new).len() >= 2
        })
        .await;
    let texts: Vec<String> = app.telegram.sent_to(new).iter().map(|c| c.text()).collect();
    assert_eq!(texts, vec!["first", "second"]);
    let refused: Vec<_> = app
        .telegram
        .refused()
        .into_iter()
        .filter(|c| c.chat_id() == Some(old))
        .collect();
    assert_eq!(
        refused.len(),
        1,
        "one refusal moved everything: {refused:?}"
    );
    assert_eq!(row_of(&app, queued).await, (new, "pending".to_string()));
    assert_eq!(action_chat(&app, &approval).await, new);
    assert!(chats::is_allowed(app.pool(), ChatId(new)).await.unwrap());
    assert!(!chats::is_allowed(app.pool(), ChatId(old)).await.unwrap());
    // What is queued for the old id later (a configured alert chat) goes to the new one.
    let id = outbox::enqueue(app.pool(), old, &Reply::html("third"), "test")
        .await
        .unwrap();
    assert_eq!(row_of(&app, id).await.0, new);
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status = 'dead'")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(dead, 0);
    // A command in the group now (Telegram sends it from the supergroup's id) is answered
    // there: the allow-list entry moved with it.
    let reply = app.say_in(42, new, "/whoami").await;
    assert!(reply.text().contains("Telegram id"), "{}", reply.text());
    assert_eq!(reply.chat_id(), Some(new));
}

#[tokio::test]
async fn a_reply_to_a_group_upgraded_meanwhile_follows_it() {
    let app = spawn_app().await;
    app.add_user(42, "viewer").await;
    let (old, new) = (-4_343, -1_004_343);
    chats::allow(app.pool(), ChatId(old), "ops").await.unwrap();
    app.telegram.upgrade_group(old, new);
    // A command sent in the group just before its upgrade: the reply is refused once for
    // the old id and goes to the new one, where the allow-list entry moved.
    let update = text_update(app.next_update_id(), 42, old, "/whoami");
    assert_eq!(app.post_update(&update).await.status(), 200);
    let reply = app.wait_reply(new, 0).await;
    assert!(reply.text().contains("Telegram id"), "{}", reply.text());
    app.idle().await;
    let refused = app.telegram.refused();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].chat_id(), Some(old));
    assert!(app.telegram.sent_to(old).is_empty());
    assert!(chats::is_allowed(app.pool(), ChatId(new)).await.unwrap());
    assert!(!chats::is_allowed(app.pool(), ChatId(old)).await.unwrap());
}
