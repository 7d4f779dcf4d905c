//! Two-person approval that reaches the approver. A request is pushed (through the outbox)
//! to every other admin who may decide it, with Approve / Deny buttons bound to that admin
//! and their private chat (`buttons.rs`); when it ends — ran, failed, denied, expired — the
//! requester is told in the chat where they asked, and every approver's copy is edited to
//! say how and by whom, its buttons taken off. Expiry is found by an idempotent sweep.

pub(super) mod buttons;

use crate::domain::audit::{AuditEntry, Phase, clean};
use crate::domain::command::Command;
use crate::domain::html::escape;
use crate::domain::{ActionId, Button, Reply, UserId};
use crate::outbox::{self, EditButtons};
use crate::storage::audit_writer::AuditWriter;
use crate::storage::pending::PendingAction;
use crate::storage::{StoreResult, approvals};
use sqlx::PgPool;
use std::time::Duration;

/// Callback data of an approver's buttons: `ap:<notice id>` and `dn:<notice id>`.
pub const APPROVE_PREFIX: &str = "ap:";
pub const DENY_PREFIX: &str = "dn:";
const SOURCE: &str = "approval";
/// Requests claimed per sweep transaction.
const SWEEP_BATCH: i64 = 100;

/// How a request ended, as its requester and its approvers are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Approved by `by`, and the command ran: its reply (HTML).
    Ran {
        by: i64,
        result: String,
    },
    /// Approved by `by`, but the command did not run to success: why (HTML).
    Failed {
        by: i64,
        why: String,
    },
    Denied {
        by: i64,
    },
    Expired,
}

/// What a request is, in one line: `<code>/grant 7 admin</code> from <code>42</code>`.
fn what(id: &str, requester: i64, command: &str) -> String {
    format!(
        "Request <code>{id}</code> from <code>{requester}</code>: <code>{}</code>",
        escape(command)
    )
}

/// At most one message's worth of a command's reply, cut at a line (tags stay whole).
fn clip(html: &str) -> String {
    let chunks = Reply::html(html).chunks(3000);
    match chunks.len() {
        0 => String::new(),
        1 => chunks[0].clone(),
        _ => format!("{}\n… (cut; the approver got the whole reply)", chunks[0]),
    }
}

/// Push request `id` (of `requester`, who may be named `name`) to every admin who may
/// decide it; returns how many were asked. One transaction: all copies or none.
pub(super) async fn push(
    pool: &PgPool,
    requester: UserId,
    name: &str,
    command: &Command,
    id: &ActionId,
    ttl_secs: i64,
) -> StoreResult<usize> {
    let mut tx = pool.begin().await?;
    let permission = command.spec().permission.as_str();
    let approvers = approvals::approvers(&mut *tx, requester, permission).await?;
    let text = format!(
        "🧑‍🤝‍🧑 <b>Approval needed</b>\n<code>{requester}</code> ({}) asks to run <code>{}</code>.\nRequest <code>{id}</code> expires in {} min. These buttons work for you alone; or send <code>/approve {id}</code> or <code>/deny {id}</code>.",
        escape(name),
        escape(&command.canonical()),
        (ttl_secs / 60).max(1)
    );
    for approver in &approvers {
        let button = ActionId::for_button();
        let reply = Reply::html(text.clone()).with_buttons(vec![
            Button {
                label: "👍 Approve".into(),
                data: format!("{APPROVE_PREFIX}{button}"),
            },
            Button {
                label: "🚫 Deny".into(),
                data: format!("{DENY_PREFIX}{button}"),
            },
        ]);
        let row = outbox::enqueue(&mut *tx, *approver, &reply, SOURCE).await?;
        approvals::add_notice(&mut *tx, &button, id, *approver, row).await?;
    }
    tx.commit().await?;
    Ok(approvers.len())
}

/// Tell the requester how `action` ended and edit every approver's copy to say so.
pub(super) async fn tell_ending(
    pool: &PgPool,
    action: &PendingAction,
    ending: &Ending,
) -> StoreResult<()> {
    let mut tx = pool.begin().await?;
    tell_ending_in(&mut tx, action, ending).await?;
    tx.commit().await
}

async fn tell_ending_in(
    conn: &mut sqlx::PgConnection,
    action: &PendingAction,
    ending: &Ending,
) -> StoreResult<()> {
    let what = what(&action.id, action.user_id, &action.command);
    let (to_requester, on_copies) = match ending {
        Ending::Ran { by, result } => (
            format!(
                "✅ Your request was approved by <code>{by}</code> and ran.\n{what}\n{}",
                clip(result)
            ),
            format!("✅ Approved by <code>{by}</code>; it ran."),
        ),
        Ending::Failed { by, why } => (
            format!(
                "❌ Your request was approved by <code>{by}</code> but did not run to success.\n{what}\n{}",
                clip(why)
            ),
            format!("❌ Approved by <code>{by}</code>; it failed."),
        ),
        Ending::Denied { by } => (
            format!("🚫 Your request was denied by <code>{by}</code>. Nothing was run.\n{what}"),
            format!("🚫 Denied by <code>{by}</code>. Nothing was run."),
        ),
        Ending::Expired => (
            format!(
                "⌛ Your request expired: no admin approved it in time. Nothing was run.\n{what}"
            ),
            "⌛ Expired undecided. Nothing was run.".to_string(),
        ),
    };
    for copy in approvals::notices_of(&mut *conn, &action.id).await? {
        let html = format!("🧑‍🤝‍🧑 {what}\n{on_copies}");
        outbox::enqueue_edit(
            &mut *conn,
            copy.outbox_id,
            &html,
            Duration::ZERO,
            EditButtons::Remove,
        )
        .await?;
    }
    outbox::enqueue(
        &mut *conn,
        action.chat_id,
        &Reply::html(to_requester),
        SOURCE,
    )
    .await?;
    Ok(())
}

/// Find approval requests that expired undecided, tell their requesters and edit their
/// copies; returns how many. Each request is claimed by exactly one caller (a conditional
/// update, `FOR UPDATE SKIP LOCKED`), in the transaction that queues its messages, so
/// replicas may sweep side by side and every requester is told once. Each expiry closes
/// its request in the audit log (the request's id, outcome `expired`).
pub async fn sweep_expired(pool: &PgPool, audit: &AuditWriter) -> StoreResult<usize> {
    let mut total = 0;
    loop {
        let mut tx = pool.begin().await?;
        let expired = approvals::claim_expired(&mut tx, SWEEP_BATCH).await?;
        for action in &expired {
            tell_ending_in(&mut tx, action, &Ending::Expired).await?;
        }
        tx.commit().await?;
        for action in &expired {
            tracing::info!(approval.id = %action.id, requester = action.user_id, "approval.expired");
            if let Err(e) = audit.append(expiry_row(action)).await {
                tracing::error!(error = %e, approval.id = %action.id, "audit.write_failed");
            }
        }
        total += expired.len();
        if (expired.len() as i64) < SWEEP_BATCH {
            return Ok(total);
        }
    }
}

impl super::Engine {
    /// The requester's answer to a new approval request, after pushing it to the approvers.
    pub(in crate::engine) async fn ask_approvers(
        &self,
        requester: &crate::storage::users::Principal,
        command: &Command,
        id: &ActionId,
        ttl_secs: i64,
    ) -> Reply {
        let mut reply = super::gates::approval_prompt(command, id, ttl_secs);
        let user = requester.user.id;
        let name = &requester.user.display_name;
        let pushed = push(self.pool(), user, name, command, id, ttl_secs).await;
        reply.html.push('\n');
        reply.html.push_str(&match pushed {
            Ok(0) => "⚠️ No other active admin may approve it now: it will expire unless one is added.".to_string(),
            Ok(n) => {
                tracing::info!(approval.id = %id, approvers = n, "approval.requested");
                format!("It was sent to {n} admin(s) who may approve it; you will be told here how it ends.")
            }
            Err(e) => {
                tracing::error!(error = %e, approval.id = %id, "approval.push_failed");
                "⚠️ The other admins could not be told (database error): ask one to send the command above.".to_string()
            }
        });
        reply
    }
}

/// The audit row that closes a request nobody decided: its requester's request id, command
/// and chat; decision `pending`, outcome `expired`, nothing run.
fn expiry_row(action: &PendingAction) -> AuditEntry {
    let (command, args) = action
        .command
        .split_once(char::is_whitespace)
        .unwrap_or((&action.command, ""));
    AuditEntry {
        request_id: action.request_id.clone(),
        at_micros: chrono::Utc::now().timestamp_micros(),
        phase: Phase::Outcome.as_str().into(),
        actor_kind: "telegram".into(),
        actor_id: Some(action.user_id),
        chat_id: Some(action.chat_id),
        command: clean(command.trim_start_matches('/'), 64),
        args: clean(args.trim(), 512),
        decision: "pending".into(),
        reason: Some(format!(
            "approval {} expired undecided: nothing was run",
            action.id
        )),
        outcome: Some("expired".into()),
        error: None,
        duration_ms: None,
    }
}
