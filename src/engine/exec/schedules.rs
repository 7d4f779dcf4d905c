//! `/schedules`: the configured schedules with their cron expression, command, chat,
//! whether they are enabled, the next fire time and the result of the last run.

use super::{Ctx, ExecResult, when};
use crate::domain::Reply;
use crate::domain::html::escape;
use crate::scheduler::{job::Job, store};
use chrono::Utc;
use std::collections::HashMap;

pub(super) async fn list(ctx: &Ctx<'_>) -> ExecResult {
    let schedules = &ctx.engine.settings().all_schedules();
    if schedules.is_empty() {
        return Ok(Reply::html(
            "No schedules are configured (<code>[[schedules]]</code> in the settings file).",
        ));
    }
    let last: HashMap<String, store::LastRun> = store::last_runs(ctx.engine.pool())
        .await?
        .into_iter()
        .map(|r| (r.schedule.clone(), r))
        .collect();
    let now = Utc::now();
    let mut text = format!("<b>{} schedules</b> (cron in UTC)\n", schedules.len());
    for s in schedules {
        // Schedules were validated at start-up; one that no longer compiles is shown as such.
        let job = Job::compile(s).ok();
        let next = match &job {
            Some(job) if job.enabled => job
                .next_fire(now)
                .map(when)
                .unwrap_or_else(|| "never".into()),
            Some(_) => "— (disabled)".into(),
            None => "— (invalid)".into(),
        };
        let last = match last.get(&s.name) {
            None => "never run".to_string(),
            Some(run) => match (&run.finished_at, &run.decision, &run.result) {
                (Some(_), decision, result) => format!(
                    "{} · {} · {}",
                    when(run.fire_at),
                    escape(decision.as_deref().unwrap_or("unknown")),
                    escape(result.as_deref().unwrap_or(""))
                ),
                (None, _, _) => format!("{} · running or interrupted", when(run.fire_at)),
            },
        };
        text.push_str(&format!(
            "\n<b>{}</b> — {}\n<code>{}</code> → <code>{}</code> {}\nNext: {next}\nLast: {last}\n",
            escape(&s.name),
            if s.enabled { "enabled" } else { "disabled" },
            escape(&s.cron),
            escape(&s.command),
            if s.chat == 0 {
                "(no report)".to_string()
            } else {
                format!("in chat <code>{}</code>", s.chat)
            },
        ));
    }
    Ok(Reply::html(text))
}
