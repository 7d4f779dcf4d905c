//! Counts on open alerts written behind (`logins.counts_every_ms`): an episode that only
//! counts on an alert already open waits for the flusher, merged with its key's others; a
//! page is never held; the flusher's count is the one batch-by-batch recording gives; what
//! waits is written by the flusher's next run and by the last run at shutdown.

use super::*;
use crate::ingest::{good_token, post, with_secret};

/// A detector whose flusher never runs by itself: the test flushes.
fn held(app: &TestApp) -> Detector {
    detector(app).with_counts_behind(std::time::Duration::from_secs(3600))
}

#[tokio::test]
async fn counts_on_an_open_alert_wait_for_the_flush_and_add_up_as_batch_by_batch() {
    let app = spawn_app_with(|s| only_rule(s, "account-lockout", 900)).await;
    let detector = held(&app);
    let start = Utc::now() - Duration::seconds(60);
    let alice = failures_on("alice", 35, start);

    // The crossing opens the alert at once: its page is in the outbox when detect returns.
    assert_eq!(detector.detect(&alice[..5]).await.unwrap().len(), 1);
    assert_eq!(pushes(&app).await.len(), 1);
    // 30 more in five batches: held, nothing written yet.
    for chunk in alice[5..].chunks(7) {
        assert!(detector.detect(chunk).await.unwrap().is_empty());
    }
    assert_eq!(
        alerts(&app).await[0].3,
        5,
        "held counts are not written yet"
    );
    assert!(alert_edits(&app).await.is_empty());

    // Another key crossing meanwhile is not held behind them: paged at once.
    let bob = failures_on("bob", 5, start + Duration::seconds(1));
    assert_eq!(detector.detect(&bob).await.unwrap().len(), 1);
    assert_eq!(pushes(&app).await.len(), 2);
    // Bob's batch took what waited for alice along (one transaction for both).
    let rows = alerts(&app).await;
    let counts: Vec<(&str, i64)> = rows.iter().map(|r| (r.2.as_str(), r.3)).collect();
    assert_eq!(counts, [("account:alice", 35), ("account:bob", 5)]);

    // Counting on bob, then the flush: the same 35 as recorded batch by batch
    // (`alerts.rs`), one paced edit per pushed alert.
    let more = failures_on("bob", 8, start + Duration::seconds(2));
    for chunk in more.chunks(3) {
        assert!(detector.detect(chunk).await.unwrap().is_empty());
    }
    assert_eq!(alerts(&app).await[1].3, 5);
    detector.flush_counts().await;
    let rows = alerts(&app).await;
    let counts: Vec<(&str, i64, &str)> = rows
        .iter()
        .map(|r| (r.2.as_str(), r.3, r.4.as_str()))
        .collect();
    assert_eq!(
        counts,
        [("account:alice", 35, "open"), ("account:bob", 13, "open")]
    );
    assert_eq!(pushes(&app).await.len(), 2, "counting on pages nobody");
    let edits = alert_edits(&app).await;
    assert_eq!(edits.len(), 2, "{edits:?}");
    assert!(
        edits.iter().any(|e| e.1.contains("35 failures")),
        "{edits:?}"
    );
    assert!(
        edits.iter().any(|e| e.1.contains("13 failures")),
        "{edits:?}"
    );

    // Nothing left: a second flush writes nothing.
    detector.flush_counts().await;
    assert_eq!(alert_edits(&app).await.len(), 2);
}

#[tokio::test]
async fn a_held_spray_counts_each_account_once() {
    let app = spawn_app_with(|s| only_rule(s, "password-spray", 900)).await;
    let detector = held(&app);
    let start = Utc::now() - Duration::seconds(120);
    let ip = "203.0.113.9";
    let at = |i: i64| start + Duration::milliseconds(i);
    let first: Vec<AuthEvent> = (0..20)
        .map(|i| failure(ip, &format!("user{i:02}"), at(i)))
        .collect();
    assert_eq!(detector.detect(&first).await.unwrap().len(), 1);
    // Ten new accounts and five tried again, over three batches.
    let later: Vec<AuthEvent> = (20..30)
        .chain(0..5)
        .enumerate()
        .map(|(n, i)| failure(ip, &format!("user{i:02}"), at(100 + n as i64)))
        .collect();
    for chunk in [&later[..6], &later[6..11], &later[11..]] {
        assert!(detector.detect(chunk).await.unwrap().is_empty());
    }
    assert_eq!(alerts(&app).await[0].3, 20, "held");
    detector.flush_counts().await;
    let (count, accounts): (i64, i32) =
        sqlx::query_as("SELECT count, account_count FROM login_alerts")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!((count, accounts), (30, 30));
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM login_alert_accounts")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(stored, 30);
}

/// Five failures on alice over HTTP (a page, in the outbox before the 202), then ten more.
async fn attack(app: &TestApp) {
    let token = good_token();
    let event = |i: usize| {
        serde_json::json!({ "at": Utc::now().to_rfc3339(), "ip": format!("198.51.100.{i}"),
            "account": "alice", "service": "sso", "outcome": "failure" })
        .to_string()
    };
    let body =
        |r: std::ops::Range<usize>| format!("[{}]", r.map(event).collect::<Vec<_>>().join(","));
    assert_eq!(post(app, Some(&token), body(1..6)).await.0, 202);
    assert_eq!(pushes(app).await.len(), 1, "the page is not held");
    assert_eq!(post(app, Some(&token), body(6..16)).await.0, 202);
}

async fn count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count FROM login_alerts")
        .fetch_one(app.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_running_flusher_writes_what_waits() {
    let app = spawn_app_with(|s| {
        with_secret(s);
        only_rule(s, "account-lockout", 900);
        s.logins.counts_every_ms = 50;
    })
    .await;
    attack(&app).await;
    wait_for("the flusher to write the count", || async {
        count(&app).await == 15
    })
    .await;
}

#[tokio::test]
async fn shutdown_writes_what_waits() {
    let app = spawn_app_with(|s| {
        with_secret(s);
        only_rule(s, "account-lockout", 900);
        s.logins.counts_every_ms = 3_600_000;
    })
    .await;
    attack(&app).await;
    assert_eq!(count(&app).await, 5, "held until the flusher runs");
    app.shutdown.cancel();
    app.stopped().await;
    assert_eq!(count(&app).await, 15);
}

#[tokio::test]
async fn a_count_on_an_alert_the_clock_is_about_to_close_is_not_held() {
    // The rule's gap is 900 s; the flusher's margin here is half of it. An alert whose last
    // stored event is 600 s old would be closed by the clock before a held count reached it.
    let app = spawn_app_with(|s| only_rule(s, "account-lockout", 900)).await;
    let detector = held(&app);
    let alice = failures_on("alice", 8, Utc::now() - Duration::seconds(600));
    assert_eq!(detector.detect(&alice[..5]).await.unwrap().len(), 1);
    assert!(detector.detect(&alice[5..]).await.unwrap().is_empty());
    assert_eq!(
        alerts(&app).await[0].3,
        8,
        "written with its batch, not held"
    );
}

#[tokio::test]
async fn held_counts_whose_flush_fails_wait_for_the_next_run() {
    let app = spawn_app_with(|s| only_rule(s, "account-lockout", 900)).await;
    let detector = held(&app);
    let alice = failures_on("alice", 12, Utc::now() - Duration::seconds(60));
    assert_eq!(detector.detect(&alice[..5]).await.unwrap().len(), 1);
    assert!(detector.detect(&alice[5..]).await.unwrap().is_empty());
    // The store refuses the flush (its alerts table gone for the moment): nothing lost.
    let sql = |q: &'static str| sqlx::query(q).execute(app.pool());
    sql("ALTER TABLE login_alerts RENAME TO login_alerts_away")
        .await
        .unwrap();
    detector.flush_counts().await;
    sql("ALTER TABLE login_alerts_away RENAME TO login_alerts")
        .await
        .unwrap();
    assert_eq!(alerts(&app).await[0].3, 5, "the failed flush wrote nothing");
    detector.flush_counts().await;
    assert_eq!(
        alerts(&app).await[0].3,
        12,
        "the next run wrote what waited"
    );
}
