//! `/backup [target]` (queue; the worker streams it and edits a progress message),
//! `/backups [target]` (the catalogue), `/restore_test <id|latest>` and `/prune_backups`.

use super::{Ctx, ExecError, ExecResult};
use crate::backups::{Backups, Requested, catalogue, messages, retention};
use crate::domain::command::{RestoreWhich, TargetName};
use crate::domain::html::escape;
use crate::domain::{ActorKind, Reply};

fn backups(ctx: &Ctx<'_>) -> Result<Backups, ExecError> {
    let backups = Backups::new(ctx.engine.pool().clone(), ctx.engine.settings());
    if backups.settings().targets.is_empty() {
        return Err(ExecError::Refused(
            "No backup targets are configured: declare them in [[backups.targets]].".into(),
        ));
    }
    Ok(backups)
}

fn requester(ctx: &Ctx<'_>) -> (Option<i64>, &'static str) {
    match ctx.req.actor.kind {
        ActorKind::Scheduler => (None, "schedule"),
        ActorKind::Cli => (None, "shell"),
        _ => (ctx.req.actor.user.map(|u| u.0), "command"),
    }
}

pub(super) async fn backup(ctx: &Ctx<'_>, target: Option<&TargetName>) -> ExecResult {
    let backups = backups(ctx)?;
    backups.keys().map_err(ExecError::Refused)?;
    let targets = match target {
        Some(t) => vec![t.to_string()],
        None => backups.settings().target_names(),
    };
    let (by, via) = requester(ctx);
    let mut lines = Vec::new();
    for target in &targets {
        let line = match backups
            .request_backup(target, by, via, ctx.req.chat.id.0)
            .await?
        {
            Requested::Queued(job) => format!(
                "🗄 Backup job #{} of <b>{}</b> queued; progress follows.",
                job.id,
                escape(target)
            ),
            Requested::AlreadyRunning(job) => {
                let line = format!(
                    "A backup of {target} is already {}: job #{}, requested by {} at {}.",
                    job.status,
                    job.id,
                    job.requester(),
                    super::when(job.created_at)
                );
                if targets.len() == 1 {
                    return Err(ExecError::Refused(line));
                }
                format!("⏳ {}", escape(&line))
            }
            Requested::UnknownTarget(known) => {
                return Err(ExecError::Refused(format!(
                    "Unknown backup target '{target}'. Known: {}.",
                    known.join(", ")
                )));
            }
        };
        lines.push(line);
    }
    Ok(Reply::html(lines.join("\n")))
}

pub(super) async fn list(ctx: &Ctx<'_>, target: Option<&TargetName>) -> ExecResult {
    let backups = backups(ctx)?;
    if let Some(t) = target
        && backups.settings().target(t.as_str()).is_none()
    {
        return Err(ExecError::Refused(format!(
            "Unknown backup target '{t}'. Known: {}.",
            backups.settings().target_names().join(", ")
        )));
    }
    let rows = catalogue::list(ctx.engine.pool(), target.map(|t| t.as_str()), 10).await?;
    let active = crate::backups::jobs::active(ctx.engine.pool()).await?;
    let mut text = String::from("<b>🗄 Backups</b>");
    for job in active
        .iter()
        .filter(|j| target.is_none_or(|t| t.as_str() == j.target))
    {
        text.push_str(&format!(
            "\n⏳ job #{} {} of {}: {}",
            job.id,
            job.kind.replace('_', " "),
            escape(&job.target),
            job.status
        ));
    }
    if rows.is_empty() {
        text.push_str("\nNo backups yet. Run /backup to make one.");
    }
    for b in &rows {
        text.push('\n');
        text.push_str(&messages::line(b));
    }
    Ok(Reply::html(text))
}

pub(super) async fn restore_test(ctx: &Ctx<'_>, which: RestoreWhich) -> ExecResult {
    let backups = backups(ctx)?;
    backups.keys().map_err(ExecError::Refused)?;
    let pool = ctx.engine.pool();
    let chosen = match which {
        RestoreWhich::Backup(id) => match catalogue::get(pool, id).await? {
            Some(b) if b.status == "good" => vec![b],
            Some(b) => {
                return Err(ExecError::Refused(format!(
                    "Backup #{id} is {}; only a good backup can be restore-tested.",
                    b.status
                )));
            }
            None => {
                let latest: Vec<String> = catalogue::list(pool, None, 3)
                    .await?
                    .iter()
                    .map(|b| format!("#{} ({})", b.id, b.target))
                    .collect();
                return Err(ExecError::Refused(format!(
                    "No backup #{id}. Latest: {}. See /backups.",
                    if latest.is_empty() {
                        "none yet".into()
                    } else {
                        latest.join(", ")
                    }
                )));
            }
        },
        RestoreWhich::Latest => {
            let mut newest = Vec::new();
            for t in &backups.settings().targets {
                if let Some(b) = catalogue::good_of(pool, &t.name).await?.into_iter().next() {
                    newest.push(b);
                }
            }
            if newest.is_empty() {
                return Err(ExecError::Refused(
                    "No good backup to restore-test yet.".into(),
                ));
            }
            newest
        }
    };
    let (by, via) = requester(ctx);
    let mut lines = Vec::new();
    for b in &chosen {
        if let Requested::Queued(job) = backups
            .request_restore_test(b, by, via, ctx.req.chat.id.0)
            .await?
        {
            lines.push(format!(
                "🧪 Restore test #{} of backup #{} ({}) queued; progress follows.",
                job.id,
                b.id,
                escape(&b.target)
            ));
        }
    }
    Ok(Reply::html(lines.join("\n")))
}

pub(super) async fn prune(ctx: &Ctx<'_>) -> ExecResult {
    let backups = backups(ctx)?;
    let (removed, problems) = retention::prune(&backups).await?;
    let mut text = if removed.is_empty() {
        "🧹 No backup is past its retention.".to_string()
    } else {
        let total: i64 = removed.iter().map(|r| r.stored_bytes).sum();
        format!(
            "🧹 Removed {} backup(s), {}:",
            removed.len(),
            messages::bytes(total.max(0) as u64)
        )
    };
    for r in &removed {
        text.push_str(&format!(
            "\n#{} {} from {}",
            r.id,
            escape(&r.target),
            r.started_at.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    for p in &problems {
        text.push_str(&format!("\n⚠️ not removed: {}", escape(p)));
    }
    Ok(Reply::html(text))
}
