//! Processed Telegram update ids in PostgreSQL: the authority for update de-duplication.

use super::StoreResult;
use sqlx::PgPool;

/// True when this call is the first to see the update id (the authority for de-dup).
pub async fn first_sight(pool: &PgPool, update_id: i64) -> StoreResult<bool> {
    sqlx::query_scalar("SELECT take_update($1)")
        .bind(update_id)
        .fetch_one(pool)
        .await
}

/// Forget ids older than Telegram could ever retry (it gives up after 24 hours).
pub async fn prune(pool: &PgPool) -> StoreResult<u64> {
    let done =
        sqlx::query("DELETE FROM processed_updates WHERE received_at < now() - interval '2 days'")
            .execute(pool)
            .await?;
    Ok(done.rows_affected())
}
