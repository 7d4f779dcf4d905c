//! The catalogue's SQL: a backup row is opened as `writing` when its job starts, becomes
//! `good` only after its checksum was read back from storage, `failed` with the cause, or
//! `deleted` when retention removed its object; restore tests record their verdict on it.

use super::snapshot::TableCounts;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Backup {
    pub id: i64,
    pub job_id: i64,
    pub target: String,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub dump_bytes: Option<i64>,
    pub stored_bytes: Option<i64>,
    pub sha256: Option<String>,
    pub storage: String,
    pub storage_key: String,
    pub pg_dump_version: Option<String>,
    pub server_version: Option<String>,
    pub table_counts: serde_json::Value,
    pub error: Option<String>,
    pub verified_at: Option<DateTime<Utc>>,
    pub verified_ok: Option<bool>,
    pub verify_error: Option<String>,
}

impl Backup {
    pub fn counts(&self) -> TableCounts {
        serde_json::from_value(self.table_counts.clone()).unwrap_or_default()
    }

    pub fn seconds(&self) -> Option<i64> {
        self.finished_at
            .map(|f| (f - self.started_at).num_seconds())
    }
}

const COLUMNS: &str = "id, job_id, target, status, started_at, finished_at, dump_bytes, stored_bytes, sha256, storage, storage_key, pg_dump_version, server_version, table_counts, error, verified_at, verified_ok, verify_error";

pub async fn open(
    pool: &PgPool,
    job: i64,
    target: &str,
    storage: &str,
    key: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO backups (job_id, target, storage, storage_key) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(job)
    .bind(target)
    .bind(storage)
    .bind(key)
    .fetch_one(pool)
    .await
}

/// What a finished backup records.
pub struct Finished<'a> {
    pub dump_bytes: u64,
    pub stored_bytes: u64,
    pub sha256: &'a str,
    pub pg_dump_version: Option<&'a str>,
    pub server_version: &'a str,
    pub counts: &'a TableCounts,
}

/// Call the backup good — only while its job still runs here (false: another replica
/// failed the job as abandoned, so nothing may be called good).
pub async fn mark_good(pool: &PgPool, id: i64, f: &Finished<'_>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE backups SET status = 'good', finished_at = now(), dump_bytes = $2, stored_bytes = $3,
                sha256 = $4, pg_dump_version = $5, server_version = $6, table_counts = $7
         WHERE id = $1 AND status = 'writing'
           AND EXISTS (SELECT 1 FROM backup_jobs j WHERE j.id = backups.job_id AND j.status = 'running')",
    )
    .bind(id)
    .bind(f.dump_bytes as i64)
    .bind(f.stored_bytes as i64)
    .bind(f.sha256)
    .bind(f.pg_dump_version)
    .bind(f.server_version)
    .bind(serde_json::to_value(f.counts).unwrap_or_default())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn mark_failed(pool: &PgPool, id: i64, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE backups SET status = 'failed', finished_at = now(), error = $2
         WHERE id = $1 AND status = 'writing'",
    )
    .bind(id)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// The backup a (failed) job was writing, if it got that far.
/// Remove a row still `writing` whose job was handed back (its object was removed): the
/// job's next run opens its own.
pub async fn forget(pool: &PgPool, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM backups WHERE id = $1 AND status = 'writing'")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn of_job(pool: &PgPool, job: i64) -> Result<Option<Backup>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM backups WHERE job_id = $1"
    )))
    .bind(job)
    .fetch_optional(pool)
    .await
}

pub async fn get(pool: &PgPool, id: i64) -> Result<Option<Backup>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM backups WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Newest first; of one target or all, at most `limit`.
pub async fn list(
    pool: &PgPool,
    target: Option<&str>,
    limit: i64,
) -> Result<Vec<Backup>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM backups WHERE ($1::text IS NULL OR target = $1) AND status <> 'deleted'
         ORDER BY id DESC LIMIT $2"
    )))
    .bind(target)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Good backups of a target, newest first (what retention weighs).
pub async fn good_of(pool: &PgPool, target: &str) -> Result<Vec<Backup>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM backups WHERE target = $1 AND status = 'good' ORDER BY id DESC"
    )))
    .bind(target)
    .fetch_all(pool)
    .await
}

pub async fn record_restore_test(
    pool: &PgPool,
    id: i64,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE backups SET verified_at = now(), verified_ok = ($2::text IS NULL), verify_error = $2
         WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn mark_deleted(pool: &PgPool, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE backups SET status = 'deleted', deleted_at = now() WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}
