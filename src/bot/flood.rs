//! The flood check of an incoming update, made before anything is written for it (its
//! de-dup row, audit rows or reply): who sent it and where, read straight from the update
//! (`inbound::Origin`) so that every kind counts, whether or not it would run or could be
//! read.

use super::inbound::Origin;
use crate::domain::{Chat, ChatId, ChatKind, UserId};
use crate::engine::Engine;

/// True when the update may go on; false when a flood limit dropped it (only counted).
pub async fn admit(engine: &Engine, origin: &Origin) -> bool {
    let sender = origin.sender.map(UserId);
    let chat = match (origin.chat, sender) {
        (Some((id, private)), _) => Chat {
            id: ChatId(id),
            kind: if private {
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
