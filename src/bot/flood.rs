//! The flood check of an incoming update, made before anything is written for it (its
//! de-dup row, audit rows or reply): who sent it and where, read straight from the update
//! so that every kind counts, whether or not it would run.

use crate::domain::{Chat, ChatId, ChatKind, UserId};
use crate::engine::Engine;
use teloxide::types::Update;

/// True when the update may go on; false when a flood limit dropped it (only counted).
pub async fn admit(engine: &Engine, update: &Update) -> bool {
    let sender = update
        .from()
        .and_then(|u| i64::try_from(u.id.0).ok())
        .map(UserId);
    let chat = match (update.chat(), sender) {
        (Some(chat), _) => Chat {
            id: ChatId(chat.id.0),
            kind: if chat.is_private() {
                ChatKind::Private
            } else {
                ChatKind::Group
            },
        },
        (None, Some(user)) => Chat::private(user),
        // Neither sender nor chat: nothing opsguard would run or answer.
        (None, None) => return true,
    };
    engine.admit_update(sender, chat).await
}
