//! The backup worker: every replica runs one. Each tick first fails the jobs whose process
//! died (their lease ran out: the catalogue row becomes failed, the partial object is
//! removed, the operator told), then claims and runs queued jobs one at a time, so a
//! replica's memory stays bounded. Idempotent: the next tick is the retry.

use super::Backups;
use super::catalogue;
use super::jobs;
use super::messages;
use super::run;
use super::storage::Storage;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub fn spawn(backups: Backups, shutdown: CancellationToken, tracker: &TaskTracker) {
    let every = Duration::from_millis(backups.settings().worker_interval_ms.max(50));
    tracker.spawn(async move {
        loop {
            if let Err(e) = tick(&backups, &shutdown).await {
                tracing::warn!(error = %e, "backups.tick_failed");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
    });
}

/// One pass: recover abandoned jobs, then run queued ones until none is left (or shutdown).
/// Returns how many jobs ran.
pub async fn tick(backups: &Backups, shutdown: &CancellationToken) -> Result<usize, sqlx::Error> {
    recover(backups).await?;
    let lease = Duration::from_secs(backups.settings().lease_secs.max(3));
    let mut ran = 0;
    while !shutdown.is_cancelled() {
        let Some(job) = jobs::claim(backups.pool(), lease).await? else {
            break;
        };
        tracing::info!(job.id = job.id, job.kind = %job.kind, backup.target = %job.target, "backups.job_started");
        run::run(backups, &job, shutdown).await;
        ran += 1;
    }
    Ok(ran)
}

/// Fail jobs cut off mid-run: nothing they wrote may be listed as good or left in storage,
/// and no scratch database may stay. One job's trouble does not stop the others' clean-up.
pub async fn recover(backups: &Backups) -> Result<(), sqlx::Error> {
    for job in jobs::fail_abandoned(backups.pool()).await? {
        let error = job.error.clone().unwrap_or_default();
        tracing::warn!(job.id = job.id, backup.target = %job.target, "backups.job_abandoned");
        if job.is_backup() {
            if let Err(e) = discard(backups, &job, &error).await {
                tracing::error!(job.id = job.id, error = %e, "backups.discard_failed");
            }
        } else {
            super::verify::abandoned(backups, &job, &error).await;
        }
        run::tell(backups, &job, &messages::failed(&job, &error)).await;
        run::alert(backups, &job, &error).await;
    }
    Ok(())
}

/// Remove what an abandoned backup job wrote and mark its catalogue row failed.
async fn discard(backups: &Backups, job: &super::jobs::Job, error: &str) -> Result<(), String> {
    let Some(b) = catalogue::of_job(backups.pool(), job.id)
        .await
        .map_err(|e| e.to_string())?
        .filter(|b| b.status == "writing")
    else {
        return Ok(());
    };
    let storage = Storage::open(&b.storage, backups.settings()).map_err(|e| e.to_string())?;
    storage
        .discard_partial(&b.storage_key)
        .await
        .map_err(|e| e.to_string())?;
    catalogue::mark_failed(backups.pool(), b.id, error)
        .await
        .map_err(|e| e.to_string())
}

/// For a console about to leave: run the jobs `user` queued since `since` that no one has
/// claimed yet, and say how each of them ended (or that it still runs elsewhere), as
/// (job id, line).
pub async fn finish_for(
    backups: &Backups,
    user: i64,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let lease = Duration::from_secs(backups.settings().lease_secs.max(3));
    let mut lines = Vec::new();
    for job in jobs::requested_since(backups.pool(), user, since).await? {
        let line = match job.status.as_str() {
            "queued" => match jobs::claim_this(backups.pool(), job.id, lease).await? {
                // The console is leaving: this job is its to finish, not to hand back.
                Some(claimed) => {
                    run::run(backups, &claimed, &CancellationToken::new())
                        .await
                        .text
                }
                None => format!(
                    "job #{} was taken by another replica (see /backups)",
                    job.id
                ),
            },
            "running" => format!("job #{} is still running elsewhere (see /backups)", job.id),
            _ => ended(backups, &job).await?,
        };
        lines.push((job.id, crate::domain::html::to_plain(&line)));
    }
    Ok(lines)
}

/// How a finished job ended, from its row and the catalogue.
async fn ended(backups: &Backups, job: &super::jobs::Job) -> Result<String, sqlx::Error> {
    if let Some(error) = &job.error {
        return Ok(messages::failed(job, error));
    }
    let backup = match job.backup_id {
        Some(id) => catalogue::get(backups.pool(), id).await?,
        None => catalogue::of_job(backups.pool(), job.id).await?,
    };
    Ok(match (backup, job.is_backup()) {
        (Some(b), true) => {
            let location = Storage::open(&b.storage, backups.settings())
                .map(|s| s.describe(&b.storage_key))
                .unwrap_or_else(|_| b.storage_key.clone());
            messages::backup_done(job, &b, &location, b.counts().len())
        }
        (Some(b), false) => {
            let counts = b.counts();
            let rows = counts.values().sum();
            let secs = match (job.started_at, job.finished_at) {
                (Some(a), Some(b)) => (b - a).num_seconds().max(0) as u64,
                _ => 0,
            };
            messages::restore_done(job, counts.len(), rows, secs)
        }
        (None, _) => format!("job #{} {}", job.id, job.status),
    })
}
