//! Allow-listed group chats. Private chats need no entry; being in an allowed group grants
//! nothing by itself (the user must still be known and hold the permission).

use super::StoreResult;
use crate::domain::ChatId;
use sqlx::PgPool;

pub async fn is_allowed(pool: &PgPool, chat: ChatId) -> StoreResult<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM allowed_chats WHERE chat_id = $1)")
        .bind(chat.0)
        .fetch_one(pool)
        .await
}

pub async fn allow(pool: &PgPool, chat: ChatId, title: &str) -> StoreResult<()> {
    sqlx::query("INSERT INTO allowed_chats (chat_id, title) VALUES ($1, $2) ON CONFLICT (chat_id) DO UPDATE SET title = EXCLUDED.title")
        .bind(chat.0)
        .bind(title)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn disallow(pool: &PgPool, chat: ChatId) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM allowed_chats WHERE chat_id = $1")
        .bind(chat.0)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn list(pool: &PgPool) -> StoreResult<Vec<(i64, String)>> {
    sqlx::query_as("SELECT chat_id, title FROM allowed_chats ORDER BY chat_id")
        .fetch_all(pool)
        .await
}

/// Telegram upgraded group `old` to supergroup `new`: its allow-list entry, the pending
/// outbox rows and open pending actions bound to it move to the new id, and `chat_moves`
/// sends what is queued for the old id later to the new one. One transaction; returns
/// how many outbox rows moved.
pub async fn moved(pool: &PgPool, old: i64, new: i64) -> StoreResult<u64> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO chat_moves (old_id, new_id) VALUES ($1, $2)
         ON CONFLICT (old_id) DO UPDATE SET new_id = EXCLUDED.new_id, moved_at = now()",
    )
    .bind(old)
    .bind(new)
    .execute(&mut *tx)
    .await?;
    // A chain of moves ends at the newest id.
    sqlx::query("UPDATE chat_moves SET new_id = $2 WHERE new_id = $1")
        .bind(old)
        .bind(new)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO allowed_chats (chat_id, title, added_at)
         SELECT $2, title, added_at FROM allowed_chats WHERE chat_id = $1
         ON CONFLICT (chat_id) DO NOTHING",
    )
    .bind(old)
    .bind(new)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM allowed_chats WHERE chat_id = $1")
        .bind(old)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE pending_actions SET chat_id = $2 WHERE chat_id = $1 AND status = 'pending'",
    )
    .bind(old)
    .bind(new)
    .execute(&mut *tx)
    .await?;
    let rows =
        sqlx::query("UPDATE outbox SET chat_id = $2 WHERE chat_id = $1 AND status = 'pending'")
            .bind(old)
            .bind(new)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    tx.commit().await?;
    Ok(rows)
}
