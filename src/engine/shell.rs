//! Shell subcommands (`opsguard user add`, `chat allow`, …) are run by whoever holds the
//! database credentials, so they need no Telegram permission — but they are audited like
//! any command: attempt before, outcome after, and nothing runs if the attempt can't be written.

pub mod chats;
pub mod outbox;

use super::trail::{Trail, Verdict};
use super::{Input, Request};
use crate::config::Settings;
use crate::domain::{Actor, ActorKind, Chat, ChatId, ChatKind};
use sqlx::PgPool;
use std::future::Future;

/// The attempt row could not be written, so the action was not run.
#[derive(Debug, thiserror::Error)]
#[error("the audit log cannot be written, so nothing was done: {0}")]
pub struct AuditUnavailable(pub String);

pub async fn audited<T>(
    settings: &Settings,
    pool: &PgPool,
    command: &str,
    args: &str,
    action: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let actor = Actor {
        kind: ActorKind::Cli,
        user: None,
        display: "shell".into(),
    };
    let request = Request::new(
        actor,
        Chat {
            id: ChatId(0),
            kind: ChatKind::Private,
        },
        Input::Text(String::new()),
    );
    let trail = Trail::new(&request, command, args);
    let keys = crate::audit::AuditKeys::from_master(settings.master_key.as_ref())?;
    let chain_key = keys.map(|k| k.chain().clone());
    let audit = crate::storage::audit_writer::AuditWriter::spawn(pool.clone(), chain_key);
    let verdict = Verdict {
        decision: "allowed",
        reason: Some("shell access to the database"),
    };
    trail
        .attempt(&audit, &verdict)
        .await
        .map_err(|e| AuditUnavailable(e.to_string()))?;
    let result = action.await;
    let error = result.as_ref().err().map(|e| format!("{e:#}"));
    let outcome = if result.is_ok() { "ok" } else { "failed" };
    trail
        .outcome(&audit, &verdict, outcome, error.as_deref())
        .await?;
    result
}
