//! Who acts and where: the actor of a request and the chat it came from.

use super::ids::{ChatId, UserId};
use serde::{Deserialize, Serialize};

/// How the request reached opsguard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    Telegram,
    Console,
    Scheduler,
    Cli,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Telegram => "telegram",
            ActorKind::Console => "console",
            ActorKind::Scheduler => "scheduler",
            ActorKind::Cli => "cli",
        }
    }
}

/// The acting party. `user` is the numeric Telegram id the request is attributed to;
/// the scheduler acts under its own role and has no user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    pub user: Option<UserId>,
    /// Display name as reported by the transport; informational only, never trusted.
    pub display: String,
}

impl Actor {
    pub fn telegram(user: UserId, display: impl Into<String>) -> Self {
        Actor {
            kind: ActorKind::Telegram,
            user: Some(user),
            display: display.into(),
        }
    }
    pub fn console(user: UserId) -> Self {
        Actor {
            kind: ActorKind::Console,
            user: Some(user),
            display: format!("console:{user}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChatKind {
    /// A one-to-one chat with the bot (its id equals the user's id).
    Private,
    /// A group, supergroup or channel: allowed only when allow-listed.
    Group,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chat {
    pub id: ChatId,
    pub kind: ChatKind,
}

impl Chat {
    pub fn private(user: UserId) -> Self {
        Chat {
            id: ChatId(user.0),
            kind: ChatKind::Private,
        }
    }
}
