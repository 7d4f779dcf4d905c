//! What a batch's episodes add to alerts it already holds locked, written in ONE statement:
//! a batch of an attack from many sources counts on thousands of open alerts, and one
//! `UPDATE` per alert held every alert's lock for thousands of round trips (a lock convoy
//! between concurrent batches). The same statement stores the accounts new to each alert
//! (`login_alert_accounts`, one row per account, once) and rewrites only the rows whose
//! shown figures change. Until written, the view shows the counted figures, so later
//! episodes of the batch join and skip exactly as they would after a write.

use super::alert_text::SHOWN_ACCOUNTS;
use super::alert_view::{AlertView, Written};
use super::alerts::Exceeding;
use super::known_accounts::{Known, KnownAccounts};
use crate::config::RuleKind;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// An episode's span on the alert it counts on.
#[derive(Debug)]
struct Span {
    since: DateTime<Utc>,
    first_exceeding: DateTime<Utc>,
    last_exceeding: DateTime<Utc>,
    peak: u32,
}

/// What the batch's episodes add to one alert, not yet written.
#[derive(Debug, Default)]
struct Counted {
    added: i64,
    accounts: BTreeSet<String>,
    rules: BTreeSet<String>,
    /// `None` for an alert that only grows (a source's alert taking a folded episode).
    span: Option<Span>,
    spray: bool,
}

/// The accounts known stored before the batch, and the pairs the batch sent (stored or
/// found stored once it commits).
pub(super) struct Stored<'a> {
    pub known: &'a KnownAccounts,
    pub sent: Vec<Known>,
}

/// The counts waiting to be written, by alert id.
pub(super) struct PendingCounts<'k> {
    by_alert: BTreeMap<i64, Counted>,
    /// Accounts known stored on their alerts: not taken again (a spray episode reports
    /// every account of its window, ~256, with each batch; nearly all are known).
    known: &'k KnownAccounts,
}

impl<'k> PendingCounts<'k> {
    pub fn new(known: &'k KnownAccounts) -> Self {
        PendingCounts {
            by_alert: BTreeMap::new(),
            known,
        }
    }

    /// Count episode `e` on alert `id` (held in `view`), and show it there now (all but
    /// what only the write can know: which accounts are new, so a spray's count). A folded
    /// alert keeps no accounts (its host shows them) unless they are its count (a spray).
    pub fn add(&mut self, view: &mut AlertView, id: i64, e: &Exceeding) {
        let folded = view.get(id).is_some_and(|r| r.state == "folded");
        let counted = self.by_alert.entry(id).or_default();
        counted.added = counted.added.saturating_add(e.added);
        if !folded || e.kind == RuleKind::Spray {
            let accounts = &mut counted.accounts;
            self.known.each_unknown(id, e.accounts.iter(), |a| {
                if !accounts.contains(a) {
                    accounts.insert(a.clone());
                }
            });
        }
        counted.spray |= e.kind == RuleKind::Spray;
        let span = counted.span.get_or_insert(Span {
            since: e.since,
            first_exceeding: e.first_exceeding,
            last_exceeding: e.last_exceeding,
            peak: e.peak,
        });
        span.since = span.since.min(e.since);
        span.first_exceeding = span.first_exceeding.min(e.first_exceeding);
        span.last_exceeding = span.last_exceeding.max(e.last_exceeding);
        span.peak = span.peak.max(e.peak);
        if let Some(row) = view.get_mut(id) {
            shown_counted(row, e);
        }
    }

    /// Grow the source's alert `host` by a folded episode's `accounts` and `rule`.
    pub fn grow<'a>(
        &mut self,
        view: &mut AlertView,
        host: i64,
        accounts: impl Iterator<Item = &'a String>,
        rule: &str,
    ) {
        let counted = self.by_alert.entry(host).or_default();
        let taken = &mut counted.accounts;
        self.known.each_unknown(host, accounts, |a| {
            if !taken.contains(a) {
                taken.insert(a.clone());
            }
        });
        if !counted.rules.contains(rule) {
            counted.rules.insert(rule.to_string());
        }
        if let Some(row) = view
            .get_mut(host)
            .filter(|r| !r.rules.iter().any(|r| r == rule))
        {
            row.rules.push(rule.to_string());
            row.rules.sort();
        }
    }

    /// Write every pending count in one statement, and put the rows as written into
    /// `view`; returns the ids of the rows that changed (a count whose events, accounts and
    /// rules the alert already had writes nothing). Nothing pending: no statement.
    pub async fn flush(
        &mut self,
        tx: &mut PgConnection,
        view: &mut AlertView,
        stored: &mut Stored<'_>,
        max_accounts: i64,
    ) -> Result<HashSet<i64>, sqlx::Error> {
        if self.by_alert.is_empty() {
            return Ok(HashSet::new());
        }
        let pending = std::mem::take(&mut self.by_alert);
        let ids: Vec<i64> = pending.keys().copied().collect();
        let counts = pending.values();
        let added: Vec<i64> = counts.clone().map(|c| c.added).collect();
        let span = |f: fn(&Span) -> DateTime<Utc>| -> Vec<Option<DateTime<Utc>>> {
            pending.values().map(|c| c.span.as_ref().map(f)).collect()
        };
        let (since, first, last) = (
            span(|s| s.since),
            span(|s| s.first_exceeding),
            span(|s| s.last_exceeding),
        );
        let peak: Vec<Option<i32>> = counts
            .clone()
            .map(|c| {
                c.span
                    .as_ref()
                    .map(|s| i32::try_from(s.peak).unwrap_or(i32::MAX))
            })
            .collect();
        let spray: Vec<bool> = counts.clone().map(|c| c.spray).collect();
        let rules: Vec<serde_json::Value> = counts.map(|c| serde_json::json!(c.rules)).collect();
        let known = stored.known;
        let mut pairs: Vec<(i64, &str, Known)> = pending
            .iter()
            .flat_map(|(id, c)| c.accounts.iter().map(move |a| (*id, a.as_str())))
            .map(|(id, a)| (id, a, known.key(id, a)))
            .collect();
        known.retain_unknown(&mut pairs, |p| p.2);
        stored.sent.extend(pairs.iter().map(|p| p.2));
        let (account_of, account): (Vec<i64>, Vec<&str>) =
            pairs.iter().map(|&(id, a, _)| (id, a)).unzip();
        let statement = format!(
            "WITH u AS (
               SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::timestamptz[],
                 $4::timestamptz[], $5::timestamptz[], $6::int[], $7::bool[], $8::jsonb[])
                 AS u(id, added, since, first_ex, last, peak, spray, rules)),
             fresh AS (
               INSERT INTO login_alert_accounts (alert_id, account)
               SELECT p.id, p.account FROM (
                   SELECT id, account, row_number() OVER (PARTITION BY id) AS nth
                   FROM UNNEST($9::bigint[], $10::text[]) AS p(id, account)) p
                 JOIN login_alerts o ON o.id = p.id AND o.account_count + p.nth <= $11
               ON CONFLICT DO NOTHING
               RETURNING alert_id, account),
             grown AS (
               SELECT alert_id, count(*)::int AS n, array_agg(account) AS names
               FROM fresh GROUP BY alert_id),
             next AS (
               SELECT o.id,
                 CASE WHEN u.spray THEN o.account_count + coalesce(g.n, 0)
                      ELSE o.count + u.added END AS count,
                 o.account_count + coalesce(g.n, 0) AS account_count,
                 CASE WHEN g.n IS NULL THEN o.accounts ELSE ARRAY(
                   SELECT x FROM unnest(o.accounts || g.names) x
                   ORDER BY x COLLATE \"C\" LIMIT $12) END AS accounts,
                 ARRAY(SELECT DISTINCT r FROM unnest(o.rules || ARRAY(
                   SELECT jsonb_array_elements_text(u.rules))) r ORDER BY r) AS rules,
                 least(o.first_at, u.since) AS first_at,
                 least(o.exceeding_from, u.first_ex) AS exceeding_from,
                 greatest(o.last_at, u.last) AS last_at,
                 greatest(o.peak, u.peak) AS peak
               FROM u JOIN login_alerts o ON o.id = u.id
                 LEFT JOIN grown g ON g.alert_id = u.id)
             UPDATE login_alerts a SET count = n.count, account_count = n.account_count,
               accounts = n.accounts, rules = n.rules, first_at = n.first_at,
               exceeding_from = n.exceeding_from, last_at = n.last_at, peak = n.peak
             FROM next n
             WHERE a.id = n.id AND (a.count, a.account_count, a.accounts, a.rules, a.first_at,
               a.exceeding_from, a.last_at, a.peak) IS DISTINCT FROM (n.count, n.account_count,
               n.accounts, n.rules, n.first_at, n.exceeding_from, n.last_at, n.peak)
             RETURNING {}",
            super::alert_view::COLUMNS
        );
        let rows: Vec<Written> = sqlx::query_as(sqlx::AssertSqlSafe(statement))
            .bind(&ids)
            .bind(&added)
            .bind(&since)
            .bind(&first)
            .bind(&last)
            .bind(&peak)
            .bind(&spray)
            .bind(&rules)
            .bind(&account_of)
            .bind(&account)
            .bind(i32::try_from(max_accounts).unwrap_or(i32::MAX))
            .bind(SHOWN_ACCOUNTS as i64)
            .fetch_all(tx)
            .await?;
        let mut changed = HashSet::with_capacity(rows.len());
        for row in &rows {
            view.put(row);
            changed.insert(row.id);
        }
        Ok(changed)
    }
}

/// `row` as it reads once `e` is counted on it, as far as the batch can know before the
/// write (which accounts are new, so a spray's count, only the write finds out).
fn shown_counted(row: &mut Written, e: &Exceeding) {
    if e.kind != RuleKind::Spray {
        row.count = row.count.saturating_add(e.added);
    }
    row.first_at = row.first_at.min(e.since);
    row.exceeding_from = Some(
        row.exceeding_from
            .map_or(e.first_exceeding, |x| x.min(e.first_exceeding)),
    );
    row.last_at = row.last_at.max(e.last_exceeding);
    row.peak = row.peak.max(i32::try_from(e.peak).unwrap_or(i32::MAX));
}
