//! The per-user command menu (`setMyCommands` scoped to each user's private chat): each
//! user sees only what their roles allow; strangers see nothing.

use super::Telegram;
use crate::domain::UserId;
use crate::engine::EngineEvent;
use teloxide::payloads::{DeleteMyCommandsSetters, SetMyCommandsSetters};
use teloxide::requests::{Request, Requester};
use teloxide::types::{BotCommand, BotCommandScope, ChatId, Recipient};
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
        tg.bot
            .delete_my_commands()
            .scope(scope)
            .send()
            .await
            .map(|_| ())
    } else {
        tg.bot
            .set_my_commands(commands)
            .scope(scope)
            .send()
            .await
            .map(|_| ())
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, user.id = %user, "menu.update_failed");
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
