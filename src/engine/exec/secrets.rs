//! `/secrets` (what is managed and how it stands), `/rotate <secret>` (after its gates) and
//! `/rotate_due` (the scheduled path: secrets whose policy lets the scheduler and whose
//! current version is old enough). Replies show fingerprints, never values.

use super::{Ctx, ExecError, ExecResult, human_duration, when};
use crate::domain::html::escape;
use crate::domain::rotation::SecretName;
use crate::domain::{ActorKind, Reply};
use crate::secrets::rotate::{Outcome, Requested, RotateError, Rotations};
use crate::secrets::status;
use chrono::Utc;
use std::sync::Arc;

const NONE_MANAGED: &str = "No secrets are managed here. Declare them in <code>[[secrets]]</code> and set OPSGUARD_MASTER_KEY.";

fn rotations(ctx: &Ctx<'_>) -> Option<Arc<Rotations>> {
    ctx.engine.secrets().filter(|r| !r.catalog().is_empty())
}

pub(super) async fn list(ctx: &Ctx<'_>) -> ExecResult {
    let Some(rot) = rotations(ctx) else {
        return Ok(Reply::html(NONE_MANAGED));
    };
    let now = Utc::now();
    let mut text = String::from("<b>🔑 Managed secrets</b>\n");
    for secret in rot.catalog().iter() {
        let s = status::of(rot.pool(), secret).await?;
        text.push_str(&format!("\n<b>{}</b> · {}", escape(&s.name), s.kind));
        match &s.current {
            Some((v, print, at)) => text.push_str(&format!(
                "\ncurrent v{v} <code>sha256:{print}</code>, {} old",
                human_duration((now - *at).num_seconds().max(0) as u64)
            )),
            None => text.push_str("\nno current version yet"),
        }
        for r in s.shown_retirements() {
            let label = if r.state == "previous" {
                "previous"
            } else {
                "retired"
            };
            text.push_str(&format!(
                "\n{label} v{} <code>sha256:{}</code> {}",
                r.version,
                r.fingerprint,
                escape(&s.retirement_note(r))
            ));
        }
        text.push_str(&match s.next_rotation {
            Some(at) if at <= now => "\nnext rotation: due now".to_string(),
            Some(at) => format!("\nnext rotation: {}", when(at)),
            None => "\nnext rotation: not scheduled".to_string(),
        });
        text.push_str(&format!("\nlast: {}\n", escape(&s.last_summary())));
    }
    Ok(Reply::html(text))
}

pub(super) async fn rotate(ctx: &Ctx<'_>, name: &SecretName) -> ExecResult {
    let Some(rot) = rotations(ctx) else {
        return Err(ExecError::Refused(
            "No secrets are managed here: declare them in [[secrets]] and set OPSGUARD_MASTER_KEY."
                .into(),
        ));
    };
    let (by, via) = requester(ctx);
    let outcome = match rot
        .request(name.as_str(), by, via)
        .await
        .map_err(rotate_error)?
    {
        Requested::Unknown(known) => {
            return Err(ExecError::Refused(format!(
                "Unknown secret '{name}'. Known: {}.",
                known.join(", ")
            )));
        }
        Requested::InProgress(r) => {
            let by = r
                .requested_by
                .filter(|u| *u > 0)
                .map(|u| format!("user {u}"))
                .unwrap_or_else(|| r.via.clone());
            return Err(ExecError::Refused(format!(
                "A rotation of {name} is already in progress: #{} at step {}, started by {by} at {}.",
                r.id,
                r.step,
                when(r.started_at)
            )));
        }
        Requested::Ran(outcome) => outcome,
        refused => return Err(ExecError::Refused(refusal(name.as_str(), refused))),
    };
    describe(
        name.as_str(),
        outcome,
        rot.catalog().get(name.as_str()).map(|s| s.policy.grace),
    )
}

fn describe(name: &str, outcome: Outcome, grace: Option<chrono::Duration>) -> ExecResult {
    let name = escape(name);
    match outcome {
        Outcome::Succeeded {
            rotation,
            version,
            fingerprint,
            sinks,
        } => {
            let delivered = if sinks.is_empty() {
                "no sinks configured".to_string()
            } else {
                escape(&sinks.join(", "))
            };
            let grace = grace
                .map(|g| human_duration(g.num_seconds().max(0) as u64))
                .unwrap_or_default();
            Ok(Reply::html(format!(
                "✅ Rotated <b>{name}</b> (#{rotation}): version {version} <code>sha256:{fingerprint}</code> is current.\nDelivered to: {delivered}.\nThe previous credential keeps working for {grace}, then it is revoked."
            )))
        }
        Outcome::Waiting {
            rotation,
            version,
            until,
        } => Ok(Reply::html(format!(
            "⏳ Rotation #{rotation} of <b>{name}</b>: version {version} is set, tested and published as the next key. It becomes current at {} (after verifiers' key caches refresh); the current one stays current until then.",
            when(until)
        ))),
        Outcome::Retrying {
            rotation,
            step,
            error,
            next_at,
            attempt,
        } => Ok(Reply::html(format!(
            "⚠️ Rotation #{rotation} of <b>{name}</b>: step <code>{}</code> failed (attempt {attempt}): {}\nThe old credential stays current. Retrying at {}.",
            step.as_str(),
            escape(&error),
            when(next_at)
        ))),
        Outcome::GaveUp {
            rotation,
            step,
            error,
            status,
        } => Err(ExecError::Refused(format!(
            "Rotation #{rotation} of {name} {} at step {}: {error}. The old credential stays current.",
            status.as_str().replace('_', " "),
            step.as_str()
        ))),
    }
}

pub(super) async fn rotate_due(ctx: &Ctx<'_>) -> ExecResult {
    let Some(rot) = rotations(ctx) else {
        return Ok(Reply::html(NONE_MANAGED));
    };
    let (by, via) = requester(ctx);
    let now = Utc::now();
    let mut lines = Vec::new();
    for secret in rot.catalog().iter() {
        if !status::of(rot.pool(), secret).await?.is_due(now) {
            continue;
        }
        let name = secret.name.as_str();
        // A person may not use the scheduled path to skip a secret's own gates.
        if via != "schedule" && (secret.policy.approval || secret.policy.totp) {
            lines.push(format!(
                "⏭ <b>{}</b> is due; its policy asks for approval or a TOTP code: use /rotate {}",
                escape(name),
                escape(name)
            ));
            continue;
        }
        let line = match rot.request(name, by, via).await.map_err(rotate_error)? {
            Requested::Ran(outcome) => match describe(name, outcome, Some(secret.policy.grace)) {
                Ok(reply) => reply.html,
                Err(e) => format!("❌ {}", e.user_message()),
            },
            Requested::InProgress(r) => {
                format!("⏳ <b>{}</b>: rotation #{} in progress", escape(name), r.id)
            }
            Requested::Unknown(_) => continue,
            refused => format!("⏭ {}", escape(&refusal(name, refused))),
        };
        lines.push(line);
    }
    if lines.is_empty() {
        return Ok(Reply::html("No scheduled rotation is due."));
    }
    Ok(Reply::html(lines.join("\n\n")))
}

/// Why a rotation was refused up front (nothing changed).
fn refusal(name: &str, refused: Requested) -> String {
    match refused {
        Requested::MissingGrants(missing) => format!(
            "Rotation of {name} refused, nothing changed: the target's admin credentials lack what a rotation needs. Missing: {}.",
            missing.join("; ")
        ),
        Requested::TooSoon { version, until } => format!(
            "Rotation of {name} refused, nothing changed: version {version} is promised to keep working until {} (its grace period), and a new value would take its place. Rotate again from then.",
            when(until)
        ),
        other => format!("Rotation of {name}: {other:?}"),
    }
}

/// Who the rotation is credited to: the principal it runs as. For an approved request that
/// is the requester (the approver's `/approve` runs it under the requester's principal),
/// never the approver who happened to send the last message.
fn requester(ctx: &Ctx<'_>) -> (Option<i64>, &'static str) {
    match ctx.req.actor.kind {
        ActorKind::Scheduler => (None, "schedule"),
        ActorKind::Cli => (None, "shell"),
        _ => (Some(ctx.principal.user.id.0), "command"),
    }
}

fn rotate_error(e: RotateError) -> ExecError {
    match e {
        RotateError::Db(e) => ExecError::Store(e),
        RotateError::Vault(e) => ExecError::Refused(e.to_string()),
    }
}
