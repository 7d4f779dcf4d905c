//! `/approve` and `/deny`: the second admin's decision on a pending request. The approver
//! must not be the requester and must hold the permission of the command they approve;
//! the approval covers exactly the stored command text. Either way the requester and the
//! other approvers are told (`engine::approval`).

use super::{Ctx, ExecError, ExecResult};
use crate::domain::command::Command;
use crate::domain::html::escape;
use crate::domain::{ActionId, Reply, UserId};
use crate::engine::approval::{self, Ending};
use crate::storage::pending::{self, Kind};

async fn covered_command(
    ctx: &Ctx<'_>,
    id: &ActionId,
) -> Result<(pending::PendingAction, Command), ExecError> {
    let Some(action) = pending::get(ctx.engine.pool(), id, Kind::Approval).await? else {
        return Err(ExecError::Refused(format!(
            "There is no approval request {id}."
        )));
    };
    let command = Command::parse(&action.command)
        .map_err(|_| ExecError::Refused("That request's command is no longer valid.".into()))?;
    if !ctx
        .principal
        .permissions
        .contains(command.spec().permission.as_str())
    {
        return Err(ExecError::Refused(format!(
            "You may not decide on {}: it needs the permission {}.",
            action.command,
            command.spec().permission
        )));
    }
    Ok((action, command))
}

fn refusal(id: &ActionId, refusal: pending::Refusal) -> ExecError {
    ExecError::Refused(match refusal {
        pending::Refusal::OwnRequest => {
            "You cannot approve or deny your own request; another admin must.".into()
        }
        pending::Refusal::Expired => format!("Request {id} has expired."),
        pending::Refusal::Used => format!("Request {id} was already decided."),
        _ => format!("There is no approval request {id}."),
    })
}

pub(super) async fn approve(ctx: &Ctx<'_>, id: &ActionId) -> ExecResult {
    let (_, command) = covered_command(ctx, id).await?;
    let approver = ctx.principal.user.id;
    let action = pending::claim(
        ctx.engine.pool(),
        id,
        Kind::Approval,
        approver,
        None,
        "approved",
    )
    .await?
    .map_err(|r| refusal(id, r))?;
    let requester = UserId(action.user_id);
    let principal =
        ctx.engine.authz().principal(requester).await?.filter(|p| {
            p.user.active && p.permissions.contains(command.spec().permission.as_str())
        });
    let Some(principal) = principal else {
        let why =
            format!("The requester {requester} no longer holds the permission; nothing was run.");
        pending::set_status(ctx.engine.pool(), id.as_str(), "failed").await?;
        let ending = Ending::Failed {
            by: approver.0,
            why: escape(&why),
        };
        tell(ctx, &action, &ending).await;
        return Err(ExecError::Refused(why));
    };
    // The approved command runs as its requester, in this chat, with its own audit rows.
    let mut bound = action.clone();
    bound.chat_id = ctx.req.chat.id.0;
    bound.need_approval = false;
    bound.need_stepup = false;
    let reason = format!("approved by {approver} (request {id})");
    let done = ctx
        .engine
        .resume_boxed(ctx.req, &principal, &bound, &reason)
        .await;
    let result = done.reply.map(|r| r.html).unwrap_or_default();
    let (status, ending) = if done.decision == "allowed" {
        let ending = Ending::Ran {
            by: approver.0,
            result: result.clone(),
        };
        ("completed", ending)
    } else {
        let ending = Ending::Failed {
            by: approver.0,
            why: result.clone(),
        };
        ("failed", ending)
    };
    pending::set_status(ctx.engine.pool(), id.as_str(), status).await?;
    tell(ctx, &action, &ending).await;
    Ok(Reply::html(format!(
        "👍 Approved request <code>{id}</code> from <code>{requester}</code>: <code>{}</code>\n{result}",
        escape(&action.command)
    )))
}

/// Tell the requester and the other approvers how the request ended. The decision stands
/// whatever happens here: a failure is logged, not reported as the command's.
async fn tell(ctx: &Ctx<'_>, action: &pending::PendingAction, ending: &Ending) {
    if let Err(e) = approval::tell_ending(ctx.engine.pool(), action, ending).await {
        tracing::error!(error = %e, approval.id = %action.id, "approval.tell_failed");
    }
}

pub(super) async fn deny(ctx: &Ctx<'_>, id: &ActionId) -> ExecResult {
    covered_command(ctx, id).await?;
    let action = pending::claim(
        ctx.engine.pool(),
        id,
        Kind::Approval,
        ctx.principal.user.id,
        None,
        "denied",
    )
    .await?
    .map_err(|r| refusal(id, r))?;
    let ending = Ending::Denied {
        by: ctx.principal.user.id.0,
    };
    tell(ctx, &action, &ending).await;
    Ok(Reply::html(format!(
        "🚫 Denied request <code>{id}</code> from <code>{}</code>: <code>{}</code>. Nothing was run.",
        action.user_id,
        escape(&action.command)
    )))
}
