//! Chats as Telegram knows them: a user added before they opened the bot gets their menu
//! when they first write; a group upgraded to a supergroup is followed by the outbox.

use crate::helpers::*;
use opsguard::domain::{ChatId, Reply};
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

#[tokio::test]
async fn pushes_to_a_group_upgraded_to_a_supergroup_follow_it() {
    let app = spawn_app_with(|s| s.outbox.poll_interval_ms = 20).await;
    let (old, new) = (-4_242, -1_004_242);
    chats::allow(app.pool(), ChatId(old), "ops").await.unwrap();
    app.telegram.upgrade_group(old, new);
    for text in ["first", "second"] {
        outbox::enqueue(app.pool(), old, &Reply::html(text), "test")
            .await
            .unwrap();
    }
    app.telegram
        .wait_until("both pushes in the supergroup", |_| {
            app.telegram.sent_to(new).len() >= 2
        })
        .await;
    let texts: Vec<String> = app.telegram.sent_to(new).iter().map(|c| c.text()).collect();
    assert_eq!(texts, vec!["first", "second"]);
    assert!(chats::is_allowed(app.pool(), ChatId(new)).await.unwrap());
    assert!(!chats::is_allowed(app.pool(), ChatId(old)).await.unwrap());
    // What is queued for the old id later (a configured alert chat) goes to the new one.
    let id = outbox::enqueue(app.pool(), old, &Reply::html("third"), "test")
        .await
        .unwrap();
    let chat: i64 = sqlx::query_scalar("SELECT chat_id FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(chat, new);
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status = 'dead'")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(dead, 0);
}
