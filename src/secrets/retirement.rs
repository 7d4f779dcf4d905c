//! The queries of retirements: a previous version whose grace period is over is taken off
//! the target, then the sessions opened with it are ended. A failure is kept on the version
//! (attempts, error, next try) so the worker retries it with backoff, not on every tick; a
//! credential already off the target is `revoked` while its sessions wait for the retry.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};

/// Where a previous or retired version's retirement stands (what `/secrets` shows).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RetireState {
    pub version: i32,
    pub state: String,
    pub fingerprint: String,
    pub retire_after: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub retire_attempts: i32,
    pub retire_error: Option<String>,
    pub retire_next_at: Option<DateTime<Utc>>,
    pub sessions_before: Option<DateTime<Utc>>,
    pub sessions_ended_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "version, state, fingerprint, retire_after, revoked_at, retire_attempts, \
     retire_error, retire_next_at, sessions_before, sessions_ended_at";

/// The previous versions of a secret and those retired after being current, newest first
/// (versions a rotation rolled back were never current and are left out).
pub async fn states(pool: &PgPool, secret: &str) -> sqlx::Result<Vec<RetireState>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM secret_versions
         WHERE secret = $1 AND (state = 'previous' OR (state = 'revoked' AND promoted_at IS NOT NULL))
         ORDER BY version DESC LIMIT 5"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(secret)
        .fetch_all(pool)
        .await
}

/// Lock a previous version for its retirement (in `tx`): its failed attempts so far, or
/// `None` if it is no longer previous (another replica or a rotation retired it first).
pub async fn lock_previous(
    tx: &mut sqlx::PgConnection,
    secret: &str,
    version: i32,
) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar(
        "SELECT retire_attempts FROM secret_versions
         WHERE secret = $1 AND version = $2 AND state = 'previous' FOR UPDATE",
    )
    .bind(secret)
    .bind(version)
    .fetch_optional(tx)
    .await
}

/// Lock a revoked version whose sessions are still to be ended: its attempts and the time
/// sessions to end started before; `None` if done or held by another replica.
pub async fn lock_sessions(
    tx: &mut sqlx::PgConnection,
    secret: &str,
    version: i32,
) -> sqlx::Result<Option<(i32, DateTime<Utc>)>> {
    sqlx::query_as(
        "SELECT retire_attempts, sessions_before FROM secret_versions
         WHERE secret = $1 AND version = $2 AND state = 'revoked'
           AND sessions_before IS NOT NULL AND sessions_ended_at IS NULL
         FOR UPDATE SKIP LOCKED",
    )
    .bind(secret)
    .bind(version)
    .fetch_optional(tx)
    .await
}

/// Revoked versions whose sessions are still to be ended and whose backoff is over.
pub async fn sessions_due(pool: &PgPool) -> sqlx::Result<Vec<(String, i32)>> {
    sqlx::query_as(
        "SELECT secret, version FROM secret_versions
         WHERE state = 'revoked' AND sessions_before IS NOT NULL AND sessions_ended_at IS NULL
           AND retire_next_at <= now()
         ORDER BY retire_next_at LIMIT 50",
    )
    .fetch_all(pool)
    .await
}

/// Retired: off the target (and its sessions ended, if the kind has any).
pub async fn retired(
    db: impl PgExecutor<'_>,
    secret: &str,
    version: i32,
    sessions: bool,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE secret_versions SET state = 'revoked', revoked_at = COALESCE(revoked_at, now()),
                retire_after = NULL, retire_error = NULL, retire_next_at = NULL,
                sessions_ended_at = CASE WHEN $3 THEN now() END
         WHERE secret = $1 AND version = $2",
    )
    .bind(secret)
    .bind(version)
    .bind(sessions)
    .execute(db)
    .await?;
    Ok(())
}

/// A retirement attempt failed: record it, retry at `next_at`. With `sessions_before`, the
/// credential is off the target (the version is revoked) and only its sessions are left.
/// Returns the number of failed attempts.
pub async fn failed(
    db: impl PgExecutor<'_>,
    secret: &str,
    version: i32,
    error: &str,
    next_at: DateTime<Utc>,
    sessions_before: Option<DateTime<Utc>>,
) -> sqlx::Result<i32> {
    sqlx::query_scalar(
        "UPDATE secret_versions SET retire_attempts = retire_attempts + 1, retire_error = $3,
                retire_next_at = $4,
                state = CASE WHEN $5::timestamptz IS NULL THEN state ELSE 'revoked' END,
                revoked_at = CASE WHEN $5::timestamptz IS NULL THEN revoked_at
                                  ELSE COALESCE(revoked_at, now()) END,
                retire_after = CASE WHEN $5::timestamptz IS NULL THEN retire_after END,
                sessions_before = COALESCE($5, sessions_before)
         WHERE secret = $1 AND version = $2 RETURNING retire_attempts",
    )
    .bind(secret)
    .bind(version)
    .bind(error)
    .bind(next_at)
    .bind(sessions_before)
    .fetch_one(db)
    .await
}

/// The previous version of a secret whose grace period is still running: (version, until).
pub async fn in_grace(pool: &PgPool, secret: &str) -> sqlx::Result<Option<(i32, DateTime<Utc>)>> {
    sqlx::query_as(
        "SELECT version, retire_after FROM secret_versions
         WHERE secret = $1 AND state = 'previous' AND retire_after > now()
         ORDER BY retire_after DESC LIMIT 1",
    )
    .bind(secret)
    .fetch_optional(pool)
    .await
}
