//! The outbox's SQL: lease due rows (one head row per chat, paced, `FOR UPDATE SKIP LOCKED`),
//! record each row's result as its send finishes, the shared overall token bucket, the
//! figures `/status` shows and the pruning of old sent rows.

use sqlx::PgPool;
use std::time::Duration;

/// A claimed row: leased to this worker until its result is recorded or the lease ends.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub chat_id: i64,
    pub html: String,
    pub buttons: serde_json::Value,
    pub attempts: i32,
    /// For an edit row: the Telegram message id of the row it edits, once that was sent.
    pub edits_message: Option<i64>,
    /// Whether this row edits an earlier one (`edit_of`).
    pub is_edit: bool,
    /// For a deletion row: the Telegram message to delete.
    pub delete_message: Option<i64>,
}

/// Claim up to `limit` due rows, oldest first, leased in the same statement. A row is due
/// when its `not_before` has passed, it is its chat's head — the oldest pending row, passing
/// over edits still waiting for their time unless one of them edits the same message (so a
/// chat's rows go out in order, and while a replica holds a chat's head no other replica
/// can take the next one) — its chat got nothing in the last `per_chat` and, for a group
/// (negative id), fewer than `group_per_minute` in the last minute. Sends are read from
/// committed `sent` rows and the direct replies' slots (`direct_sends`, see `pace`), so the
/// pacing holds across replicas and for replies too.
///
/// # Cost
/// The waiting chats are found by a skip scan of the pending-only index `outbox_chat`
/// (one descent per chat), and each chat's head is the first entry of its range there, so
/// a pass reads one head per waiting chat: never the rows behind a head, nor sent rows.
/// The recent sends are probed by `(chat_id, sent_at)` from `statement_timestamp()` (a
/// bound the index can use; `clock_timestamp()` is volatile, so the probe would walk every
/// sent row the chat ever had, its history, on every pass).
pub async fn claim(
    pool: &PgPool,
    limit: i64,
    per_chat: Duration,
    group_per_minute: i64,
    lease: Duration,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // A lease needs no WAL flush of its own: one lost in a crash leaves its row claimable,
    // as an expired one does, and the send's result (flushed) flushes the lease before it.
    sqlx::query("SET LOCAL synchronous_commit TO off")
        .execute(&mut *tx)
        .await?;
    let mut rows: Vec<Claimed> = sqlx::query_as(
        "WITH RECURSIVE chats(chat_id) AS (
           (SELECT chat_id FROM outbox WHERE status = 'pending' ORDER BY chat_id LIMIT 1)
           UNION ALL
           SELECT (SELECT o.chat_id FROM outbox o
                   WHERE o.status = 'pending' AND o.chat_id > c.chat_id
                   ORDER BY o.chat_id LIMIT 1)
           FROM chats c WHERE c.chat_id IS NOT NULL),
         heads AS (
           SELECT h.id FROM chats c CROSS JOIN LATERAL (
             SELECT o.id, o.chat_id, o.edit_of, o.not_before, o.lease_until FROM outbox o
             WHERE (o.chat_id, o.id) > (c.chat_id, 0) AND o.status = 'pending'
               AND NOT (o.edit_of IS NOT NULL AND o.not_before > clock_timestamp())
             ORDER BY o.chat_id, o.id LIMIT 1) h
           WHERE h.chat_id = c.chat_id AND h.not_before <= clock_timestamp()
             AND (h.lease_until IS NULL OR h.lease_until < clock_timestamp())
             AND (h.edit_of IS NULL OR NOT EXISTS (
                   SELECT 1 FROM outbox e
                   WHERE e.chat_id = h.chat_id AND e.status = 'pending' AND e.id < h.id
                     AND e.edit_of = h.edit_of))
             AND NOT EXISTS (SELECT 1 FROM outbox s
                             WHERE s.chat_id = h.chat_id AND s.status = 'sent'
                               AND s.sent_at > statement_timestamp() - make_interval(secs => $2))
             AND NOT EXISTS (SELECT 1 FROM direct_sends d
                             WHERE d.chat_id = h.chat_id
                               AND d.sent_at > statement_timestamp() - make_interval(secs => $2))
             AND (h.chat_id >= 0 OR
                  (SELECT count(*) FROM outbox g
                   WHERE g.chat_id = h.chat_id AND g.status = 'sent'
                     AND g.sent_at > statement_timestamp() - interval '60 seconds')
                  + (SELECT count(*) FROM direct_sends d
                     WHERE d.chat_id = h.chat_id
                       AND d.sent_at > statement_timestamp() - interval '60 seconds') < $3)
           ORDER BY h.id
           LIMIT $1),
         picked AS (
           SELECT o.id FROM outbox o
           WHERE o.id IN (SELECT id FROM heads) AND o.status = 'pending'
             AND (o.lease_until IS NULL OR o.lease_until < clock_timestamp())
           FOR UPDATE OF o SKIP LOCKED)
         UPDATE outbox o SET lease_until = clock_timestamp() + make_interval(secs => $4)
         FROM picked p WHERE o.id = p.id
         RETURNING o.id, o.chat_id, o.html, o.buttons, o.attempts,
                   (SELECT t.message_id FROM outbox t WHERE t.id = o.edit_of) AS edits_message,
                   o.edit_of IS NOT NULL AS is_edit, o.delete_message",
    )
    .bind(limit)
    .bind(per_chat.as_secs_f64())
    .bind(group_per_minute)
    .bind(lease.as_secs_f64())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.sort_unstable_by_key(|r| r.id);
    Ok(rows)
}

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
