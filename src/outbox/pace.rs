//! Direct replies under the outbox's limits: a reply reserves its slot in `direct_sends`
//! (per chat: at most `reply_burst` messages in `reply_burst × per_chat_interval`; per
//! group: `group_per_minute`), counting the outbox's sends and the other replies, and the
//! outbox's claim counts the reservations back, so both share each chat's limits across
//! replicas. The overall limit is the outbox's token bucket (`store::take_tokens`).

use crate::config::OutboxSettings;
use sqlx::PgPool;
use std::time::Duration;

/// The earliest offset (seconds from now) a send may go at, given the offsets of the
/// chat's sends (past, in flight and reserved; any order).
pub fn earliest(mut times: Vec<f64>, group: bool, s: &OutboxSettings) -> f64 {
    times.sort_by(f64::total_cmp);
    let n = times.len();
    let burst = s.reply_burst.max(1) as usize;
    let window = s.per_chat_interval_ms as f64 / 1000.0 * burst as f64;
    let mut at: f64 = 0.0;
    if n >= burst {
        at = at.max(times[n - burst] + window);
    }
    let per_minute = s.group_per_minute.max(1) as usize;
    if group && n >= per_minute {
        at = at.max(times[n - per_minute] + 60.0);
    }
    at
}

/// Reserve a slot for one send to `chat`; returns how long to wait for it, or `None` when
/// that is longer than `max_wait` (nothing is reserved then). One short transaction,
/// serialized per chat by an advisory lock.
pub async fn reserve(
    pool: &PgPool,
    chat: i64,
    s: &OutboxSettings,
    max_wait: Option<Duration>,
) -> Result<Option<Duration>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Pacing bookkeeping needs no durability (a crash loses at most the last few reserved
    // slots, which only pace): no WAL flush of its own on a reply's path.
    sqlx::query("SET LOCAL synchronous_commit TO off")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('direct_sends:' || $1, 0))")
        .bind(chat)
        .execute(&mut *tx)
        .await?;
    let times: Vec<f64> = sqlx::query_scalar(
        "WITH n AS (SELECT clock_timestamp() AS now)
         SELECT EXTRACT(EPOCH FROM x.t - n.now)::float8 FROM n, (
           SELECT d.sent_at AS t FROM direct_sends d, n
           WHERE d.chat_id = $1 AND d.sent_at > n.now - interval '60 seconds'
           UNION ALL
           SELECT o.sent_at FROM outbox o, n
           WHERE o.chat_id = $1 AND o.status = 'sent' AND o.sent_at > n.now - interval '60 seconds'
           UNION ALL
           SELECT n.now FROM outbox o, n
           WHERE o.chat_id = $1 AND o.status = 'pending' AND o.lease_until > n.now) x",
    )
    .bind(chat)
    .fetch_all(&mut *tx)
    .await?;
    let wait = Duration::from_secs_f64(earliest(times, chat < 0, s).max(0.0));
    if max_wait.is_some_and(|max| wait > max) {
        return Ok(None);
    }
    sqlx::query(
        "DELETE FROM direct_sends WHERE chat_id = $1 AND sent_at < now() - interval '5 minutes'",
    )
    .bind(chat)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO direct_sends (chat_id, sent_at)
         VALUES ($1, clock_timestamp() + make_interval(secs => $2))",
    )
    .bind(chat)
    .bind(wait.as_secs_f64())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(wait))
}

/// Forget the direct sends of every chat that are too old to count against a limit (each
/// reply forgets its own chat's; this catches the chats that got no reply since, such as a
/// stranger's, which would otherwise keep their rows for ever).
pub async fn prune(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM direct_sends WHERE sent_at < now() - interval '5 minutes'")
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// Hold a queued row back until `delay` from now (Telegram's `retry_after`).
pub async fn hold(pool: &PgPool, id: i64, delay: Duration) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE outbox SET not_before = clock_timestamp() + make_interval(secs => $2)
         WHERE id = $1",
    )
    .bind(id)
    .bind(delay.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_chat_goes_at_once_a_busy_one_waits() {
        let s = OutboxSettings::default();
        assert_eq!(earliest(vec![], false, &s), 0.0);
        assert_eq!(earliest(vec![-0.5, -0.2], false, &s), 0.0);
        // Three in the last three seconds: the next when the oldest leaves the window.
        assert!((earliest(vec![-2.0, -1.0, -0.5], false, &s) - 1.0).abs() < 1e-9);
        // A group with 20 in the last minute waits for the oldest to be a minute old.
        let group: Vec<f64> = (0..20).map(|i| -50.0 + f64::from(i)).collect();
        assert!((earliest(group.clone(), true, &s) - 10.0).abs() < 1e-9);
        assert_eq!(earliest(group, false, &s), 0.0);
    }
}
