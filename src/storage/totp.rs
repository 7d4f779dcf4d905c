//! TOTP enrolments: the shared secret, confirmation, failure count and lockout per user.

use super::StoreResult;
use crate::domain::UserId;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Enrolment {
    pub secret_b32: String,
    pub confirmed: bool,
    pub failures: i32,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_step: i64,
}

pub async fn get(pool: &PgPool, user: UserId) -> StoreResult<Option<Enrolment>> {
    sqlx::query_as(
        "SELECT secret_b32, confirmed, failures, locked_until, last_step FROM totp_enrolments WHERE telegram_id = $1",
    )
    .bind(user.0)
    .fetch_optional(pool)
    .await
}

/// Start (or restart) an enrolment with a fresh, unconfirmed secret.
pub async fn start(pool: &PgPool, user: UserId, secret_b32: &str) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO totp_enrolments (telegram_id, secret_b32) VALUES ($1, $2)
         ON CONFLICT (telegram_id) DO UPDATE SET secret_b32 = $2, confirmed = false, failures = 0, last_step = 0",
    )
    .bind(user.0)
    .bind(secret_b32)
    .execute(pool)
    .await?;
    Ok(())
}

/// A good code: reset failures, remember its step (a code is never accepted twice), and
/// mark the enrolment confirmed. Conditional, so concurrent attempts cannot slip past a
/// lockout or reuse a step: false when the row was locked or the step already used.
pub async fn accept(pool: &PgPool, user: UserId, step: i64) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE totp_enrolments SET failures = 0, locked_until = NULL, last_step = $2, confirmed = true
         WHERE telegram_id = $1 AND last_step < $2 AND (locked_until IS NULL OR locked_until <= now())",
    )
    .bind(user.0)
    .bind(step)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A wrong code: count it; at `max_failures` lock step-up for `lockout_secs`.
pub async fn reject(
    pool: &PgPool,
    user: UserId,
    max_failures: i32,
    lockout_secs: i64,
) -> StoreResult<Enrolment> {
    sqlx::query_as(
        "UPDATE totp_enrolments SET
            failures = CASE WHEN failures + 1 >= $2 THEN 0 ELSE failures + 1 END,
            locked_until = CASE WHEN failures + 1 >= $2 THEN now() + $3 * interval '1 second' ELSE locked_until END
         WHERE telegram_id = $1
         RETURNING secret_b32, confirmed, failures, locked_until, last_step",
    )
    .bind(user.0)
    .bind(max_failures)
    .bind(lockout_secs as f64)
    .fetch_one(pool)
    .await
}

/// Remove a user's authenticator (a shell action); true when there was one.
pub async fn reset(pool: &PgPool, user: UserId) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM totp_enrolments WHERE telegram_id = $1")
        .bind(user.0)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}
