//! The vault's queries on versions: sealed values and their states. Values arrive here
//! sealed; nothing in this file sees a plaintext. Rotations are in `rotation_rows`.

use crate::domain::rotation::VersionState;
use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VersionRow {
    pub secret: String,
    pub version: i32,
    pub state: String,
    pub nonce: Vec<u8>,
    pub sealed: Vec<u8>,
    pub public: serde_json::Value,
    pub fingerprint: String,
    pub created_at: DateTime<Utc>,
    pub promoted_at: Option<DateTime<Utc>>,
    pub retire_after: Option<DateTime<Utc>>,
}

impl VersionRow {
    pub fn state(&self) -> Option<VersionState> {
        VersionState::parse(&self.state)
    }
}

/// The versions of a secret in `states`, newest first.
pub async fn versions(
    db: impl PgExecutor<'_>,
    secret: &str,
    states: &[&str],
) -> sqlx::Result<Vec<VersionRow>> {
    let states: Vec<String> = states.iter().map(|s| s.to_string()).collect();
    sqlx::query_as(
        "SELECT secret, version, state, nonce, sealed, public, fingerprint, created_at, promoted_at, retire_after
         FROM secret_versions WHERE secret = $1 AND state = ANY($2) ORDER BY version DESC",
    )
    .bind(secret)
    .bind(states)
    .fetch_all(db)
    .await
}

pub async fn version(
    db: impl PgExecutor<'_>,
    secret: &str,
    version: i32,
) -> sqlx::Result<Option<VersionRow>> {
    sqlx::query_as(
        "SELECT secret, version, state, nonce, sealed, public, fingerprint, created_at, promoted_at, retire_after
         FROM secret_versions WHERE secret = $1 AND version = $2",
    )
    .bind(secret)
    .bind(version)
    .fetch_optional(db)
    .await
}

/// The next version number of a secret.
pub async fn next_version(db: impl PgExecutor<'_>, secret: &str) -> sqlx::Result<i32> {
    sqlx::query_scalar(
        "SELECT COALESCE(max(version), 0) + 1 FROM secret_versions WHERE secret = $1",
    )
    .bind(secret)
    .fetch_one(db)
    .await
}

pub struct NewVersion<'a> {
    pub secret: &'a str,
    pub version: i32,
    pub state: VersionState,
    pub nonce: &'a [u8],
    pub sealed: &'a [u8],
    pub public: &'a serde_json::Value,
    pub fingerprint: &'a str,
}

pub async fn insert_version(db: impl PgExecutor<'_>, v: NewVersion<'_>) -> sqlx::Result<()> {
    let promoted = v.state == VersionState::Current;
    sqlx::query(
        "INSERT INTO secret_versions (secret, version, state, nonce, sealed, public, fingerprint, promoted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $8 THEN now() END)",
    )
    .bind(v.secret)
    .bind(v.version)
    .bind(v.state.as_str())
    .bind(v.nonce)
    .bind(v.sealed)
    .bind(v.public)
    .bind(v.fingerprint)
    .bind(promoted)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn revoke_version(
    db: impl PgExecutor<'_>,
    secret: &str,
    version: i32,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE secret_versions SET state = 'revoked', revoked_at = now(), retire_after = NULL
         WHERE secret = $1 AND version = $2 AND state <> 'revoked'",
    )
    .bind(secret)
    .bind(version)
    .execute(db)
    .await?;
    Ok(())
}

/// Promote `version` (pending) to current; the current one becomes previous until
/// `now + grace`. In one transaction with the rotation's success; `false` (nothing changed)
/// if the version is no longer pending or the rotation no longer running.
pub async fn promote(
    pool: &PgPool,
    rotation: i64,
    secret: &str,
    version: i32,
    grace_secs: i64,
) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE secret_versions SET state = 'previous',
                retire_after = now() + make_interval(secs => $2::double precision)
         WHERE secret = $1 AND state = 'current'",
    )
    .bind(secret)
    .bind(grace_secs as f64)
    .execute(&mut *tx)
    .await?;
    let promoted = sqlx::query(
        "UPDATE secret_versions SET state = 'current', promoted_at = now()
         WHERE secret = $1 AND version = $2 AND state = 'pending'",
    )
    .bind(secret)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    let closed = sqlx::query(
        "UPDATE rotations SET status = 'succeeded', step = 'finish', step_done = true,
                error = NULL, lease_until = NULL, updated_at = now(), finished_at = now()
         WHERE id = $1 AND status = 'running'",
    )
    .bind(rotation)
    .execute(&mut *tx)
    .await?;
    // Another replica finished or abandoned it meanwhile: change nothing.
    if promoted.rows_affected() != 1 || closed.rows_affected() != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// Lock a secret's previous version `version` for retirement (in `tx`); `false` if it is
/// no longer previous (another replica or a rotation retired it first).
pub async fn lock_previous(
    tx: &mut sqlx::PgConnection,
    secret: &str,
    version: i32,
) -> sqlx::Result<bool> {
    let locked: Option<i32> = sqlx::query_scalar(
        "SELECT version FROM secret_versions
         WHERE secret = $1 AND version = $2 AND state = 'previous' FOR UPDATE",
    )
    .bind(secret)
    .bind(version)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(locked.is_some())
}

/// Previous versions whose grace period is over and whose retirement is not waiting out a
/// backoff, oldest first (not of a secret with a rotation in progress: it retires what it
/// must itself).
pub async fn due_for_retirement(pool: &PgPool) -> sqlx::Result<Vec<(String, i32)>> {
    sqlx::query_as(
        "SELECT v.secret, v.version FROM secret_versions v
         WHERE v.state = 'previous' AND v.retire_after <= now()
           AND (v.retire_next_at IS NULL OR v.retire_next_at <= now())
           AND NOT EXISTS (SELECT 1 FROM rotations r WHERE r.secret = v.secret
                           AND r.status IN ('running', 'retrying', 'rolling_back'))
         ORDER BY v.retire_after LIMIT 50",
    )
    .fetch_all(pool)
    .await
}
