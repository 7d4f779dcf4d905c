//! A restore test as a job: the backup's checksum read back, a scratch database created on
//! the target's server (or `scratch_dsn`), the backup streamed into it by `pg_restore`, every
//! table's rows counted against the catalogue, the scratch database dropped whatever happened,
//! and the verdict recorded on the backup.

use super::Backups;
use super::catalogue;
use super::jobs;
use super::jobs::Job;
use super::messages;
use super::pgenv::PgEnv;
use super::progress::{Clock, with_progress};
use super::restore;
use super::run::{Ended, failed};
use super::snapshot;
use super::storage::Storage;
use crate::domain::secret::Secret;
use sqlx::{Connection, PgConnection};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

pub(super) async fn restore_test(backups: &Backups, job: &Job, clock: &Clock) -> Ended {
    let started = Instant::now();
    let pool = backups.pool();
    let backup = match catalogue::get(pool, job.backup_id.unwrap_or(0)).await {
        Ok(Some(b)) if b.status == "good" => b,
        Ok(Some(b)) => return failed(job, format!("backup #{} is {}, not good", b.id, b.status)),
        Ok(None) => return failed(job, "the backup does not exist".into()),
        Err(e) => return failed(job, format!("the catalogue could not be read: {e}")),
    };
    let result = scratch_restore(backups, job, clock, &backup).await;
    let error = result.as_ref().err().cloned();
    // A test handed back at shutdown has no verdict: another replica runs it again.
    if !clock.handed_back()
        && let Err(e) = catalogue::record_restore_test(pool, backup.id, error.as_deref()).await
    {
        tracing::error!(job.id = job.id, error = %e, "backups.verdict_not_recorded");
    }
    match result {
        Ok((tables, rows)) => Ended {
            text: messages::restore_done(job, tables, rows, started.elapsed().as_secs()),
            error: None,
        },
        Err(e) => failed(job, e),
    }
}

/// Checksum, scratch database, restore, compare, drop: (tables, rows) when all matched.
async fn scratch_restore(
    backups: &Backups,
    job: &Job,
    clock: &Clock,
    backup: &catalogue::Backup,
) -> Result<(usize, i64), String> {
    let settings = backups.settings();
    let keys = backups.keys()?.clone();
    let storage = Storage::open(&backup.storage, settings).map_err(|e| e.to_string())?;
    let read = Arc::new(AtomicU64::new(0));
    let none = AtomicU64::new(0);
    with_progress(
        backups,
        job,
        clock,
        "verifying the checksum",
        &read,
        &none,
        async {
            restore::verify(
                &storage,
                &backup.storage_key,
                backup.sha256.as_deref(),
                &read,
            )
            .await
        },
    )
    .await?
    .map_err(|e| e.to_string())?;
    // The restore stage counts its own reading from zero.
    read.store(0, std::sync::atomic::Ordering::Relaxed);
    let admin = admin_env(backups, &backup.target)?;
    // Unique on the server (opsguard deployments may share one): the job id alone is not.
    let scratch = format!(
        "opsguard_restore_{}_{}",
        job.id,
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    // Recorded first, so a cut-off run's clean-up knows what to drop.
    jobs::set_scratch(backups.pool(), job.id, &scratch)
        .await
        .map_err(|e| e.to_string())?;
    let mut conn = PgConnection::connect_with(&admin.connect_options())
        .await
        .map_err(|e| {
            format!(
                "cannot reach {} to create the scratch database: {e}",
                admin.display()
            )
        })?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {scratch}")))
        .execute(&mut conn)
        .await
        .map_err(|e| format!("cannot create the scratch database: {e}"))?;
    let env = admin.with_database(&scratch);
    let outcome = async {
        with_progress(
            backups,
            job,
            clock,
            "restoring into a scratch database",
            &read,
            &none,
            async {
                restore::restore_into(
                    &storage,
                    &backup.storage_key,
                    &keys,
                    &env,
                    &settings.pg_restore,
                    read.clone(),
                )
                .await
            },
        )
        .await?
        .map_err(|e| e.to_string())?;
        let mut db = PgConnection::connect_with(&env.connect_options())
            .await
            .map_err(|e| format!("cannot open the scratch database: {e}"))?;
        let found = snapshot::count_rows(&mut db)
            .await
            .map_err(|e| e.to_string())?;
        let _ = db.close().await;
        let problems = snapshot::compare(&backup.counts(), &found);
        if !problems.is_empty() {
            return Err(format!(
                "row counts differ from the catalogue: {}",
                problems.join("; ")
            ));
        }
        Ok((found.len(), found.values().sum()))
    }
    .await;
    let _ = conn.close().await;
    // A fresh connection: the first sat idle through the restore and may be gone.
    if let Err(e) = drop_scratch(&admin, &scratch).await {
        tracing::error!(job.id = job.id, error = %e, "backups.scratch_not_dropped");
        let error = format!("the scratch database {scratch} could not be dropped: {e}");
        return Err(match outcome {
            Ok(_) => error,
            Err(first) => format!("{first}; {error}"),
        });
    }
    outcome
}

/// Drop a scratch database (if it exists); `name` is one this module made.
pub(super) async fn drop_scratch(admin: &PgEnv, name: &str) -> Result<(), String> {
    if !name.starts_with("opsguard_restore_")
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(format!("'{name}' is not a scratch database name"));
    }
    let mut conn = PgConnection::connect_with(&admin.connect_options())
        .await
        .map_err(|e| e.to_string())?;
    let dropped = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .map(|_| ())
    .map_err(|e| e.to_string());
    let _ = conn.close().await;
    dropped
}

/// Clean up after a restore test whose process died: drop its scratch database and record
/// the verdict on the backup.
pub(super) async fn abandoned(backups: &Backups, job: &Job, error: &str) {
    let Some(backup) = job.backup_id else { return };
    if let Some(scratch) = &job.scratch_db
        && let Ok(admin) = admin_env(backups, &job.target)
        && let Err(e) = drop_scratch(&admin, scratch).await
    {
        tracing::error!(job.id = job.id, error = %e, "backups.scratch_not_dropped");
    }
    if let Err(e) = catalogue::record_restore_test(backups.pool(), backup, Some(error)).await {
        tracing::error!(job.id = job.id, error = %e, "backups.verdict_not_recorded");
    }
}

/// Where scratch databases are made: `scratch_dsn`, or the target's server.
fn admin_env(backups: &Backups, target: &str) -> Result<PgEnv, String> {
    let settings = backups.settings();
    let dsn: Secret = match (&settings.scratch_dsn, settings.target(target)) {
        (Some(dsn), _) => dsn.clone(),
        (None, Some(t)) => return PgEnv::parse(&t.dsn).map(|e| e.with_database("postgres")),
        (None, None) => {
            return Err(format!(
                "target '{target}' is no longer configured; set [backups] scratch_dsn to restore-test its backups"
            ));
        }
    };
    PgEnv::parse(&dsn)
}
