//! `/check [name|all] [json|sarif]` runs the configured checks, stores the report and
//! answers with a summary (or the report as a document); `/findings` shows the last stored
//! report in full.

use super::{Ctx, ExecError, ExecResult};
use crate::checks::{registry, render, report, runner, store};
use crate::domain::Reply;
use crate::domain::command::{CheckFormat, CheckRequest};
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
    let summary = render::summary(selection, &result, changes.as_ref());
    let stamp = started_at.format("%Y%m%d-%H%M%S");
    Ok(match request.format {
        CheckFormat::Summary => Reply::html(summary),
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
    let when = run.finished_at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    Ok(Reply::html(render::full(
        &run.selection,
        &when,
        &run.actor,
        &run.report,
    )))
}
