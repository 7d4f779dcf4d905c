//! Storage of auth events: one `INSERT … SELECT FROM UNNEST(…)` per batch (never one per
//! event), duplicates by (sender, `event_id`) skipped by the unique index, and retention.
//!
//! A batch is first inserted plainly: most hold no id stored before, and a plain insert
//! costs PostgreSQL about a third less than `ON CONFLICT DO NOTHING … RETURNING` (speculative
//! insertion, a row back per event). Only a batch the unique index refuses is inserted again
//! that way, which then says which events were new.

use crate::domain::auth_event::AuthEvent;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgArguments;
use sqlx::{Arguments, PgPool};
use std::collections::HashSet;

/// What one batch insert stored.
#[derive(Debug)]
pub enum Inserted {
    /// Every event of the batch.
    All,
    /// Events without an id, and those whose id is in the set: the others were duplicates.
    Some(HashSet<String>),
}

impl Inserted {
    /// Whether `event` was written by this insert (and not skipped as a duplicate).
    pub fn stored(&self, event: &AuthEvent) -> bool {
        match self {
            Inserted::All => true,
            Inserted::Some(ids) => event.id.as_ref().is_none_or(|id| ids.contains(id)),
        }
    }
}

/// The statement, without and with the duplicate handling.
const INSERT: &str = "INSERT INTO auth_events
      (event_id, at, ip, host, account, service, outcome, reason, user_agent, sender)
    SELECT event_id, at, ip, host, account, service, outcome, reason, user_agent, $9
    FROM UNNEST($1::text[], $2::timestamptz[], $3::text[]::inet[], $10::text[], $4::text[],
                $5::text[], $6::text[], $7::text[], $8::text[])
         AS e(event_id, at, ip, host, account, service, outcome, reason, user_agent)";
const ON_CONFLICT: &str =
    " ON CONFLICT (sender, event_id) WHERE event_id IS NOT NULL DO NOTHING RETURNING event_id";

/// PostgreSQL's unique_violation.
const UNIQUE_VIOLATION: &str = "23505";

/// Insert `events` from `sender`; events whose id is already stored are skipped. The caller
/// de-duplicates ids within the batch first (see `ingest`).
pub async fn insert_batch(
    pool: &PgPool,
    events: &[AuthEvent],
    sender: &str,
) -> Result<Inserted, sqlx::Error> {
    if events.is_empty() {
        return Ok(Inserted::All);
    }
    let columns = Columns::of(events);
    match sqlx::query_with(INSERT, columns.arguments(sender)?)
        .execute(pool)
        .await
    {
        Ok(_) => return Ok(Inserted::All),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(UNIQUE_VIOLATION) => {}
        Err(e) => return Err(e),
    }
    let statement = sqlx::AssertSqlSafe(format!("{INSERT}{ON_CONFLICT}"));
    let returned: Vec<Option<String>> =
        sqlx::query_scalar_with(statement, columns.arguments(sender)?)
            .fetch_all(pool)
            .await?;
    Ok(Inserted::Some(returned.into_iter().flatten().collect()))
}

/// A batch as the statement's arrays.
struct Columns<'a> {
    ids: Vec<Option<&'a str>>,
    ats: Vec<DateTime<Utc>>,
    ips: Vec<Option<String>>,
    hosts: Vec<Option<&'a str>>,
    accounts: Vec<Option<&'a str>>,
    services: Vec<&'a str>,
    outcomes: Vec<&'a str>,
    reasons: Vec<Option<&'a str>>,
    agents: Vec<Option<&'a str>>,
}

impl<'a> Columns<'a> {
    fn of(events: &'a [AuthEvent]) -> Self {
        Columns {
            ids: events.iter().map(|e| e.id.as_deref()).collect(),
            ats: events.iter().map(|e| e.at).collect(),
            ips: events
                .iter()
                .map(|e| e.source.ip().map(|ip| ip.to_string()))
                .collect(),
            hosts: events.iter().map(|e| e.source.host()).collect(),
            accounts: events.iter().map(|e| e.account.as_deref()).collect(),
            services: events.iter().map(|e| e.service.as_str()).collect(),
            outcomes: events.iter().map(|e| e.outcome.as_str()).collect(),
            reasons: events.iter().map(|e| e.reason.as_deref()).collect(),
            agents: events.iter().map(|e| e.user_agent.as_deref()).collect(),
        }
    }

    /// The statement's arguments, `$1` to `$10`.
    fn arguments(&self, sender: &str) -> Result<PgArguments, sqlx::Error> {
        let mut args = PgArguments::default();
        let encoded = (|| {
            args.add(&self.ids)?;
            args.add(&self.ats)?;
            args.add(&self.ips)?;
            args.add(&self.accounts)?;
            args.add(&self.services)?;
            args.add(&self.outcomes)?;
            args.add(&self.reasons)?;
            args.add(&self.agents)?;
            args.add(sender)?;
            args.add(&self.hosts)
        })();
        encoded.map_err(sqlx::Error::Encode)?;
        Ok(args)
    }
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
