//! The two database roles. The owner runs the migrations and owns every object; the runtime
//! role (`[database] runtime_role`) gets read/write on opsguard's tables but only SELECT on
//! the audit log and its head, and appends through the owner's SECURITY DEFINER functions.
//! A process that finds itself able to do more to the audit log says so, loudly.

use sqlx::PgPool;

/// Grant `role` what the runtime needs (run as the owner, after migrations; idempotent).
pub async fn grant_runtime(pool: &PgPool, role: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT opsguard_grant_runtime($1)")
        .bind(role)
        .execute(pool)
        .await?;
    Ok(())
}

/// What the connected role could do to the audit log beyond appending (empty: nothing).
pub async fn write_powers(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT audit_write_powers()")
        .fetch_one(pool)
        .await
}

/// The warning a single-role set-up gets in `/status`, `/readyz` and the logs.
pub async fn single_role_warning(pool: &PgPool) -> Result<Option<String>, sqlx::Error> {
    let powers = write_powers(pool).await?;
    if powers.is_empty() {
        return Ok(None);
    }
    let role: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(pool)
        .await?;
    Ok(Some(format!(
        "single-role set-up: database role {role} {}, so the audit log is not tamper-evident against it; run opsguard as a separate runtime role ([database] runtime_role)",
        powers.join(", ")
    )))
}
