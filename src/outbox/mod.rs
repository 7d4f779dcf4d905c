//! The outbox: pushes that are not direct replies (scheduled reports, alerts) are written
//! to PostgreSQL first and delivered by a worker, so nothing is lost while Telegram or the
//! process is down. `enqueue` is the only way in.

pub mod claim;
pub mod dead;
pub mod heads;
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
    let edits = [Edit {
        of,
        html: html.to_string(),
        buttons,
    }];
    Ok(enqueue_edits(executor, &edits, every).await?.pop())
}

/// One edit of `enqueue_edits`: of the message outbox row `of` delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub of: i64,
    pub html: String,
    pub buttons: EditButtons,
}

/// `enqueue_edit` for many messages in ONE statement (each `of` at most once): what an
/// alert batch that counted on many alerts queues. Returns the edits' rows (pending ones
/// that took the new text, and new ones), in no particular order.
pub async fn enqueue_edits<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    edits: &[Edit],
    every: std::time::Duration,
) -> Result<Vec<i64>, sqlx::Error> {
    if edits.is_empty() {
        return Ok(Vec::new());
    }
    let of: Vec<i64> = edits.iter().map(|e| e.of).collect();
    let html: Vec<&str> = edits.iter().map(|e| e.html.as_str()).collect();
    let keep: Vec<bool> = edits
        .iter()
        .map(|e| e.buttons == EditButtons::Keep)
        .collect();
    sqlx::query_scalar(
        "WITH target AS (
           SELECT i.of_id, i.html, i.keep,
                  (SELECT e.id FROM outbox e
                   WHERE e.edit_of = i.of_id AND e.status = 'pending' AND e.lease_until IS NULL
                   ORDER BY e.id DESC LIMIT 1 FOR UPDATE SKIP LOCKED) AS edit_id
           FROM UNNEST($1::bigint[], $2::text[], $3::bool[]) AS i(of_id, html, keep)),
         pending AS (
           UPDATE outbox o SET html = t.html,
             buttons = CASE WHEN t.keep THEN (SELECT m.buttons FROM outbox m WHERE m.id = t.of_id)
                            ELSE '[]'::jsonb END
           FROM target t WHERE o.id = t.edit_id
           RETURNING o.id, o.edit_of),
         queued AS (
           INSERT INTO outbox (chat_id, html, buttons, source, edit_of, not_before)
           SELECT o.chat_id, t.html, CASE WHEN t.keep THEN o.buttons ELSE '[]'::jsonb END,
                  o.source, o.id,
                  greatest(now(), coalesce((SELECT max(e.not_before) FROM outbox e
                                            WHERE e.edit_of = o.id), o.created_at)
                                  + $4 * interval '1 millisecond')
           FROM target t JOIN outbox o ON o.id = t.of_id
           WHERE o.status <> 'dead'
             AND NOT EXISTS (SELECT 1 FROM pending p WHERE p.edit_of = t.of_id)
           RETURNING id)
         SELECT id FROM pending UNION ALL SELECT id FROM queued",
    )
    .bind(&of)
    .bind(&html)
    .bind(&keep)
    .bind(every.as_millis() as f64)
    .fetch_all(executor)
    .await
}
