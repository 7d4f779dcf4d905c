//! The outbox's claim: lease due rows (one head row per chat, paced, `FOR UPDATE SKIP
//! LOCKED`), its probes starting at the worker's per-chat bounds (`heads`) or, in a full
//! pass, at every chat's beginning.

use super::heads::{Probe, Seen};
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

/// A claimed row with what the pass saw (the same on every row).
#[derive(sqlx::FromRow)]
struct Row {
    #[sqlx(flatten)]
    claimed: Claimed,
    seen_chats: Vec<i64>,
    seen_firsts: Vec<Option<i64>>,
}

/// Claim up to `limit` due rows, oldest first, leased in the same statement. A row is due
/// when its `not_before` has passed, it is its chat's head — the oldest pending row, passing
/// over edits still waiting for their time unless one of them edits the same message (so a
/// chat's rows go out in order, and while a replica holds a chat's head no other replica
/// can take the next one) — its chat got nothing in the last `per_chat` and, for a group
/// (negative id), fewer than `group_per_minute` in the last minute. Sends are read from
/// committed `sent` rows and the direct replies' slots (`direct_sends`, see `pace`), so the
/// pacing holds across replicas and for replies too. Returns the rows and, when any were
/// claimed, what the pass saw for the next `probe` (`Heads::learn`).
///
/// # Cost
/// The waiting chats are found by a skip scan of the pending-only index `outbox_chat` run
/// backwards (one descent per chat, landing on the chat's newest entries, which are live),
/// and each chat's head is the first entry of its range there from the chat's bound in
/// `probe` (its beginning in a full pass), so a pass reads one head per waiting chat: never
/// the rows behind a head, nor the dead entries of rows sent before the last pass (see
/// `heads`). A chat's last send is one backward probe of `(chat_id, sent_at)` (a
/// correlated `max`: written as `NOT EXISTS (… sent_at > …)`, the plan PostgreSQL caches
/// for the statement turned it into an anti join reading every sent row of every chat, so
/// each pass cost more as the history grew), compared with `statement_timestamp()`.
pub async fn claim(
    pool: &PgPool,
    limit: i64,
    per_chat: Duration,
    group_per_minute: i64,
    lease: Duration,
    probe: &Probe,
) -> Result<(Vec<Claimed>, Option<Seen>), sqlx::Error> {
    let mut tx = pool.begin().await?;
    // A lease needs no WAL flush of its own: one lost in a crash leaves its row claimable,
    // as an expired one does, and the send's result (flushed) flushes the lease before it.
    sqlx::query("SET LOCAL synchronous_commit TO off")
        .execute(&mut *tx)
        .await?;
    let rows: Vec<Row> = sqlx::query_as(
        "WITH RECURSIVE skip(chat_id) AS (
           (SELECT chat_id FROM outbox WHERE status = 'pending' ORDER BY chat_id DESC LIMIT 1)
           UNION ALL
           SELECT (SELECT o.chat_id FROM outbox o
                   WHERE o.status = 'pending' AND o.chat_id < c.chat_id
                   ORDER BY o.chat_id DESC LIMIT 1)
           FROM skip c WHERE c.chat_id IS NOT NULL),
         chats(chat_id, low) AS (
           SELECT s.chat_id, COALESCE(b.low, 0) FROM skip s
           LEFT JOIN UNNEST($6::int8[], $7::int8[]) AS b(chat_id, low)
             ON b.chat_id = s.chat_id AND NOT $5
           WHERE s.chat_id IS NOT NULL),
         firsts AS (
           SELECT c.chat_id, (SELECT o.id FROM outbox o
                              WHERE o.chat_id = c.chat_id AND o.id > c.low
                                AND o.status = 'pending'
                              ORDER BY o.chat_id, o.id LIMIT 1) AS first_id
           FROM chats c),
         heads AS (
           SELECT h.id FROM chats c CROSS JOIN LATERAL (
             SELECT o.id, o.chat_id, o.edit_of, o.not_before, o.lease_until FROM outbox o
             WHERE o.chat_id = c.chat_id AND o.id > c.low AND o.status = 'pending'
               AND NOT (o.edit_of IS NOT NULL AND o.not_before > clock_timestamp())
             ORDER BY o.chat_id, o.id LIMIT 1) h
           WHERE h.not_before <= clock_timestamp()
             AND (h.lease_until IS NULL OR h.lease_until < clock_timestamp())
             AND (h.edit_of IS NULL OR NOT EXISTS (
                   SELECT 1 FROM outbox e
                   WHERE e.chat_id = h.chat_id AND e.status = 'pending' AND e.id < h.id
                     AND e.edit_of = h.edit_of))
             AND COALESCE((SELECT max(s.sent_at) FROM outbox s
                           WHERE s.chat_id = h.chat_id AND s.status = 'sent'), '-infinity')
                 <= statement_timestamp() - make_interval(secs => $2)
             AND COALESCE((SELECT max(d.sent_at) FROM direct_sends d
                           WHERE d.chat_id = h.chat_id), '-infinity')
                 <= statement_timestamp() - make_interval(secs => $2)
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
           FOR UPDATE OF o SKIP LOCKED),
         claimed AS (
           UPDATE outbox o SET lease_until = clock_timestamp() + make_interval(secs => $4)
           FROM picked p WHERE o.id = p.id
           RETURNING o.id, o.chat_id, o.html, o.buttons, o.attempts,
                     (SELECT t.message_id FROM outbox t WHERE t.id = o.edit_of) AS edits_message,
                     o.edit_of IS NOT NULL AS is_edit, o.delete_message)
         SELECT c.*,
                (SELECT array_agg(f.chat_id ORDER BY f.chat_id) FROM firsts f) AS seen_chats,
                (SELECT array_agg(f.first_id ORDER BY f.chat_id) FROM firsts f) AS seen_firsts
         FROM claimed c",
    )
    .bind(limit)
    .bind(per_chat.as_secs_f64())
    .bind(group_per_minute)
    .bind(lease.as_secs_f64())
    .bind(probe.full)
    .bind(&probe.chats)
    .bind(&probe.lows)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let seen = rows.first().map(|r| Seen {
        firsts: r
            .seen_chats
            .iter()
            .copied()
            .zip(r.seen_firsts.iter().copied())
            .filter_map(|(chat, first)| Some((chat, first?)))
            .collect(),
    });
    let mut claimed: Vec<Claimed> = rows.into_iter().map(|r| r.claimed).collect();
    claimed.sort_unstable_by_key(|r| r.id);
    Ok((claimed, seen))
}
