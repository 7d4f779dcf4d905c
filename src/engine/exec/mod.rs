//! Executing allowed commands: one file per command family. Only the pipeline calls
//! `execute`, after authorization, rate limiting, gates and the audit attempt.

mod alerts;
mod approvals;
mod audit;
mod backups;
mod checks;
mod info;
mod logins;
mod outbox;
mod schedules;
mod secrets;
mod status;
mod totp;
mod users;

use super::{Engine, Request};
use crate::domain::Reply;
use crate::domain::command::Command;
use crate::storage::users::Principal;
use std::sync::Arc;

pub(super) struct Ctx<'a> {
    pub engine: &'a Engine,
    pub req: &'a Request,
    pub principal: &'a Arc<Principal>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A refusal the operator should read (plain text; escaped when shown).
    #[error("{0}")]
    Refused(String),
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
}

impl ExecError {
    pub fn user_message(&self) -> String {
        match self {
            ExecError::Refused(text) => crate::domain::html::escape(text),
            ExecError::Store(_) => {
                "The database failed while running this command; see the logs.".into()
            }
        }
    }
}

pub(super) type ExecResult = Result<Reply, ExecError>;

/// A moment as replies show it: `2026-11-22 03:01:02 UTC`.
pub(super) fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A span as replies show it: `42s`, `3m 5s`, `2h 10m`, `4d 1h`.
pub(super) fn human_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

pub(super) async fn execute(ctx: &Ctx<'_>, command: &Command) -> ExecResult {
    match command {
        Command::Start => info::start(ctx),
        Command::Help => info::help(ctx),
        Command::WhoAmI => info::whoami(ctx).await,
        Command::Status => status::status(ctx).await,
        Command::Check(request) => checks::check(ctx, request).await,
        Command::Findings => checks::findings(ctx).await,
        Command::Audit(query) => audit::audit(ctx, query).await,
        Command::Users => users::list(ctx).await,
        Command::Schedules => schedules::list(ctx).await,
        Command::Grant(change) => users::grant(ctx, change).await,
        Command::Revoke(change) => users::revoke(ctx, change).await,
        Command::Approve(id) => approvals::approve(ctx, id).await,
        Command::Deny(id) => approvals::deny(ctx, id).await,
        Command::Totp(action) => totp::totp(ctx, action).await,
        Command::StepUp(code) => totp::stepup(ctx, code).await,
        Command::Logins(window) => logins::logins(ctx, *window).await,
        Command::Alerts(id) => alerts::list(ctx, *id).await,
        Command::Ack(id) => alerts::ack(ctx, *id).await,
        Command::Silence(request) => alerts::silence(ctx, request).await,
        Command::PruneLogins => logins::prune(ctx).await,
        Command::Secrets => secrets::list(ctx).await,
        Command::Rotate(name) => secrets::rotate(ctx, name).await,
        Command::RotateDue => secrets::rotate_due(ctx).await,
        Command::Backup(target) => backups::backup(ctx, target.as_ref()).await,
        Command::Backups(target) => backups::list(ctx, target.as_ref()).await,
        Command::RestoreTest(which) => backups::restore_test(ctx, *which).await,
        Command::PruneBackups => backups::prune(ctx).await,
        Command::Outbox(action) => outbox::outbox(ctx, action).await,
    }
}
