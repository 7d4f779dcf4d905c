//! The outbox worker: claims due rows, sends them through the bot and records the results
//! in the transaction that claimed them. Every replica runs one.
//!
//! # Delivery: at least once, and at most the row in flight twice
//! A pass leases due rows in one short transaction (`SELECT … FOR UPDATE SKIP LOCKED`, at
//! most one per chat: a chat's oldest pending row, then `lease_until` set and committed), so
//! no other replica takes them while they are sent. Each row's result (`sent`, or its error
//! and next attempt, or `dead`) is committed as soon as its own send finishes, ending the
//! lease (results that finish while a record statement runs go together in the next one).
//! A worker that dies leaves leased rows behind; when the lease runs out (longer than any
//! send may take) they are claimable again and sent by whoever comes next.
//!
//! The one window left is between Telegram accepting a message and its result being
//! committed: a crash there sends that row again. We chose at-least-once over at-most-once
//! because a lost alert is worse than a repeated one; the window is one row wide per chat
//! (a pass holds at most one row of a chat), and a graceful shutdown never opens it (the
//! pass in progress finishes and records first).
//!
//! # Order and pacing
//! Only a chat's oldest pending row is claimable, and while it is leased to one replica
//! the next row of that chat is not claimable by any other, so a chat's messages go out in
//! `id` order (the claim's probes start at per-chat bounds: `heads`). A dead-lettered row
//! no longer holds its chat back. Per chat (1 per second) and per group (20 per minute)
//! limits are read from the committed `sent_at` of earlier rows in the claiming query, so
//! they hold across replicas. The overall limit (30 per second) is a token bucket row in
//! PostgreSQL, taken in a short statement of its own after the claim; rows claimed beyond
//! the tokens granted are left untouched for the next pass. Direct replies (`bot::paced`)
//! reserve their slots in the same limits (`pace`), and the claim counts them.

use super::dead::DeadLetter;
use super::send::send;
use super::store;
use crate::config::OutboxSettings;
use crate::engine::health::Deliveries;
use futures::{StreamExt, future::BoxFuture, stream::FuturesUnordered};
use sqlx::PgPool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use teloxide::Bot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub claimed: usize,
    pub sent: usize,
    pub failed: usize,
    /// The overall limit held rows back.
    pub throttled: bool,
}

pub struct Worker {
    pool: PgPool,
    bot: Bot,
    settings: OutboxSettings,
    /// Where each push's result is reported (`/readyz` says whether any chat works).
    deliveries: Arc<Deliveries>,
    /// Where the claim's probes start in each chat.
    heads: Mutex<super::heads::Heads>,
}

const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Run the worker until `shutdown`; tracked, so shutdown waits for the batch in progress.
pub fn spawn(
    pool: PgPool,
    bot: Bot,
    settings: OutboxSettings,
    deliveries: Arc<Deliveries>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) {
    let mut worker = Worker::new(pool, bot, settings);
    worker.deliveries = deliveries;
    tracker.spawn(async move { worker.run(shutdown).await });
}

impl Worker {
    pub fn new(pool: PgPool, bot: Bot, settings: OutboxSettings) -> Self {
        Worker {
            pool,
            bot,
            settings,
            deliveries: Arc::default(),
            heads: Mutex::default(),
        }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!("outbox.worker_started");
        let mut pruned_at: Option<Instant> = None;
        while !shutdown.is_cancelled() {
            // A pass is never interrupted: its sends finish and its results are committed.
            let wait = match self.pass().await {
                Ok(pass) if pass.throttled => self.throttle_wait(),
                // Something went: the next heads may be due at once (pacing lifted, or
                // other chats), so look again before sleeping; an empty pass sleeps.
                Ok(pass) if pass.claimed > 0 => Duration::ZERO,
                Ok(_) => self.settings.poll_interval(),
                Err(e) => {
                    tracing::warn!(error = %e, "outbox.pass_failed");
                    self.settings.poll_interval().max(Duration::from_secs(1))
                }
            };
            if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                pruned_at = Some(Instant::now());
                store::prune(&self.pool, self.settings.keep_sent_days).await;
            }
            if wait.is_zero() {
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!("outbox.worker_stopped");
    }

    /// Until the overall bucket holds a token again.
    fn throttle_wait(&self) -> Duration {
        let rate = f64::from(self.settings.global_per_second.max(1)) * 0.9;
        Duration::from_secs_f64(1.0 / rate).min(self.settings.poll_interval())
    }

    /// Lease a batch (committed at once), send it, and record each row's result as soon as
    /// its own send finishes (see `send_and_record`).
    pub async fn pass(&self) -> Result<Pass, sqlx::Error> {
        let s = &self.settings;
        // Longer than any send may take, so a live worker never loses a lease mid-send.
        let lease = Duration::from_millis(s.send_timeout_ms) + Duration::from_secs(10);
        let probe = self.heads.lock().unwrap().probe(Instant::now());
        let claimed = store::claim(
            &self.pool,
            i64::from(s.batch_size),
            Duration::from_millis(s.per_chat_interval_ms),
            s.group_per_minute,
            lease,
            &probe,
        )
        .await;
        // A failed claim: the next pass probes fully (as after one that claimed nothing).
        let seen = claimed.as_ref().ok().and_then(|(_, seen)| seen.clone());
        self.heads.lock().unwrap().learn(&probe, seen);
        let mut rows = claimed?.0;
        let claimed = rows.len();
        if claimed == 0 {
            return Ok(Pass::default());
        }
        let mut throttled = false;
        if s.global_per_second > 0 {
            let granted = store::take_tokens(&self.pool, s.global_per_second, claimed as i64)
                .await?
                .max(0) as usize;
            if granted < claimed {
                throttled = true;
                let held: Vec<i64> = rows.split_off(granted).iter().map(|r| r.id).collect();
                store::release(&self.pool, &held).await?;
            }
            if rows.is_empty() {
                return Ok(Pass {
                    claimed,
                    throttled,
                    ..Pass::default()
                });
            }
        }
        let outcomes = self.send_and_record(&rows).await;
        let sent = outcomes.iter().filter(|o| o.sent).count();
        let failed = outcomes.len() - sent;
        metrics::counter!("opsguard_outbox_sent_total").increment(sent as u64);
        if failed > 0 {
            metrics::counter!("opsguard_outbox_failures_total").increment(failed as u64);
            for o in outcomes.iter().filter(|o| !o.sent) {
                tracing::warn!(
                    outbox.id = o.id,
                    error = o.error.as_deref().unwrap_or_default(),
                    retry_in_ms = o.retry_in.as_millis() as u64,
                    "outbox.send_failed"
                );
            }
        }
        Ok(Pass {
            claimed,
            sent,
            failed,
            throttled,
        })
    }

    /// Send `rows` at once and record their results as they come: the results that finish
    /// while one record statement runs go together in the next (a group commit), so a pass
    /// costs a few commits, not one per row, and no result waits for the rest of the batch.
    /// A crash can still send again only rows whose send finished and whose result was not
    /// yet committed: those in flight, as before.
    async fn send_and_record(&self, rows: &[store::Claimed]) -> Vec<store::Outcome> {
        let s = &self.settings;
        let mut sends: FuturesUnordered<_> = rows
            .iter()
            .map(|row| async move { (row, send(&self.bot, s, row).await) })
            .collect();
        let mut waiting: Vec<store::Outcome> = Vec::new();
        type Recorded = (Vec<store::Outcome>, Vec<DeadLetter>);
        let mut recording: Option<BoxFuture<'_, Recorded>> = None;
        let mut done = Vec::with_capacity(rows.len());
        let mut dead = Vec::new();
        loop {
            if recording.is_none() && !waiting.is_empty() {
                recording = Some(Box::pin(self.record(std::mem::take(&mut waiting))));
            }
            let Some(record) = recording.as_mut() else {
                if sends.is_empty() {
                    // Told after the pass's results are all committed, never in their way.
                    super::dead::announce(&self.pool, &dead).await;
                    return done;
                }
                if let Some((row, outcome)) = sends.next().await {
                    self.sent(row, &outcome).await;
                    waiting.push(outcome);
                }
                continue;
            };
            tokio::select! {
                Some((row, outcome)) = sends.next(), if !sends.is_empty() => {
                    self.sent(row, &outcome).await;
                    waiting.push(outcome);
                }
                (recorded, new_dead) = record => {
                    recording = None;
                    done.extend(recorded);
                    dead.extend(new_dead);
                }
            }
        }
    }

    /// What follows one send at once: its delivery reported, a chat upgraded followed.
    async fn sent(&self, row: &store::Claimed, outcome: &store::Outcome) {
        self.deliveries.record(if outcome.sent {
            None
        } else {
            Some(outcome.error.as_deref().unwrap_or("no answer"))
        });
        if let Some(new) = outcome.moved_to {
            match crate::storage::chats::moved(&self.pool, row.chat_id, new).await {
                Ok(rows) => {
                    // Rows moved in below the new chat's bound: the next pass looks fully.
                    self.heads.lock().unwrap().rescan();
                    tracing::info!(
                        chat.old = row.chat_id,
                        chat.new = new,
                        outbox.moved = rows,
                        "outbox.chat_upgraded"
                    )
                }
                Err(e) => {
                    tracing::error!(error = %e, chat.old = row.chat_id, "outbox.chat_move_failed")
                }
            }
        }
    }

    /// Commit a group of results (ending their leases); a group the store refuses is tried
    /// once more, then row by row, so one bad row does not leave the others' leases to run
    /// out (and those rows to be sent again). Returns the new dead letters with the results.
    async fn record(
        &self,
        outcomes: Vec<store::Outcome>,
    ) -> (Vec<store::Outcome>, Vec<DeadLetter>) {
        let max = self.settings.max_attempts;
        let mut dead = Vec::new();
        let mut tries = 0;
        let failed = loop {
            match store::record(&self.pool, &outcomes, max).await {
                Ok(d) => return (outcomes, d),
                Err(e) if tries == 0 => {
                    tracing::warn!(error = %e, outbox.rows = outcomes.len(), "outbox.record_retried");
                    tries += 1;
                }
                Err(e) => break e,
            }
        };
        if outcomes.len() == 1 {
            tracing::error!(error = %failed, outbox.id = outcomes[0].id, "outbox.record_failed");
            return (outcomes, dead);
        }
        for outcome in &outcomes {
            match store::record(&self.pool, std::slice::from_ref(outcome), max).await {
                Ok(d) => dead.extend(d),
                Err(e) => {
                    tracing::error!(error = %e, outbox.id = outcome.id, "outbox.record_failed")
                }
            }
        }
        (outcomes, dead)
    }
}
