//! The outbox: pushes that are not direct replies (scheduled reports, alerts) are written
//! to PostgreSQL first and delivered by a worker, so nothing is lost while Telegram or the
//! process is down. `enqueue` is the only way in.

pub mod dead;
pub mod pace;
pub mod send;
pub mod store;
pub mod worker;

use crate::domain::Reply;

/// Queue a reply for delivery to a chat; returns the outbox row id. Only the text and
/// buttons are queued: a reply's attachment (a report document) is not carried by the
/// outbox, so a scheduled `/check all json` delivers its summary text only. `executor` is a
/// pool, or a transaction when the push must commit with other writes (an alert). A group
/// Telegram upgraded to a supergroup (`chat_moves`) gets it under its new id.
pub async fn enqueue<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    chat_id: i64,
    reply: &Reply,
    source: &str,
) -> Result<i64, sqlx::Error> {
    let buttons: Vec<serde_json::Value> = reply
        .buttons
        .iter()
        .map(|b| serde_json::json!({ "label": b.label, "data": b.data }))
        .collect();
    sqlx::query_scalar(
        "INSERT INTO outbox (chat_id, html, buttons, source)
         VALUES (COALESCE((SELECT new_id FROM chat_moves WHERE old_id = $1), $1), $2, $3, $4)
         RETURNING id",
    )
    .bind(chat_id)
    .bind(&reply.html)
    .bind(serde_json::Value::Array(buttons))
    .bind(source)
    .fetch_one(executor)
    .await
}

/// Queue the deletion of a message the bot sent (`deleteMessage`): a message that showed a
/// secret (a TOTP enrolment URI), deleted even if Telegram or the process is down now.
pub async fn enqueue_delete<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    chat_id: i64,
    message_id: i64,
    source: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO outbox (chat_id, html, source, delete_message) VALUES ($1, '', $2, $3) RETURNING id",
    )
    .bind(chat_id)
    .bind(source)
    .bind(message_id)
    .fetch_one(executor)
    .await
}

/// Whether an edit keeps the buttons its message was sent with, or takes them off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditButtons {
    Keep,
    Remove,
}

/// Queue an edit of the message outbox row `of` delivered (a progress message, an alert),
/// sent no sooner than `every` after the previous edit of it (or after the message itself;
/// `Duration::ZERO`: as soon as the chat allows). A pending edit not yet leased takes the new
/// text and keeps its time instead of a new row being queued, so a slow chat gets the latest
/// text, not a backlog, and a message is edited at most once per `every`. One statement;
/// `executor` may be the transaction that decided the edit. Returns the edit's row, or `None`
/// when `of` is no longer in the outbox (pruned) or could not be delivered (dead).
pub async fn enqueue_edit<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    of: i64,
    html: &str,
    every: std::time::Duration,
    buttons: EditButtons,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH pending AS (
           UPDATE outbox SET html = $2,
             buttons = CASE WHEN $4 THEN (SELECT buttons FROM outbox WHERE id = $1)
                            ELSE '[]'::jsonb END
           WHERE id = (SELECT id FROM outbox
                       WHERE edit_of = $1 AND status = 'pending' AND lease_until IS NULL
                       ORDER BY id DESC LIMIT 1 FOR UPDATE SKIP LOCKED)
           RETURNING id),
         queued AS (
           INSERT INTO outbox (chat_id, html, buttons, source, edit_of, not_before)
           SELECT o.chat_id, $2, CASE WHEN $4 THEN o.buttons ELSE '[]'::jsonb END, o.source, o.id,
                  greatest(now(), coalesce((SELECT max(e.not_before) FROM outbox e
                                            WHERE e.edit_of = o.id), o.created_at)
                                  + $3 * interval '1 millisecond')
           FROM outbox o
           WHERE o.id = $1 AND o.status <> 'dead' AND NOT EXISTS (SELECT 1 FROM pending)
           RETURNING id)
         SELECT id FROM pending UNION ALL SELECT id FROM queued",
    )
    .bind(of)
    .bind(html)
    .bind(every.as_millis() as f64)
    .bind(buttons == EditButtons::Keep)
    .fetch_optional(executor)
    .await
}
