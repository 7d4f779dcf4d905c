//! Pending actions from an attacker's side: one's own button pressed (or a step-up code
//! typed) in another chat spends nothing; expired actions are pruned; an approved command
//! names both the requester (actor) and the approver (reason), and a rotation is credited
//! to whoever asked for it.

use super::stepup::{SECRET, stepup_app};
use super::*;
use crate::helpers::rfc6238::code_now;
use crate::secrets::{Scratch, api_key, rotate, with_vault};
use opsguard::domain::ChatId;
use std::time::Duration;

const GROUP: i64 = -100_777;

/// Press `data` (on message `msg`) as `user` from `chat`; the callback's notice text.
async fn press_in(app: &TestApp, user: i64, chat: i64, data: &str, msg: i64) -> String {
    let update_id = app.next_update_id();
    let update = callback_update(update_id, user, chat, data, msg);
    assert_eq!(app.post_update(&update).await.status(), 200);
    let id = serde_json::json!(format!("cb{update_id}"));
    let calls = app
        .telegram
        .wait_until("the callback answer", |calls| {
            calls
                .iter()
                .any(|c| c.method == "answerCallbackQuery" && c.body["callback_query_id"] == id)
        })
        .await;
    let answer = calls
        .iter()
        .find(|c| c.body["callback_query_id"] == id)
        .unwrap();
    answer.body["text"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn ones_own_button_pressed_in_another_chat_is_refused_and_still_works_at_home() {
    let app = spawn_app().await;
    admin_and_viewer(&app).await;
    storage::chats::allow(app.pool(), ChatId(GROUP), "ops")
        .await
        .unwrap();
    let (confirm, cancel, msg) = prompt(&app, 42, "/grant 7 operator").await;
    for data in [&cancel, &confirm] {
        let notice = press_in(&app, 42, GROUP, data, msg).await;
        assert_eq!(
            notice,
            "This button belongs to another chat: press it there."
        );
    }
    assert!(!has_role(&app, 7, "operator").await);
    let done = app.press(42, &confirm, msg).await.text();
    says(&done, "now has the role <b>operator</b>");
    let callbacks = attempts(&app, "callback").await;
    assert_eq!(
        callbacks,
        pairs(&[("denied", "action used from another chat"); 2])
    );
}

#[tokio::test]
async fn a_stepup_code_typed_in_another_chat_spends_neither_prompt_nor_code() {
    let app = stepup_app(true).await;
    storage::chats::allow(app.pool(), ChatId(GROUP), "ops")
        .await
        .unwrap();
    says(
        &confirmed(&app, "/revoke 7 viewer").await,
        "needs a TOTP code",
    );
    let code = code_now(SECRET);
    let elsewhere = app
        .say_in(42, GROUP, &format!("/stepup {code}"))
        .await
        .text();
    says(
        &elsewhere,
        "No step-up prompt is waiting for you in this chat",
    );
    assert!(has_role(&app, 7, "viewer").await);
    let done = app.say(42, &format!("/stepup {code}")).await.text();
    says(&done, "no longer has the role <b>viewer</b>");
}

async fn pending_ids(app: &TestApp) -> Vec<(String, String)> {
    sqlx::query_as("SELECT kind, status FROM pending_actions ORDER BY created_at")
        .fetch_all(app.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn expired_pending_actions_are_pruned_and_live_ones_kept() {
    let app = spawn_app_with(|s| {
        s.gates.confirm_ttl_secs = 1;
        s.gates.pending_keep_secs = 0;
        s.gates.sweep_interval_ms = 100;
    })
    .await;
    add(&app, 42, "admin").await;
    add(&app, 43, "admin").await;
    add(&app, 7, "viewer").await;
    // A confirm button (1 s) pressed at once, leaving an approval request (an hour).
    let asked = confirmed(&app, "/grant 7 admin").await;
    says(&asked, "needs a second admin");
    let mut left = pending_ids(&app).await;
    for _ in 0..500 {
        if left.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        left = pending_ids(&app).await;
    }
    assert_eq!(left, vec![("approval".to_string(), "pending".to_string())]);
    // Pruning again removes nothing more: idempotent, and the live request still works.
    let again = storage::pending::prune_expired(app.pool(), 0)
        .await
        .unwrap();
    assert_eq!(again, 0);
    let id = app.approval_id(&asked).await;
    says(
        &app.say(43, &format!("/approve {id}")).await.text(),
        "now has the role <b>admin</b>",
    );
}

#[tokio::test]
async fn an_approved_rotation_is_credited_to_its_requester_and_audits_both() {
    let dir = Scratch::new();
    let env = dir.file("a.env");
    let app = spawn_app_with(|s| with_vault(s, vec![api_key("app-key", &env, true)])).await;
    add(&app, 42, "admin").await;
    add(&app, 43, "admin").await;
    let asked = rotate(&app, 42, "app-key").await;
    let id = app.approval_id(&asked).await;
    let ok = app.say(43, &format!("/approve {id}")).await.text();
    says(&ok, "Rotated <b>app-key</b>");
    let (by, via): (Option<i64>, String) =
        sqlx::query_as("SELECT requested_by, via FROM rotations ORDER BY id DESC LIMIT 1")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(
        (by, via.as_str()),
        (Some(42), "command"),
        "credited to the requester"
    );
    says(&app.say(43, "/secrets").await.text(), "by user 42");
    app.settle().await;
    let rows = app.audit_rows().await;
    let ran: Vec<_> = rows
        .iter()
        .filter(|r| r.entry.command == "rotate" && r.entry.decision == "allowed")
        .collect();
    assert_eq!(ran.len(), 2, "attempt and outcome");
    for row in ran {
        assert_eq!(row.entry.actor_id, Some(42), "the requester is the actor");
        let reason = row.entry.reason.clone().unwrap_or_default();
        says(&reason, &format!("approved by 43 (request {id})"));
    }
}
