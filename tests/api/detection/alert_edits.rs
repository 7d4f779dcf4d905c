//! A pushed alert that counts on is edited in place: what the chat sees is the same message
//! with the count so far and the same buttons, edited at most once per `update_every_secs`
//! (edits in between coalesce into the latest), and a paced edit never holds back a new
//! alert in the same chat.

use super::*;
use crate::outbox::fast;

fn with_edits_every(secs: u64) -> impl FnOnce(&mut Settings) {
    move |s| {
        only_rule(s, "account-lockout", 900);
        fast(s);
        s.logins.update_every_secs = secs;
    }
}

#[tokio::test]
async fn a_pushed_alert_is_edited_in_place_with_its_count_and_its_buttons() {
    let app = spawn_app_with(with_edits_every(1)).await;
    let detector = detector(&app);
    let events = failures_on("carol", 8, Utc::now() - Duration::seconds(30));
    assert_eq!(detector.detect(&events[..5]).await.unwrap().len(), 1);
    let calls = app
        .telegram
        .wait_until("the alert", |calls| {
            calls.iter().any(|c| c.method == "sendMessage")
        })
        .await;
    let sent = calls
        .into_iter()
        .find(|c| c.method == "sendMessage")
        .unwrap();
    assert_eq!(sent.chat_id(), Some(ALERT_CHAT));

    // Three more failures in three batches, well within one pacing interval: one edit.
    for event in &events[5..] {
        assert!(
            detector
                .detect(std::slice::from_ref(event))
                .await
                .unwrap()
                .is_empty()
        );
    }
    let calls = app
        .telegram
        .wait_until("the edit", |calls| {
            calls.iter().any(|c| c.method == "editMessageText")
        })
        .await;
    let edit = calls
        .iter()
        .find(|c| c.method == "editMessageText")
        .unwrap();
    assert_eq!(edit.chat_id(), Some(ALERT_CHAT));
    let text = edit.text();
    assert!(text.contains("Failed logins on account carol"), "{text}");
    assert!(text.contains("so far 8 failures"), "{text}");
    assert_eq!(
        edit.buttons(),
        sent.buttons(),
        "Ack, Silence 1h, Details stay"
    );
    let message_id = sqlx::query_scalar::<_, Option<i64>>(
        "SELECT message_id FROM outbox WHERE source LIKE 'alert:%' AND edit_of IS NULL",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(edit.body["message_id"].as_i64(), message_id);

    // Every detection has returned (its edit queued or coalesced in its transaction), and
    // nothing is pending in the outbox: every edit there is to make has been made.
    wait_for("no pending outbox row", || async {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status = 'pending'")
                .fetch_one(app.pool())
                .await
                .unwrap();
        pending == 0
    })
    .await;
    assert_eq!(
        app.telegram.calls_to("editMessageText").len(),
        1,
        "coalesced"
    );
}

#[tokio::test]
async fn a_paced_edit_does_not_hold_back_a_new_alert_in_the_same_chat() {
    let app = spawn_app_with(with_edits_every(30)).await;
    let detector = detector(&app);
    let start = Utc::now() - Duration::seconds(30);
    let alice = failures_on("alice", 6, start);
    detector.detect(&alice[..5]).await.unwrap();
    app.telegram
        .wait_until("the first alert", |calls| {
            calls.iter().filter(|c| c.method == "sendMessage").count() == 1
        })
        .await;
    // Alice counts on: an edit waits its 30 s. Bob's alert must not wait behind it.
    detector.detect(&alice[5..]).await.unwrap();
    assert_eq!(alert_edits(&app).await.len(), 1);
    detector
        .detect(&failures_on("bob", 5, start))
        .await
        .unwrap();
    let calls = app
        .telegram
        .wait_until("the second alert", |calls| {
            calls.iter().filter(|c| c.method == "sendMessage").count() == 2
        })
        .await;
    let texts: Vec<String> = calls
        .iter()
        .filter(|c| c.method == "sendMessage")
        .map(|c| c.text())
        .collect();
    assert!(
        texts[1].contains("Failed logins on account bob"),
        "{texts:?}"
    );
    assert!(app.telegram.calls_to("editMessageText").is_empty());
}

/// Once a button of the message was used (the bot takes them all off), edits carry none;
/// once the alert is acknowledged, or its key silenced, it is not edited at all.
#[tokio::test]
async fn used_buttons_stay_off_and_an_acked_or_silenced_alert_is_left_as_it_is() {
    let app = spawn_app_with(with_edits_every(30)).await;
    let detector = detector(&app);
    let events = failures_on("dave", 9, Utc::now() - Duration::seconds(30));
    let fired = detector.detect(&events[..5]).await.unwrap();
    let id = fired[0].id;
    let details = format!("/alerts {id}");
    sqlx::query("UPDATE pending_actions SET used_at = now() WHERE command = $1")
        .bind(&details)
        .execute(app.pool())
        .await
        .unwrap();
    detector.detect(&events[5..6]).await.unwrap();
    let edits = alert_edits(&app).await;
    assert_eq!(edits.len(), 1);
    assert!(edits[0].1.contains("so far 6 failures"), "{}", edits[0].1);
    assert_eq!(
        edits[0].2,
        serde_json::json!([]),
        "no buttons once one was used"
    );

    // Silenced: the pending edit keeps the count it had.
    sqlx::query("INSERT INTO login_silences (matcher, until) VALUES ('account:dave', now() + interval '1 hour')")
        .execute(app.pool())
        .await
        .unwrap();
    detector.detect(&events[6..7]).await.unwrap();
    assert!(alert_edits(&app).await[0].1.contains("so far 6 failures"));
    sqlx::query("DELETE FROM login_silences")
        .execute(app.pool())
        .await
        .unwrap();

    // Acknowledged: likewise.
    sqlx::query("UPDATE login_alerts SET acked_by = 42, acked_at = now() WHERE id = $1")
        .bind(id)
        .execute(app.pool())
        .await
        .unwrap();
    detector.detect(&events[7..]).await.unwrap();
    let edits = alert_edits(&app).await;
    assert_eq!(edits.len(), 1);
    assert!(edits[0].1.contains("so far 6 failures"), "{}", edits[0].1);
    let count: i64 = sqlx::query_scalar("SELECT count FROM login_alerts WHERE id = $1")
        .bind(id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(count, 9, "the alert itself counts on");
}

/// One batch that counts on an open, pushed alert and then, after a pause longer than the
/// rule's gap, starts a new episode of the same key (a backlog replayed at once): the first
/// alert's message is still edited with its new count, as when the two came apart.
#[tokio::test]
async fn an_alert_counted_on_and_then_followed_in_the_same_batch_is_still_edited() {
    let app = spawn_app_with(with_edits_every(1)).await;
    let detector = detector(&app);
    let start = Utc::now() - Duration::seconds(3000);
    let first = failures_on("carol", 8, start);
    assert_eq!(detector.detect(&first[..5]).await.unwrap().len(), 1);
    app.telegram
        .wait_until("the first alert", |calls| {
            calls.iter().filter(|c| c.method == "sendMessage").count() == 1
        })
        .await;
    // Three more of the first episode, then five 2,000 s later (the gap is 900 s).
    let mut batch = first[5..].to_vec();
    batch.extend(failures_on("carol", 5, start + Duration::seconds(2000)));
    assert_eq!(
        detector.detect(&batch).await.unwrap().len(),
        1,
        "a new alert"
    );
    let calls = app
        .telegram
        .wait_until("the edit and the second alert", |calls| {
            calls.iter().any(|c| c.method == "editMessageText")
                && calls.iter().filter(|c| c.method == "sendMessage").count() == 2
        })
        .await;
    let edit = calls
        .iter()
        .find(|c| c.method == "editMessageText")
        .unwrap();
    assert!(edit.text().contains("so far 8 failures"), "{}", edit.text());
    let counts: Vec<(i64, String)> = alerts(&app)
        .await
        .into_iter()
        .map(|(_, _, _, count, state, _, _)| (count, state))
        .collect();
    assert_eq!(counts, [(8, "closed".to_string()), (5, "open".to_string())]);
}
