//! Detection windows rebuilt from the stored events, the truth, when Redis's cannot be
//! trusted: during a Redis outage (every key) and after one, or once Redis lost its data
//! (each key once per epoch, see `windows`). Here: the epochs' record in PostgreSQL, the
//! read of the stored failures a batch's keys count, and a key's state made of them.

use super::windows::{Entries, Previous};
use crate::domain::auth_event::{AuthEvent, Outcome, Source};
use crate::domain::detection::EventKey;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::collections::HashMap;

/// At most this many stored events are read for one batch (the newest); a key with more in
/// its window than that is rebuilt from the newest only.
pub const MAX_STORED: i64 = 200_000;

/// Record `epoch` (Redis's ms) and say whether its windows need rebuilding: whether an
/// epoch was recorded before it (the first needs none: nothing was counted before it).
pub async fn needs_rebuild(pool: &PgPool, epoch: i64) -> Result<bool, sqlx::Error> {
    sqlx::query("INSERT INTO login_window_epochs (epoch_ms) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(epoch)
        .execute(pool)
        .await?;
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM login_window_epochs WHERE epoch_ms < $1)")
        .bind(epoch)
        .fetch_one(pool)
        .await
}

/// Which stored failures a rebuild reads: all of them (a rule counting everything), or
/// those of these sources and accounts.
#[derive(Debug, Default)]
pub struct Wanted {
    pub all: bool,
    pub ips: Vec<String>,
    pub hosts: Vec<String>,
    pub accounts: Vec<String>,
}

impl Wanted {
    /// What a rebuilt key counts.
    pub fn add(&mut self, key: &EventKey<'_>) {
        match key {
            EventKey::Ip(source) | EventKey::Spray(source) => match source {
                Source::Ip(ip) => self.ips.push(ip.to_string()),
                Source::Host(host) => self.hosts.push(host.clone()),
            },
            EventKey::Account(account) => self.accounts.push(account.to_string()),
            EventKey::All => self.all = true,
        }
    }
}

type Row = (
    DateTime<Utc>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
);

/// The stored failures (and lockouts) at or after `since` that `wanted` names, newest first
/// (at most `MAX_STORED`), as events (without their ids, services and user agents).
pub async fn stored_failures(
    pool: &PgPool,
    since: DateTime<Utc>,
    wanted: &Wanted,
) -> Result<Vec<AuthEvent>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT at, host(ip), host, account, outcome, reason FROM auth_events
         WHERE at >= $1 AND outcome <> 'success'
           AND ($2 OR ip = ANY($3::text[]::inet[]) OR host = ANY($4) OR account = ANY($5))
         ORDER BY at DESC LIMIT $6",
    )
    .bind(since)
    .bind(wanted.all)
    .bind(&wanted.ips)
    .bind(&wanted.hosts)
    .bind(&wanted.accounts)
    .bind(MAX_STORED)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().filter_map(event_of).collect())
}

fn event_of((at, ip, host, account, outcome, reason): Row) -> Option<AuthEvent> {
    let source = match (ip.and_then(|ip| ip.parse().ok()), host) {
        (Some(ip), _) => Source::Ip(ip),
        (None, Some(host)) => Source::Host(host),
        (None, None) => return None,
    };
    Some(AuthEvent {
        id: None,
        at,
        source,
        account,
        service: String::new(),
        outcome: Outcome::parse(&outcome)?,
        reason,
        user_agent: None,
    })
}

/// A key rebuilt: its state before the batch (the stored entries less the batch's own, which
/// are stored too), newest first and at most `cap`; and its whole state with the batch.
/// Entries are (time ms, account: "" for event counting).
pub fn rebuilt(
    stored: &[(i64, &str)],
    batch: &[(i64, &str)],
    distinct: bool,
    cap: u32,
) -> (Previous, Entries) {
    let mut left: HashMap<(i64, &str), usize> = HashMap::new();
    for entry in batch {
        *left.entry(*entry).or_default() += 1;
    }
    let mut before: Vec<(i64, &str)> = Vec::with_capacity(stored.len());
    for entry in stored {
        match left.get_mut(entry) {
            Some(n) if *n > 0 => *n -= 1,
            _ => before.push(*entry),
        }
    }
    let cap = cap as usize;
    let whole: Vec<(i64, &str)> = before.iter().chain(batch).copied().collect();
    if distinct {
        let previous = latest_per_account(&before, cap);
        let whole = latest_per_account(&whole, usize::MAX);
        (
            Previous::Accounts(previous.iter().map(|(t, a)| ((*a).into(), *t)).collect()),
            Entries::Accounts(whole.iter().map(|(t, a)| (*t, a.to_string())).collect()),
        )
    } else {
        let mut previous: Vec<i64> = before.iter().map(|(t, _)| *t).collect();
        previous.sort_unstable_by(|a, b| b.cmp(a));
        previous.truncate(cap);
        (
            Previous::Events(previous),
            Entries::Events(whole.iter().map(|(t, _)| *t).collect()),
        )
    }
}

/// Each account once with its latest time, newest first (equal times by account,
/// descending, as the windows keep them), at most `cap`.
fn latest_per_account<'a>(entries: &[(i64, &'a str)], cap: usize) -> Vec<(i64, &'a str)> {
    let mut latest: HashMap<&str, i64> = HashMap::new();
    for (t, account) in entries {
        let seen = latest.entry(account).or_insert(*t);
        *seen = (*seen).max(*t);
    }
    let mut pairs: Vec<(i64, &str)> = latest.into_iter().map(|(a, t)| (t, a)).collect();
    pairs.sort_unstable_by(|x, y| y.cmp(x));
    pairs.truncate(cap);
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_is_taken_out_once_per_entry_and_put_back_in_the_whole_state() {
        let stored = [(30, ""), (20, ""), (20, ""), (10, "")];
        let batch = [(20, ""), (40, "")];
        let (previous, whole) = rebuilt(&stored, &batch, false, 2);
        assert_eq!(previous, Previous::Events(vec![30, 20]));
        let Entries::Events(mut whole) = whole else {
            panic!("events")
        };
        whole.sort_unstable();
        assert_eq!(whole, vec![10, 20, 20, 30, 40]);
    }

    #[test]
    fn accounts_keep_their_latest_time_before_the_batch() {
        let stored = [(30, "bob"), (25, "alice"), (10, "bob"), (5, "carol")];
        let batch = [(30, "bob")];
        let (previous, _) = rebuilt(&stored, &batch, true, 10);
        assert_eq!(
            previous,
            Previous::Accounts(vec![
                ("alice".into(), 25),
                ("bob".into(), 10),
                ("carol".into(), 5)
            ])
        );
    }
}
