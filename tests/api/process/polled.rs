//! The durable inbox under long polling: a replica that received an update from
//! `getUpdates`, stored it and acknowledged it (its next poll's offset passed it), then was
//! SIGKILLed before running it, has the update answered by another replica within the
//! lease plus 5 s, run once.

use super::inbox::{
    LEASE, LEASE_SECS, end_waiting_sessions, kill, lock, open_inbox_rows, reply_within, rows_of,
    someone_waits_on,
};
use super::{serve_command, start_serving};
use crate::helpers::*;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_polled_update_acknowledged_then_orphaned_by_a_kill_is_answered_by_another_replica() {
    let b = spawn_app_with(|s| s.telegram.inbox_lease_secs = LEASE_SECS).await;
    b.add_user(42, "admin").await;
    let (mut cmd, addr) = serve_command(
        &b.db,
        &b.telegram,
        &[LEASE, ("OPSGUARD__TELEGRAM__POLL_TIMEOUT_SECS", "1")],
    );
    cmd.env_remove("OPSGUARD_WEBHOOK_SECRET");
    let mut a = start_serving((cmd, addr)).await;
    let lock = lock(b.pool(), "audit_log").await;
    let update_id = b.next_update_id();
    b.telegram
        .push_update(text_update(update_id, 42, 42, "/whoami"));
    // Stored, then acknowledged to Telegram by the next poll's offset; held before its
    // attempt is audited.
    let telegram = b.telegram.clone();
    b.telegram
        .wait_until("a poll acknowledging the update", |_| {
            telegram
                .calls_to("getUpdates")
                .iter()
                .any(|c| c.body["offset"].as_i64().is_some_and(|o| o > update_id))
        })
        .await;
    wait_for("the attempt's audit write to wait for the lock", || async {
        someone_waits_on(&b.db, "audit").await
    })
    .await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM update_inbox WHERE update_id = $1")
        .bind(update_id)
        .fetch_one(b.pool())
        .await
        .unwrap();
    assert_eq!(stored, 1, "stored before it was acknowledged");
    kill(&a.child);
    let _ = a.child.wait().await;
    let killed_at = Instant::now();
    end_waiting_sessions(&b.db, "audit").await;
    lock.rollback().await.unwrap();

    reply_within(&b, 42, 0, killed_at, Duration::from_secs(LEASE_SECS + 5)).await;
    let reply = b.telegram.sent_to(42)[0].text();
    assert!(reply.contains("Telegram id: <code>42</code>"), "{reply}");
    wait_for("the update to be done", || async {
        open_inbox_rows(&b).await == 0
    })
    .await;
    let rows = rows_of(&b, "whoami").await;
    let phases: Vec<_> = rows
        .iter()
        .map(|r| (r.1.as_str(), r.2.as_deref()))
        .collect();
    assert_eq!(
        phases,
        [("attempt", None), ("outcome", Some("ok"))],
        "run once"
    );
    assert_eq!(b.telegram.sent_to(42).len(), 1, "{:#?}", b.telegram.calls());
}
