//! The housekeeping loop every replica runs: expired update ids, done inbox rows, TOTP
//! enrolments, approval requests and pending actions, each swept idempotently.

use super::Engine;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Hourly: forget processed update ids Telegram can no longer retry, and stored updates
/// done for an hour (`storage::inbox`). Every
/// `[gates] sweep_interval_ms`: remove expired TOTP enrolments (queueing the deletion of the
/// messages that showed them), end expired approvals and prune expired pending actions. Each step is idempotent,
/// so replicas may run it side by side.
pub fn spawn(engine: Engine, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut hourly = tokio::time::interval(Duration::from_secs(3600));
        let gates = engine.settings().gates.clone();
        let mut sweep = tokio::time::interval(Duration::from_millis(gates.sweep_interval_ms));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = hourly.tick() => {
                    if let Err(e) = crate::storage::updates::prune(engine.pool()).await {
                        tracing::warn!(error = %e, "housekeeping.prune_failed");
                    }
                    let done = crate::storage::inbox::prune_done(engine.pool(), Duration::from_secs(3600));
                    if let Err(e) = done.await {
                        tracing::warn!(error = %e, "housekeeping.inbox_prune_failed");
                    }
                }
                _ = sweep.tick() => {
                    if let Err(e) = super::totp::sweep_expired(engine.pool()).await {
                        tracing::warn!(error = %e, "housekeeping.totp_sweep_failed");
                    }
                    if let Err(e) = super::approval::sweep_expired(engine.pool(), engine.audit()).await {
                        tracing::warn!(error = %e, "housekeeping.approval_sweep_failed");
                    }
                    let pruned = crate::storage::pending::prune_expired(engine.pool(), gates.pending_keep_secs);
                    match pruned.await {
                        Ok(n) if n > 0 => tracing::debug!(rows = n, "housekeeping.pending_pruned"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "housekeeping.pending_prune_failed"),
                    }
                }
            }
        }
    });
}
