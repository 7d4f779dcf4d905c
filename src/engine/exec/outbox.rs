//! `/outbox [retry [id…]]`: the dead letters (pushes given up on after `max_attempts`) with
//! their chat, source, attempts and last error; or re-send them with a fresh count of
//! attempts (all, or the ids named). Ids that are not dead letters are named, and nothing
//! changes for them.

use super::{Ctx, ExecResult, when};
use crate::domain::Reply;
use crate::domain::command::OutboxAction;
use crate::domain::html::escape;
use crate::outbox::dead;

/// At most this many dead letters are listed (the newest).
const LISTED: i64 = 20;

pub(super) async fn outbox(ctx: &Ctx<'_>, action: &OutboxAction) -> ExecResult {
    let pool = ctx.engine.pool();
    match action {
        OutboxAction::DeadLetters => {
            let (total, rows) = dead::list(pool, LISTED).await?;
            if rows.is_empty() {
                return Ok(Reply::html("📭 No dead letters."));
            }
            let mut text = format!("☠️ {total} dead letter(s)");
            if total > rows.len() as i64 {
                text.push_str(&format!(", the newest {}", rows.len()));
            }
            text.push(':');
            for row in &rows {
                text.push_str(&format!(
                    "\n<code>#{}</code> to chat <code>{}</code> ({}), queued {}, {} attempts: {}",
                    row.id,
                    row.chat_id,
                    escape(&row.source),
                    when(row.created_at),
                    row.attempts,
                    escape(row.last_error.as_deref().unwrap_or("no error recorded"))
                ));
            }
            text.push_str(
                "\nRe-send with <code>/outbox retry [id…]</code> once the cause is fixed.",
            );
            Ok(Reply::html(text))
        }
        OutboxAction::Retry(ids) => {
            let requeued = dead::retry(pool, ids).await?;
            let list = |ids: &[i64]| {
                ids.iter()
                    .map(|i| format!("<code>#{i}</code>"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let mut text = if requeued.is_empty() {
                "No dead letter was re-queued.".to_string()
            } else {
                format!(
                    "📤 Re-queued {} dead letter(s): {}.",
                    requeued.len(),
                    list(&requeued)
                )
            };
            let missing: Vec<i64> = ids
                .iter()
                .copied()
                .filter(|i| !requeued.contains(i))
                .collect();
            if !missing.is_empty() {
                text.push_str(&format!(
                    "\nNot dead letters (unknown, pending or sent), left as they are: {}.",
                    list(&missing)
                ));
            }
            Ok(Reply::html(text))
        }
    }
}
