//! Dead letters are not only a count in `/status`: each admin is warned in their private
//! chat (never the chat that failed), and `opsguard outbox retry [ID…]` re-sends them. A
//! warning that itself dies warns nobody.

use super::{fast, queue};
use crate::fake_telegram::Forced;
use crate::helpers::*;

const GROUP: i64 = -100_901;

async fn status_of(app: &TestApp, id: i64) -> String {
    sqlx::query_scalar("SELECT status FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

fn warnings(app: &TestApp, chat: i64) -> Vec<String> {
    app.telegram
        .sent_to(chat)
        .iter()
        .map(|c| c.text())
        .filter(|t| t.contains("could not be delivered"))
        .collect()
}

#[tokio::test]
async fn a_dead_letter_warns_each_admin_and_outbox_retry_sends_it_again() {
    let app = spawn_app_with(|s| {
        fast(s);
        s.outbox.max_attempts = 2;
    })
    .await;
    app.add_user(42, "admin").await;
    app.add_user(43, "admin").await;
    app.add_user(44, "viewer").await;
    app.telegram
        .fail_chat(GROUP, Forced::bad_request("Bad Request: chat not found"));
    let id = queue(&app, GROUP, "🚨 brute force from 203.0.113.9").await;

    app.telegram
        .wait_until("both admins warned", |_| {
            warnings(&app, 42).len() == 1 && warnings(&app, 43).len() == 1
        })
        .await;
    assert_eq!(status_of(&app, id).await, "dead");
    let warning = &warnings(&app, 42)[0];
    for needed in [
        &format!("chat <code>{GROUP}</code>"),
        "after 2 attempts",
        &format!("<code>#{id}</code>"),
        "chat not found",
        &format!("<code>opsguard outbox retry {id}</code>"),
    ] {
        assert!(warning.contains(needed), "{needed} missing: {warning}");
    }
    assert!(warnings(&app, 44).is_empty(), "a viewer is not an admin");

    // An id that is no dead letter: named, non-zero, nothing re-queued.
    let (code, _, err) = run_opsguard(&app.db.url, &[], &["outbox", "retry", "999999"]).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("#999999"), "{err}");
    assert_eq!(status_of(&app, id).await, "dead");

    app.telegram.heal_chat(GROUP);
    let (code, out, err) =
        run_opsguard(&app.db.url, &[], &["outbox", "retry", &id.to_string()]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains(&format!("re-queued 1 dead letter(s): #{id}")),
        "{out}"
    );
    let arrived = app.wait_reply(GROUP, 0).await;
    assert_eq!(arrived.text(), "🚨 brute force from 203.0.113.9");
    let audited = app
        .audit_rows()
        .await
        .into_iter()
        .any(|r| r.entry.command == "outbox retry" && r.entry.args == id.to_string());
    assert!(audited, "the retry is audited");
}

#[tokio::test]
async fn the_failing_chat_is_never_warned_and_a_dead_warning_warns_nobody() {
    let app = spawn_app_with(|s| {
        fast(s);
        s.outbox.max_attempts = 1;
    })
    .await;
    app.add_user(42, "admin").await;
    app.add_user(43, "admin").await;
    app.telegram
        .fail_chat(GROUP, Forced::bad_request("Bad Request: chat not found"));
    app.telegram.fail_chat(
        42,
        Forced::bad_request("Forbidden: bot was blocked by the user"),
    );
    let id = queue(&app, GROUP, "alert").await;
    // A push to admin 42 that dies warns the other admins, never 42's failing chat.
    let to_42 = queue(&app, 42, "report for 42").await;
    app.telegram
        .wait_until("admin 43 warned of both", |_| warnings(&app, 43).len() == 2)
        .await;
    // The warning to 42 dies too; once it is dead, nothing more is queued for it.
    wait_for("the warning to 42 to be dead", || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT bool_and(status = 'dead') FROM outbox WHERE source = 'dead_letter' AND chat_id = 42",
        )
        .fetch_one(app.pool())
        .await
        .unwrap()
    })
    .await;
    wait_for("no row left to send", || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox WHERE status = 'pending'")
            .fetch_one(app.pool())
            .await
            .unwrap()
            == 0
    })
    .await;
    let mut rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT chat_id, source FROM outbox WHERE id <> ALL($1) ORDER BY chat_id")
            .bind(vec![id, to_42])
            .fetch_all(app.pool())
            .await
            .unwrap();
    rows.sort();
    assert_eq!(
        rows,
        [
            (42, "dead_letter".into()),
            (43, "dead_letter".into()),
            (43, "dead_letter".into())
        ],
        "the alert warns 42 and 43; 42's own dead push warns only 43; the dead warning to 42 warns nobody"
    );
    assert_eq!(warnings(&app, 43).len(), 2);
}

/// Rows to 15 chats that all refuse die in the same pass; with two admins the warnings
/// stop at the budget (20 in ten minutes), not 30: a revoked token must not flood them.
#[tokio::test]
async fn many_dead_letters_at_once_warn_the_admins_only_within_the_budget() {
    let app = spawn_app_with(|s| {
        fast(s);
        s.outbox.max_attempts = 1;
        // Lifted so the overall bucket does not spread the 15 over passes.
        s.outbox.global_per_second = 0;
    })
    .await;
    app.add_user(42, "admin").await;
    app.add_user(43, "admin").await;
    let chats: Vec<i64> = (1..=15).map(|i| 700_000 + i).collect();
    for chat in &chats {
        app.telegram
            .fail_chat(*chat, Forced::bad_request("Bad Request: chat not found"));
    }
    // In one statement: visible at once, so one pass claims (and kills) them all.
    sqlx::query(
        "INSERT INTO outbox (chat_id, html, source)
         SELECT c, 'nightly report', 'test' FROM unnest($1::bigint[]) AS c",
    )
    .bind(&chats)
    .execute(app.pool())
    .await
    .unwrap();

    wait_for("the 15 rows dead", || async {
        let dead: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM outbox WHERE status = 'dead' AND source = 'test'",
        )
        .fetch_one(app.pool())
        .await
        .unwrap();
        dead == 15
    })
    .await;
    app.telegram
        .wait_until("the budget's 20 warnings delivered", |_| {
            warnings(&app, 42).len() + warnings(&app, 43).len() >= 20
        })
        .await;
    let queued: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE source = 'dead_letter' AND chat_id IN (42, 43)",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(queued, 20, "warnings queued beyond the budget");
    assert_eq!(warnings(&app, 42).len(), 10);
    assert_eq!(warnings(&app, 43).len(), 10);
}
