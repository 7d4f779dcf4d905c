//! Direct replies under the outbox's limits: a reply reserves its slot in `direct_sends`
//! (per chat: at most `reply_burst` messages in `reply_burst × per_chat_interval`; per
//! group: `group_per_minute`), counting the outbox's sends and the other replies, and the
//! outbox's claim counts the reservations back, so both share each chat's limits across
//! replicas. The overall limit is the outbox's token bucket (`store::take_tokens`).

use crate::config::OutboxSettings;
use sqlx::PgPool;
use std::time::Duration;

/// Reserve a slot for one send to `chat`; returns how long to wait for it, or `None` when
/// that is longer than `max_wait` (nothing is reserved then). One statement (the
/// `reserve_direct_send` function, migration 0028), serialized per chat by an advisory lock
/// and committed without a WAL flush of its own. A private chat when per-chat pacing is off
/// can never be held back, so nothing is reserved for it.
pub async fn reserve(
    pool: &PgPool,
    chat: i64,
    s: &OutboxSettings,
    max_wait: Option<Duration>,
) -> Result<Option<Duration>, sqlx::Error> {
    if chat > 0 && s.per_chat_interval_ms == 0 {
        return Ok(Some(Duration::ZERO));
    }
    let burst = s.reply_burst.max(1);
    let window = s.per_chat_interval_ms as f64 / 1000.0 * f64::from(burst);
    let wait: Option<f64> = sqlx::query_scalar("SELECT reserve_direct_send($1, $2, $3, $4, $5)")
        .bind(chat)
        .bind(i32::try_from(burst).unwrap_or(i32::MAX))
        .bind(window)
        .bind(i32::try_from(s.group_per_minute.max(1)).unwrap_or(i32::MAX))
        .bind(max_wait.map(|m| m.as_secs_f64()))
        .fetch_one(pool)
        .await?;
    Ok(wait.map(|w| Duration::from_secs_f64(w.max(0.0))))
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
