//! Dead letters from chat and what a failing Telegram does to the others (issue 20):
//! `/outbox` lists the dead letters and `/outbox retry [id…]` re-sends them, for admins
//! only, audited like every command; `/readyz` says "degraded" while every recent push
//! fails; and a chat Telegram keeps refusing (502, 429) never delays another chat.

use super::{fast, messages, queue};
use crate::fake_telegram::Forced;
use crate::helpers::*;
use std::time::Duration;

const GROUP: i64 = -100_902;

async fn status_of(app: &TestApp, id: i64) -> String {
    sqlx::query_scalar("SELECT status FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

async fn readyz(app: &TestApp) -> (u16, String) {
    let answer = app.http.get(app.url("/readyz")).send().await.unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

#[tokio::test]
async fn admins_list_and_resend_dead_letters_from_chat_and_others_may_not() {
    let app = spawn_app_with(|s| {
        fast(s);
        s.outbox.max_attempts = 1;
    })
    .await;
    app.add_user(42, "admin").await;
    app.add_user(44, "operator").await;
    assert_eq!(app.say(42, "/outbox").await.text(), "📭 No dead letters.");
    app.telegram
        .fail_chat(GROUP, Forced::bad_request("Bad Request: chat not found"));
    let id = queue(&app, GROUP, "🚨 brute force from <b>x</b>").await;
    wait_for("the push to be dead", || async {
        status_of(&app, id).await == "dead"
    })
    .await;
    // The admin's warning first (so the next reply is told apart from it).
    app.telegram
        .wait_until("the admin warned", |_| {
            app.telegram
                .sent_to(42)
                .iter()
                .any(|c| c.text().contains("could not be delivered"))
        })
        .await;

    let listed = app.say(42, "/outbox").await.text();
    for needed in [
        "1 dead letter(s)",
        &format!("<code>#{id}</code> to chat <code>{GROUP}</code> (test)"),
        "1 attempts: ",
        "Bad Request: chat not found",
    ] {
        assert!(listed.contains(needed), "{needed} missing: {listed}");
    }
    // Not an admin: refused, nothing re-queued.
    let denied = app.say(44, &format!("/outbox retry {id}")).await.text();
    assert_eq!(denied, "⛔ You may not run /outbox.");
    assert_eq!(status_of(&app, id).await, "dead");
    // Bad input: the usage, nothing re-queued.
    let bad = app.say(42, "/outbox retry everything").await.text();
    assert!(
        bad.contains("Usage: <code>/outbox [retry [id…]]</code>"),
        "{bad}"
    );
    assert_eq!(status_of(&app, id).await, "dead");

    app.telegram.heal_chat(GROUP);
    let resent = app
        .say(42, &format!("/outbox retry {id} 999999"))
        .await
        .text();
    assert!(
        resent.contains(&format!("Re-queued 1 dead letter(s): <code>#{id}</code>")),
        "{resent}"
    );
    assert!(
        resent.contains("left as they are: <code>#999999</code>"),
        "{resent}"
    );
    let arrived = app.wait_reply(GROUP, 0).await;
    assert_eq!(arrived.text(), "🚨 brute force from <b>x</b>");
    let rows = app.audit_rows().await;
    let outcome = |args: &str, decision: &str| {
        rows.iter().any(|r| {
            r.entry.command == "outbox" && r.entry.args == args && r.entry.decision == decision
        })
    };
    assert!(outcome(&format!("retry {id} 999999"), "allowed"), "audited");
    assert!(
        outcome(&format!("retry {id}"), "denied"),
        "the refusal is audited"
    );
}

#[tokio::test]
async fn readyz_says_degraded_while_every_recent_push_fails_and_ready_once_one_arrives() {
    let app = spawn_app_with(|s| {
        fast(s);
        s.outbox.max_attempts = 10;
    })
    .await;
    let (status, body) = readyz(&app).await;
    assert!(status == 200 && body.starts_with("ready\n"), "{body}");
    app.telegram.fail_chat(GROUP, Forced::bad_gateway());
    let id = queue(&app, GROUP, "nobody gets this yet").await;
    app.telegram
        .wait_until("three failed pushes", |_| {
            app.telegram.rejected().len() >= 3
        })
        .await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 200, "still serving: {body}");
    assert!(body.starts_with("degraded\n"), "{body}");
    assert!(body.contains("warning: telegram: the last"), "{body}");
    assert!(body.contains("pushes all failed"), "{body}");

    app.telegram.heal_chat(GROUP);
    wait_for("the push to arrive", || async {
        status_of(&app, id).await == "sent"
    })
    .await;
    let (status, body) = readyz(&app).await;
    assert!(status == 200 && body.starts_with("ready\n"), "{body}");
    assert!(!body.contains("telegram"), "{body}");
}

#[tokio::test]
async fn a_chat_answered_502_or_429_never_delays_another_chat() {
    let app = spawn_app_with(|s| {
        fast(s);
        s.outbox.max_attempts = 100;
    })
    .await;
    let (bad_gateway, limited, healthy) = (-100_911, -100_912, -100_913);
    app.telegram.fail_chat(bad_gateway, Forced::bad_gateway());
    app.telegram.fail_chat(limited, Forced::retry_after(30));
    for i in 0..3 {
        queue(&app, bad_gateway, &format!("bad gateway #{i}")).await;
        queue(&app, limited, &format!("limited #{i}")).await;
    }
    app.telegram
        .wait_until("both failing chats tried", |_| {
            let rejected = app.telegram.rejected();
            [bad_gateway, limited]
                .iter()
                .all(|c| rejected.iter().any(|r| r.chat_id() == Some(*c)))
        })
        .await;
    let queued_at = std::time::Instant::now();
    for i in 0..3 {
        queue(&app, healthy, &format!("healthy #{i}")).await;
    }
    app.telegram
        .wait_until("the healthy chat's three pushes", |_| {
            messages(&app, healthy).len() == 3
        })
        .await;
    let last = messages(&app, healthy).last().unwrap().at;
    // Paced at 100 ms a message: well under a second, not teloxide's 10 s after a 5xx, nor
    // the other chat's 30 s retry_after.
    let took = last.saturating_duration_since(queued_at);
    assert!(
        took < Duration::from_secs(5),
        "the healthy chat waited {took:?}"
    );
    let texts: Vec<String> = messages(&app, healthy).iter().map(|c| c.text()).collect();
    assert_eq!(texts, ["healthy #0", "healthy #1", "healthy #2"]);
    // The failing chats still hold theirs: nothing was lost, nothing got through.
    assert!(messages(&app, bad_gateway).is_empty() && messages(&app, limited).is_empty());
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE status = 'pending' AND chat_id = ANY($1)",
    )
    .bind(vec![bad_gateway, limited])
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(pending, 6);
}
