//! One claimed job carried out: a backup (snapshot, stream, read-back check, catalogue) or a
//! restore test (checksum, scratch database, pg_restore, row counts, drop). While it runs its
//! lease is renewed and its progress message edited (`progress`); when it ends the result
//! replaces the progress, a failure is alerted, and a failed backup leaves no object behind.
//! A job cut by shutdown is handed back to the queue instead, for another replica to run.

use super::Backups;
use super::catalogue::{self, Finished};
use super::dump::{self, DumpJob, Progress};
use super::jobs::{self, Job};
use super::messages;
use super::pgenv::PgEnv;
use super::progress::{Clock, with_progress};
use super::snapshot::{self, Snapshot};
use super::storage::Storage;
use crate::domain::Reply;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the operator reads when the job ends, and whether it failed.
pub struct Ended {
    pub text: String,
    pub error: Option<String>,
}

/// Run `job` to its end and record it: catalogue, job row, progress message, alert. When
/// `shutdown` cuts it, it is handed back to the queue (not failed, no attempt counted).
pub async fn run(backups: &Backups, job: &Job, shutdown: &CancellationToken) -> Ended {
    let clock = Clock::start(backups, &job.target, shutdown.clone());
    let ended = if job.is_backup() {
        backup(backups, job, &clock).await
    } else {
        super::verify::restore_test(backups, job, &clock).await
    };
    let pool = backups.pool();
    if clock.handed_back() {
        match jobs::hand_back(pool, job.id).await {
            Ok(true) => {
                tracing::info!(job.id = job.id, job.kind = %job.kind, backup.target = %job.target, "backups.job_handed_back");
                let text = messages::handed_back(job);
                tell(backups, job, &text).await;
                return Ended {
                    text,
                    error: ended.error,
                };
            }
            Ok(false) => {}
            Err(e) => tracing::error!(job.id = job.id, error = %e, "backups.hand_back_failed"),
        }
    }
    if let Err(e) = jobs::finish(pool, job.id, ended.error.as_deref()).await {
        tracing::error!(job.id = job.id, error = %e, "backups.finish_failed");
    }
    tell(backups, job, &ended.text).await;
    if let Some(error) = &ended.error {
        tracing::warn!(job.id = job.id, job.kind = %job.kind, backup.target = %job.target, error = %error, "backups.job_failed");
        alert(backups, job, error).await;
    } else {
        tracing::info!(job.id = job.id, job.kind = %job.kind, backup.target = %job.target, "backups.job_succeeded");
    }
    ended
}

/// Replace the progress message with `text` (nothing when the job has none).
pub async fn tell(backups: &Backups, job: &Job, text: &str) {
    if let Some(row) = job.progress_row
        && let Err(e) = crate::outbox::enqueue_edit(
            backups.pool(),
            row,
            text,
            std::time::Duration::ZERO,
            crate::outbox::EditButtons::Remove,
        )
        .await
    {
        tracing::warn!(job.id = job.id, error = %e, "backups.progress_failed");
    }
}

pub async fn alert(backups: &Backups, job: &Job, error: &str) {
    let reply = Reply::html(messages::alert(job, error));
    for chat in &backups.settings().alert_chats {
        if let Err(e) = crate::outbox::enqueue(backups.pool(), *chat, &reply, "backups").await {
            tracing::error!(job.id = job.id, error = %e, "backups.alert_failed");
        }
    }
}

pub(super) fn failed(job: &Job, error: String) -> Ended {
    Ended {
        text: messages::failed(job, &error),
        error: Some(error),
    }
}

async fn backup(backups: &Backups, job: &Job, clock: &Clock) -> Ended {
    let settings = backups.settings();
    let Some(target) = settings.target(&job.target) else {
        return failed(
            job,
            format!("target '{}' is no longer configured", job.target),
        );
    };
    let keys = match backups.keys() {
        Ok(k) => k.clone(),
        Err(e) => return failed(job, e),
    };
    let env = match PgEnv::parse(&target.dsn) {
        Ok(env) => env,
        Err(e) => return failed(job, format!("target {}: {e}", job.target)),
    };
    let storage = match Storage::open(settings.storage_of(target), settings) {
        Ok(s) => s,
        Err(e) => return failed(job, e.to_string()),
    };
    let key = format!(
        "{0}/{0}-{1}-job{2}.dump.zst.age",
        job.target,
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        job.id
    );
    let pool = backups.pool();
    let id = match catalogue::open(pool, job.id, &job.target, storage.location(), &key).await {
        Ok(id) => id,
        Err(e) => return failed(job, format!("the catalogue could not be written: {e}")),
    };
    let result = stream_backup(backups, job, clock, env, keys, &storage, &key).await;
    match result {
        Ok((dumped, counts, server_version, pg_dump_version)) => {
            let finished = Finished {
                dump_bytes: dumped.dump_bytes,
                stored_bytes: dumped.stored_bytes,
                sha256: &dumped.sha256,
                pg_dump_version: pg_dump_version.as_deref(),
                server_version: &server_version,
                counts: &counts,
            };
            let problem = match catalogue::mark_good(pool, id, &finished).await {
                Ok(true) => None,
                Ok(false) => Some(
                    "the job's lease ran out and it was marked failed; the object was removed"
                        .to_string(),
                ),
                Err(e) => Some(format!("the catalogue could not be written: {e}")),
            };
            if let Some(problem) = problem {
                let _ = storage.discard_partial(&key).await;
                let _ = catalogue::mark_failed(pool, id, &problem).await;
                return failed(job, problem);
            }
            match catalogue::get(pool, id).await {
                Ok(Some(b)) => Ended {
                    text: messages::backup_done(job, &b, &storage.describe(&key), counts.len()),
                    error: None,
                },
                _ => Ended {
                    text: format!("✅ backup #{id} is good."),
                    error: None,
                },
            }
        }
        Err(error) => {
            let error = crate::checks::dsn::scrub_keep_end(&error, target.dsn.expose(), 1500);
            if let Err(e) = storage.discard_partial(&key).await {
                tracing::error!(job.id = job.id, error = %e, "backups.discard_failed");
            }
            // Handed back: the next run opens its own row; this one never held a backup.
            let _ = match clock.handed_back() {
                true => catalogue::forget(pool, id).await,
                false => catalogue::mark_failed(pool, id, &error).await,
            };
            failed(job, error)
        }
    }
}

/// How long reaching the target may take before the backup fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

type Streamed = (dump::Dumped, snapshot::TableCounts, String, Option<String>);

/// Snapshot, dump and count in it, then read the stored object back.
async fn stream_backup(
    backups: &Backups,
    job: &Job,
    clock: &Clock,
    env: PgEnv,
    keys: super::keys::BackupKeys,
    storage: &Storage,
    key: &str,
) -> Result<Streamed, String> {
    let settings = backups.settings();
    let display = env.display().to_string();
    let mut snap = tokio::time::timeout(CONNECT_TIMEOUT, Snapshot::export(&env))
        .await
        .map_err(|_| {
            format!(
                "cannot read {display}: no answer within {}s",
                CONNECT_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("cannot read {display}: {e}"))?;
    let pg_dump_version = super::pgversion::version_line(&settings.pg_dump).await;
    if let Some(problem) = super::pgversion::refusal(
        pg_dump_version.as_deref(),
        &snap.server_version,
        &settings.pg_dump,
    ) {
        snap.close().await;
        return Err(format!("cannot back up {display}: {problem}"));
    }
    let progress = Arc::new(Progress::default());
    let dump_job = DumpJob {
        env,
        snapshot: Some(snap.id.clone()),
        keys,
        level: settings.zstd_level,
        workers: settings.zstd_workers,
        pg_dump: settings.pg_dump.clone(),
    };
    let work = async {
        tokio::join!(
            dump::dump(dump_job, storage, key, progress.clone()),
            snap.count_rows()
        )
    };
    let streamed = with_progress(
        backups,
        job,
        clock,
        "dumping, compressing, encrypting",
        &progress.dump_bytes,
        &progress.stored_bytes,
        work,
    )
    .await;
    let server_version = snap.server_version.clone();
    snap.close().await;
    let (dumped, counts) = streamed?;
    // A failed count ends the snapshot pg_dump reads, so it is the cause to report first.
    let counts = counts.map_err(|e| format!("counting rows in {display} failed: {e}"))?;
    let dumped = dumped.map_err(|e| e.to_string())?;
    let (read, none) = (AtomicU64::new(0), AtomicU64::new(0));
    let (sha, size) = with_progress(
        backups,
        job,
        clock,
        "reading the stored object back",
        &read,
        &none,
        storage.checksum(key, &read),
    )
    .await?
    .map_err(|e| format!("reading the stored object back failed: {e}"))?;
    if sha != dumped.sha256 || size != dumped.stored_bytes {
        return Err(format!(
            "the stored object does not match what was written (sha256 {sha}, {size} bytes; wrote {}, {} bytes)",
            dumped.sha256, dumped.stored_bytes
        ));
    }
    Ok((dumped, counts, server_version, pg_dump_version))
}
