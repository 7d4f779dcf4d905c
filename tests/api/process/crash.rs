//! SIGKILL of the real `serve` binary while outbox rows are pending and some are in
//! flight: after a restart every row reaches Telegram exactly once.
//!
//! A send in flight at the kill is one Telegram never answered; the fake records a call
//! only when it answers, so an abandoned call counts as never received. The one window
//! this cannot cover — Telegram got the message but the process died before committing
//! its answer — re-sends that row: delivery is at least once, never lost (see the
//! `[outbox]` notes in config/default.toml).

use super::{add, serve};
use crate::fake_telegram::FakeTelegram;
use crate::helpers::*;
use std::collections::HashMap;
use std::time::Duration;

const DELIVERED_CHATS: std::ops::RangeInclusive<i64> = 7001..=7016;
const HELD_CHATS: std::ops::RangeInclusive<i64> = 7017..=7024;

async fn sent_rows(db: &TestDb) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status = 'sent'")
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_killed_process_delivers_each_pending_row_exactly_once_after_restart() {
    let db = TestDb::create().await;
    add(&db, 42, "admin").await;
    let telegram = FakeTelegram::start().await;
    telegram.hold_chats(HELD_CHATS);
    let all: Vec<i64> = DELIVERED_CHATS.chain(HELD_CHATS).collect();
    for chat in &all {
        sqlx::query("INSERT INTO outbox (chat_id, html, source) VALUES ($1, $2, 'test')")
            .bind(chat)
            .bind(format!("alert for {chat}"))
            .execute(&db.pool)
            .await
            .unwrap();
    }
    // A short send timeout keeps the lease of the rows abandoned at the kill short.
    let env = [
        ("OPSGUARD__OUTBOX__POLL_INTERVAL_MS", "50"),
        ("OPSGUARD__OUTBOX__SEND_TIMEOUT_MS", "2000"),
    ];
    let mut first = serve(&db, &telegram, &env).await;
    let delivered = DELIVERED_CHATS.count();
    telegram
        .wait_until(
            "the unheld chats delivered and the held ones in flight",
            |_| {
                telegram.held_calls() >= 1
                    && DELIVERED_CHATS
                        .clone()
                        .all(|c| telegram.sent_to(c).len() == 1)
            },
        )
        .await;
    for _ in 0..200 {
        if sent_rows(&db).await == delivered as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sent_rows(&db).await, delivered as i64, "answers committed");

    let pid = first.child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = first.child.wait().await;
    telegram.release_all();
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status <> 'sent'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        pending,
        HELD_CHATS.count() as i64,
        "held rows were pending at the kill"
    );

    let _second = serve(&db, &telegram, &env).await;
    for _ in 0..1500 {
        if sent_rows(&db).await == all.len() as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut per_text: HashMap<String, usize> = HashMap::new();
    for call in telegram.calls_to("sendMessage") {
        *per_text.entry(call.text()).or_default() += 1;
    }
    for chat in &all {
        let text = format!("alert for {chat}");
        assert_eq!(per_text.get(&text), Some(&1), "{text}: {per_text:?}");
    }
    assert_eq!(sent_rows(&db).await, all.len() as i64);
}
