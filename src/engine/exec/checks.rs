//! `/check [name|all] [json|sarif]` runs the configured checks, stores the report and
//! answers with a summary (or the report as a document); `/findings` shows the last stored
//! report in full. The summary carries a "Full list" button: a pending action (of the
//! confirm kind) holding `/findings`, so pressing it goes through the pipeline again —
//! bound to the user and chat, single-use, expiring, permission re-checked and audited.

use super::{Ctx, ExecError, ExecResult};
use crate::checks::{registry, render, report, runner, store};
use crate::domain::command::{CheckFormat, CheckRequest};
use crate::domain::{ActorKind, Button, Reply};
use crate::engine::gates::CONFIRM_PREFIX;
use crate::storage::pending;
use chrono::Utc;
use std::time::Duration;

pub(super) async fn check(ctx: &Ctx<'_>, request: &CheckRequest) -> ExecResult {
    let (settings, pool) = (ctx.engine.settings(), ctx.engine.pool());
    let checks = match &request.name {
        None => registry::configured(settings, pool),
        Some(name) => vec![
            registry::by_name(settings, pool, name)
                .map_err(|why| ExecError::Refused(why.message(name)))?,
        ],
    };
    let selection = request.name.as_deref().unwrap_or("all");
    let started_at = Utc::now();
    let timeout = Duration::from_millis(settings.checks.timeout_ms);
    let result = runner::run(&checks, timeout).await;
    let info = store::RunInfo {
        selection,
        started_at,
        actor: &ctx.req.actor.display,
        request_id: &ctx.req.id.to_string(),
    };
    let run_id = store::save(pool, &info, &result).await?;
    let previous = store::previous(pool, selection, run_id).await?;
    let changes = previous
        .as_ref()
        .map(|p| report::compare(&p.report, &result));
    // A scheduled run pushes only what changed since the previous run (nothing when nothing
    // did); its first run, like any run by a person, gets the full summary.
    if ctx.req.actor.kind == ActorKind::Scheduler
        && request.format == CheckFormat::Summary
        && let Some(changes) = &changes
    {
        return Ok(if changes.is_empty() {
            Reply::default()
        } else {
            Reply::html(render::changes(selection, &result, changes))
        });
    }
    let summary = render::summary(selection, &result, changes.as_ref());
    let stamp = started_at.format("%Y%m%d-%H%M%S");
    Ok(match request.format {
        CheckFormat::Summary => Reply::html(summary).with_buttons(full_list_button(ctx).await?),
        CheckFormat::Json => {
            let body = serde_json::to_vec_pretty(&report::json(run_id, selection, &result))
                .unwrap_or_default();
            Reply::html(summary).with_attachment(format!("opsguard-{selection}-{stamp}.json"), body)
        }
        CheckFormat::Sarif => {
            let body = serde_json::to_vec_pretty(&report::sarif(&result)).unwrap_or_default();
            Reply::html(summary)
                .with_attachment(format!("opsguard-{selection}-{stamp}.sarif"), body)
        }
    })
}

pub(super) async fn findings(ctx: &Ctx<'_>) -> ExecResult {
    let Some(run) = store::last(ctx.engine.pool()).await? else {
        return Ok(Reply::html(
            "No check has run yet. Run /check to make the first report.",
        ));
    };
    let when = super::when(run.finished_at);
    Ok(Reply::html(render::full(
        &run.selection,
        &when,
        &run.actor,
        &run.report,
    )))
}

/// How long the "Full list" button works.
const BUTTON_TTL_SECS: i64 = 3600;

/// The "Full list" button, for a person (a scheduled run has no one to press it).
async fn full_list_button(ctx: &Ctx<'_>) -> Result<Vec<Button>, ExecError> {
    let Some(user) = ctx.req.actor.user else {
        return Ok(Vec::new());
    };
    let id = pending::create(
        ctx.engine.pool(),
        pending::NewPending {
            kind: pending::Kind::Confirm,
            user,
            chat_id: ctx.req.chat.id.0,
            command: "/findings",
            need_stepup: false,
            need_approval: false,
            request_id: &ctx.req.id.to_string(),
            ttl: chrono::Duration::seconds(BUTTON_TTL_SECS),
        },
    )
    .await?;
    Ok(vec![Button {
        label: "📋 Full list".into(),
        data: format!("{CONFIRM_PREFIX}{id}"),
    }])
}
