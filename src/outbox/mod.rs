//! The outbox: pushes that are not direct replies (scheduled reports, alerts) are written
//! to PostgreSQL first and delivered by a worker, so nothing is lost while Telegram or the
//! process is down. `enqueue` is the only way in.

pub mod send;
pub mod store;
pub mod worker;

use crate::domain::Reply;

/// Queue a reply for delivery to a chat; returns the outbox row id. Only the text and
/// buttons are queued: a reply's attachment (a report document) is not carried by the
/// outbox, so a scheduled `/check all json` delivers its summary text only. `executor` is a
/// pool, or a transaction when the push must commit with other writes (an alert).
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
        "INSERT INTO outbox (chat_id, html, buttons, source) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(chat_id)
    .bind(&reply.html)
    .bind(serde_json::Value::Array(buttons))
    .bind(source)
    .fetch_one(executor)
    .await
}

/// Queue an edit of the message outbox row `of` delivered (a progress message). A pending
/// edit of the same message not yet leased is overwritten instead of queued again, so a
/// slow chat gets the latest text, not a backlog. Returns the row holding the edit.
pub async fn enqueue_edit(
    pool: &sqlx::PgPool,
    of: i64,
    chat_id: i64,
    reply: &Reply,
) -> Result<i64, sqlx::Error> {
    let buttons = serde_json::Value::Array(
        reply
            .buttons
            .iter()
            .map(|b| serde_json::json!({ "label": b.label, "data": b.data }))
            .collect(),
    );
    let updated: Option<i64> = sqlx::query_scalar(
        "UPDATE outbox SET html = $2, buttons = $3
         WHERE id = (SELECT id FROM outbox
                     WHERE edit_of = $1 AND status = 'pending' AND lease_until IS NULL
                     ORDER BY id DESC LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id",
    )
    .bind(of)
    .bind(&reply.html)
    .bind(&buttons)
    .fetch_optional(pool)
    .await?;
    if let Some(id) = updated {
        return Ok(id);
    }
    sqlx::query_scalar(
        "INSERT INTO outbox (chat_id, html, buttons, source, edit_of)
         SELECT chat_id, $2, $3, source, id FROM outbox WHERE id = $1 AND chat_id = $4
         RETURNING id",
    )
    .bind(of)
    .bind(&reply.html)
    .bind(&buttons)
    .bind(chat_id)
    .fetch_one(pool)
    .await
}

/// Queue an edit of the message outbox row `of` delivered, with its buttons or (not
/// `keep_buttons`) none, sent no sooner than `every` after the previous edit of it (or after
/// the message itself). A pending edit not yet leased takes the new text and keeps its time,
/// so a message is edited at most once per `every` and always ends on the latest text. One
/// statement; `executor` may be the transaction that decided the edit. Returns the edit's
/// row, or `None` when `of` is no longer in the outbox (pruned) or could not be delivered.
pub async fn enqueue_paced_edit<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    of: i64,
    html: &str,
    every: std::time::Duration,
    keep_buttons: bool,
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
    .bind(keep_buttons)
    .fetch_optional(executor)
    .await
}
