//! The per-user command menu (`setMyCommands` scoped to each user's private chat): each
//! user sees only what their roles allow; strangers see nothing. A menu Telegram refused
//! because the user never opened the bot ("chat not found") is remembered (`menu_pending`)
//! and set when they first write.

use super::Telegram;
use crate::domain::UserId;
use crate::engine::EngineEvent;
use teloxide::payloads::{DeleteMyCommandsSetters, SetMyCommandsSetters};
use teloxide::requests::{Request, Requester};
use teloxide::types::{BotCommand, BotCommandScope, ChatId, Recipient};
use teloxide::{ApiError, RequestError};
use tokio_util::sync::CancellationToken;

pub async fn refresh_user(tg: &Telegram, user: UserId) {
    let specs = match tg.engine.allowed_commands(user).await {
        Ok(specs) => specs,
        Err(e) => {
            tracing::warn!(error = %e, user.id = %user, "menu.lookup_failed");
            return;
        }
    };
    let commands: Vec<BotCommand> = specs
        .iter()
        .map(|s| BotCommand::new(s.name, s.summary))
        .collect();
    let scope = BotCommandScope::Chat {
        chat_id: Recipient::Id(ChatId(user.0)),
    };
    let result = if commands.is_empty() {
        super::api::call(&tg.bot, tg.bot.delete_my_commands().scope(scope))
            .await
            .map(|_| ())
    } else {
        super::api::call(&tg.bot, tg.bot.set_my_commands(commands).scope(scope))
            .await
            .map(|_| ())
    };
    let pool = tg.engine.pool();
    let remembered = match result {
        Ok(()) => sqlx::query("DELETE FROM menu_pending WHERE user_id = $1")
            .bind(user.0)
            .execute(pool)
            .await
            .map(|_| ()),
        // Telegram knows no private chat with a user who never opened the bot: their menu
        // is set when they first write (`on_private_message`).
        Err(RequestError::Api(ApiError::ChatNotFound)) => {
            tracing::info!(user.id = %user, "menu.deferred_until_first_message");
            sqlx::query(
                "INSERT INTO menu_pending (user_id, error) VALUES ($1, 'chat not found')
                 ON CONFLICT (user_id) DO UPDATE SET failed_at = now()",
            )
            .bind(user.0)
            .execute(pool)
            .await
            .map(|_| ())
        }
        Err(e) => {
            tracing::warn!(error = %e, user.id = %user, "menu.update_failed");
            Ok(())
        }
    };
    if let Err(e) = remembered {
        tracing::warn!(error = %e, user.id = %user, "menu.pending_not_recorded");
    }
}

/// A user wrote to the bot in their private chat: if Telegram refused their menu before
/// (the chat did not exist yet), set it now. One indexed statement that writes nothing
/// for everyone else.
pub async fn on_private_message(tg: &Telegram, user: UserId) {
    if tg.engine.db_latch().is_down() {
        // Known down (`storage::latch`): looked up at the user's next message.
        return;
    }
    let pending: Result<Option<i64>, _> =
        sqlx::query_scalar("DELETE FROM menu_pending WHERE user_id = $1 RETURNING user_id")
            .bind(user.0)
            .fetch_optional(tg.engine.pool())
            .await;
    match pending {
        Ok(Some(_)) => refresh_user(tg, user).await,
        Ok(None) => {}
        Err(e) => {
            tg.engine.db_latch().observe(&e);
            tracing::warn!(error = %e, user.id = %user, "menu.pending_lookup_failed");
        }
    }
}

async fn refresh_all(tg: &Telegram) {
    match crate::storage::users::list(tg.engine.pool()).await {
        Ok(all) => {
            for p in all {
                refresh_user(tg, p.user.id).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "menu.list_failed"),
    }
}

/// At start: no default menu; one menu per active user. Then follow permission changes.
pub fn spawn(tg: Telegram, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut events = tg.engine.subscribe();
        let _ = tg.bot.delete_my_commands().send().await;
        refresh_all(&tg).await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                event = events.recv() => match event {
                    Ok(EngineEvent::PermissionsChanged(user)) => refresh_user(&tg, user).await,
                    Ok(EngineEvent::AllPermissionsChanged) => refresh_all(&tg).await,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                }
            }
        }
    })
}
