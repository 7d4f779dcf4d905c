//! The job queue's SQL: queue a backup (one per target at a time) or a restore test, claim
//! the oldest queued job (`FOR UPDATE SKIP LOCKED`, so any replica may run it), renew its
//! lease, finish it, and fail the jobs whose process died (their lease ran out).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobKind {
    Backup,
    RestoreTest,
}

impl JobKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            JobKind::Backup => "backup",
            JobKind::RestoreTest => "restore_test",
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub target: String,
    pub backup_id: Option<i64>,
    pub status: String,
    pub requested_by: Option<i64>,
    pub via: String,
    pub chat_id: i64,
    pub progress_row: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    /// A restore test's scratch database, once named.
    pub scratch_db: Option<String>,
}

impl Job {
    pub fn is_backup(&self) -> bool {
        self.kind == "backup"
    }

    /// "user 42" or how it came ("scheduler", "shell").
    pub fn requester(&self) -> String {
        self.requested_by
            .filter(|u| *u > 0)
            .map(|u| format!("user {u}"))
            .unwrap_or_else(|| self.via.clone())
    }
}

const COLUMNS: &str = "id, kind, target, backup_id, status, requested_by, via, chat_id, progress_row, created_at, started_at, finished_at, error, scratch_db";

/// What a request to queue came to.
#[derive(Debug)]
pub enum Queued {
    Queued(Job),
    /// A backup of this target is already queued or running.
    AlreadyRunning(Job),
}

/// Queue a job in the caller's transaction (so its progress message commits with it).
pub async fn queue(
    conn: &mut PgConnection,
    kind: JobKind,
    target: &str,
    backup_id: Option<i64>,
    requested_by: Option<i64>,
    via: &str,
    chat_id: i64,
) -> Result<Queued, sqlx::Error> {
    loop {
        let inserted: Option<Job> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO backup_jobs (kind, target, backup_id, requested_by, via, chat_id)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (target) WHERE kind = 'backup' AND status IN ('queued', 'running')
             DO NOTHING RETURNING {COLUMNS}"
        )))
        .bind(kind.as_str())
        .bind(target)
        .bind(backup_id)
        .bind(requested_by)
        .bind(via)
        .bind(chat_id)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(job) = inserted {
            return Ok(Queued::Queued(job));
        }
        let running: Option<Job> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM backup_jobs
             WHERE kind = 'backup' AND target = $1 AND status IN ('queued', 'running')"
        )))
        .bind(target)
        .fetch_optional(&mut *conn)
        .await?;
        // None: it finished between the two statements; try again.
        if let Some(job) = running {
            return Ok(Queued::AlreadyRunning(job));
        }
    }
}

pub async fn set_progress_row(
    conn: &mut PgConnection,
    job: i64,
    row: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE backup_jobs SET progress_row = $2 WHERE id = $1")
        .bind(job)
        .bind(row)
        .execute(conn)
        .await?;
    Ok(())
}

/// Name a restore test's scratch database before it is created.
pub async fn set_scratch(pool: &PgPool, job: i64, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE backup_jobs SET scratch_db = $2 WHERE id = $1")
        .bind(job)
        .bind(name)
        .execute(pool)
        .await?;
    Ok(())
}

/// Claim the oldest queued job, leased to this worker for `lease`.
pub async fn claim(pool: &PgPool, lease: Duration) -> Result<Option<Job>, sqlx::Error> {
    claim_where(pool, None, lease).await
}

/// Claim one particular job if it is still queued (the shell runs the job it queued).
pub async fn claim_this(
    pool: &PgPool,
    job: i64,
    lease: Duration,
) -> Result<Option<Job>, sqlx::Error> {
    claim_where(pool, Some(job), lease).await
}

async fn claim_where(
    pool: &PgPool,
    job: Option<i64>,
    lease: Duration,
) -> Result<Option<Job>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE backup_jobs SET status = 'running', started_at = now(),
                lease_until = now() + make_interval(secs => $2)
         WHERE id = (SELECT id FROM backup_jobs
                     WHERE status = 'queued' AND ($1::bigint IS NULL OR id = $1)
                     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING {COLUMNS}"
    )))
    .bind(job)
    .bind(lease.as_secs_f64())
    .fetch_optional(pool)
    .await
}

/// Extend a running job's lease; false when the job is no longer this worker's.
pub async fn renew(pool: &PgPool, job: i64, lease: Duration) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE backup_jobs SET lease_until = now() + make_interval(secs => $2)
         WHERE id = $1 AND status = 'running'",
    )
    .bind(job)
    .bind(lease.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Record how a job ended (`error` None: succeeded).
pub async fn finish(pool: &PgPool, job: i64, error: Option<&str>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE backup_jobs SET status = CASE WHEN $2::text IS NULL THEN 'succeeded' ELSE 'failed' END,
                error = $2, finished_at = now(), lease_until = NULL
         WHERE id = $1 AND status = 'running'",
    )
    .bind(job)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// Hand a running job back to the queue (this replica is shutting down): queued again as
/// if never started, no error recorded, so any replica claims and runs it from the start.
pub async fn hand_back(pool: &PgPool, job: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE backup_jobs SET status = 'queued', started_at = NULL, lease_until = NULL,
                scratch_db = NULL, error = NULL
         WHERE id = $1 AND status = 'running'",
    )
    .bind(job)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Fail running jobs whose lease ran out: the process running them died.
pub async fn fail_abandoned(pool: &PgPool) -> Result<Vec<Job>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE backup_jobs SET status = 'failed', finished_at = now(), lease_until = NULL,
                error = 'interrupted: the process running it stopped (killed or crashed) before it finished'
         WHERE status = 'running' AND lease_until < now()
         RETURNING {COLUMNS}"
    )))
    .fetch_all(pool)
    .await
}

pub async fn get(pool: &PgPool, job: i64) -> Result<Option<Job>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM backup_jobs WHERE id = $1"
    )))
    .bind(job)
    .fetch_optional(pool)
    .await
}

/// The jobs `user` asked for since `since`, oldest first (what a console session queued).
pub async fn requested_since(
    pool: &PgPool,
    user: i64,
    since: DateTime<Utc>,
) -> Result<Vec<Job>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM backup_jobs WHERE requested_by = $1 AND created_at >= $2 ORDER BY id"
    )))
    .bind(user)
    .bind(since)
    .fetch_all(pool)
    .await
}

/// Queued and running jobs, oldest first.
pub async fn active(pool: &PgPool) -> Result<Vec<Job>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM backup_jobs WHERE status IN ('queued', 'running') ORDER BY id"
    )))
    .fetch_all(pool)
    .await
}
