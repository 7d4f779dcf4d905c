//! `/audit [n|verify]`: the newest audit rows, or a walk of the hash chain.

use super::{Ctx, ExecResult};
use crate::domain::Reply;
use crate::domain::command::AuditQuery;
use crate::domain::html::escape;
use crate::storage;
use chrono::{DateTime, Utc};

pub(super) async fn audit(ctx: &Ctx<'_>, query: &AuditQuery) -> ExecResult {
    let pool = ctx.engine.pool();
    match query {
        AuditQuery::Verify => {
            let report = storage::audit::verify(pool).await?;
            Ok(Reply::html(match report.broken {
                None => format!("✅ Audit chain intact: {} rows verified.", report.rows),
                Some(b) => format!(
                    "❌ Audit chain broken at row <code>{}</code>: {}.",
                    b.seq,
                    escape(&b.reason)
                ),
            }))
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
