//! `/users`, `/grant` and `/revoke`: who holds which role.

use super::info::roles;
use super::{Ctx, ExecError, ExecResult};
use crate::domain::command::RoleChange;
use crate::domain::html::escape;
use crate::domain::{Reply, UserId};
use crate::engine::EngineEvent;
use crate::storage::users;

pub(super) async fn list(ctx: &Ctx<'_>) -> ExecResult {
    let all = users::list(ctx.engine.pool()).await?;
    let mut text = format!("<b>{} users</b>\n", all.len());
    for p in all {
        text.push_str(&format!(
            "<code>{}</code> {} — {}{}\n",
            p.user.id,
            escape(&p.user.display_name),
            roles(&p.user.roles),
            if p.user.active { "" } else { " (inactive)" }
        ));
    }
    Ok(Reply::html(text))
}

async fn target_name(ctx: &Ctx<'_>, user: UserId) -> Result<String, ExecError> {
    match users::principal_of(ctx.engine.pool(), user).await? {
        Some(p) => Ok(p.user.display_name),
        None => Err(ExecError::Refused(format!(
            "User {user} is not known. Add them from a shell: opsguard user add {user} --role viewer"
        ))),
    }
}

async fn check_role(ctx: &Ctx<'_>, change: &RoleChange) -> Result<(), ExecError> {
    if users::role_exists(ctx.engine.pool(), &change.role).await? {
        return Ok(());
    }
    let known = users::roles(ctx.engine.pool()).await?.join(", ");
    Err(ExecError::Refused(format!(
        "There is no role '{}'. Roles: {known}.",
        change.role
    )))
}

fn by(ctx: &Ctx<'_>) -> String {
    format!("{}:{}", ctx.req.actor.kind.as_str(), ctx.principal.user.id)
}

fn changed(ctx: &Ctx<'_>, user: UserId) {
    ctx.engine.authz().evict(user);
    // Every replica (this one included) hears the change through NOTIFY and refreshes
    // menus from there; announce it here only when that channel is down.
    if !ctx.engine.authz().is_listening() {
        ctx.engine.emit(EngineEvent::PermissionsChanged(user));
    }
}

pub(super) async fn grant(ctx: &Ctx<'_>, change: &RoleChange) -> ExecResult {
    check_role(ctx, change).await?;
    if users::is_system_role(ctx.engine.pool(), &change.role).await? {
        return Err(ExecError::Refused(format!(
            "{} is a system role: it cannot be granted to a person.",
            change.role
        )));
    }
    let name = target_name(ctx, change.user).await?;
    let added = users::grant(ctx.engine.pool(), change.user, &change.role, &by(ctx)).await?;
    changed(ctx, change.user);
    Ok(Reply::html(if added {
        format!(
            "✅ {} (<code>{}</code>) now has the role <b>{}</b>.",
            escape(&name),
            change.user,
            change.role
        )
    } else {
        format!(
            "ℹ️ {} (<code>{}</code>) already has the role <b>{}</b>.",
            escape(&name),
            change.user,
            change.role
        )
    }))
}

pub(super) async fn revoke(ctx: &Ctx<'_>, change: &RoleChange) -> ExecResult {
    check_role(ctx, change).await?;
    let name = target_name(ctx, change.user).await?;
    let removed =
        match users::revoke_keeping_last(ctx.engine.pool(), change.user, &change.role, "admin")
            .await?
        {
            users::Revoked::LastHolder => {
                return Err(ExecError::Refused(format!(
                    "{name} is the last active admin; grant admin to someone else first."
                )));
            }
            users::Revoked::Removed => true,
            users::Revoked::NotHeld => false,
        };
    changed(ctx, change.user);
    Ok(Reply::html(if removed {
        format!(
            "✅ {} (<code>{}</code>) no longer has the role <b>{}</b>.",
            escape(&name),
            change.user,
            change.role
        )
    } else {
        format!(
            "ℹ️ {} (<code>{}</code>) did not have the role <b>{}</b>.",
            escape(&name),
            change.user,
            change.role
        )
    }))
}
