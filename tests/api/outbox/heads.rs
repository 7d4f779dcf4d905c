//! The claim's per-chat bounds (`outbox::heads`): a row that becomes pending below the bound
//! of a chat the worker keeps busy is still sent (a dead row put back by `opsguard outbox
//! retry`, an insert that commits after later rows of its chat went), and replicas draining
//! a long backlog send each row once, in order.

use super::{assert_in_order, texts, wait_delivered, wait_rows};
use crate::fake_telegram::{Call, Forced};
use crate::helpers::*;
use opsguard::config::Settings;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Pacing lifted: a chat with a backlog keeps the worker busy (no pass claims nothing, so
/// only the periodic full probe can find a row below the chat's bound).
fn unpaced(s: &mut Settings) {
    super::fast(s);
    s.outbox.per_chat_interval_ms = 0;
    s.outbox.global_per_second = 0;
    s.outbox.max_attempts = 1;
}

/// Keeps at least 20 rows of `chat` pending ("feed N", N from 0) until the returned flag
/// is set; the task returns how many it queued.
fn feed(app: &TestApp, chat: i64) -> (Arc<AtomicBool>, tokio::task::JoinHandle<usize>) {
    let stop = Arc::new(AtomicBool::new(false));
    let pool = app.pool().clone();
    let stopped = stop.clone();
    let task = tokio::spawn(async move {
        let mut queued = 0usize;
        while !stopped.load(Ordering::Relaxed) {
            let pending: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM outbox WHERE chat_id = $1 AND status = 'pending'",
            )
            .bind(chat)
            .fetch_one(&pool)
            .await
            .unwrap();
            if pending < 20 {
                sqlx::query(
                    "INSERT INTO outbox (chat_id, html, source)
                     SELECT $1, 'feed ' || n, 'test' FROM generate_series($2::int8, $2 + 39) n
                     ORDER BY n",
                )
                .bind(chat)
                .bind(queued as i64)
                .execute(&pool)
                .await
                .unwrap();
                queued += 40;
            }
            // Load, not a verdict: how often the backlog is topped up.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        queued
    });
    (stop, task)
}

/// Once the feeder stopped and every row of `chat` is sent: `special` arrived exactly once
/// and the fed rows each once, in order.
async fn assert_fed_and(app: &TestApp, chat: i64, special: &str, fed: usize) {
    wait_rows(app, &[chat], "sent").await;
    let texts = texts(app, chat);
    assert_eq!(
        texts.iter().filter(|t| *t == special).count(),
        1,
        "{special}"
    );
    let feeds: Vec<String> = texts.into_iter().filter(|t| t != special).collect();
    let expected: Vec<String> = (0..fed).map(|n| format!("feed {n}")).collect();
    assert_eq!(feeds, expected, "fed rows once each, in order");
}

async fn wait_fed(app: &TestApp, chat: i64, n: usize) {
    app.telegram
        .wait_until("fed rows sent", |_| {
            texts(app, chat)
                .iter()
                .filter(|t| t.starts_with("feed"))
                .count()
                >= n
        })
        .await;
}

async fn wait_text(app: &TestApp, chat: i64, text: &str) {
    app.telegram
        .wait_until(text, |_| texts(app, chat).iter().any(|t| t == text))
        .await;
}

#[tokio::test]
async fn a_dead_row_put_back_below_a_busy_chats_bound_is_sent() {
    let app = spawn_app_with(unpaced).await;
    let chat = 1301;
    app.telegram
        .fail_chat(chat, Forced::bad_request("Bad Request: chat not found"));
    let dead = super::queue(&app, chat, "put back").await;
    wait_rows(&app, &[chat], "dead").await;
    app.telegram.heal_chat(chat);
    // Later rows of the chat go: its bound is now above the dead row.
    let (stop, feeder) = feed(&app, chat);
    wait_fed(&app, chat, 100).await;
    let (code, out, err) =
        run_opsguard(&app.db.url, &[], &["outbox", "retry", &dead.to_string()]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&format!("#{dead}")), "{out}");
    // Found while the chat is still busy (the feeder runs until it arrives).
    wait_text(&app, chat, "put back").await;
    stop.store(true, Ordering::Relaxed);
    let fed = feeder.await.unwrap();
    assert_fed_and(&app, chat, "put back", fed).await;
}

#[tokio::test]
async fn an_insert_that_commits_after_later_rows_of_its_chat_went_is_sent() {
    let app = spawn_app_with(unpaced).await;
    let chat = 1311;
    // Its id is taken now, lower than every fed row's, but it commits only later.
    let mut slow = app.pool().begin().await.unwrap();
    sqlx::query("INSERT INTO outbox (chat_id, html, source) VALUES ($1, 'late', 'test')")
        .bind(chat)
        .execute(&mut *slow)
        .await
        .unwrap();
    let (stop, feeder) = feed(&app, chat);
    wait_fed(&app, chat, 100).await;
    slow.commit().await.unwrap();
    wait_text(&app, chat, "late").await;
    stop.store(true, Ordering::Relaxed);
    let fed = feeder.await.unwrap();
    assert_fed_and(&app, chat, "late", fed).await;
}

#[tokio::test]
async fn two_replicas_draining_a_long_backlog_send_each_row_once_in_order() {
    let app = spawn_app_with(unpaced).await;
    let replica = app.spawn_replica_with(unpaced).await;
    let long = 1321;
    let chats: Vec<i64> = (1322..=1341).collect();
    // All at once, so both replicas race for the same heads from the start.
    sqlx::query(
        "INSERT INTO outbox (chat_id, html, source)
         SELECT c, 'chat ' || c || ' #' || n, 'test'
         FROM generate_series(0, 399) n, unnest($1::int8[]) c
         WHERE c = $2 OR n < 20
         ORDER BY n, c",
    )
    .bind(chats.iter().copied().chain([long]).collect::<Vec<i64>>())
    .bind(long)
    .execute(app.pool())
    .await
    .unwrap();
    wait_delivered(&app, &[long], 400).await;
    wait_delivered(&app, &chats, 20).await;
    let mut all = chats.clone();
    all.push(long);
    // Every row recorded as sent: none can be sent again, so the checks below are final.
    wait_rows(&app, &all, "sent").await;
    assert_in_order(&app, &[long], 400);
    assert_in_order(&app, &chats, 20);
    let calls = app.telegram.calls_to("sendMessage");
    let unique: HashSet<String> = calls.iter().map(Call::text).collect();
    assert_eq!(unique.len(), calls.len(), "a message was sent twice");
    drop(replica);
}
