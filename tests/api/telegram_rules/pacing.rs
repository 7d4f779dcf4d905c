//! Direct replies paced like pushes: a group flooded with commands gets every reply, under
//! Telegram's 429s or under opsguard's own group limit (the rest queued in the outbox), and
//! a quiet private chat's reply goes at once; a reply after pushes that used up a group's
//! minute waits in the outbox for it, with no 429.

use crate::helpers::*;
use opsguard::domain::ChatId;
use opsguard::storage::chats;
use std::time::{Duration, Instant};

const GROUP: i64 = -1_001_500;

/// Post `n` commands from user 42 into the group at once.
async fn flood_group(app: &TestApp, n: usize) {
    chats::allow(app.pool(), ChatId(GROUP), "ops")
        .await
        .unwrap();
    for _ in 0..n {
        let update = text_update(app.next_update_id(), 42, GROUP, "/whoami");
        assert_eq!(app.post_update(&update).await.status(), 200);
    }
}

/// No update still in work and no outbox row still to send.
async fn settled(app: &TestApp) -> bool {
    let open: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM update_inbox WHERE done_at IS NULL)
              + (SELECT count(*) FROM outbox WHERE status = 'pending')",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    open == 0
}

async fn wait_group_replies(app: &TestApp, n: usize) {
    app.telegram
        .wait_until(&format!("{n} replies in the group"), |_| {
            app.telegram.sent_to(GROUP).len() >= n
        })
        .await;
}

#[tokio::test]
async fn a_group_flood_control_answering_429_loses_no_reply() {
    let app = spawn_app_with(|s| {
        // opsguard would send faster than this fake group allows, so Telegram's 429s pace it.
        s.outbox.per_chat_interval_ms = 100;
        s.outbox.poll_interval_ms = 50;
    })
    .await;
    app.add_user(42, "viewer").await;
    app.telegram.set_limits(3, 30);
    app.telegram.set_group_window(Duration::from_secs(2));
    flood_group(&app, 8).await;
    wait_group_replies(&app, 8).await;
    // Proof that nothing is left to send: every update done (its reply sent or queued)
    // and no outbox row pending. Only then is "none twice" a verdict.
    wait_for("every update done and no outbox row pending", || {
        settled(&app)
    })
    .await;
    assert_eq!(
        app.telegram.sent_to(GROUP).len(),
        8,
        "none lost, none twice"
    );
    let refused = app.telegram.refused();
    assert!(!refused.is_empty(), "the fake's flood control answered 429");
    assert!(
        refused.iter().all(|c| c.chat_id() == Some(GROUP)),
        "only flood control refused: {refused:?}"
    );
}

#[tokio::test]
async fn replies_keep_the_group_limit_and_the_rest_wait_in_the_outbox() {
    let app = spawn_app_with(|s| {
        s.outbox.group_per_minute = 3;
        s.outbox.per_chat_interval_ms = 100;
        s.outbox.poll_interval_ms = 50;
        s.outbox.reply_max_wait_ms = 300;
    })
    .await;
    app.add_user(42, "viewer").await;
    flood_group(&app, 6).await;
    wait_group_replies(&app, 3).await;
    let queued = || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM outbox WHERE chat_id = $1 AND source = 'reply' AND status = 'pending'",
        )
        .bind(GROUP)
        .fetch_one(app.pool())
        .await
        .unwrap();
        n
    };
    for _ in 0..250 {
        if queued().await == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        queued().await,
        3,
        "three replies wait for the minute in the outbox"
    );
    assert_eq!(app.telegram.sent_to(GROUP).len(), 3, "the group limit held");
    assert!(
        app.telegram.refused().is_empty(),
        "{:?}",
        app.telegram.refused()
    );
    // The minute passes (for opsguard and for the fake Telegram alike).
    sqlx::query("UPDATE direct_sends SET sent_at = sent_at - interval '61 seconds'")
        .execute(app.pool())
        .await
        .unwrap();
    app.telegram.forget_sends();
    wait_group_replies(&app, 6).await;
    // Nothing left in the outbox for the group (every row recorded as sent), so nothing
    // more can reach it.
    wait_for("the group's queued replies recorded as sent", || async {
        queued().await == 0
    })
    .await;
    app.idle().await;
    assert_eq!(app.telegram.sent_to(GROUP).len(), 6);
    assert!(
        app.telegram.refused().is_empty(),
        "{:?}",
        app.telegram.refused()
    );
}

#[tokio::test]
async fn a_quiet_private_chat_is_answered_at_once() {
    let app = spawn_app().await;
    app.add_user(42, "viewer").await;
    for _ in 0..2 {
        let before = app.telegram.sent_to(42).len();
        let asked = Instant::now();
        let update = text_update(app.next_update_id(), 42, 42, "/whoami");
        assert_eq!(app.post_update(&update).await.status(), 200);
        let reply = app.wait_reply(42, before).await;
        let took = reply.at - asked;
        assert!(took < Duration::from_millis(500), "the reply took {took:?}");
    }
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM direct_sends WHERE chat_id = 42")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(recorded, 2, "replies count towards the chat's limits");
}

#[tokio::test]
async fn a_reply_shares_the_group_limit_with_the_pushes_before_it() {
    let app = spawn_app_with(|s| {
        s.outbox.group_per_minute = 3;
        s.outbox.per_chat_interval_ms = 100;
        s.outbox.poll_interval_ms = 50;
        s.outbox.reply_max_wait_ms = 300;
    })
    .await;
    // The fake Bot API keeps the same limit: a reply sent past it would get a 429.
    app.telegram.set_limits(3, 30);
    app.add_user(42, "viewer").await;
    chats::allow(app.pool(), ChatId(GROUP), "ops")
        .await
        .unwrap();
    for text in ["push 1", "push 2", "push 3"] {
        opsguard::outbox::enqueue(
            app.pool(),
            GROUP,
            &opsguard::domain::Reply::html(text),
            "test",
        )
        .await
        .unwrap();
    }
    wait_group_replies(&app, 3).await;
    let update = text_update(app.next_update_id(), 42, GROUP, "/whoami");
    assert_eq!(app.post_update(&update).await.status(), 200);
    // The group's minute is used up by the pushes: the reply waits in the outbox.
    let queued_reply = || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM outbox WHERE chat_id = $1 AND source = 'reply' AND status = 'pending'",
        )
        .bind(GROUP)
        .fetch_one(app.pool())
        .await
        .unwrap();
        n == 1
    };
    wait_for("the reply queued in the outbox", queued_reply).await;
    app.idle().await;
    assert_eq!(app.telegram.sent_to(GROUP).len(), 3, "the group limit held");
    assert!(
        app.telegram.refused().is_empty(),
        "{:?}",
        app.telegram.refused()
    );
    // The minute passes (for opsguard and for the fake Telegram alike).
    for sql in [
        "UPDATE direct_sends SET sent_at = sent_at - interval '61 seconds'",
        "UPDATE outbox SET sent_at = sent_at - interval '61 seconds' WHERE status = 'sent'",
    ] {
        sqlx::query(sql).execute(app.pool()).await.unwrap();
    }
    app.telegram.forget_sends();
    wait_group_replies(&app, 4).await;
    wait_for("every update done and no outbox row pending", || {
        settled(&app)
    })
    .await;
    let texts: Vec<String> = app
        .telegram
        .sent_to(GROUP)
        .iter()
        .map(|c| c.text())
        .collect();
    assert_eq!(texts.len(), 4, "none lost, none twice: {texts:?}");
    assert_eq!(texts[..3], ["push 1", "push 2", "push 3"]);
    assert!(texts[3].contains("Telegram id"), "{}", texts[3]);
    assert!(
        app.telegram.refused().is_empty(),
        "{:?}",
        app.telegram.refused()
    );
}
