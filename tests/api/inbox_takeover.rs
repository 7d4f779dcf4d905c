//! Taking up a stored update whose replica died, in the two states the kill tests
//! (`process/inbox.rs`) cannot reach on purpose: the command finished but the replica
//! died before it marked the update done (its reply unconfirmed), and an update that
//! every replica taking it died on (given up after five takes). The dead replica is
//! simulated by its traces: the stored row with a lease that has run out.

use crate::helpers::*;
use opsguard::bot::inbox::{Stored, StoredInput};
use opsguard::domain::ChatKind;
use opsguard::storage::inbox;
use std::time::Duration;
use uuid::Uuid;

/// The update a dead replica left: stored for user 42's `/whoami`, lease run out, taken
/// `takes` times.
async fn left_by_a_dead_replica(app: &TestApp, request_id: Uuid, takes: i32) -> i64 {
    let stored = Stored {
        user: Some(42),
        display: "User42".into(),
        chat_id: 42,
        chat_kind: ChatKind::Private,
        input: StoredInput::Text("/whoami".into()),
        callback_id: None,
        origin_message: None,
    };
    let update_id = app.next_update_id();
    let json = serde_json::to_value(&stored).unwrap();
    let taken = inbox::take(
        app.pool(),
        update_id,
        request_id,
        &json,
        Duration::from_secs(600),
    )
    .await
    .unwrap();
    assert!(taken);
    sqlx::query(
        "UPDATE update_inbox SET takes = $2, lease_until = now() - interval '1 second'
         WHERE update_id = $1",
    )
    .bind(update_id)
    .bind(takes)
    .execute(app.pool())
    .await
    .unwrap();
    update_id
}

async fn done(app: &TestApp, update_id: i64) -> bool {
    sqlx::query_scalar("SELECT done_at IS NOT NULL FROM update_inbox WHERE update_id = $1")
        .bind(update_id)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

/// (phase, outcome) of every audit row of `request_id`, oldest first.
async fn audited(app: &TestApp, request_id: &str) -> Vec<(String, Option<String>)> {
    app.audit_rows()
        .await
        .into_iter()
        .filter(|r| r.entry.request_id == request_id)
        .map(|r| (r.entry.phase, r.entry.outcome))
        .collect()
}

#[tokio::test]
async fn a_finished_command_whose_reply_was_unconfirmed_is_reported_not_run_again() {
    let app = spawn_app_with(|s| s.telegram.inbox_lease_secs = 1).await;
    app.add_user(42, "admin").await;
    // The command ran to its outcome (its reply went out) ...
    app.say(42, "/whoami").await;
    let request_id = app
        .audit_rows()
        .await
        .into_iter()
        .find(|r| r.entry.command == "whoami")
        .unwrap()
        .entry
        .request_id;
    wait_for("the outcome row", || async {
        audited(&app, &request_id).await.len() == 2
    })
    .await;
    // ... but its replica died before marking the stored update done.
    let update_id = left_by_a_dead_replica(&app, request_id.parse().unwrap(), 1).await;

    let notice = app.wait_reply(42, 1).await.text();
    assert!(notice.contains("finished (outcome: ok)"), "{notice}");
    assert!(notice.contains(&request_id), "names the request: {notice}");
    wait_for("the update to be done", || done(&app, update_id)).await;
    assert_eq!(
        audited(&app, &request_id).await,
        [
            ("attempt".into(), None),
            ("outcome".into(), Some("ok".into()))
        ],
        "not run again"
    );
    assert_eq!(app.telegram.sent_to(42).len(), 2, "the reply, the notice");
}

#[tokio::test]
async fn an_update_every_replica_died_on_is_given_up_after_five_takes_and_reported() {
    let app = spawn_app_with(|s| s.telegram.inbox_lease_secs = 1).await;
    app.add_user(42, "admin").await;
    let request_id = Uuid::new_v4();
    // Five replicas took it and died before running it; the sixth take gives up.
    let update_id = left_by_a_dead_replica(&app, request_id, 5).await;

    let notice = app.wait_reply(42, 0).await.text();
    assert!(notice.contains("could not be processed"), "{notice}");
    assert!(notice.contains("It was not run"), "{notice}");
    assert!(notice.contains(&request_id.to_string()), "{notice}");
    wait_for("the update to be done", || done(&app, update_id)).await;
    assert!(
        audited(&app, &request_id.to_string()).await.is_empty(),
        "never run"
    );
    let takes: i32 = sqlx::query_scalar("SELECT takes FROM update_inbox WHERE update_id = $1")
        .bind(update_id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(takes, 6);
    assert_eq!(app.telegram.sent_to(42).len(), 1, "only the notice");
}

#[tokio::test]
async fn an_update_taken_four_times_before_is_still_run_on_its_fifth_take() {
    let app = spawn_app_with(|s| s.telegram.inbox_lease_secs = 1).await;
    app.add_user(42, "admin").await;
    let request_id = Uuid::new_v4();
    let update_id = left_by_a_dead_replica(&app, request_id, 4).await;

    let reply = app.wait_reply(42, 0).await.text();
    assert!(reply.contains("Telegram id: <code>42</code>"), "{reply}");
    wait_for("the update to be done", || done(&app, update_id)).await;
    let request_id = request_id.to_string();
    wait_for("its outcome", || async {
        audited(&app, &request_id).await.len() == 2
    })
    .await;
}
