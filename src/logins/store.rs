//! Storage of auth events: one `INSERT … SELECT FROM UNNEST(…)` per batch (never one per
//! event), duplicates by (sender, `event_id`) skipped by the unique index, and retention.

use crate::domain::auth_event::AuthEvent;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::collections::HashSet;

/// What one batch insert stored.
#[derive(Debug, Default)]
pub struct Inserted {
    /// Rows written (events without an id are always written).
    pub rows: usize,
    /// The ids of the rows written: an event whose id is missing here was a duplicate.
    pub ids: HashSet<String>,
}

impl Inserted {
    /// Whether `event` was written by this insert (and not skipped as a duplicate).
    pub fn stored(&self, event: &AuthEvent) -> bool {
        event.id.as_ref().is_none_or(|id| self.ids.contains(id))
    }
}

/// Insert `events` from `sender` in one statement; events whose id is already stored are
/// skipped. The caller de-duplicates ids within the batch first (see `ingest`).
pub async fn insert_batch(
    pool: &PgPool,
    events: &[AuthEvent],
    sender: &str,
) -> Result<Inserted, sqlx::Error> {
    if events.is_empty() {
        return Ok(Inserted::default());
    }
    let n = events.len();
    let mut ids: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut ats: Vec<DateTime<Utc>> = Vec::with_capacity(n);
    let mut ips: Vec<String> = Vec::with_capacity(n);
    let mut accounts: Vec<&str> = Vec::with_capacity(n);
    let mut services: Vec<&str> = Vec::with_capacity(n);
    let mut outcomes: Vec<&str> = Vec::with_capacity(n);
    let mut reasons: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut agents: Vec<Option<&str>> = Vec::with_capacity(n);
    for e in events {
        ids.push(e.id.as_deref());
        ats.push(e.at);
        ips.push(e.ip.to_string());
        accounts.push(&e.account);
        services.push(&e.service);
        outcomes.push(e.outcome.as_str());
        reasons.push(e.reason.as_deref());
        agents.push(e.user_agent.as_deref());
    }
    let returned: Vec<Option<String>> = sqlx::query_scalar(
        "INSERT INTO auth_events (event_id, at, ip, account, service, outcome, reason, user_agent, sender)
         SELECT event_id, at, ip, account, service, outcome, reason, user_agent, $9
         FROM UNNEST($1::text[], $2::timestamptz[], $3::text[]::inet[], $4::text[], $5::text[],
                     $6::text[], $7::text[], $8::text[])
              AS e(event_id, at, ip, account, service, outcome, reason, user_agent)
         ON CONFLICT (sender, event_id) WHERE event_id IS NOT NULL DO NOTHING
         RETURNING event_id",
    )
    .bind(ids)
    .bind(ats)
    .bind(ips)
    .bind(accounts)
    .bind(services)
    .bind(outcomes)
    .bind(reasons)
    .bind(agents)
    .bind(sender)
    .fetch_all(pool)
    .await?;
    Ok(Inserted {
        rows: returned.len(),
        ids: returned.into_iter().flatten().collect(),
    })
}

/// Beyond this a retention is forever (and `now() - days` would leave the timestamp range).
const MAX_DAYS: u32 = 100_000;

/// Delete events whose time (`at`) is more than `older_than_days` days ago; returns how
/// many rows were deleted.
pub async fn prune(pool: &PgPool, older_than_days: u32) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM auth_events WHERE at < now() - make_interval(days => $1)")
        .bind(older_than_days.min(MAX_DAYS) as i32)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// How many events are stored (tests and `/logins` totals).
pub async fn count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM auth_events")
        .fetch_one(pool)
        .await
}
