//! Polling mode, webhook registration at start, and the document fallback for replies too
//! long to read as messages.

use super::helpers::*;
use opsguard::domain::{RoleName, UserId};

#[tokio::test]
async fn without_a_webhook_secret_updates_are_long_polled() {
    let app = spawn_app_with(|s| s.telegram.webhook_secret = None).await;
    app.add_user(42, "viewer").await;
    // No webhook route in polling mode.
    assert_eq!(
        app.post_update(&text_update(1, 42, 42, "/whoami"))
            .await
            .status(),
        404
    );
    app.telegram
        .wait_until("deleteWebhook", |calls| {
            calls.iter().any(|c| c.method == "deleteWebhook")
        })
        .await;
    app.telegram
        .push_update(text_update(500, 42, 42, "/whoami"));
    let reply = app.wait_reply(42, 0).await;
    assert!(
        reply.text().contains("Telegram id: <code>42</code>"),
        "{}",
        reply.text()
    );
    // The same update polled again (e.g. by another replica) does not run twice.
    app.telegram
        .push_update(text_update(500, 42, 42, "/whoami"));
    app.telegram
        .push_update(text_update(501, 42, 42, "/status"));
    app.wait_reply(42, 1).await;
    // The offset past 501 proves both were taken in (each is counted in flight as it is
    // taken in); no update in flight then proves whatever ran has finished.
    app.telegram
        .wait_until("a poll acknowledging update 501", |calls| {
            calls.iter().any(|c| {
                c.method == "getUpdates"
                    && c.body.get("offset").and_then(|o| o.as_i64()) == Some(502)
            })
        })
        .await;
    app.idle().await;
    assert_eq!(
        app.telegram.sent_to(42).len(),
        2,
        "the replayed update ran once"
    );
    let whoami = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.entry.command == "whoami");
    assert_eq!(whoami.count(), 2, "one attempt and one outcome");
}

#[tokio::test]
async fn with_a_public_url_the_webhook_is_registered_with_its_secret() {
    let app =
        spawn_app_with(|s| s.telegram.public_url = Some("https://ops.example.com/".into())).await;
    let calls = app
        .telegram
        .wait_until("setWebhook", |calls| {
            calls.iter().any(|c| c.method == "setWebhook")
        })
        .await;
    let set = calls.iter().find(|c| c.method == "setWebhook").unwrap();
    assert_eq!(set.body["url"], "https://ops.example.com/telegram/webhook");
    assert_eq!(set.body["secret_token"], WEBHOOK_SECRET);
    assert_eq!(
        set.body["allowed_updates"],
        serde_json::json!(["message", "callback_query"])
    );
}

#[tokio::test]
async fn a_reply_too_long_for_three_messages_is_sent_as_a_document() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    let viewer = RoleName::parse("viewer").unwrap();
    for id in 1..=700 {
        let user = UserId(100_000 + id);
        opsguard::storage::users::upsert(app.pool(), user, &format!("Long Display Name {id}"))
            .await
            .unwrap();
        opsguard::storage::users::grant(app.pool(), user, &viewer, "test")
            .await
            .unwrap();
    }
    let before = app.telegram.calls_to("sendDocument").len();
    assert_eq!(
        app.post_update(&text_update(app.next_update_id(), 42, 42, "/users"))
            .await
            .status(),
        200
    );
    let calls = app
        .telegram
        .wait_until("sendDocument", |calls| {
            calls.iter().filter(|c| c.method == "sendDocument").count() > before
        })
        .await;
    let doc = calls
        .iter()
        .rev()
        .find(|c| c.method == "sendDocument")
        .unwrap();
    let raw = doc.raw();
    assert!(raw.contains("opsguard-reply.txt"), "named file");
    assert!(raw.contains("100700"), "the whole reply is in the file");
    assert!(!raw.contains("<code>"), "the file is plain text");
    assert!(
        app.telegram
            .calls_to("sendMessage")
            .iter()
            .all(|c| c.chat_id() != Some(42)),
        "no partial messages"
    );
}
