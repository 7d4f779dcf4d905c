//! Escalation: an open alert that was pushed and that nobody acknowledged (nor silenced)
//! within `escalate_after_secs` of its page is pushed once more to `[logins]
//! escalation_chats`, saying who was paged and when, with Ack and Details buttons bound to
//! that chat. Each alert escalates once: the sweep claims it (`escalated_at`) in the
//! transaction that queues the pushes, so replicas sweeping side by side never send it twice.

use crate::config::LoginSettings;
use crate::domain::html::escape;
use crate::domain::{Button, Reply};
use crate::engine::gates::CHAT_ACTION_PREFIX;
use crate::storage::pending;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// An alert due for escalation: id, when it was paged, its page's text, and the outbox
/// rows that paged it (chat, when sent).
type Due = (i64, DateTime<Utc>, String, Vec<i64>);

/// Escalate every due alert; returns their ids.
pub async fn escalate_due(
    pool: &PgPool,
    settings: &LoginSettings,
) -> Result<Vec<i64>, sqlx::Error> {
    if settings.escalation_chats.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = pool.begin().await?;
    let due: Vec<Due> = sqlx::query_as(
        "UPDATE login_alerts a SET escalated_at = now()
         FROM (SELECT id FROM login_alerts
               WHERE state = 'open' AND escalated_at IS NULL AND acked_by IS NULL
                 AND NOT silenced AND cardinality(outbox_ids) > 0
                 AND fired_at <= now() - $1 * interval '1 second'
               ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED) d
         WHERE a.id = d.id
         RETURNING a.id, a.fired_at,
           coalesce((SELECT html FROM outbox WHERE id = a.outbox_ids[1]), ''), a.outbox_ids",
    )
    .bind(settings.escalate_after_secs as f64)
    .fetch_all(&mut *tx)
    .await?;
    let ttl = chrono::Duration::seconds(settings.button_ttl_secs);
    for (id, fired_at, page, outbox_ids) in &due {
        let paged: Vec<(i64, Option<DateTime<Utc>>)> =
            sqlx::query_as("SELECT chat_id, sent_at FROM outbox WHERE id = ANY($1) ORDER BY id")
                .bind(outbox_ids)
                .fetch_all(&mut *tx)
                .await?;
        let text = escalation_text(*id, *fired_at, page, &paged, Utc::now());
        for &chat in &settings.escalation_chats {
            let mut buttons = Vec::with_capacity(2);
            for (label, command) in [
                ("✅ Ack", format!("/ack {id}")),
                ("🔎 Details", format!("/alerts {id}")),
            ] {
                let action = pending::create_for_chat(&mut *tx, chat, &command, ttl).await?;
                buttons.push(Button {
                    label: label.into(),
                    data: format!("{CHAT_ACTION_PREFIX}{action}"),
                });
            }
            let reply = Reply::html(text.clone()).with_buttons(buttons);
            let source = format!("alert-escalation:{id}");
            crate::outbox::enqueue(&mut *tx, chat, &reply, &source).await?;
        }
    }
    tx.commit().await?;
    let ids: Vec<i64> = due.iter().map(|d| d.0).collect();
    for id in &ids {
        tracing::info!(alert.id = id, "logins.alert.escalated");
    }
    Ok(ids)
}

/// What the escalation says: how long it has gone unacknowledged, who was paged and when,
/// then the page itself (already escaped when it was queued).
pub fn escalation_text(
    id: i64,
    fired_at: DateTime<Utc>,
    page: &str,
    paged: &[(i64, Option<DateTime<Utc>>)],
    now: DateTime<Utc>,
) -> String {
    let minutes = (now - fired_at).num_minutes().max(0);
    let who: Vec<String> = paged
        .iter()
        .map(|(chat, sent)| match sent {
            Some(at) => format!("chat {chat} at {}", at.format("%H:%M:%S UTC")),
            None => format!("chat {chat} (not delivered yet)"),
        })
        .collect();
    format!(
        "⏫ <b>Unacknowledged for {minutes} min: alert #{id}</b>\npaged {} · raised {}\n\n{page}",
        escape(&who.join(", ")),
        fired_at.format("%Y-%m-%d %H:%M:%S UTC"),
    )
}

/// Sweep for due escalations every few seconds until `shutdown` (off without chats).
pub fn spawn(
    pool: PgPool,
    settings: LoginSettings,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) {
    if settings.escalation_chats.is_empty() {
        return;
    }
    let every = Duration::from_secs((settings.escalate_after_secs / 10).clamp(1, 30));
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {
                    if let Err(e) = escalate_due(&pool, &settings).await {
                        tracing::warn!(error = %e, "logins.escalation_failed");
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_escalation_says_how_long_who_was_paged_and_when() {
        let fired = Utc.with_ymd_and_hms(2026, 1, 2, 3, 0, 0).unwrap();
        let sent = fired + chrono::Duration::seconds(2);
        let text = escalation_text(
            7,
            fired,
            "🚨 <b>Brute force</b>",
            &[(-100, Some(sent)), (-200, None)],
            fired + chrono::Duration::minutes(16),
        );
        assert_eq!(
            text,
            "⏫ <b>Unacknowledged for 16 min: alert #7</b>\npaged chat -100 at 03:00:02 UTC, \
             chat -200 (not delivered yet) · raised 2026-01-02 03:00:00 UTC\n\n🚨 <b>Brute force</b>"
        );
    }
}
