//! The durable update inbox (`update_inbox`): an update is stored with its de-dup row before
//! it is acknowledged, processed under a renewable lease, taken up by any replica when the
//! lease runs out, and marked done when its processing finished.

use super::StoreResult;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

/// Store an update with its de-dup row, in one synchronously committed write. `true` when
/// this call is the first to see the update id (it then holds the lease).
pub async fn take(
    pool: &PgPool,
    update_id: i64,
    request_id: Uuid,
    incoming: &serde_json::Value,
    lease: Duration,
) -> StoreResult<bool> {
    sqlx::query_scalar("SELECT take_update_durably($1, $2, $3, $4)")
        .bind(update_id)
        .bind(request_id)
        .bind(incoming)
        .bind(lease.as_millis() as i64)
        .fetch_one(pool)
        .await
}

/// One update of a batch to store (`take_batch`).
#[derive(Debug, Clone)]
pub struct NewUpdate {
    pub update_id: i64,
    pub request_id: Uuid,
    pub incoming: serde_json::Value,
    /// No room to run it here now: stored waiting (`takes = 0`, lease already run out) for
    /// the inbox taker of any replica.
    pub waiting: bool,
}

/// Store a batch of updates with their de-dup rows, in one synchronously committed write
/// (one WAL flush for the batch). Returns the ids this call was the first to see; the
/// caller must not pass an id twice.
pub async fn take_batch(
    pool: &PgPool,
    batch: &[NewUpdate],
    lease: Duration,
) -> StoreResult<Vec<i64>> {
    let ids: Vec<i64> = batch.iter().map(|u| u.update_id).collect();
    let requests: Vec<Uuid> = batch.iter().map(|u| u.request_id).collect();
    let incoming: Vec<serde_json::Value> = batch.iter().map(|u| u.incoming.clone()).collect();
    let waiting: Vec<bool> = batch.iter().map(|u| u.waiting).collect();
    sqlx::query_scalar("SELECT take_updates_durably($1, $2, $3, $4, $5)")
        .bind(&ids)
        .bind(&requests)
        .bind(&incoming)
        .bind(&waiting)
        .bind(lease.as_millis() as i64)
        .fetch_all(pool)
        .await
}

/// Mark a batch of stored updates done (`(update_id, takes)`: each only if that lease
/// generation still holds it), committed without waiting for its WAL flush: if a crash
/// loses it, the updates are taken up again and found finished (audited), and their users
/// told the reply may not have gone out — the promise holds, and the reply's path saves a
/// flush. Returns the ids marked.
pub async fn finish_batch(pool: &PgPool, done: &[(i64, i32)]) -> StoreResult<Vec<i64>> {
    let ids: Vec<i64> = done.iter().map(|d| d.0).collect();
    let takes: Vec<i32> = done.iter().map(|d| d.1).collect();
    sqlx::query_scalar("SELECT finish_updates_lazily($1, $2)")
        .bind(&ids)
        .bind(&takes)
        .fetch_all(pool)
        .await
}

/// A stored update some replica took: `takes` is the generation of its lease.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Taken {
    pub update_id: i64,
    pub request_id: Uuid,
    pub incoming: serde_json::Value,
    pub takes: i32,
}

/// Take up to `limit` stored updates whose lease ran out, leasing them anew.
pub async fn take_expired(pool: &PgPool, lease: Duration, limit: i64) -> StoreResult<Vec<Taken>> {
    sqlx::query_as(
        "UPDATE update_inbox u SET lease_until = now() + $1 * interval '1 millisecond',
             takes = u.takes + 1
         FROM (SELECT update_id FROM update_inbox
               WHERE done_at IS NULL AND lease_until < now()
               ORDER BY lease_until LIMIT $2 FOR UPDATE SKIP LOCKED) due
         WHERE u.update_id = due.update_id
         RETURNING u.update_id, u.request_id, u.incoming, u.takes",
    )
    .bind(lease.as_millis() as i64)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Extend the lease of a stored update this replica holds (generation `takes`); `false`
/// when it is no longer ours (taken over, or done).
pub async fn renew(
    pool: &PgPool,
    update_id: i64,
    takes: i32,
    lease: Duration,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE update_inbox SET lease_until = now() + $3 * interval '1 millisecond'
         WHERE update_id = $1 AND takes = $2 AND done_at IS NULL",
    )
    .bind(update_id)
    .bind(takes)
    .bind(lease.as_millis() as i64)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Mark a stored update done (its processing finished), if this replica still holds it.
/// `executor` is a pool, or a transaction when a notice must commit with it.
pub async fn finish<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    update_id: i64,
    takes: i32,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE update_inbox SET done_at = now()
         WHERE update_id = $1 AND takes = $2 AND done_at IS NULL",
    )
    .bind(update_id)
    .bind(takes)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Forget the stored updates whose processing finished more than `keep` ago.
pub async fn prune_done(pool: &PgPool, keep: Duration) -> StoreResult<u64> {
    let done = sqlx::query(
        "DELETE FROM update_inbox
         WHERE done_at IS NOT NULL AND done_at < now() - $1 * interval '1 millisecond'",
    )
    .bind(keep.as_millis() as i64)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Stored updates not yet done (for `/status`, metrics and tests).
pub async fn open_count(pool: &PgPool) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT count(*) FROM update_inbox WHERE done_at IS NULL")
        .fetch_one(pool)
        .await
}
