//! Backups: `pg_dump` streamed through zstd and age into storage, catalogued with checksums
//! and row counts, proven by restore tests, pruned by retention.
//!
//! - `verify` — a restore test as a job (scratch database, counts, drop).
//! - `jobs` — the PostgreSQL job queue (`FOR UPDATE SKIP LOCKED`), one backup per target.
//! - `worker` — claims jobs on any replica; `run` carries one job out (result, alert);
//!   `progress` drives its streams (lease, progress edits, stall timeout, deadline,
//!   hand-back at shutdown); `reaper` kills a program whose stream was given up; `messages`
//!   is what the operator reads.
//! - `dump` — the backup stream; `snapshot` — the exported snapshot and row counts;
//!   `restore` — checksum, decrypt, decompress, `pg_restore`.
//! - `storage` — a directory or S3 through `object_store`; `keys` — age recipients and
//!   opsguard's own identity; `pgenv` — a DSN as libpq's environment.
//! - `catalogue` — what was stored; `retention` — what may be deleted; `cli` — the shell;
//!   `watch` — a job's progress as the console follows it.
//!
//! Invariants: a backup is `good` only after its checksum was read back from storage; no
//! credential reaches a command line, a reply or a log; nothing holds a backup whole in memory.

pub mod catalogue;
pub mod cli;
pub mod dump;
pub mod jobs;
pub mod keys;
pub mod messages;
pub mod pgenv;
pub mod pgversion;
pub mod progress;
pub mod reaper;
pub mod restore;
pub mod retention;
pub mod run;
pub mod snapshot;
pub mod storage;
pub mod verify;
pub mod watch;
pub mod worker;

use crate::config::{BackupSettings, Settings};
use crate::domain::Reply;
use jobs::{JobKind, Queued};
use keys::BackupKeys;
use sqlx::PgPool;
use std::sync::Arc;

/// The backup capability as the engine, the worker and the shell use it.
#[derive(Clone)]
pub struct Backups {
    pool: PgPool,
    settings: Arc<BackupSettings>,
    keys: Result<BackupKeys, String>,
}

/// What asking for a job came to.
#[derive(Debug)]
pub enum Requested {
    Queued(jobs::Job),
    AlreadyRunning(jobs::Job),
    UnknownTarget(Vec<String>),
}

impl Backups {
    pub fn new(pool: PgPool, settings: &Settings) -> Self {
        let keys = BackupKeys::new(settings.master_key.as_ref(), &settings.backups.recipients)
            .map_err(|e| e.to_string());
        Backups {
            pool,
            settings: Arc::new(settings.backups.clone()),
            keys,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn settings(&self) -> &BackupSettings {
        &self.settings
    }

    /// The keys, or why backups cannot run (no master key, a bad recipient).
    pub fn keys(&self) -> Result<&BackupKeys, String> {
        self.keys.as_ref().map_err(Clone::clone)
    }

    /// Queue a backup of `target`; the progress message goes to `chat` (0: none).
    pub async fn request_backup(
        &self,
        target: &str,
        by: Option<i64>,
        via: &str,
        chat: i64,
    ) -> Result<Requested, sqlx::Error> {
        if self.settings.target(target).is_none() {
            return Ok(Requested::UnknownTarget(self.settings.target_names()));
        }
        let mut tx = self.pool.begin().await?;
        let queued = jobs::queue(&mut tx, JobKind::Backup, target, None, by, via, chat).await?;
        let requested = announce(&mut tx, queued).await?;
        tx.commit().await?;
        Ok(requested)
    }

    /// Queue a restore test of a catalogued backup.
    pub async fn request_restore_test(
        &self,
        backup: &catalogue::Backup,
        by: Option<i64>,
        via: &str,
        chat: i64,
    ) -> Result<Requested, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let queued = jobs::queue(
            &mut tx,
            JobKind::RestoreTest,
            &backup.target,
            Some(backup.id),
            by,
            via,
            chat,
        )
        .await?;
        let requested = announce(&mut tx, queued).await?;
        tx.commit().await?;
        Ok(requested)
    }
}

/// A queued job's progress message, whose later edits show how it goes; in the queuing
/// transaction, so no worker can claim the job before it knows its message.
async fn announce(tx: &mut sqlx::PgConnection, queued: Queued) -> Result<Requested, sqlx::Error> {
    let mut job = match queued {
        Queued::Queued(job) => job,
        Queued::AlreadyRunning(job) => return Ok(Requested::AlreadyRunning(job)),
    };
    if job.chat_id != 0 {
        let text = messages::queued(&job);
        let row =
            crate::outbox::enqueue(&mut *tx, job.chat_id, &Reply::html(text), "backups").await?;
        jobs::set_progress_row(tx, job.id, row).await?;
        job.progress_row = Some(row);
    }
    Ok(Requested::Queued(job))
}
