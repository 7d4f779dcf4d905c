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
