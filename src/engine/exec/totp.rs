//! `/totp` (enrol an authenticator, private chat only) and `/stepup <code>` (answer a
//! step-up prompt, which then resumes the gated command).
//!
//! Against someone holding the user's Telegram session and chat history: the enrolment URI
//! is sent with `protect_content` and deleted when confirmed or expired, and a confirmed
//! authenticator is replaced only with its current code (or a shell reset).

use super::{Ctx, ExecError, ExecResult};
use crate::domain::command::{TotpAction, TotpCode};
use crate::domain::html::escape;
use crate::domain::{ChatKind, Reply, Tracked};
use crate::engine::totp::{self, CodeCheck, Confirmed};
use crate::storage::{self, pending};

pub(super) async fn totp(ctx: &Ctx<'_>, action: &TotpAction) -> ExecResult {
    let pool = ctx.engine.pool();
    let user = ctx.principal.user.id;
    let gates = &ctx.engine.settings().gates;
    match action {
        TotpAction::Status => {
            let enrolled = storage::totp::get(pool, user)
                .await?
                .is_some_and(|e| e.confirmed);
            let waiting = storage::totp::pending(pool, user).await?.is_some();
            Ok(Reply::html(match (enrolled, waiting) {
                (_, true) => {
                    "🔐 An enrolment is waiting: send /totp confirm &lt;code&gt; before it expires."
                }
                (true, false) => {
                    "🔐 Your authenticator is enrolled. To replace it, send /totp enroll &lt;current code&gt; in a private chat."
                }
                (false, false) => {
                    "🔐 No authenticator enrolled. Send /totp enroll in a private chat."
                }
            }))
        }
        TotpAction::Enroll(code) => {
            if ctx.req.chat.kind != ChatKind::Private {
                return Err(ExecError::Refused(
                    "Enrol only in a private chat with the bot.".into(),
                ));
            }
            let Some(key) = ctx.engine.master_key() else {
                return Err(ExecError::Refused(totp::NO_KEY.into()));
            };
            // Replacing a confirmed factor from chat alone would let whoever holds the
            // Telegram account pass step-up: it takes the current code, or a shell reset.
            let current = storage::totp::get(pool, user).await?;
            if current.as_ref().is_some_and(|e| e.exposed) {
                return Err(ExecError::Refused(totp::exposed(user)));
            }
            let enrolled = current.is_some_and(|e| e.confirmed);
            match (enrolled, code) {
                (true, None) => {
                    return Err(ExecError::Refused(format!(
                        "You already have an authenticator. To replace it, send /totp enroll <current code> here, or an admin resets it from a shell: opsguard user reset-totp {user}"
                    )));
                }
                (true, Some(code)) => {
                    match totp::check(pool, Some(&key), gates, user, code).await? {
                        CodeCheck::Accepted => {}
                        other => return Err(code_refusal(other)),
                    }
                }
                (false, _) => {}
            }
            let ttl = gates.totp_enrol_ttl_secs;
            let uri = totp::enroll(pool, &key, user, ttl).await?;
            let reply = Reply::html(format!(
                "🔐 Add this to your authenticator app. This message cannot be forwarded and is deleted when you confirm, or in {} min:\n<code>{}</code>\nThen send <code>/totp confirm 123456</code> with the code it shows.",
                (ttl / 60).max(1),
                escape(&uri)
            ));
            Ok(reply.protected(Tracked::TotpEnrolment(user)))
        }
        TotpAction::Confirm(code) => {
            let key = ctx.engine.master_key();
            match totp::confirm(pool, key.as_ref(), user, code).await? {
                Confirmed::Done => Ok(Reply::html(
                    "✅ Authenticator enrolled. The message that showed its secret is deleted.",
                )),
                Confirmed::NoEnrolment => Err(ExecError::Refused(
                    "No enrolment is waiting (they expire): send /totp enroll again.".into(),
                )),
                Confirmed::Wrong => Err(ExecError::Refused(
                    "Wrong code for the new authenticator; check it was added correctly and try again.".into(),
                )),
                Confirmed::Unavailable(why) => Err(ExecError::Refused(why)),
            }
        }
    }
}

pub(super) async fn stepup(ctx: &Ctx<'_>, code: &TotpCode) -> ExecResult {
    let pool = ctx.engine.pool();
    let user = ctx.principal.user.id;
    // Only a prompt of this chat: a code typed elsewhere neither spends one nor a code.
    let Some(id) = pending::open_stepup(pool, user, ctx.req.chat.id.0).await? else {
        return Err(ExecError::Refused(
            "No step-up prompt is waiting for you in this chat.".into(),
        ));
    };
    let key = ctx.engine.master_key();
    let gates = &ctx.engine.settings().gates;
    match totp::check(pool, key.as_ref(), gates, user, code).await? {
        CodeCheck::Accepted => {}
        other => return Err(code_refusal(other)),
    }
    let action = pending::claim(
        pool,
        &id,
        pending::Kind::StepUp,
        user,
        Some(ctx.req.chat.id.0),
        "confirmed",
    )
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
        CodeCheck::Unavailable(why) => why,
    })
}
