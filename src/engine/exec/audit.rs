//! `/audit [n|verify|checkpoint]`: the newest audit rows, a walk of the hash chain against
//! every signed checkpoint, or a new checkpoint of its head written outside the database.

use super::{Ctx, ExecError, ExecResult};
use crate::audit::checkpoint::WriteError;
use crate::domain::Reply;
use crate::domain::command::AuditQuery;
use crate::domain::html::escape;
use crate::storage;
use crate::storage::audit::VerifyError;
use chrono::{DateTime, Utc};

pub(super) async fn audit(ctx: &Ctx<'_>, query: &AuditQuery) -> ExecResult {
    let pool = ctx.engine.pool();
    match query {
        AuditQuery::Verify => {
            let settings = ctx.engine.settings();
            let report = crate::audit::verify_recent(pool, settings, ctx.engine.audit_keys())
                .await
                .map_err(|e| match e {
                    VerifyError::Store(e) => ExecError::Store(e),
                    other => ExecError::Refused(other.to_string()),
                })?;
            let mark = report.mark();
            let lines: Vec<String> = report.lines().iter().map(|l| escape(l)).collect();
            Ok(Reply::html(format!("{mark} {}", lines.join("\n"))))
        }
        AuditQuery::Checkpoint => {
            let settings = ctx.engine.settings();
            let (checkpoint, location) =
                crate::audit::checkpoint::write(pool, settings, ctx.engine.audit_keys())
                    .await
                    .map_err(|e| match e {
                        WriteError::Store(e) => ExecError::Store(e),
                        other => ExecError::Refused(other.to_string()),
                    })?;
            Ok(Reply::html(format!(
                "🔏 Checkpoint of row {} written to <code>{}</code>{}.",
                checkpoint.seq,
                escape(&location),
                match settings.audit.checkpoint_chats.len() {
                    0 => String::new(),
                    n => format!(" and queued to {n} chat(s)"),
                }
            )))
        }
        AuditQuery::Latest(n) => {
            let rows = storage::audit::latest(pool, i64::from(*n)).await?;
            let mut text = format!("<b>Latest {} audit rows</b>\n", rows.len());
            for row in rows {
                let e = &row.entry;
                let at = DateTime::<Utc>::from_timestamp_micros(e.at_micros).unwrap_or_default();
                let who = match e.actor_id {
                    Some(id) => format!("{}:{id}", e.actor_kind),
                    None => e.actor_kind.clone(),
                };
                let result = match (&e.outcome, &e.reason) {
                    (Some(o), _) => format!("{} → {o}", e.decision),
                    (None, Some(r)) => format!("{} ({r})", e.decision),
                    (None, None) => e.decision.clone(),
                };
                text.push_str(&format!(
                    "<code>#{} {} {} {} {}</code> {}\n",
                    row.seq,
                    at.format("%m-%d %H:%M:%S"),
                    escape(&who),
                    escape(&e.command),
                    escape(&e.args),
                    escape(&result)
                ));
            }
            Ok(Reply::html(text))
        }
    }
}
