//! The per-user command menu (`setMyCommands` scoped to each user's private chat): each
//! user sees only what their roles allow; strangers see nothing. A menu is sent only when
//! it differs from the one last sent for its scope (a digest of it is kept in `menu_sent`),
//! so a restart or a change that affects everyone costs a Bot API call only for the users
//! whose menu changed, each paced by the overall bucket like every other send (`paced`; a
//! menu is no message in the chat, so it takes no slot of the chat's own limits). A menu
//! Telegram refused because the user never opened the bot ("chat not found") is remembered
//! (`menu_pending`) and set when they first write.

use super::Telegram;
use super::paced::{self, Paced};
use crate::domain::UserId;
use crate::engine::EngineEvent;
use sha2::{Digest, Sha256};
use teloxide::payloads::{DeleteMyCommandsSetters, SetMyCommandsSetters};
use teloxide::requests::Requester;
use teloxide::types::{BotCommand, BotCommandScope, ChatId, Recipient};
use teloxide::{ApiError, RequestError};
use tokio_util::sync::CancellationToken;

/// What a menu is remembered by: SHA-256 over its commands (none: the menu deleted).
fn digest(commands: &[BotCommand]) -> Vec<u8> {
    let mut hash = Sha256::new();
    for c in commands {
        for part in [&c.command, &c.description] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
    }
    hash.finalize().to_vec()
}

/// The digest of the menu last sent for a scope, if any.
async fn last_sent(tg: &Telegram, scope: &str, chat: i64) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar("SELECT digest FROM menu_sent WHERE scope = $1 AND chat_id = $2")
        .bind(scope)
        .bind(chat)
        .fetch_optional(tg.engine.pool())
        .await
}

async fn remember_sent(tg: &Telegram, scope: &str, chat: i64, digest: &[u8]) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO menu_sent (scope, chat_id, digest) VALUES ($1, $2, $3)
         ON CONFLICT (scope, chat_id) DO UPDATE SET digest = EXCLUDED.digest, sent_at = now()",
    )
    .bind(scope)
    .bind(chat)
    .bind(digest)
    .execute(tg.engine.pool())
    .await
    .map(|_| ())
}

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
    let digest = digest(&commands);
    match last_sent(tg, "chat", user.0).await {
        Ok(Some(sent)) if sent == digest => {
            metrics::counter!("opsguard_menus_total", "result" => "unchanged").increment(1);
            return;
        }
        Ok(_) => {}
        // Not known: sent again, which is harmless.
        Err(e) => tracing::warn!(error = %e, user.id = %user, "menu.last_sent_unknown"),
    }
    let result = paced::call(tg, user.0, |chat| {
        let scope = BotCommandScope::Chat {
            chat_id: Recipient::Id(ChatId(chat)),
        };
        let commands = commands.clone();
        async move {
            if commands.is_empty() {
                super::api::call(&tg.bot, tg.bot.delete_my_commands().scope(scope)).await
            } else {
                super::api::call(&tg.bot, tg.bot.set_my_commands(commands).scope(scope)).await
            }
        }
    })
    .await;
    let pool = tg.engine.pool();
    let remembered = match result {
        Paced::Sent(_) => {
            metrics::counter!("opsguard_menus_total", "result" => "sent").increment(1);
            let forgotten = sqlx::query("DELETE FROM menu_pending WHERE user_id = $1")
                .bind(user.0)
                .execute(pool)
                .await;
            match forgotten {
                Ok(_) => {
                    tg.menus_pending().removed(user.0);
                    remember_sent(tg, "chat", user.0, &digest).await
                }
                Err(e) => Err(e),
            }
        }
        // Telegram knows no private chat with a user who never opened the bot: their menu
        // is set when they first write (`on_private_message`).
        Paced::Failed(RequestError::Api(ApiError::ChatNotFound)) => {
            tracing::info!(user.id = %user, "menu.deferred_until_first_message");
            sqlx::query(
                "INSERT INTO menu_pending (user_id, error) VALUES ($1, 'chat not found')
                 ON CONFLICT (user_id) DO UPDATE SET failed_at = now()",
            )
            .bind(user.0)
            .execute(pool)
            .await
            .map(|_| tg.menus_pending().added(user.0))
        }
        Paced::Failed(e) => {
            tracing::warn!(error = %e, user.id = %user, "menu.update_failed");
            Ok(())
        }
        Paced::Queue { .. } => Ok(()),
    };
    if let Err(e) = remembered {
        tracing::warn!(error = %e, user.id = %user, "menu.not_recorded");
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
    if !tg.menus_pending().may_hold(tg.engine.pool(), user.0).await {
        return;
    }
    let pending: Result<Option<i64>, _> =
        sqlx::query_scalar("DELETE FROM menu_pending WHERE user_id = $1 RETURNING user_id")
            .bind(user.0)
            .fetch_optional(tg.engine.pool())
            .await;
    match pending {
        Ok(Some(_)) => {
            tg.menus_pending().removed(user.0);
            refresh_user(tg, user).await
        }
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

/// No bot-wide menu (only per-user ones): deleted once, and again only if that was never
/// recorded.
async fn clear_default(tg: &Telegram) {
    let none = digest(&[]);
    if matches!(last_sent(tg, "default", 0).await, Ok(Some(sent)) if sent == none) {
        return;
    }
    match super::api::call(&tg.bot, tg.bot.delete_my_commands()).await {
        Ok(_) => {
            if let Err(e) = remember_sent(tg, "default", 0, &none).await {
                tracing::warn!(error = %e, "menu.not_recorded");
            }
        }
        Err(e) => tracing::warn!(error = %e, "menu.default_not_cleared"),
    }
}

/// At start: no default menu; one menu per active user. Then follow permission changes.
pub fn spawn(tg: Telegram, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut events = tg.engine.subscribe();
        clear_default(&tg).await;
        refresh_all(&tg).await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                event = events.recv() => match event {
                    Ok(EngineEvent::PermissionsChanged(user)) => refresh_user(&tg, user).await,
                    Ok(EngineEvent::AllPermissionsChanged) => refresh_all(&tg).await,
                    // Changes were missed: refresh everyone (only changed menus are sent).
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => refresh_all(&tg).await,
                    Err(_) => return,
                }
            }
        }
    })
}
