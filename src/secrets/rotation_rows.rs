//! Rotation rows: one per rotation, recording the step in hand before and after it runs,
//! the attempts, the backoff and the lease of the replica working on it.

use crate::domain::rotation::{RotationStatus, Step};
use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool, Row};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RotationRow {
    pub id: i64,
    pub secret: String,
    pub requested_by: Option<i64>,
    pub via: String,
    pub status: String,
    pub step: String,
    pub step_done: bool,
    pub version: Option<i32>,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl RotationRow {
    pub fn status(&self) -> RotationStatus {
        RotationStatus::parse(&self.status).unwrap_or(RotationStatus::Failed)
    }
    pub fn step(&self) -> Step {
        Step::parse(&self.step).unwrap_or(Step::Create)
    }
}

/// Start a rotation holding its lease, or return the one already in progress.
pub async fn start(
    pool: &PgPool,
    secret: &str,
    requested_by: Option<i64>,
    via: &str,
    lease_secs: i64,
) -> sqlx::Result<Result<RotationRow, RotationRow>> {
    let inserted: Option<RotationRow> = sqlx::query_as(
        "INSERT INTO rotations (secret, requested_by, via, status, step, lease_until)
         VALUES ($1, $2, $3, 'running', 'create', now() + make_interval(secs => $4::double precision))
         ON CONFLICT (secret) WHERE status IN ('running', 'retrying', 'rolling_back') DO NOTHING
         RETURNING id, secret, requested_by, via, status, step, step_done, version, attempts, next_attempt_at, error, started_at, updated_at, finished_at",
    )
    .bind(secret)
    .bind(requested_by)
    .bind(via)
    .bind(lease_secs as f64)
    .fetch_optional(pool)
    .await?;
    if let Some(row) = inserted {
        return Ok(Ok(row));
    }
    match active(pool, secret).await? {
        Some(running) => Ok(Err(running)),
        // It finished between the two statements: try once more.
        None => Box::pin(start(pool, secret, requested_by, via, lease_secs)).await,
    }
}

pub async fn active(pool: &PgPool, secret: &str) -> sqlx::Result<Option<RotationRow>> {
    sqlx::query_as(
        "SELECT id, secret, requested_by, via, status, step, step_done, version, attempts, next_attempt_at, error, started_at, updated_at, finished_at
         FROM rotations WHERE secret = $1 AND status IN ('running', 'retrying', 'rolling_back')",
    )
    .bind(secret)
    .fetch_optional(pool)
    .await
}

pub async fn latest(pool: &PgPool, secret: &str) -> sqlx::Result<Option<RotationRow>> {
    sqlx::query_as(
        "SELECT id, secret, requested_by, via, status, step, step_done, version, attempts, next_attempt_at, error, started_at, updated_at, finished_at
         FROM rotations WHERE secret = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(secret)
    .fetch_optional(pool)
    .await
}

/// Take one rotation that is due (a retry whose backoff is over, or one whose replica's
/// lease ran out) and hold its lease.
/// Claim the next due rotation; `true` with it when it was interrupted (running, its
/// holder's lease ran out: the replica working on it stopped), not waiting out a backoff.
pub async fn claim_due(
    pool: &PgPool,
    lease_secs: i64,
) -> sqlx::Result<Option<(RotationRow, bool)>> {
    let row = sqlx::query(
        "WITH due AS (
             SELECT id, status = 'running' AND lease_until IS NOT NULL AS interrupted
             FROM rotations
             WHERE status IN ('running', 'retrying', 'rolling_back') AND next_attempt_at <= now()
               AND (lease_until IS NULL OR lease_until < now())
             ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
         UPDATE rotations r SET lease_until = now() + make_interval(secs => $1::double precision),
                status = CASE r.status WHEN 'rolling_back' THEN 'rolling_back' ELSE 'running' END,
                updated_at = now()
         FROM due WHERE r.id = due.id
         RETURNING r.id, r.secret, r.requested_by, r.via, r.status, r.step, r.step_done, r.version,
                   r.attempts, r.next_attempt_at, r.error, r.started_at, r.updated_at,
                   r.finished_at, due.interrupted",
    )
    .bind(lease_secs as f64)
    .fetch_optional(pool)
    .await?;
    row.map(|row| Ok((RotationRow::from_row(&row)?, row.try_get("interrupted")?)))
        .transpose()
}

/// Record a step before (`done = false`) or after (`done = true`) it runs, renewing the lease.
pub async fn record(
    pool: &PgPool,
    id: i64,
    step: Step,
    done: bool,
    version: Option<i32>,
    lease_secs: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE rotations SET step = $2, step_done = $3, version = COALESCE($4, version),
                lease_until = now() + make_interval(secs => $5::double precision), updated_at = now()
         WHERE id = $1 AND status = 'running'",
    )
    .bind(id)
    .bind(step.as_str())
    .bind(done)
    .bind(version)
    .bind(lease_secs as f64)
    .execute(pool)
    .await?;
    Ok(())
}

/// A step failed and will be tried again at `next_at`.
pub async fn retry_later(
    pool: &PgPool,
    id: i64,
    error: &str,
    next_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE rotations SET status = CASE status WHEN 'rolling_back' THEN 'rolling_back' ELSE 'retrying' END,
                attempts = attempts + 1, error = $2,
                next_attempt_at = $3, lease_until = NULL, updated_at = now()
         WHERE id = $1 AND status IN ('running', 'rolling_back')",
    )
    .bind(id)
    .bind(error)
    .bind(next_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// The rotation ended without promoting anything.
pub async fn close(
    pool: &PgPool,
    id: i64,
    status: RotationStatus,
    error: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE rotations SET status = $2, error = $3, attempts = attempts + 1,
                lease_until = NULL, updated_at = now(), finished_at = now()
         WHERE id = $1 AND status IN ('running', 'retrying', 'rolling_back')",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// Mark a rotation as giving up (before anything is undone), holding its lease.
pub async fn start_rollback(pool: &PgPool, id: i64, error: &str) -> sqlx::Result<bool> {
    let updated = sqlx::query(
        "UPDATE rotations SET status = 'rolling_back', error = $2, updated_at = now()
         WHERE id = $1 AND status IN ('running', 'rolling_back')",
    )
    .bind(id)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Nothing failed: the rotation waits until `until` (its step is run again then).
pub async fn wait_until(pool: &PgPool, id: i64, until: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE rotations SET status = 'retrying', next_attempt_at = $2, lease_until = NULL,
                error = NULL, updated_at = now()
         WHERE id = $1 AND status = 'running'",
    )
    .bind(id)
    .bind(until)
    .execute(pool)
    .await?;
    Ok(())
}
