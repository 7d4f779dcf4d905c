//! Episodes counted on alerts the batch already holds locked, written in ONE statement: a
//! batch of an attack from many sources counts on hundreds of open alerts, and one
//! `UPDATE` per alert held every alert's lock for hundreds of round trips (a lock convoy
//! between concurrent batches). Until written, the view shows the counted figures, so later
//! episodes of the batch join and skip exactly as they would after a write.

use super::alert_view::{AlertView, Written};
use super::alerts::Exceeding;
use crate::config::RuleKind;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use std::collections::{BTreeMap, BTreeSet};

/// What the batch's episodes add to one alert, not yet written.
#[derive(Debug)]
struct Counted {
    added: i64,
    accounts: BTreeSet<String>,
    since: DateTime<Utc>,
    first_exceeding: DateTime<Utc>,
    last_exceeding: DateTime<Utc>,
    peak: u32,
    spray: bool,
}

/// The counts waiting to be written, by alert id.
#[derive(Debug, Default)]
pub(super) struct PendingCounts {
    by_alert: BTreeMap<i64, Counted>,
}

impl PendingCounts {
    /// Whether a count on alert `id` waits to be written.
    pub fn holds(&self, id: i64) -> bool {
        self.by_alert.contains_key(&id)
    }

    /// Count episode `e` on alert `id` (held in `view`), and show it there now.
    pub fn add(&mut self, view: &mut AlertView, id: i64, e: &Exceeding, max_accounts: i64) {
        let spray = e.kind == RuleKind::Spray;
        let counted = self.by_alert.entry(id).or_insert_with(|| Counted {
            added: 0,
            accounts: BTreeSet::new(),
            since: e.since,
            first_exceeding: e.first_exceeding,
            last_exceeding: e.last_exceeding,
            peak: e.peak,
            spray,
        });
        counted.added = counted.added.saturating_add(e.added);
        counted.accounts.extend(e.accounts.iter().cloned());
        counted.since = counted.since.min(e.since);
        counted.first_exceeding = counted.first_exceeding.min(e.first_exceeding);
        counted.last_exceeding = counted.last_exceeding.max(e.last_exceeding);
        counted.peak = counted.peak.max(e.peak);
        counted.spray |= spray;
        if let Some(row) = view.get(id) {
            let mut row = row.clone();
            shown_counted(&mut row, e, max_accounts);
            view.put(&row);
        }
    }

    /// Write every pending count in one statement, and put the rows as written into
    /// `view` (their accounts in the database's order). Nothing pending: no statement.
    pub async fn flush(
        &mut self,
        tx: &mut PgConnection,
        view: &mut AlertView,
        max_accounts: i64,
    ) -> Result<(), sqlx::Error> {
        if self.by_alert.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.by_alert);
        let ids: Vec<i64> = pending.keys().copied().collect();
        let counts = pending.values();
        let added: Vec<i64> = counts.clone().map(|c| c.added).collect();
        let accounts: Vec<serde_json::Value> = counts
            .clone()
            .map(|c| serde_json::json!(c.accounts))
            .collect();
        let since: Vec<DateTime<Utc>> = counts.clone().map(|c| c.since).collect();
        let first: Vec<DateTime<Utc>> = counts.clone().map(|c| c.first_exceeding).collect();
        let last: Vec<DateTime<Utc>> = counts.clone().map(|c| c.last_exceeding).collect();
        let spray: Vec<bool> = counts.clone().map(|c| c.spray).collect();
        let peak: Vec<i32> = counts
            .map(|c| i32::try_from(c.peak).unwrap_or(i32::MAX))
            .collect();
        let statement = format!(
            "UPDATE login_alerts a SET
               count = CASE WHEN u.spray THEN cardinality(m.accounts) ELSE a.count + u.added END,
               accounts = m.accounts,
               first_at = least(a.first_at, u.since),
               exceeding_from = least(a.exceeding_from, u.first_ex),
               last_at = greatest(a.last_at, u.last),
               peak = greatest(a.peak, u.peak)
             FROM UNNEST($1::bigint[], $2::bigint[], $3::jsonb[], $4::timestamptz[],
                         $5::timestamptz[], $6::timestamptz[], $7::bool[], $8::int[])
                    AS u(id, added, accounts, since, first_ex, last, spray, peak)
               CROSS JOIN LATERAL (
                 SELECT coalesce(array_agg(x ORDER BY x), '{{}}') AS accounts FROM (
                   SELECT DISTINCT x FROM unnest(
                     (SELECT o.accounts FROM login_alerts o WHERE o.id = u.id)
                     || ARRAY(SELECT jsonb_array_elements_text(u.accounts))) AS x
                   ORDER BY x LIMIT $9) d) m
             WHERE a.id = u.id
             RETURNING {}",
            super::alert_view::COLUMNS
        );
        let rows: Vec<Written> = sqlx::query_as(sqlx::AssertSqlSafe(statement))
            .bind(&ids)
            .bind(&added)
            .bind(&accounts)
            .bind(&since)
            .bind(&first)
            .bind(&last)
            .bind(&spray)
            .bind(&peak)
            .bind(max_accounts)
            .fetch_all(tx)
            .await?;
        for row in &rows {
            view.put(row);
        }
        Ok(())
    }
}

/// `row` as it reads once `e` is counted on it (what the statement writes, but for the
/// order of the accounts, which the database's collation decides at the write).
fn shown_counted(row: &mut Written, e: &Exceeding, max_accounts: i64) {
    let mut accounts: BTreeSet<String> = row.accounts.iter().cloned().collect();
    accounts.extend(e.accounts.iter().cloned());
    row.accounts = accounts
        .into_iter()
        .take(usize::try_from(max_accounts).unwrap_or(usize::MAX))
        .collect();
    row.count = if e.kind == RuleKind::Spray {
        row.accounts.len() as i64
    } else {
        row.count.saturating_add(e.added)
    };
    row.first_at = row.first_at.min(e.since);
    row.exceeding_from = Some(
        row.exceeding_from
            .map_or(e.first_exceeding, |x| x.min(e.first_exceeding)),
    );
    row.last_at = row.last_at.max(e.last_exceeding);
    row.peak = row.peak.max(i32::try_from(e.peak).unwrap_or(i32::MAX));
}
