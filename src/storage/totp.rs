//! TOTP storage: each user's confirmed authenticator (its sealed secret, the last step used,
//! failures, lockout and how many lockouts in a row) and the enrolment in progress
//! (`totp_pending`: a sealed new secret, when it expires, the message that showed it).
//! Secrets arrive here sealed; only rows from before sealing hold `secret_b32`.

use super::StoreResult;
use crate::domain::UserId;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// A stored secret: sealed, or plaintext left by an older version (sealed at start-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredSecret {
    Sealed { nonce: Vec<u8>, sealed: Vec<u8> },
    Legacy,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Enrolment {
    pub confirmed: bool,
    pub failures: i32,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_step: i64,
    /// Lockouts since the last good code: the next one lasts twice as long.
    pub lockouts: i32,
    /// Shown in the chat by an older version: refused until a shell reset.
    pub exposed: bool,
    secret_nonce: Option<Vec<u8>>,
    secret_sealed: Option<Vec<u8>>,
}

impl Enrolment {
    pub fn secret(&self) -> StoredSecret {
        match (&self.secret_nonce, &self.secret_sealed) {
            (Some(nonce), Some(sealed)) => StoredSecret::Sealed {
                nonce: nonce.clone(),
                sealed: sealed.clone(),
            },
            _ => StoredSecret::Legacy,
        }
    }
}

const COLUMNS: &str =
    "confirmed, failures, locked_until, last_step, lockouts, exposed, secret_nonce, secret_sealed";

pub async fn get(pool: &PgPool, user: UserId) -> StoreResult<Option<Enrolment>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM totp_enrolments WHERE telegram_id = $1"
    )))
    .bind(user.0)
    .fetch_optional(pool)
    .await
}

/// The plaintext secret of a row from before sealing (to seal it), if it still has one.
pub async fn legacy_secret(pool: &PgPool, user: UserId) -> StoreResult<Option<String>> {
    sqlx::query_scalar(
        "SELECT secret_b32 FROM totp_enrolments WHERE telegram_id = $1 AND secret_b32 IS NOT NULL",
    )
    .bind(user.0)
    .fetch_optional(pool)
    .await
}

/// Users whose secret is still plaintext.
pub async fn legacy_users(pool: &PgPool) -> StoreResult<Vec<i64>> {
    sqlx::query_scalar("SELECT telegram_id FROM totp_enrolments WHERE secret_b32 IS NOT NULL")
        .fetch_all(pool)
        .await
}

/// Replace a plaintext secret by its sealed form (only if it is still the same plaintext),
/// marking it exposed (an older version showed it in the chat).
pub async fn seal_legacy(
    pool: &PgPool,
    user: UserId,
    was: &str,
    nonce: &[u8],
    sealed: &[u8],
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE totp_enrolments SET secret_b32 = NULL, secret_nonce = $3, secret_sealed = $4,
             exposed = true
         WHERE telegram_id = $1 AND secret_b32 = $2",
    )
    .bind(user.0)
    .bind(was)
    .bind(nonce)
    .bind(sealed)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Install a confirmed authenticator (the end of an enrolment), replacing any earlier one;
/// `last_step` is the step of the code that confirmed it.
pub async fn set_confirmed<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    user: UserId,
    nonce: &[u8],
    sealed: &[u8],
    last_step: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO totp_enrolments (telegram_id, secret_b32, secret_nonce, secret_sealed, confirmed, last_step)
         VALUES ($1, NULL, $2, $3, true, $4)
         ON CONFLICT (telegram_id) DO UPDATE SET secret_b32 = NULL, secret_nonce = $2,
             secret_sealed = $3, confirmed = true, failures = 0, locked_until = NULL,
             lockouts = 0, exposed = false, last_step = $4",
    )
    .bind(user.0)
    .bind(nonce)
    .bind(sealed)
    .bind(last_step)
    .execute(executor)
    .await?;
    Ok(())
}

/// A good code: reset failures and lockouts, remember its step (a code is never accepted
/// twice). Conditional, so concurrent attempts cannot slip past a lockout or reuse a step:
/// false when the row was locked or the step already used.
pub async fn accept(pool: &PgPool, user: UserId, step: i64) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE totp_enrolments SET failures = 0, locked_until = NULL, lockouts = 0, last_step = $2
         WHERE telegram_id = $1 AND last_step < $2 AND (locked_until IS NULL OR locked_until <= now())",
    )
    .bind(user.0)
    .bind(step)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A user's wrong-code counters, the row locked until the transaction ends (so two wrong
/// codes at once both count): (failures, lockouts), or `None` without an authenticator.
pub async fn counters_for_update(
    conn: &mut sqlx::PgConnection,
    user: UserId,
) -> StoreResult<Option<(i32, i32)>> {
    sqlx::query_as(
        "SELECT failures, lockouts FROM totp_enrolments WHERE telegram_id = $1 FOR UPDATE",
    )
    .bind(user.0)
    .fetch_optional(conn)
    .await
}

/// Store the counters after a wrong code (decided by `engine::totp::policy::Lockout`); with
/// `lock_secs`, step-up is locked for that long from now.
pub async fn record_wrong(
    conn: &mut sqlx::PgConnection,
    user: UserId,
    failures: i32,
    lockouts: i32,
    lock_secs: Option<i64>,
) -> StoreResult<Enrolment> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE totp_enrolments SET failures = $2, lockouts = $3,
            locked_until = CASE WHEN $4::float8 IS NULL THEN locked_until
                ELSE now() + $4::float8 * interval '1 second' END
         WHERE telegram_id = $1
         RETURNING {COLUMNS}"
    )))
    .bind(user.0)
    .bind(failures)
    .bind(lockouts)
    .bind(lock_secs.map(|s| s as f64))
    .fetch_one(conn)
    .await
}

/// An enrolment in progress.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pending {
    pub secret_nonce: Vec<u8>,
    pub secret_sealed: Vec<u8>,
    pub expires_at: DateTime<Utc>,
    pub chat_id: Option<i64>,
    pub message_id: Option<i64>,
}

/// A message that showed an enrolment URI and must be deleted.
pub type ShownAt = (i64, i64);

/// Start an enrolment; returns the message of the one it replaces, if any.
pub async fn start_pending<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    user: UserId,
    nonce: &[u8],
    sealed: &[u8],
    ttl_secs: i64,
) -> StoreResult<Option<ShownAt>> {
    let old: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(
        "WITH old AS (SELECT chat_id, message_id FROM totp_pending WHERE telegram_id = $1 FOR UPDATE),
              new AS (INSERT INTO totp_pending (telegram_id, secret_nonce, secret_sealed, expires_at)
                      VALUES ($1, $2, $3, now() + $4 * interval '1 second')
                      ON CONFLICT (telegram_id) DO UPDATE SET secret_nonce = $2, secret_sealed = $3,
                          expires_at = EXCLUDED.expires_at, chat_id = NULL, message_id = NULL)
         SELECT chat_id, message_id FROM old",
    )
    .bind(user.0)
    .bind(nonce)
    .bind(sealed)
    .bind(ttl_secs as f64)
    .fetch_optional(executor)
    .await?;
    Ok(old.and_then(|(c, m)| c.zip(m)))
}

/// The user's unexpired enrolment in progress.
pub async fn pending(pool: &PgPool, user: UserId) -> StoreResult<Option<Pending>> {
    sqlx::query_as(
        "SELECT secret_nonce, secret_sealed, expires_at, chat_id, message_id FROM totp_pending
         WHERE telegram_id = $1 AND expires_at > now()",
    )
    .bind(user.0)
    .fetch_optional(pool)
    .await
}

/// Remember the message that showed the user's enrolment URI. False when there is no
/// unexpired enrolment waiting for its message (confirmed, replaced or swept meanwhile):
/// then the caller deletes the message at once.
pub async fn record_message(
    pool: &PgPool,
    user: UserId,
    chat_id: i64,
    message_id: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE totp_pending SET chat_id = $2, message_id = $3
         WHERE telegram_id = $1 AND message_id IS NULL AND expires_at > now()",
    )
    .bind(user.0)
    .bind(chat_id)
    .bind(message_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Take the user's unexpired enrolment in progress (it is being confirmed).
pub async fn take_pending<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    user: UserId,
    nonce: &[u8],
) -> StoreResult<Option<Pending>> {
    sqlx::query_as(
        "DELETE FROM totp_pending WHERE telegram_id = $1 AND secret_nonce = $2 AND expires_at > now()
         RETURNING secret_nonce, secret_sealed, expires_at, chat_id, message_id",
    )
    .bind(user.0)
    .bind(nonce)
    .fetch_optional(executor)
    .await
}

/// Remove expired enrolments; returns the messages that showed them.
pub async fn take_expired<'e>(executor: impl sqlx::PgExecutor<'e>) -> StoreResult<Vec<ShownAt>> {
    let rows: Vec<(Option<i64>, Option<i64>)> = sqlx::query_as(
        "DELETE FROM totp_pending WHERE expires_at <= now() RETURNING chat_id, message_id",
    )
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().filter_map(|(c, m)| c.zip(m)).collect())
}

/// Remove a user's authenticator and any enrolment in progress (a shell action). Returns
/// whether there was an authenticator, and the message of the enrolment, if any.
pub async fn reset(
    conn: &mut sqlx::PgConnection,
    user: UserId,
) -> StoreResult<(bool, Option<ShownAt>)> {
    let had = sqlx::query("DELETE FROM totp_enrolments WHERE telegram_id = $1")
        .bind(user.0)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        == 1;
    let shown: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(
        "DELETE FROM totp_pending WHERE telegram_id = $1 RETURNING chat_id, message_id",
    )
    .bind(user.0)
    .fetch_optional(&mut *conn)
    .await?;
    Ok((had, shown.and_then(|(c, m)| c.zip(m))))
}

/// Active users who may manage users (admins): told of every lockout.
pub async fn admins(pool: &PgPool) -> StoreResult<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT DISTINCT u.telegram_id FROM users u
         JOIN user_roles ur USING (telegram_id)
         JOIN role_permissions rp ON rp.role = ur.role
         WHERE u.active AND rp.permission = 'users.manage' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
}
