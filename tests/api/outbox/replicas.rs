//! Several replicas and processes on one outbox: each row sent once, in order per chat,
//! rows pending at a stop sent by the next process, a dying replica's rows freed.

use super::{
    assert_in_order, fast, queue, queue_each, texts, wait_delivered, wait_rows, whole_pass,
};
use crate::fake_telegram::Call;
use crate::helpers::*;
use opsguard::domain::Reply;
use std::collections::HashSet;

#[tokio::test]
async fn two_replicas_draining_one_outbox_send_each_row_exactly_once_in_order() {
    let app = spawn_app_with(fast).await;
    let replica = app.spawn_replica_with(fast).await;
    let chats: Vec<i64> = (901..=930).collect();
    let mut tx = app.pool().begin().await.unwrap();
    for i in 0..4 {
        for chat in &chats {
            let reply = Reply::html(format!("chat {chat} #{i}"));
            sqlx::query("INSERT INTO outbox (chat_id, html, source) VALUES ($1, $2, 'test')")
                .bind(chat)
                .bind(&reply.html)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
    }
    // All at once, so both replicas race for the same rows.
    tx.commit().await.unwrap();
    wait_delivered(&app, &chats, 4).await;
    // Every row recorded as sent: none can be sent again.
    wait_rows(&app, &chats, "sent").await;
    assert_in_order(&app, &chats, 4);
    let all = app.telegram.calls_to("sendMessage");
    let unique: HashSet<String> = all.iter().map(Call::text).collect();
    assert_eq!(unique.len(), all.len(), "a message was sent twice");
    drop(replica);
}

#[tokio::test]
async fn rows_pending_when_a_process_stops_are_sent_once_by_the_next() {
    let app = spawn_app_with(|s| {
        fast(s);
        s.outbox.per_chat_interval_ms = 1000;
    })
    .await;
    queue_each(&app, &[1001], 3).await;
    wait_delivered(&app, &[1001], 1).await;
    app.shutdown.cancel();
    // Stopped: its worker has ended, so what it sent is all it will send.
    app.stopped().await;
    assert_eq!(
        texts(&app, 1001).len(),
        1,
        "the stopped process sent nothing more"
    );
    let _next = app
        .spawn_replica_with(|s| {
            fast(s);
            s.outbox.per_chat_interval_ms = 1000;
        })
        .await;
    wait_delivered(&app, &[1001], 3).await;
    wait_rows(&app, &[1001], "sent").await;
    assert_in_order(&app, &[1001], 3);
}

#[tokio::test]
async fn a_replica_dying_mid_send_holds_back_its_chat_until_its_transaction_is_gone() {
    let app = spawn_app_with(fast).await;
    // #0 falls due in 300 ms: time to lock it before the worker may claim it.
    let first: i64 = sqlx::query_scalar(
        "INSERT INTO outbox (chat_id, html, source, not_before)
         VALUES (1101, 'chat 1101 #0', 'test', now() + interval '300 ms') RETURNING id",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    queue(&app, 1101, "chat 1101 #1").await;
    // Another replica claimed the chat's head row and is sending it.
    let mut dying = app.pool().begin().await.unwrap();
    sqlx::query("SELECT id FROM outbox WHERE id = $1 FOR UPDATE")
        .bind(first)
        .execute(&mut *dying)
        .await
        .unwrap();
    // Once #0 is due, whole passes of the worker since show #1 is held back.
    wait_for("#0 to fall due", || async {
        let due: bool = sqlx::query_scalar("SELECT not_before <= now() FROM outbox WHERE id = $1")
            .bind(first)
            .fetch_one(app.pool())
            .await
            .unwrap();
        due
    })
    .await;
    whole_pass(&app, 1102).await;
    assert!(
        texts(&app, 1101).is_empty(),
        "#1 must not overtake the locked #0"
    );
    // The replica dies: its transaction is rolled back and the row is free again.
    dying.rollback().await.unwrap();
    wait_delivered(&app, &[1101], 2).await;
    wait_rows(&app, &[1101], "sent").await;
    assert_in_order(&app, &[1101], 2);
}

/// A worker that died mid-batch: one row it had sent and recorded, one it had leased and
/// never finished. The recorded row is never sent again; the leased one waits for its lease
/// to run out, then goes out exactly once — and the chat's later row only after it.
#[tokio::test]
async fn a_dead_workers_lease_runs_out_and_only_its_unfinished_row_is_sent() {
    let app = spawn_app_with(fast).await;
    let chat = 1201;
    for (html, status, lease_secs) in [
        ("done", "sent", None),
        ("in flight", "pending", Some(4.0)),
        ("next", "pending", None),
    ] {
        sqlx::query(
            "INSERT INTO outbox (chat_id, html, source, status, sent_at, lease_until)
             VALUES ($1, $2, 'test', $3, CASE WHEN $3 = 'sent' THEN now() - interval '1 hour' END,
                     now() + make_interval(secs => $4))",
        )
        .bind(chat)
        .bind(html)
        .bind(status)
        .bind(lease_secs)
        .execute(app.pool())
        .await
        .unwrap();
    }
    // Whole passes of the worker while the lease still holds: nothing goes out.
    whole_pass(&app, 1202).await;
    let leased: bool = sqlx::query_scalar(
        "SELECT lease_until > now() FROM outbox WHERE chat_id = $1 AND html = 'in flight'",
    )
    .bind(chat)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert!(
        leased,
        "the passes above ran within the lease (a very slow machine: lengthen it)"
    );
    assert!(
        texts(&app, chat).is_empty(),
        "a leased row (and the row behind it) waits"
    );
    wait_delivered(&app, &[chat], 2).await;
    wait_rows(&app, &[chat], "sent").await;
    assert_eq!(
        texts(&app, chat),
        ["in flight", "next"],
        "the recorded row is not sent again"
    );
}
