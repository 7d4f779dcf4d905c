//! The rotation worker: every replica ticks on a timer (and once at start), resuming
//! rotations a crashed replica left (their lease ran out), retrying failed steps whose
//! backoff is over, and revoking previous versions whose grace period has ended. Each tick
//! is idempotent: the next one is the retry.

use super::catalog::Catalog;
use super::rotate::Rotations;
use super::vault::{self, MasterKey};
use crate::config::Settings;
use anyhow::Context;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Open the vault at start-up: parse `[[secrets]]`, and when secrets are configured or the
/// vault holds anything, require a master key that opens it. `None`: nothing to manage.
pub async fn open(pool: &PgPool, settings: &Settings) -> anyhow::Result<Option<Arc<Rotations>>> {
    let catalog = Catalog::build(settings)?;
    let in_use = vault::in_use(pool)
        .await
        .context("cannot read the secrets vault")?;
    if catalog.is_empty() && !in_use && settings.master_key.as_ref().is_none_or(|k| k.is_empty()) {
        return Ok(None);
    }
    let key = MasterKey::parse(settings.master_key.as_ref())?;
    key.check(pool).await?;
    Ok(Some(Arc::new(Rotations::new(
        pool.clone(),
        key,
        Arc::new(catalog),
        settings.rotation.clone(),
    ))))
}

pub fn spawn(
    rotations: Arc<Rotations>,
    every: Duration,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) {
    tracker.spawn(async move {
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
