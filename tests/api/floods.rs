//! Floods (issue 13 §3): what a stranger, a group that is not allow-listed, or a user's
//! refusals can make opsguard write or send is bounded per sender and per chat, before
//! anything is written; one aggregate audit row per sender (or chat) and window counts the
//! rest. Verdicts wait for proof: every update sent is accounted for, either as its own
//! audit rows or in an aggregate row's count.

use super::helpers::*;
use futures::StreamExt;
use opsguard::config::Settings;
use opsguard::domain::secret::Secret;
use opsguard::storage::audit::AuditRow;
use serde_json::Value;
use std::time::{Duration, Instant};

const STRANGER: i64 = 999;

/// Short windows, so the aggregate rows come within the test.
fn short_windows(s: &mut Settings) {
    s.flood.window_secs = 3;
}

/// POST every update, 16 at a time; each must be answered 200. Returns how long it took.
async fn flood(app: &TestApp, updates: Vec<Value>) -> Duration {
    let started = Instant::now();
    futures::stream::iter(updates)
        .map(|u| async move { app.post_update(&u).await.status() })
        .buffer_unordered(16)
        .for_each(|status| async move { assert_eq!(status, 200) })
        .await;
    started.elapsed()
}

fn texts(app: &TestApp, user: i64, chat: i64, n: usize, text: &str) -> Vec<Value> {
    (0..n)
        .map(|_| text_update(app.next_update_id(), user, chat, text))
        .collect()
}

/// The count an aggregate row reports ("N messages dropped in W s").
fn dropped(row: &AuditRow) -> u64 {
    let reason = row.entry.reason.clone().unwrap_or_default();
    reason
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {reason}"))
}

fn is_aggregate(row: &AuditRow) -> bool {
    row.entry.command == "flood"
}

/// Wait until `accounted(rows)` reaches `sent`: every update is either audited on its own
/// (an attempt row) or counted in an aggregate row.
async fn wait_accounted(
    app: &TestApp,
    sent: u64,
    accounted: impl Fn(&[AuditRow]) -> u64,
) -> Vec<AuditRow> {
    let mut rows = Vec::new();
    for _ in 0..600 {
        rows = app.audit_rows().await;
        if accounted(&rows) >= sent {
            assert_eq!(accounted(&rows), sent, "nothing is counted twice");
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "only {} of {sent} updates accounted for; rows: {:#?}",
        accounted(&rows),
        rows.iter().map(|r| &r.entry).collect::<Vec<_>>()
    );
}

/// Attempts audited on their own plus the counts of the aggregate rows, for one actor.
fn accounted_for(rows: &[AuditRow], actor: i64) -> u64 {
    let own = rows
        .iter()
        .filter(|r| !is_aggregate(r) && r.entry.actor_id == Some(actor))
        .filter(|r| r.entry.phase == "attempt")
        .count() as u64;
    let aggregated: u64 = rows.iter().filter(|r| is_aggregate(r)).map(dropped).sum();
    own + aggregated
}

/// At most `limit` admitted per window the flood lasted (a sliding window admits `limit`
/// again once its oldest admitted hit is a window old).
fn bound(limit: u32, elapsed: Duration, window_secs: u64) -> u64 {
    u64::from(limit) * (elapsed.as_secs() / window_secs + 2)
}

#[tokio::test]
async fn a_strangers_flood_writes_a_bounded_audit_and_gets_one_reply() {
    let app = spawn_app_with(short_windows).await;
    let n = 300;
    let elapsed = flood(&app, texts(&app, STRANGER, STRANGER, n, "/help")).await;
    let rows = wait_accounted(&app, n as u64, |rows| accounted_for(rows, STRANGER)).await;
    let own: Vec<_> = rows.iter().filter(|r| !is_aggregate(r)).collect();
    assert!(
        own.len() as u64 <= 2 * bound(3, elapsed, 3),
        "{} rows in {elapsed:?}",
        own.len()
    );
    assert!(own.iter().all(|r| r.entry.actor_id == Some(STRANGER)
        && r.entry.decision == "denied"
        && r.entry.reason.as_deref() == Some("unknown user")));
    let aggregates: Vec<_> = rows.iter().filter(|r| is_aggregate(r)).collect();
    assert!(!aggregates.is_empty());
    for row in &aggregates {
        let e = &row.entry;
        assert_eq!(
            (e.decision.as_str(), e.actor_id, e.chat_id, e.args.as_str()),
            ("rate_limited", Some(STRANGER), Some(STRANGER), "sender:999"),
        );
        assert!(
            e.reason
                .as_deref()
                .unwrap()
                .ends_with("messages dropped in 3 s"),
            "{:?}",
            e.reason
        );
    }
    // One aggregate row per window at most (plus the window still open when it ended).
    assert!(aggregates.len() as u64 <= elapsed.as_secs() / 3 + 2);
    // Bounded before anything is written: a dropped update leaves no de-dup or inbox row
    // (an admitted one leaves at most one of each).
    app.idle().await;
    let (taken, stored): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM processed_updates), (SELECT count(*) FROM update_inbox)",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    let admitted = bound(3, elapsed, 3) as i64;
    assert!(
        taken <= admitted && stored <= admitted,
        "{taken} de-dup and {stored} inbox rows for {n} updates, at most {admitted} admitted"
    );
    let sent = app.telegram.sent_to(STRANGER);
    assert_eq!(sent.len(), 1, "one neutral line, not one per message");
    assert_eq!(sent[0].text(), STRANGER_LINE);
    // The chain stays whole.
    let report = opsguard::storage::audit::verify(app.pool(), app.chain_key())
        .await
        .unwrap();
    assert_eq!(report.broken, None);
}

#[tokio::test]
async fn a_group_that_is_not_allow_listed_is_bounded_per_chat_and_silent() {
    let app = spawn_app_with(|s| {
        short_windows(s);
        s.flood.chat = 5;
    })
    .await;
    let group = -100_777;
    // Ten strangers, each under their own limit at first, together far over the chat's.
    let mut updates = Vec::new();
    for i in 0..20 {
        for user in 1..=10 {
            updates.push(text_update(
                app.next_update_id(),
                5_000 + user,
                group,
                &format!("/help {i}"),
            ));
        }
    }
    let n = updates.len() as u64;
    let elapsed = flood(&app, updates).await;
    let rows = wait_accounted(&app, n, |rows| {
        let own = rows
            .iter()
            .filter(|r| !is_aggregate(r) && r.entry.phase == "attempt")
            .count() as u64;
        own + rows
            .iter()
            .filter(|r| is_aggregate(r))
            .map(dropped)
            .sum::<u64>()
    })
    .await;
    let own = rows.iter().filter(|r| !is_aggregate(r)).count() as u64;
    assert!(own <= 2 * bound(5, elapsed, 3), "{own} rows in {elapsed:?}");
    assert!(
        rows.iter()
            .filter(|r| is_aggregate(r))
            .any(|r| r.entry.args == format!("chat:{group}") && r.entry.actor_id.is_none()),
        "the chat's drops are counted under the chat"
    );
    assert!(rows.iter().all(|r| r.entry.chat_id == Some(group)));
    assert!(
        app.telegram.sent_to(group).is_empty(),
        "silence in the group"
    );
    // Bounded per chat before anything is written: no de-dup or inbox row past the bound.
    app.idle().await;
    let (taken, stored): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM processed_updates), (SELECT count(*) FROM update_inbox)",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    let admitted = bound(5, elapsed, 3) as i64;
    assert!(
        taken <= admitted && stored <= admitted,
        "{taken} de-dup and {stored} inbox rows for {n} updates, at most {admitted} admitted"
    );
}

#[tokio::test]
async fn an_admin_keeps_working_while_a_stranger_floods() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    let updates = texts(&app, STRANGER, STRANGER, 1_000, "/whoami");
    let flooding = flood(&app, updates);
    let working = async {
        for i in 0..10 {
            let reply = app.say(42, "/whoami").await.text();
            assert!(reply.contains("Telegram id"), "#{i}: {reply}");
        }
    };
    tokio::join!(flooding, working);
    // Every update was answered; with none in flight, every admitted one is audited.
    app.idle().await;
    let rows = app.audit_rows().await;
    let admin: Vec<_> = rows
        .iter()
        .filter(|r| r.entry.actor_id == Some(42))
        .collect();
    assert_eq!(admin.len(), 20);
    assert!(admin.iter().all(|r| r.entry.decision == "allowed"));
    let stranger = rows
        .iter()
        .filter(|r| r.entry.actor_id == Some(STRANGER))
        .count();
    assert!(
        stranger <= 6,
        "{stranger} rows for the stranger in one window"
    );
}

#[tokio::test]
async fn a_users_refusals_unknown_denied_or_forged_are_bounded() {
    let app = spawn_app_with(|s| {
        short_windows(s);
        s.flood.refused = 4;
    })
    .await;
    app.add_user(43, "viewer").await;
    let n = 60;
    let mut updates = texts(&app, 43, 43, n / 3, "/nope");
    updates.extend(texts(&app, 43, 43, n / 3, "/grant 7 admin"));
    updates.extend(
        (0..n / 3).map(|i| callback_update(app.next_update_id(), 43, 43, &format!("forged{i}"), 1)),
    );
    let elapsed = flood(&app, updates).await;
    let rows = wait_accounted(&app, n as u64, |rows| accounted_for(rows, 43)).await;
    let own: Vec<_> = rows.iter().filter(|r| !is_aggregate(r)).collect();
    assert!(
        own.len() as u64 <= 2 * bound(4, elapsed, 3),
        "{} rows in {elapsed:?}",
        own.len()
    );
    assert!(own.iter().all(|r| r.entry.decision != "allowed"));
    assert!(
        rows.iter()
            .filter(|r| is_aggregate(r))
            .all(|r| r.entry.args == "user:43" && r.entry.actor_id == Some(43))
    );
    let answers = app.telegram.sent_to(43).len() as u64;
    assert!(answers <= bound(4, elapsed, 3), "{answers} replies");
}

#[tokio::test]
async fn without_redis_the_flood_is_still_bounded_per_process() {
    let app = spawn_app_with(|s| {
        short_windows(s);
        s.redis.url = Secret::new("redis://127.0.0.1:1");
    })
    .await;
    assert!(app.engine.redis().is_degraded());
    app.add_user(42, "admin").await;
    let n = 200;
    let elapsed = flood(&app, texts(&app, STRANGER, STRANGER, n, "/help")).await;
    let rows = wait_accounted(&app, n as u64, |rows| accounted_for(rows, STRANGER)).await;
    let own = rows.iter().filter(|r| !is_aggregate(r)).count() as u64;
    assert!(own <= 2 * bound(3, elapsed, 3), "{own} rows in {elapsed:?}");
    assert_eq!(app.telegram.sent_to(STRANGER).len(), 1);
    assert!(app.say(42, "/whoami").await.text().contains("Telegram id"));
    let status = app.say(42, "/status").await.text();
    assert!(status.contains("and so are flood limits"), "{status}");
}

#[tokio::test]
async fn the_neutral_line_is_sent_once_across_replicas() {
    let app = spawn_app().await;
    let replica = app.spawn_replica().await;
    assert_eq!(app.say(STRANGER, "/help").await.text(), STRANGER_LINE);
    // A press on the other replica: its callback answer proves it was handled.
    let update_id = app.next_update_id();
    let press = callback_update(update_id, STRANGER, STRANGER, "anything", 1);
    assert_eq!(replica.post_update(&press).await.status(), 200);
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
        .find(|c| c.method == "answerCallbackQuery")
        .unwrap();
    assert_eq!(answer.text(), "Not available.");
    assert_eq!(app.telegram.sent_to(STRANGER).len(), 1, "no second line");
    assert_eq!(accounted_for(&app.audit_rows().await, STRANGER), 2);
}

#[tokio::test]
async fn a_polled_flood_is_bounded_too() {
    let app = spawn_app_with(|s| {
        short_windows(s);
        s.telegram.webhook_secret = None;
    })
    .await;
    let n = 100;
    let started = Instant::now();
    for update in texts(&app, STRANGER, STRANGER, n, "/help") {
        app.telegram.push_update(update);
    }
    let rows = wait_accounted(&app, n as u64, |rows| accounted_for(rows, STRANGER)).await;
    let own = rows.iter().filter(|r| !is_aggregate(r)).count() as u64;
    let elapsed = started.elapsed();
    assert!(own <= 2 * bound(3, elapsed, 3), "{own} rows in {elapsed:?}");
    assert_eq!(app.telegram.sent_to(STRANGER).len(), 1);
}
