//! Long polling against a fake Bot API that holds `getUpdates` open for the whole timeout,
//! as Telegram does: idle polls end in empty answers, not client timeouts, and an update
//! pushed mid-poll is answered at once.

use super::helpers::*;
use opsguard::engine::health::TelegramState;
use std::time::Duration;

/// Polling mode with Telegram holding idle polls `poll` seconds and every other call
/// allowed only `request` seconds: shorter than the poll, as teloxide's 17 s default is
/// against the default 25 s poll.
fn polling(poll: u32, request: u64) -> impl FnOnce(&mut opsguard::config::Settings) {
    move |s| {
        s.telegram.webhook_secret = None;
        s.telegram.poll_timeout_secs = poll;
        s.telegram.request_timeout_secs = request;
    }
}

#[tokio::test]
async fn idle_polls_are_held_for_the_whole_timeout_and_never_fail() {
    let app = spawn_app_with(polling(2, 1)).await;
    // Three idle polls answered, and the fourth started (3 × 2 s; the wait allows 10 s).
    app.telegram
        .wait_until("three idle polls answered", |_| {
            app.telegram
                .polls()
                .iter()
                .filter(|p| p.answered.is_some())
                .count()
                >= 3
                && app.telegram.polls().len() >= 4
        })
        .await;
    let polls = app.telegram.polls();
    for (n, poll) in polls.iter().take(3).enumerate() {
        assert!(
            !poll.abandoned,
            "poll {n} was given up by the client: {poll:?}"
        );
        assert_eq!(
            poll.timeout,
            Duration::from_secs(2),
            "poll {n} asks Telegram to hold 2 s"
        );
        assert_eq!(poll.updates, 0);
        let held = poll.answered.unwrap() - poll.started;
        assert!(held >= Duration::from_secs(2), "poll {n} held {held:?}");
    }
    // No backoff between them: each poll starts right after the previous answer.
    for pair in polls.windows(2).take(3) {
        let gap = pair[1].started - pair[0].answered.unwrap();
        assert!(
            gap < Duration::from_millis(500),
            "a gap of {gap:?} between polls"
        );
    }
    assert_eq!(
        app.engine.health().telegram(),
        TelegramState::Reachable { mode: "polling" }
    );
    assert!(polls.iter().all(|p| !p.abandoned), "{polls:#?}");
}

#[tokio::test]
async fn a_command_pushed_mid_poll_is_answered_within_a_second() {
    let app = spawn_app_with(polling(25, 17)).await;
    app.add_user(42, "viewer").await;
    // A poll is being held (it would be answered empty only 25 s from now).
    app.telegram
        .wait_until("a held poll", |_| {
            app.telegram
                .polls()
                .iter()
                .any(|p| p.answered.is_none() && !p.abandoned)
        })
        .await;
    let before = app.telegram.sent_to(42).len();
    app.telegram
        .push_update(text_update(700, 42, 42, "/whoami"));
    let reply = app.wait_reply(42, before).await;
    assert!(
        reply.text().contains("Telegram id: <code>42</code>"),
        "{}",
        reply.text()
    );
    let pushed = *app.telegram.pushes().last().unwrap();
    let latency = reply.at - pushed;
    assert!(
        latency <= Duration::from_secs(1),
        "answered {latency:?} after the push"
    );
    // The held poll carried it: answered early, with the update.
    let carrier = app
        .telegram
        .polls()
        .into_iter()
        .find(|p| p.updates == 1)
        .expect("a poll answered with the update");
    assert!(
        carrier.started <= pushed,
        "the update reached a poll already held"
    );
    assert!(carrier.answered.unwrap() - pushed < Duration::from_millis(500));
}

#[tokio::test]
async fn polled_updates_are_read_like_webhook_ones_and_none_stops_the_loop() {
    let app = spawn_app_with(polling(25, 17)).await;
    app.add_user(42, "admin").await;
    let date_time = serde_json::json!({ "type": "date_time", "offset": 1, "length": 6,
                                        "unix_time": 1, "date_time_format": "t" });
    // What teloxide 0.17 could not read: a poll answer and a reaction without a user (its
    // deserializer panicked), a kind of a future Bot API, a malformed sender, and a command
    // carrying a Bot API 9.5 entity. Then a plain command.
    let mut entity = text_update(800, 42, 42, "/whoami");
    entity["message"]["entities"] = serde_json::json!([date_time]);
    let mut malformed = text_update(801, 42, 42, "/whoami");
    malformed["message"]["from"]["id"] = serde_json::json!("42");
    for update in [
        serde_json::json!({ "update_id": 802, "poll_answer": { "poll_id": "p", "option_ids": [0] } }),
        serde_json::json!({ "update_id": 803, "message_reaction": {
            "chat": { "id": 42, "type": "private" }, "message_id": 1, "date": 1,
            "old_reaction": [], "new_reaction": [] } }),
        serde_json::json!({ "update_id": 804, "story_reply": { "from": { "id": 42 } } }),
        malformed,
        entity,
        text_update(805, 42, 42, "/whoami"),
    ] {
        app.telegram.push_update(update);
    }
    app.telegram
        .wait_until("both commands answered", |_| {
            app.telegram.sent_to(42).len() >= 2
        })
        .await;
    let sent = app.telegram.sent_to(42);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        sent.iter().all(|c| c.text().contains("Telegram id")),
        "{sent:?}"
    );
    // Still polling: a command pushed now is answered too.
    app.telegram
        .push_update(text_update(806, 42, 42, "/whoami"));
    app.wait_reply(42, 2).await;
    let rows = app.audit_rows().await;
    let whoami = rows.iter().filter(|r| r.entry.command == "whoami").count();
    assert_eq!(
        whoami, 6,
        "three commands, an attempt and an outcome each: {rows:?}"
    );
}
