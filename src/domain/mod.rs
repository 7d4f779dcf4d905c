//! Pure types and rules: ids, actors, commands, permissions, replies, audit entries.
//! Invariant: nothing here imports axum, teloxide, sqlx or redis.

pub mod actor;
pub mod audit;
pub mod auth_batch;
pub mod auth_event;
pub mod command;
pub mod detection;
pub mod finding;
pub mod html;
pub mod ids;
pub mod permission;
pub mod reply;
pub mod rotation;
pub mod secret;
pub mod telegram_text;

pub use actor::{Actor, ActorKind, Chat, ChatKind};
pub use command::{Command, CommandSpec, ParseError};
pub use ids::{ActionId, ChatId, RoleName, UserId};
pub use permission::{Permission, RiskClass};
pub use reply::{Button, Reply, Tracked};
