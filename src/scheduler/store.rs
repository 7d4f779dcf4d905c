//! The scheduler's queries on `schedule_runs`: claim a fire time (exactly once across
//! replicas), record how the run ended, and read the last run of each schedule.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// Claim `(schedule, fire_at)`; `true` only for the one caller whose row was inserted.
pub async fn claim(
    pool: &PgPool,
    schedule: &str,
    fire_at: DateTime<Utc>,
    claimed_by: &str,
    request_id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO schedule_runs (schedule, fire_at, claimed_by, request_id)
         VALUES ($1, $2, $3, $4) ON CONFLICT (schedule, fire_at) DO NOTHING",
    )
    .bind(schedule)
    .bind(fire_at)
    .bind(claimed_by)
    .bind(request_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How a claimed run ended.
pub struct Finished<'a> {
    pub decision: &'a str,
    pub result: &'a str,
    pub outbox_id: Option<i64>,
}

pub async fn finish(
    pool: &PgPool,
    schedule: &str,
    fire_at: DateTime<Utc>,
    done: &Finished<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE schedule_runs SET finished_at = now(), decision = $3, result = $4, outbox_id = $5
         WHERE schedule = $1 AND fire_at = $2",
    )
    .bind(schedule)
    .bind(fire_at)
    .bind(done.decision)
    .bind(done.result)
    .bind(done.outbox_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// The latest run of a schedule, as `/schedules` shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LastRun {
    pub schedule: String,
    pub fire_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub decision: Option<String>,
    pub result: Option<String>,
}

/// The latest claimed run of every schedule that has one.
pub async fn last_runs(pool: &PgPool) -> Result<Vec<LastRun>, sqlx::Error> {
    sqlx::query_as(
        "SELECT DISTINCT ON (schedule) schedule, fire_at, finished_at, decision, result
         FROM schedule_runs ORDER BY schedule, fire_at DESC",
    )
    .fetch_all(pool)
    .await
}

/// The decision and a short reason or outcome of a request, from its audit rows (the
/// pipeline has written them by the time `Engine::handle` returns).
pub async fn audited(
    pool: &PgPool,
    request_id: &str,
) -> Result<Option<(String, Option<String>, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT decision, reason, outcome FROM audit_log WHERE request_id = $1
         ORDER BY seq DESC LIMIT 1",
    )
    .bind(request_id)
    .fetch_optional(pool)
    .await
}
