//! Processed Telegram update ids in PostgreSQL: the de-dup of last resort when Redis is down.

use super::StoreResult;
use sqlx::PgPool;

/// True when this call is the first to see the update id.
pub async fn first_sight(pool: &PgPool, update_id: i64) -> StoreResult<bool> {
    let done =
        sqlx::query("INSERT INTO processed_updates (update_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(update_id)
            .execute(pool)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Forget ids older than Telegram could ever retry (it gives up after 24 hours).
pub async fn prune(pool: &PgPool) -> StoreResult<u64> {
    let done =
        sqlx::query("DELETE FROM processed_updates WHERE received_at < now() - interval '2 days'")
            .execute(pool)
            .await?;
    Ok(done.rows_affected())
}
