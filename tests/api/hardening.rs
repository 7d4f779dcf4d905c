//! Regression tests for hardening found in review: refused presses stay private, menus
//! follow shell changes, verify tolerates live writers, de-dup survives Redis amnesia,
//! the last admin survives a revoke race, and raw arguments never reach audit reasons.

use super::helpers::*;
use opsguard::domain::{RoleName, UserId};
use opsguard::storage::{self, users::Revoked};
use serde_json::json;

#[tokio::test]
async fn a_refused_press_is_a_private_notice_and_leaves_the_buttons() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    app.add_user(43, "admin").await;
    app.add_user(7, "viewer").await;
    let prompt = app.say(42, "/grant 7 operator").await;
    let (_, confirm) = prompt.buttons()[0].clone();
    let refused = app.press(43, &confirm, prompt.message_id.unwrap()).await;
    assert_eq!(refused.method, "answerCallbackQuery");
    assert_eq!(refused.text(), "This button is not yours.");
    assert_eq!(refused.body["show_alert"], json!(true));
    assert!(
        app.telegram.calls_to("editMessageReplyMarkup").is_empty(),
        "the owner's buttons stay"
    );
    assert!(
        app.telegram.sent_to(43).is_empty(),
        "nothing is posted to the chat"
    );
    // The owner can still use them; then they are removed.
    let done = app.press(42, &confirm, prompt.message_id.unwrap()).await;
    assert!(
        done.text().contains("now has the role <b>operator</b>"),
        "{}",
        done.text()
    );
    assert_eq!(app.telegram.calls_to("editMessageReplyMarkup").len(), 1);
}

#[tokio::test]
async fn a_shell_grant_refreshes_the_users_menu() {
    let app = spawn_app().await;
    app.add_user(7, "viewer").await;
    let admin = RoleName::parse("admin").unwrap();
    storage::users::grant(app.pool(), UserId(7), &admin, "shell")
        .await
        .unwrap();
    app.telegram
        .wait_until("a menu with /grant for user 7", |calls| {
            calls.iter().any(|c| {
                c.method == "setMyCommands"
                    && c.body.pointer("/scope/chat_id") == Some(&json!(7))
                    && c.raw().contains("\"grant\"")
            })
        })
        .await;
}

#[tokio::test]
async fn verify_is_not_fooled_by_appends_committed_during_the_walk() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    for _ in 0..20 {
        app.say(42, "/whoami").await;
    }
    let writer = {
        let engine = app.engine.clone();
        tokio::spawn(async move {
            for i in 0..300 {
                let request = opsguard::engine::Request::new(
                    opsguard::domain::Actor::console(UserId(42)),
                    opsguard::domain::Chat::private(UserId(42)),
                    opsguard::engine::Input::Text(format!("/nope{i}")),
                );
                engine.handle(request).await;
            }
        })
    };
    for _ in 0..20 {
        let report = storage::audit::verify(app.pool(), app.chain_key())
            .await
            .unwrap();
        assert_eq!(report.broken, None, "a live log verifies");
    }
    writer.await.unwrap();
    assert_eq!(
        storage::audit::verify(app.pool(), app.chain_key())
            .await
            .unwrap()
            .broken,
        None
    );
}

#[tokio::test]
async fn an_update_taken_while_redis_forgot_it_still_runs_once() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    // Update 4241 runs (the positive control: updates are not all dropped) ...
    assert_eq!(
        app.post_update(&text_update(4241, 42, 42, "/whoami"))
            .await
            .status(),
        200
    );
    assert!(app.wait_reply(42, 0).await.text().contains("Telegram id"));
    // ... and 4242 was taken earlier (say, during a Redis outage): only PostgreSQL
    // remembers it.
    assert!(
        storage::updates::first_sight(app.pool(), 4242)
            .await
            .unwrap()
    );
    for update in [4242, 4241] {
        assert_eq!(
            app.post_update(&text_update(update, 42, 42, "/whoami"))
                .await
                .status(),
            200
        );
    }
    // Answered 200 and none in flight: a run of either would have finished by now.
    app.idle().await;
    assert_eq!(
        app.telegram.sent_to(42).len(),
        1,
        "4241 ran exactly once; a retry Redis has not seen is still a retry"
    );
    let rows = app.audit_rows().await;
    let whoami: Vec<&str> = rows
        .iter()
        .filter(|r| r.entry.command == "whoami")
        .map(|r| r.entry.phase.as_str())
        .collect();
    assert_eq!(whoami, ["attempt", "outcome"], "one run, of 4241 alone");
}

#[tokio::test]
async fn two_admins_revoking_each_other_at_once_leave_one_admin() {
    let app = spawn_app().await;
    app.add_user(1, "admin").await;
    app.add_user(2, "admin").await;
    let admin = RoleName::parse("admin").unwrap();
    for _ in 0..10 {
        let (a, b) = tokio::join!(
            storage::users::revoke_keeping_last(app.pool(), UserId(1), &admin, "admin"),
            storage::users::revoke_keeping_last(app.pool(), UserId(2), &admin, "admin"),
        );
        let outcomes = [a.unwrap(), b.unwrap()];
        assert!(outcomes.contains(&Revoked::LastHolder), "{outcomes:?}");
        assert_eq!(
            storage::users::count_with_role(app.pool(), "admin")
                .await
                .unwrap(),
            1
        );
        // Restore both for the next round.
        for id in [1, 2] {
            storage::users::grant(app.pool(), UserId(id), &admin, "test")
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn a_mistyped_argument_never_reaches_the_audit_reason() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    let reply = app.say(42, "/grant s3cr3t-token admin").await;
    assert!(reply.text().contains("Usage"), "{}", reply.text());
    assert!(!reply.text().contains("s3cr3t"), "{}", reply.text());
    let rows = app.audit_rows().await;
    assert!(!rows.is_empty());
    for row in rows {
        let e = &row.entry;
        let text = format!("{} {} {:?} {:?}", e.command, e.args, e.reason, e.error);
        assert!(!text.contains("s3cr3t"), "{text}");
    }
}
