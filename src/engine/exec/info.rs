//! `/start`, `/help` and `/whoami`: who you are and what you may do.

use super::{Ctx, ExecResult};
use crate::domain::command::SPECS;
use crate::domain::html::escape;
use crate::domain::{ChatKind, Reply};

pub(super) fn start(ctx: &Ctx<'_>) -> ExecResult {
    let user = &ctx.principal.user;
    Ok(Reply::html(format!(
        "👋 Hello, {}. opsguard runs security checks, secret rotation, login alerts and backups — every command permission-checked and audited.\nYour roles: {}.\nSend /help to see what you may run.",
        escape(&user.display_name),
        roles(&user.roles)
    )))
}

pub(super) fn help(ctx: &Ctx<'_>) -> ExecResult {
    let mut text = String::from("<b>Your commands</b>\n");
    for spec in SPECS
        .iter()
        .filter(|s| ctx.principal.permissions.contains(s.permission.as_str()))
    {
        text.push_str(&format!(
            "<code>{}</code> — {}\n",
            escape(spec.usage),
            escape(spec.summary)
        ));
    }
    text.push_str(
        "\nSensitive commands ask for confirmation; some need a second admin or a TOTP code.",
    );
    Ok(Reply::html(text))
}

pub(super) async fn whoami(ctx: &Ctx<'_>) -> ExecResult {
    let p = ctx.principal;
    let mut perms: Vec<&str> = p.permissions.iter().map(String::as_str).collect();
    perms.sort_unstable();
    let totp = match crate::storage::totp::get(ctx.engine.pool(), p.user.id).await? {
        Some(e) if e.confirmed => "enrolled",
        Some(_) => "enrolment not confirmed",
        None => "not enrolled",
    };
    let chat = match ctx.req.chat.kind {
        ChatKind::Private => "private".to_string(),
        ChatKind::Group => format!("group {}", ctx.req.chat.id),
    };
    Ok(Reply::html(format!(
        "<b>{}</b>\nTelegram id: <code>{}</code>\nRoles: {}\nPermissions: <code>{}</code>\nTOTP: {totp}\nChat: {chat} (via {})",
        escape(&p.user.display_name),
        p.user.id,
        roles(&p.user.roles),
        escape(&perms.join(", ")),
        ctx.req.actor.kind.as_str(),
    )))
}

pub(super) fn roles(roles: &[String]) -> String {
    if roles.is_empty() {
        "none".into()
    } else {
        escape(&roles.join(", "))
    }
}
