//! `/totp` (enrol an authenticator, private chat only) and `/stepup <code>` (answer a
//! step-up prompt, which then resumes the gated command).

use super::{Ctx, ExecError, ExecResult};
use crate::domain::command::{TotpAction, TotpCode};
use crate::domain::html::escape;
use crate::domain::{ChatKind, Reply};
use crate::engine::totp::{self, CodeCheck};
use crate::storage::{self, pending};

pub(super) async fn totp(ctx: &Ctx<'_>, action: &TotpAction) -> ExecResult {
    let pool = ctx.engine.pool();
    let user = ctx.principal.user.id;
    match action {
        TotpAction::Status => Ok(Reply::html(match storage::totp::get(pool, user).await? {
            Some(e) if e.confirmed => {
                "🔐 Your authenticator is enrolled. /totp enroll replaces it.".to_string()
            }
            Some(_) => "🔐 Enrolment started but not confirmed: send /totp confirm &lt;code&gt;."
                .to_string(),
            None => {
                "🔐 No authenticator enrolled. Send /totp enroll in a private chat.".to_string()
            }
        })),
        TotpAction::Enroll => {
            if ctx.req.chat.kind != ChatKind::Private {
                return Err(ExecError::Refused(
                    "Enrol only in a private chat with the bot.".into(),
                ));
            }
            // Replacing a confirmed factor from chat would let whoever holds the Telegram
            // account pass step-up: only a shell reset (audited) clears it.
            if storage::totp::get(pool, user)
                .await?
                .is_some_and(|e| e.confirmed)
            {
                return Err(ExecError::Refused(format!(
                    "You already have an authenticator. To replace it, an admin resets it from a shell: opsguard user reset-totp {user}"
                )));
            }
            let uri = totp::enroll(pool, user).await?;
            Ok(Reply::html(format!(
                "🔐 Add this to your authenticator app (it is shown once, only here):\n<code>{}</code>\nThen send <code>/totp confirm 123456</code> with the code it shows.",
                escape(&uri)
            )))
        }
        TotpAction::Confirm(code) => {
            match totp::check(pool, &ctx.engine.settings().gates, user, code, false).await? {
                CodeCheck::Accepted => Ok(Reply::html("✅ Authenticator enrolled.")),
                other => Err(code_refusal(other)),
            }
        }
    }
}

pub(super) async fn stepup(ctx: &Ctx<'_>, code: &TotpCode) -> ExecResult {
    let pool = ctx.engine.pool();
    let user = ctx.principal.user.id;
    let Some(id) = pending::open_stepup(pool, user).await? else {
        return Err(ExecError::Refused(
            "No step-up prompt is waiting for you.".into(),
        ));
    };
    match totp::check(pool, &ctx.engine.settings().gates, user, code, true).await? {
        CodeCheck::Accepted => {}
        other => return Err(code_refusal(other)),
    }
    let action = pending::claim(pool, &id, pending::Kind::StepUp, user, "confirmed")
        .await?
        .map_err(|r| {
            ExecError::Refused(format!(
                "The step-up prompt is no longer valid ({}).",
                r.reason()
            ))
        })?;
    let done = ctx
        .engine
        .resume_boxed(ctx.req, ctx.principal, &action, "TOTP step-up passed")
        .await;
    Ok(done.reply.unwrap_or_default())
}

fn code_refusal(check: CodeCheck) -> ExecError {
    ExecError::Refused(match check {
        CodeCheck::Accepted => unreachable!("accepted codes are not refusals"),
        CodeCheck::NotEnrolled => {
            "You have no confirmed authenticator. Send /totp enroll in a private chat.".into()
        }
        CodeCheck::Locked { minutes } => {
            format!("Step-up is locked after too many wrong codes. Try again in {minutes} min.")
        }
        CodeCheck::LockedNow { minutes } => {
            format!("Wrong code. Step-up is now locked for {minutes} min.")
        }
        CodeCheck::Wrong { remaining } => {
            format!("Wrong code. {remaining} attempt(s) left before step-up locks.")
        }
    })
}
