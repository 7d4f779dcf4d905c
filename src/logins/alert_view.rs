//! The alerts a batch's episodes may join, read and locked in ONE statement at the start of
//! the batch's transaction (in id order, so replicas lock alike), and kept as written while
//! the episodes are recorded: each episode finds what it joins here instead of in a query
//! of its own, and an episode that would change nothing a reader sees writes nothing.

use super::alerts::Exceeding;
use crate::config::RuleKind;
use chrono::{DateTime, Duration, Utc};
use sqlx::PgConnection;
use std::collections::HashMap;

/// An alert as written: what an edit of its message shows.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct Written {
    pub id: i64,
    pub rule: String,
    pub key: String,
    pub ip: Option<String>,
    pub host: Option<String>,
    pub account: Option<String>,
    pub count: i64,
    pub first_at: DateTime<Utc>,
    pub exceeding_from: Option<DateTime<Utc>>,
    pub last_at: DateTime<Utc>,
    pub peak: i32,
    /// The first of its distinct accounts in byte order (what its message lists), and how
    /// many it has (`login_alert_accounts` holds them all).
    pub accounts: Vec<String>,
    pub account_count: i32,
    pub rules: Vec<String>,
    pub state: String,
    pub merged_into: Option<i64>,
    pub quiet: bool,
    pub outbox_ids: Vec<i64>,
}

/// The columns of a `Written`, for a `RETURNING` or a `SELECT` over `login_alerts a`.
pub(super) const COLUMNS: &str = "a.id, a.rule, a.key, host(a.ip) AS ip, a.host, a.account,
    a.count, a.first_at, a.exceeding_from, a.last_at, a.peak, a.accounts, a.account_count,
    a.rules, a.state,
    a.merged_into, a.silenced OR a.acked_by IS NOT NULL AS quiet, a.outbox_ids";

/// The span an episode joins alerts within: exceeding events within its gap.
fn reach(e: &Exceeding) -> (DateTime<Utc>, DateTime<Utc>) {
    let gap = Duration::seconds(e.gap_secs);
    (e.first_exceeding - gap, e.last_exceeding + gap)
}

/// The locked alerts, by id and by rule and key (a batch of an attack from many sources
/// holds thousands: every lookup is one hash probe, not a walk over them all).
pub(super) struct AlertView {
    rows: HashMap<i64, Written>,
    by_key: HashMap<(String, String), Vec<i64>>,
}

impl AlertView {
    /// Lock and read every alert that some episode of `found` may join.
    pub async fn lock(tx: &mut PgConnection, found: &[&Exceeding]) -> Result<Self, sqlx::Error> {
        let rules: Vec<&str> = found.iter().map(|e| e.rule.as_str()).collect();
        let keys: Vec<&str> = found.iter().map(|e| e.key.as_str()).collect();
        let (from, to): (Vec<_>, Vec<_>) = found.iter().map(|e| reach(e)).unzip();
        let statement = format!(
            "SELECT {COLUMNS} FROM login_alerts a
             JOIN (SELECT rule, key, min(lo) AS lo, max(hi) AS hi
                   FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[])
                        AS e(rule, key, lo, hi)
                   GROUP BY rule, key) e ON a.rule = e.rule AND a.key = e.key
             WHERE a.state <> 'merged' AND a.last_at > e.lo
               AND coalesce(a.exceeding_from, a.first_at) < e.hi
             ORDER BY a.id FOR UPDATE OF a"
        );
        let rows: Vec<Written> = sqlx::query_as(sqlx::AssertSqlSafe(statement))
            .bind(&rules)
            .bind(&keys)
            .bind(&from)
            .bind(&to)
            .fetch_all(tx)
            .await?;
        let mut view = AlertView {
            rows: HashMap::with_capacity(rows.len()),
            by_key: HashMap::with_capacity(rows.len()),
        };
        for row in &rows {
            view.put(row);
        }
        Ok(view)
    }

    /// The alerts episode `e` joins (ids and states), open first, then oldest first.
    pub fn touching(&self, e: &Exceeding) -> Vec<(i64, String)> {
        let (from, to) = reach(e);
        let Some(ids) = self.by_key.get(&(e.rule.clone(), e.key.clone())) else {
            return Vec::new();
        };
        let mut touching: Vec<(i64, String)> = ids
            .iter()
            .filter_map(|id| self.rows.get(id))
            .filter(|a| a.state != "merged")
            .filter(|a| a.last_at > from && a.exceeding_from.unwrap_or(a.first_at) < to)
            .map(|a| (a.id, a.state.clone()))
            .collect();
        touching.sort_by_key(|(id, state)| (state != "open", *id));
        touching
    }

    pub fn get(&self, id: i64) -> Option<&Written> {
        self.rows.get(&id)
    }

    /// Every alert held, in no order.
    pub fn rows(&self) -> impl Iterator<Item = &Written> {
        self.rows.values()
    }

    /// The alert, to show what the batch counted on it before it is written.
    pub fn get_mut(&mut self, id: i64) -> Option<&mut Written> {
        self.rows.get_mut(&id)
    }

    /// The alert as just written.
    pub fn put(&mut self, row: &Written) {
        if self.rows.insert(row.id, row.clone()).is_none() {
            self.by_key
                .entry((row.rule.clone(), row.key.clone()))
                .or_default()
                .push(row.id);
        }
    }

    /// `ids` were folded into `survivor` (which is written next).
    pub fn merged(&mut self, ids: &[i64], survivor: i64) {
        for id in ids {
            if let Some(a) = self.rows.get_mut(id) {
                a.state = "merged".into();
                a.merged_into = Some(survivor);
            }
        }
    }

    /// The open alert of `rule` and `key` that ended before `at` was closed.
    pub fn closed_before(&mut self, rule: &str, key: &str, at: DateTime<Utc>) {
        let Some(ids) = self.by_key.get(&(rule.to_string(), key.to_string())) else {
            return;
        };
        for id in ids {
            if let Some(a) = self.rows.get_mut(id)
                && a.state == "open"
                && a.last_at < at
            {
                a.state = "closed".into();
            }
        }
    }
}

/// Whether counting episode `e` on `row` would leave what a reader sees of it as it is: no
/// event newly covered (a spray: no new account), its times and peak within the row's, its
/// accounts among those the row lists (one it does not list may be new: that is for the
/// write to find out).
pub(super) fn covers(row: &Written, e: &Exceeding) -> bool {
    let count_kept = match e.kind {
        RuleKind::Spray => row.count == i64::from(row.account_count),
        _ => e.added == 0,
    };
    count_kept
        && row.first_at <= e.since
        && row.exceeding_from.is_some_and(|x| x <= e.first_exceeding)
        && row.last_at >= e.last_exceeding
        && i64::from(row.peak) >= i64::from(e.peak)
        && e.accounts.iter().all(|a| row.accounts.contains(a))
}

/// Whether growing `host` by `accounts` and `rule` would leave it as it is: the rule and
/// every account already on it (among those it lists; others may be new).
pub(super) fn holds<'a>(
    host: &Written,
    mut accounts: impl Iterator<Item = &'a String>,
    rule: &str,
) -> bool {
    host.rules.iter().any(|r| r == rule) && accounts.all(|a| host.accounts.contains(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn row() -> Written {
        Written {
            id: 1,
            rule: "ip-failures".into(),
            key: "ip:192.0.2.1".into(),
            ip: Some("192.0.2.1".into()),
            host: None,
            account: None,
            count: 12,
            first_at: at(0),
            exceeding_from: Some(at(10)),
            last_at: at(50),
            peak: 12,
            accounts: vec!["alice".into(), "bob".into()],
            account_count: 2,
            rules: vec!["ip-failures".into(), "ip-slow".into()],
            state: "open".into(),
            merged_into: None,
            quiet: false,
            outbox_ids: vec![7],
        }
    }

    fn episode(added: i64, last: i64, peak: u32, accounts: &[&str]) -> Exceeding {
        Exceeding {
            rule: "ip-failures".into(),
            kind: RuleKind::Ip,
            key: "ip:192.0.2.1".into(),
            source: None,
            account: None,
            added,
            accounts: accounts.iter().map(|a| a.to_string()).collect(),
            account_count: accounts.len() as i64,
            also: Vec::new(),
            peak,
            fire_at: 11,
            window_secs: 60,
            gap_secs: 600,
            since: at(5),
            first_exceeding: at(20),
            last_exceeding: at(last),
        }
    }

    #[test]
    fn an_episode_that_changes_nothing_shown_is_covered_and_any_change_is_not() {
        assert!(covers(&row(), &episode(0, 40, 11, &["bob"])));
        for changed in [
            episode(1, 40, 11, &["bob"]),   // an event newly covered
            episode(0, 51, 11, &["bob"]),   // a later last event
            episode(0, 40, 13, &["bob"]),   // a higher peak
            episode(0, 40, 11, &["carol"]), // a new account
        ] {
            assert!(!covers(&row(), &changed), "{changed:?}");
        }
        let mut earlier = episode(0, 40, 11, &[]);
        earlier.since = at(-1);
        assert!(!covers(&row(), &earlier));
    }

    #[test]
    fn a_host_holds_what_it_already_has() {
        let host = row();
        let (alice, carol) = ("alice".to_string(), "carol".to_string());
        assert!(holds(&host, [&alice].into_iter(), "ip-slow"));
        assert!(!holds(&host, [&alice].into_iter(), "password-spray"));
        assert!(!holds(&host, [&carol].into_iter(), "ip-slow"));
    }
}
