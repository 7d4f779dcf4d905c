//! The outbox worker: claims due rows, sends them through the bot and records the results
//! in the transaction that claimed them. Every replica runs one.
//!
//! # Delivery: at least once
//! A batch is one transaction: `SELECT … FOR UPDATE SKIP LOCKED` claims the rows (at most
//! one per chat: a chat's oldest pending row), the sends run, and the same transaction marks
//! each row `sent`, or records its error and next attempt, then commits. A replica that
//! dies mid-batch leaves no trace: PostgreSQL drops its locks and rolls its transaction
//! back, so the rows are pending again and another replica (or this one, restarted) sends
//! them. No lease to expire, no row stuck "in flight".
//!
//! The one window left is between Telegram accepting a message and the commit (a crash,
//! a lost database connection, a commit that fails): that row is sent again. We chose
//! at-least-once over at-most-once because a lost alert is worse than a repeated one; the
//! window is one batch's commit wide, and a graceful shutdown never opens it (the batch in
//! progress finishes and commits before the worker stops).
//!
//! # Order and pacing
//! Only a chat's oldest pending row is claimable, and while it is locked by one replica
//! the next row of that chat is not claimable by any other, so a chat's messages go out in
//! `id` order. A dead-lettered row no longer holds its chat back.
//! Per chat (1 per second) and per group (20 per minute) limits are read from the committed
//! `sent_at` of earlier rows in the claiming query, so they hold across replicas. The
//! overall limit (30 per second) is a token bucket row in PostgreSQL, taken in a short
//! statement of its own after the claim; rows claimed beyond the tokens granted are left
//! untouched for the next pass. Direct replies (`bot::send`) are not paced here.

use super::send::send;
use super::store;
use crate::config::OutboxSettings;
use sqlx::PgPool;
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
}

const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Run the worker until `shutdown`; tracked, so shutdown waits for the batch in progress.
pub fn spawn(
    pool: PgPool,
    bot: Bot,
    settings: OutboxSettings,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) {
    let worker = Worker::new(pool, bot, settings);
    tracker.spawn(async move { worker.run(shutdown).await });
}

impl Worker {
    pub fn new(pool: PgPool, bot: Bot, settings: OutboxSettings) -> Self {
        Worker {
            pool,
            bot,
            settings,
        }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!("outbox.worker_started");
        let mut pruned_at: Option<Instant> = None;
        while !shutdown.is_cancelled() {
            // A pass is never interrupted: its sends finish and its results are committed.
            let wait = match self.pass().await {
                Ok(pass) if pass.throttled => self.throttle_wait(),
                Ok(pass) if pass.claimed >= self.settings.batch_size as usize => Duration::ZERO,
                Ok(_) => self.settings.poll_interval(),
                Err(e) => {
                    tracing::warn!(error = %e, "outbox.pass_failed");
                    self.settings.poll_interval().max(Duration::from_secs(1))
                }
            };
            if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                pruned_at = Some(Instant::now());
                match store::prune_sent(&self.pool, self.settings.keep_sent_days).await {
                    Ok(n) if n > 0 => tracing::info!(rows = n, "outbox.pruned"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "outbox.prune_failed"),
                }
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

    /// Claim a batch, send it, record the results, commit.
    pub async fn pass(&self) -> Result<Pass, sqlx::Error> {
        let s = &self.settings;
        let mut tx = self.pool.begin().await?;
        let mut rows = store::claim(
            &mut tx,
            i64::from(s.batch_size),
            Duration::from_millis(s.per_chat_interval_ms),
            s.group_per_minute,
        )
        .await?;
        let claimed = rows.len();
        if claimed == 0 {
            tx.rollback().await?;
            return Ok(Pass::default());
        }
        let mut throttled = false;
        if s.global_per_second > 0 {
            let granted = store::take_tokens(&self.pool, s.global_per_second, claimed as i64)
                .await?
                .max(0) as usize;
            if granted < claimed {
                throttled = true;
                rows.truncate(granted);
            }
            if rows.is_empty() {
                tx.rollback().await?;
                return Ok(Pass {
                    claimed,
                    throttled,
                    ..Pass::default()
                });
            }
        }
        let outcomes =
            futures::future::join_all(rows.iter().map(|row| send(&self.bot, s, row))).await;
        store::record(&mut tx, &outcomes, s.max_attempts).await?;
        tx.commit().await?;

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
}
