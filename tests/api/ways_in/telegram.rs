//! Through the webhook with the fake Bot API: a de-dup key planted in Redis (by someone who
//! can write to it) never drops an update; a command addressed to another bot is neither
//! run nor answered; a forwarded command is never run, only answered once, and audited.

use crate::helpers::*;
use opsguard::domain::ChatId;
use opsguard::engine::FORWARDED_LINE;
use opsguard::storage::chats;
use serde_json::{Value, json};

const GROUP: i64 = -100_555;

/// The fake Bot API's getMe answers with this username.
const OUR_NAME: &str = "opsguard_bot";

async fn post(app: &TestApp, update: &Value) -> (u16, String) {
    let response = app.post_update(update).await;
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// `update` with its message marked as forwarded from `origin`.
fn forwarded(mut update: Value, origin: Value) -> Value {
    update["message"]["forward_origin"] = origin;
    update
}

#[tokio::test]
async fn a_dedup_key_planted_in_redis_never_drops_an_update() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    let client = redis::Client::open(REDIS_URL).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // The attacker marks the next update ids as seen, in every way opsguard ever spelled it.
    let next = app.next_update_id();
    for id in next..next + 5 {
        let key = format!("{}update:{id}", app.db.redis_prefix);
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(1)
            .arg("EX")
            .arg(600)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let (status, body) = post(&app, &text_update(next, 42, 42, "/whoami")).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let reply = app.wait_reply(42, 0).await;
    assert!(reply.text().contains("Telegram id"), "{}", reply.text());
    // PostgreSQL still knows a real retry.
    let (status, body) = post(&app, &text_update(next, 42, 42, "/whoami")).await;
    assert_eq!((status, body.as_str()), (200, "duplicate"));
}

#[tokio::test]
async fn a_command_for_another_bot_is_neither_run_nor_answered() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    chats::allow(app.pool(), ChatId(GROUP), "ops")
        .await
        .unwrap();
    for (chat, text) in [
        (42, "/whoami@other_bot"),
        (GROUP, "/whoami@other_bot"),
        (GROUP, "/grant@other_bot 7 admin"),
        (GROUP, "/whoami@opsguard_bot_not"),
        (GROUP, "/whoami@"),
    ] {
        let update = text_update(app.next_update_id(), 42, chat, text);
        // Dropped before the 200: the answer is the proof it was looked at.
        assert_eq!(post(&app, &update).await, (200, "ignored".into()), "{text}");
    }
    // Forwarded, a command for another bot is no more ours.
    let update = text_update(app.next_update_id(), 42, 42, "/start@other_bot");
    let origin = json!({ "type": "hidden_user", "date": 1, "sender_user_name": "X" });
    let update = forwarded(update, origin);
    assert_eq!(post(&app, &update).await, (200, "ignored".into()));
    assert!(app.telegram.calls_to("sendMessage").is_empty());
    assert!(
        app.audit_rows().await.is_empty(),
        "nothing was run or audited"
    );

    // Addressed to us (in any case), it runs.
    let reply = app.say_in(42, GROUP, &format!("/whoami@{OUR_NAME}")).await;
    assert!(reply.text().contains("Telegram id"), "{}", reply.text());
    let reply = app.say(42, "/whoami@OpsGuard_Bot").await;
    assert!(reply.text().contains("Telegram id"), "{}", reply.text());
    assert_eq!(app.telegram.calls_to("sendMessage").len(), 2);
}

#[tokio::test]
async fn a_forwarded_command_is_never_run_and_answered_once() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    app.add_user(7, "viewer").await;
    let admin_origin = json!({
        "type": "user", "date": 1_700_000_000,
        "sender_user": { "id": 43, "is_bot": false, "first_name": "OtherAdmin" }
    });
    let update = text_update(app.next_update_id(), 42, 42, "/grant 7 admin");
    let (status, _) = post(&app, &forwarded(update, admin_origin.clone())).await;
    assert_eq!(status, 200);
    let reply = app.wait_reply(42, 0).await;
    assert_eq!(reply.text(), FORWARDED_LINE);
    assert!(
        reply.buttons().is_empty(),
        "no confirmation: nothing to run"
    );

    let hidden = json!({ "type": "hidden_user", "date": 1_700_000_000, "sender_user_name": "X" });
    let update = text_update(app.next_update_id(), 42, 42, "/whoami");
    post(&app, &forwarded(update, hidden)).await;
    assert_eq!(app.wait_reply(42, 1).await.text(), FORWARDED_LINE);
    // One reply each: the next one is the answer to a typed command.
    let typed = app.say(42, "/whoami").await;
    assert!(typed.text().contains("Telegram id"));
    assert_eq!(app.telegram.sent_to(42).len(), 3);

    let rows = app.audit_rows().await;
    let refused: Vec<_> = rows
        .iter()
        .filter(|r| r.entry.reason.as_deref() == Some("forwarded message"))
        .collect();
    assert_eq!(refused.len(), 4, "two rows per forwarded message: {rows:?}");
    assert!(refused.iter().all(|r| r.entry.decision == "refused"));
    assert_eq!(refused[0].entry.command, "grant");
    assert_eq!(refused[0].entry.args, "[2 argument(s) redacted]");
    assert!(
        rows.iter()
            .all(|r| r.entry.decision != "allowed" || r.entry.command == "whoami")
    );
    let roles = opsguard::storage::users::principal_of(app.pool(), opsguard::domain::UserId(7))
        .await
        .unwrap()
        .unwrap()
        .user
        .roles;
    assert_eq!(roles, ["viewer"]);

    // An automatic forward into an allow-listed discussion group is not run either.
    chats::allow(app.pool(), ChatId(GROUP), "ops")
        .await
        .unwrap();
    let mut auto = text_update(app.next_update_id(), 42, GROUP, "/whoami");
    auto["message"]["is_automatic_forward"] = json!(true);
    post(&app, &auto).await;
    assert_eq!(app.wait_reply(GROUP, 0).await.text(), FORWARDED_LINE);
    // A stranger forwarding a command learns nothing more than the neutral line.
    let update = text_update(app.next_update_id(), 999, 999, "/help");
    post(&app, &forwarded(update, admin_origin)).await;
    assert_eq!(app.wait_reply(999, 0).await.text(), STRANGER_LINE);
}

#[tokio::test]
async fn a_command_sent_via_an_inline_bot_is_never_run() {
    // An inline bot can offer a result whose text is `/grant 7 admin` under a harmless
    // title: the admin who taps it sent that bot's words, not a command of their own.
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    app.add_user(7, "viewer").await;
    let mut update = text_update(app.next_update_id(), 42, 42, "/grant 7 admin");
    update["message"]["via_bot"] = json!({ "id": 555, "is_bot": true, "first_name": "Gifs" });
    let (status, _) = post(&app, &update).await;
    assert_eq!(status, 200);
    let reply = app.wait_reply(42, 0).await;
    assert_eq!(
        reply.text(),
        "↪️ Forwarded messages, and messages sent via a bot, are never run as commands. \
         Type the command yourself."
    );
    assert!(
        reply.buttons().is_empty(),
        "no confirmation: nothing to run"
    );
    let roles = opsguard::storage::users::principal_of(app.pool(), opsguard::domain::UserId(7))
        .await
        .unwrap()
        .unwrap()
        .user
        .roles;
    assert_eq!(roles, ["viewer"]);
    let rows = app.audit_rows().await;
    assert!(
        rows.iter()
            .all(|r| r.entry.decision != "allowed" && r.entry.command == "grant"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.entry.reason.as_deref() == Some("forwarded message"))
    );
}
