//! Direct replies when the Bot API fails: a 5xx or a network error is tried again with
//! opsguard's own short backoff (teloxide's hidden 10 s sleep after a 5xx is bypassed),
//! and a reply Telegram keeps refusing past `reply_max_wait_ms` is handed to the outbox,
//! which delivers it once Telegram is back: never dropped.

use crate::fake_telegram::Forced;
use crate::helpers::*;
use std::time::Duration;

#[tokio::test]
async fn a_reply_answered_5xx_is_tried_again_at_once_and_delivered() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    app.telegram
        .force([Forced::bad_gateway(), Forced::server_error()]);
    let reply = app.say(42, "/whoami").await;
    assert!(
        reply.text().contains("Telegram id: <code>42</code>"),
        "{}",
        reply.text()
    );
    let refused = app.telegram.rejected();
    assert_eq!(refused.len(), 2, "two failures, then the reply");
    // Not teloxide's 10 s after each 5xx: opsguard's own backoff (250 ms, then 500 ms).
    let waited = reply.at - refused[0].at;
    assert!(
        waited < Duration::from_secs(5),
        "the reply waited {waited:?}"
    );
    assert_eq!(app.telegram.sent_to(42).len(), 1);
}

#[tokio::test]
async fn a_reply_telegram_keeps_refusing_goes_to_the_outbox_and_arrives_once_it_recovers() {
    let app = spawn_app_with(|s| {
        s.outbox.reply_max_wait_ms = 1_000;
        s.outbox.poll_interval_ms = 50;
        s.outbox.backoff_base_ms = 100;
    })
    .await;
    app.add_user(42, "admin").await;
    app.telegram.fail_chat(42, Forced::bad_gateway());
    let posted = app
        .post_update(&text_update(app.next_update_id(), 42, 42, "/whoami"))
        .await;
    assert_eq!(posted.status(), 200);
    // The outbox row's attempts, once it exists and no send of it is in flight.
    let outbox_attempts = || async {
        sqlx::query_scalar::<_, i32>(
            "SELECT attempts FROM outbox WHERE source = 'reply' AND chat_id = 42
             AND lease_until IS NULL",
        )
        .fetch_optional(app.pool())
        .await
        .unwrap()
    };
    wait_for("the reply to be handed to the outbox", || async {
        outbox_attempts().await.is_some()
    })
    .await;
    assert!(app.telegram.sent_to(42).is_empty());
    // Tried again with backoff before it was handed over: the refusals not made by the
    // outbox (read first, so a later outbox try can only lower the count).
    let refused = app.telegram.rejected().len() as i32;
    let by_outbox = outbox_attempts().await.unwrap_or(i32::MAX);
    assert!(
        refused - by_outbox >= 2,
        "{refused} refused, {by_outbox} by the outbox"
    );

    app.telegram.heal_chat(42);
    let reply = app.wait_reply(42, 0).await;
    assert!(
        reply.text().contains("Telegram id: <code>42</code>"),
        "{}",
        reply.text()
    );
    wait_for("the outbox row to be sent", || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT status = 'sent' FROM outbox WHERE source = 'reply' AND chat_id = 42",
        )
        .fetch_one(app.pool())
        .await
        .unwrap()
    })
    .await;
    assert_eq!(app.telegram.sent_to(42).len(), 1, "delivered once");
}
