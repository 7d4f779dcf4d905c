//! The outbox's SQL besides the claim (`claim.rs`): record each row's result as its send
//! finishes, the shared overall token bucket, the figures `/status` shows and the pruning
//! of old sent rows.

use sqlx::PgPool;
use std::time::Duration;

pub use super::claim::{Claimed, claim};

/// Give leased rows back unsent (the overall limit held them back).
pub async fn release(pool: &PgPool, ids: &[i64]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox SET lease_until = NULL WHERE id = ANY($1)")
        .bind(ids)
        .execute(pool)
        .await?;
    Ok(())
}

/// What became of one claimed row.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub id: i64,
    pub sent: bool,
    /// Whether the failure counts towards `max_attempts` (a 429 does not).
    pub counts: bool,
    pub error: Option<String>,
    /// Not to be retried before this long from now.
    pub retry_in: Duration,
    /// The Telegram message it became (kept so later rows can edit it).
    pub message_id: Option<i64>,
    /// Telegram upgraded the group to a supergroup with this id: the chat's records and
    /// pending rows move there (`storage::chats::moved`) and the row is sent again.
    pub moved_to: Option<i64>,
    /// The failure was Telegram's or the network's (a 5xx, no answer): it counts towards the
    /// backoff but never makes the row a dead letter.
    pub transient: bool,
}

/// Record outcomes (and end their leases): sent rows get `sent_at` (the time the
/// pacing reads), failed ones their error and next time, or `dead` at `max_attempts`.
/// Returns the rows that became dead letters now.
pub async fn record(
    pool: &PgPool,
    outcomes: &[Outcome],
    max_attempts: i32,
) -> Result<Vec<super::dead::DeadLetter>, sqlx::Error> {
    let ids: Vec<i64> = outcomes.iter().map(|o| o.id).collect();
    let sent: Vec<bool> = outcomes.iter().map(|o| o.sent).collect();
    let counts: Vec<bool> = outcomes.iter().map(|o| o.sent || o.counts).collect();
    let transient: Vec<bool> = outcomes.iter().map(|o| o.transient).collect();
    let errors: Vec<Option<String>> = outcomes.iter().map(|o| o.error.clone()).collect();
    let delays: Vec<f64> = outcomes.iter().map(|o| o.retry_in.as_secs_f64()).collect();
    let messages: Vec<Option<i64>> = outcomes.iter().map(|o| o.message_id).collect();
    let dead: Vec<super::dead::DeadLetter> = sqlx::query_as(
        "WITH done AS (UPDATE outbox o SET
            attempts = o.attempts + CASE WHEN r.counts THEN 1 ELSE 0 END,
            status = CASE WHEN r.sent THEN 'sent'
                          WHEN r.counts AND NOT r.transient AND o.attempts + 1 >= $6
                              THEN 'dead'
                          ELSE 'pending' END,
            sent_at = CASE WHEN r.sent THEN clock_timestamp() ELSE NULL END,
            last_error = CASE WHEN r.sent THEN o.last_error ELSE r.error END,
            lease_until = NULL,
            message_id = COALESCE(r.message_id, o.message_id),
            not_before = CASE WHEN r.sent THEN o.not_before
                              ELSE clock_timestamp() + make_interval(secs => r.delay) END
         FROM UNNEST($1::bigint[], $2::bool[], $3::bool[], $4::text[], $5::float8[],
                     $7::bigint[], $8::bool[])
              AS r(id, sent, counts, error, delay, message_id, transient)
         WHERE o.id = r.id AND o.status <> 'dead'
         RETURNING o.id, o.chat_id, o.source, o.attempts, o.last_error, o.status, o.edit_of,
                   o.message_id),
         -- An edit that had to go out as a new message: later edits target that one.
         retarget AS (
           UPDATE outbox t SET message_id = d.message_id FROM done d
           WHERE d.edit_of = t.id AND d.message_id IS NOT NULL
             AND t.message_id IS DISTINCT FROM d.message_id)
         SELECT id, chat_id, source, attempts, last_error, status FROM done",
    )
    .bind(&ids)
    .bind(sent)
    .bind(counts)
    .bind(errors)
    .bind(delays)
    .bind(max_attempts)
    .bind(&messages)
    .bind(transient)
    .fetch_all(pool)
    .await?
    .into_iter()
    .filter(|(.., status): &(i64, i64, String, i32, Option<String>, String)| status == "dead")
    .map(
        |(id, chat_id, source, attempts, last_error, _)| super::dead::DeadLetter {
            id,
            chat_id,
            source,
            attempts,
            last_error,
        },
    )
    .collect();
    Ok(dead)
}

/// Take up to `wanted` sends from the overall bucket shared by replicas; returns how many
/// were granted. The bucket refills at 90% of `per_second` and holds at most 10% of it (at
/// least one), so no one-second window ever sees more than `per_second` sends.
/// One autocommit statement: the bucket's row is never locked across a send.
pub async fn take_tokens(pool: &PgPool, per_second: u32, wanted: i64) -> Result<i64, sqlx::Error> {
    let rate = f64::from(per_second) * 0.9;
    let cap = (f64::from(per_second) * 0.1).floor().max(1.0);
    sqlx::query_scalar(
        "WITH cur AS (
            SELECT LEAST($2::float8,
                         tokens + EXTRACT(EPOCH FROM now() - updated_at)::float8 * $1::float8)
                   AS avail
            FROM outbox_rate WHERE id = 1 FOR UPDATE)
         UPDATE outbox_rate SET tokens = cur.avail - LEAST(floor(cur.avail), $3::float8),
                                updated_at = now()
         FROM cur WHERE outbox_rate.id = 1
         RETURNING LEAST(floor(cur.avail), $3::float8)::int8",
    )
    .bind(rate)
    .bind(cap)
    .bind(wanted as f64)
    .fetch_one(pool)
    .await
}

/// The outbox as `/status` shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub pending: i64,
    /// Age of the oldest pending row, in seconds.
    pub oldest_pending_secs: Option<f64>,
    pub dead: i64,
}

pub async fn stats(pool: &PgPool) -> Result<Stats, sqlx::Error> {
    let (pending, oldest_pending_secs, dead): (i64, Option<f64>, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM outbox WHERE status = 'pending'),
                (SELECT EXTRACT(EPOCH FROM now() - min(created_at))::float8
                 FROM outbox WHERE status = 'pending'),
                (SELECT count(*) FROM outbox WHERE status = 'dead')",
    )
    .fetch_one(pool)
    .await?;
    Ok(Stats {
        pending,
        oldest_pending_secs,
        dead,
    })
}

/// Delete sent rows older than `days` (dead rows stay for an operator to look at).
pub async fn prune_sent(pool: &PgPool, days: u32) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM outbox WHERE status = 'sent' AND sent_at < now() - make_interval(days => $1)",
    )
    .bind(days as i32)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// The worker's hourly pruning: old sent rows and the direct replies' old slots, logged.
pub async fn prune(pool: &PgPool, keep_sent_days: u32) {
    match prune_sent(pool, keep_sent_days).await {
        Ok(n) if n > 0 => tracing::info!(rows = n, "outbox.pruned"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "outbox.prune_failed"),
    }
    match super::pace::prune(pool).await {
        Ok(n) if n > 0 => tracing::info!(rows = n, "outbox.direct_sends_pruned"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "outbox.direct_sends_prune_failed"),
    }
}
