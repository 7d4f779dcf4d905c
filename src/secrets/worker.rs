//! The rotation worker: every replica ticks on a timer (and once at start), resuming
//! rotations a crashed replica left (their lease ran out), retrying failed steps whose
//! backoff is over, and revoking previous versions whose grace period has ended (failed
//! retirements after their own backoff). Each tick is idempotent: the next one is the
//! retry. At start it runs the preflight and warns of every missing grant.

use super::rotate::Rotations;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub fn spawn(
    rotations: Arc<Rotations>,
    every: Duration,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) {
    tracker.spawn(async move {
        // Missing grants are said at start (a warning each), before anything is retried.
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = super::preflight::at_start(rotations.catalog()) => {}
        }
        loop {
            match rotations.tick().await {
                Ok(outcomes) => {
                    for outcome in outcomes {
                        tracing::info!(?outcome, "secrets.rotation_resumed");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "secrets.tick_failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
    });
}
