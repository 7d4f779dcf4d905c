//! Taking up stored updates: those stored waiting (no replica had room to run them; they
//! run now) and those whose replica died (their lease ran out). Every replica runs this
//! loop. An update whose request has no audit attempt never started and runs now, under
//! its stored request id. One with an attempt and no outcome was interrupted mid-run: it is
//! not run again; its outcome is audited as `interrupted` and the user is told, through the
//! outbox, with the request id. One whose outcome is audited finished, but its reply may
//! not have been sent: the user is told that too.

use super::Telegram;
use super::inbox::{Lease, Stored, lease_of};
use super::work::Slot;
use crate::domain::Reply;
use crate::domain::audit::{AuditEntry, Phase};
use crate::domain::html::escape;
use crate::storage::audit::for_request;
use crate::storage::inbox;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Stored updates taken up per pass, at most.
const BATCH: usize = 50;
/// Takes after which an update that keeps killing its replica is given up (and reported).
const MAX_TAKES: i32 = 5;
/// The outbox source of the notices.
const SOURCE: &str = "inbox";

/// Take up waiting updates as soon as they are stored and there is room, and look for
/// expired leases every quarter lease (at most every second), until shutdown. Each taken-up
/// update runs in a work slot taken before its row is leased: never more than the bound.
pub fn spawn(tg: Telegram, shutdown: CancellationToken) {
    let every = (lease_of(&tg) / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
                _ = tg.work().waiting() => {}
            }
            // While rows come back as many as there were slots, more may be due.
            loop {
                let slots = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    slots = tg.work().take_some(BATCH) => slots,
                };
                let room = slots.len();
                match inbox::take_expired(tg.engine.pool(), lease_of(&tg), room as i64).await {
                    Ok(rows) => {
                        let more = rows.len() == room;
                        for (row, slot) in rows.into_iter().zip(slots) {
                            tg.track(take_up(tg.clone(), row, slot));
                        }
                        if !more {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "inbox.take_expired_failed");
                        break;
                    }
                }
            }
        }
    });
}

/// What the audit log says of a request.
enum Audited {
    NeverStarted,
    /// The attempt without an outcome (or with the `interrupted` outcome a re-taker wrote).
    Interrupted(Option<Box<AuditEntry>>),
    Finished(String),
}

async fn audited(tg: &Telegram, request_id: &str) -> Result<Audited, sqlx::Error> {
    let rows = for_request(tg.engine.pool(), request_id).await?;
    let (attempts, outcomes): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .map(|r| r.entry)
        .partition(|e| e.phase == Phase::Attempt.as_str());
    Ok(match outcomes.last() {
        _ if attempts.is_empty() => Audited::NeverStarted,
        _ if attempts.len() > outcomes.len() => {
            Audited::Interrupted(attempts.last().cloned().map(Box::new))
        }
        Some(o) if o.outcome.as_deref() == Some("interrupted") => Audited::Interrupted(None),
        Some(o) => Audited::Finished(o.outcome.clone().unwrap_or_default()),
        None => Audited::NeverStarted,
    })
}

async fn take_up(tg: Telegram, row: inbox::Taken, slot: Slot) {
    let lease = Lease {
        update_id: row.update_id,
        takes: row.takes,
    };
    let request_id = row.request_id.to_string();
    let stored: Stored = match serde_json::from_value(row.incoming) {
        Ok(stored) => stored,
        Err(e) => {
            tracing::error!(error = %e, update.id = lease.update_id, "inbox.unreadable");
            let _ = inbox::finish(tg.engine.pool(), lease.update_id, lease.takes).await;
            return;
        }
    };
    if lease.takes == 1 {
        // Stored waiting (`takes` 0): no replica ever ran it, nothing to ask the audit log.
        metrics::counter!("opsguard_inbox_taken_up_total", "state" => "waited").increment(1);
        tg.dispatch(stored.incoming(row.request_id), Some(lease), slot);
        return;
    }
    let state = match audited(&tg, &request_id).await {
        Ok(state) => state,
        Err(e) => {
            // Left leased: taken up again when the lease runs out.
            tracing::warn!(error = %e, request.id = %request_id, "inbox.audit_read_failed");
            return;
        }
    };
    let chat = stored.chat_id;
    let (kind, html) = match state {
        Audited::NeverStarted if lease.takes <= MAX_TAKES => {
            metrics::counter!("opsguard_inbox_taken_up_total", "state" => "never_started")
                .increment(1);
            tracing::info!(update.id = lease.update_id, request.id = %request_id, "inbox.taken_up");
            tg.dispatch(stored.incoming(row.request_id), Some(lease), slot);
            return;
        }
        Audited::NeverStarted => (
            "given_up",
            format!(
                "⚠️ Your message could not be processed: each replica that took it stopped first. It was not run. Request <code>{}</code>.",
                escape(&request_id)
            ),
        ),
        Audited::Interrupted(attempt) => {
            if let Some(attempt) = attempt
                && let Err(e) = record_interrupted(&tg, *attempt).await
            {
                tracing::warn!(error = %e, request.id = %request_id, "inbox.interrupted_audit_failed");
                return;
            }
            (
                "interrupted",
                format!(
                    "⚠️ Your command was interrupted (the replica running it stopped) and was not run again. Request <code>{}</code>: check /audit, then retry if needed.",
                    escape(&request_id)
                ),
            )
        }
        Audited::Finished(outcome) => (
            "finished",
            format!(
                "ℹ️ Your command finished (outcome: {}), but the replica that ran it stopped before its reply was confirmed. If you got no reply, see /audit. Request <code>{}</code>.",
                escape(&outcome),
                escape(&request_id)
            ),
        ),
    };
    metrics::counter!("opsguard_inbox_taken_up_total", "state" => kind).increment(1);
    tracing::warn!(update.id = lease.update_id, request.id = %request_id, inbox.state = kind, "inbox.taken_up");
    if let Err(e) = notify(&tg, lease, chat, &Reply::html(html)).await {
        tracing::warn!(error = %e, request.id = %request_id, "inbox.notice_failed");
    }
}

/// The outcome row of an interrupted request: its attempt's row, as an `interrupted` outcome.
async fn record_interrupted(tg: &Telegram, attempt: AuditEntry) -> Result<(), String> {
    let now = chrono::Utc::now().timestamp_micros();
    let entry = AuditEntry {
        phase: Phase::Outcome.as_str().into(),
        at_micros: now,
        outcome: Some("interrupted".into()),
        error: Some("the replica running it stopped before it finished; not run again".into()),
        duration_ms: Some((now - attempt.at_micros) / 1000),
        ..attempt
    };
    tg.engine
        .audit()
        .append(entry)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Queue the notice and mark the update done, in one transaction: told once.
async fn notify(tg: &Telegram, lease: Lease, chat: i64, reply: &Reply) -> Result<(), sqlx::Error> {
    let mut tx = tg.engine.pool().begin().await?;
    if inbox::finish(&mut *tx, lease.update_id, lease.takes).await? {
        crate::outbox::enqueue(&mut *tx, chat, reply, SOURCE).await?;
    }
    tx.commit().await
}
