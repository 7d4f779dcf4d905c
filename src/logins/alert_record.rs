//! Recording episodes as alerts, one episode at a time in the batch's transaction, in event
//! time. An episode joins every alert of its rule and key whose exceeding events are within
//! the rule's gap of its own (a late event can show two alerts to be one attack: the later
//! is `merged` into the earlier). One that joins none opens an alert — unless its source
//! (address or host name) already has an open alert of another rule: then it is `folded`
//! into that one (recorded and counted, never paged apart; the source's alert grows its
//! accounts and rules and is edited in place). An alert's count grows by the events the
//! episode newly covers (a spray's: its distinct accounts), so it is the same however the
//! events were batched.

use super::alert_counts::{PendingCounts, Stored};
use super::alert_text::{CountedOn, SHOWN_ACCOUNTS};
use super::alert_view::{AlertView, Written, covers, holds};
use super::alerts::Exceeding;
use crate::config::{LoginSettings, RuleKind};
use crate::domain::auth_event::Source;
use sqlx::{PgConnection, Postgres, Transaction};
use std::collections::{HashMap, HashSet};

/// An alert stops taking accounts once it holds this many (a spray's count stops there; a
/// fold of two alerts may carry it past).
const MAX_ACCOUNTS: i64 = 10_000;

/// Record every episode (`found` in event-time order); returns the alerts opened (id, and
/// what their page shows: the episode, with what was folded into it since), and the
/// open, pushed, unsilenced and unacknowledged alerts that counted on (each once, as last
/// written), and the alerts as the transaction leaves them.
pub async fn record(
    tx: &mut Transaction<'static, Postgres>,
    settings: &LoginSettings,
    found: &[&Exceeding],
    stored: &mut Stored<'_>,
) -> Result<(Vec<(i64, Exceeding)>, Vec<CountedOn>, AlertView), sqlx::Error> {
    let mut opened = Vec::<(i64, Exceeding)>::new();
    let mut view = AlertView::lock(tx, found).await?;
    // Counts on alerts the view holds wait here and are written together; anything that
    // reads alerts from the database (a fold, a source's alert, an insert) writes them first.
    let mut pending = PendingCounts::new(stored.known);
    // The alerts the batch wrote (`changed`), and of those the batch may have written, in
    // the order last touched, whether each was open (and so its message to be edited) as
    // touched: a later episode may close it in the view.
    let mut changed = HashSet::<i64>::new();
    // A source's alert a folded episode grows may not be in the view (no episode of its
    // own in the batch): whether it is editable is then read once it is written.
    let mut touched = HashMap::<i64, (usize, Option<bool>)>::new();
    let mut touches = 0;
    let mut touch = |row: Option<&Written>, id: i64| {
        touches += 1;
        touched.insert(id, (touches, row.map(editable)));
    };
    for &e in found {
        let touching = view.touching(e);
        match touching.split_first() {
            Some(((survivor, _), [])) => {
                if !view.get(*survivor).is_some_and(|r| covers(r, e)) {
                    pending.add(&mut view, *survivor, e);
                }
                if let Some(host) = view
                    .get(*survivor)
                    .filter(|r| r.state == "folded")
                    .and_then(|r| r.merged_into)
                {
                    grow(&mut pending, &mut view, host, e);
                    touch(view.get(host), host);
                }
                touch(view.get(*survivor), *survivor);
            }
            Some(((survivor, _), others)) => {
                changed.extend(pending.flush(tx, &mut view, stored, MAX_ACCOUNTS).await?);
                let ids: Vec<i64> = others.iter().map(|(id, _)| *id).collect();
                // After a fold the survivor's figures are the database's, not the view's.
                let row = fold(tx, *survivor, &ids).await?;
                view.merged(&ids, *survivor);
                view.put(&row);
                changed.insert(row.id);
                pending.add(&mut view, row.id, e);
                if let (Some(host), "folded") = (row.merged_into, row.state.as_str()) {
                    grow(&mut pending, &mut view, host, e);
                    touch(view.get(host), host);
                }
                touch(Some(&row), row.id);
            }
            None => {
                changed.extend(pending.flush(tx, &mut view, stored, MAX_ACCOUNTS).await?);
                let host = source_alert(tx, settings, e).await?;
                let row = insert(tx, &mut view, e, host).await?;
                view.put(&row);
                changed.insert(row.id);
                match host {
                    Some(host) => {
                        grow(&mut pending, &mut view, host, e);
                        touch(view.get(host), host);
                        touch(Some(&row), row.id);
                    }
                    None => opened.push((row.id, e.clone())),
                }
            }
        }
    }
    changed.extend(pending.flush(tx, &mut view, stored, MAX_ACCOUNTS).await?);
    let mut written: Vec<(i64, (usize, Option<bool>))> = touched
        .into_iter()
        .filter(|(id, _)| changed.contains(id))
        .collect();
    written.sort_by_key(|(_, (order, _))| *order);
    let mut counted = Vec::<CountedOn>::new();
    for (id, (_, was_editable)) in written {
        let Some(row) = view.get(id) else { continue };
        let editable = was_editable.unwrap_or_else(|| editable(row));
        if let (Some(shown), true) = (shown(settings, row), editable) {
            counted.push(CountedOn {
                id: row.id,
                count: row.count,
                first_at: row.first_at,
                last_at: row.last_at,
                outbox_ids: row.outbox_ids.clone(),
                shown,
            });
        }
    }
    for (id, page) in &mut opened {
        if let Some(row) = view.get(*id) {
            page.accounts.clone_from(&row.accounts);
            page.account_count = i64::from(row.account_count);
            page.also.clone_from(&row.rules);
        }
    }
    Ok((opened, counted, view))
}

/// The source's alert `host` takes in a folded episode: its accounts (and the account an
/// account rule is about) and its rule; its own episode (and so its times) stays its own.
/// Nothing is written when the host already holds them all (as the view has it).
fn grow(pending: &mut PendingCounts, view: &mut AlertView, host: i64, e: &Exceeding) {
    let about = e.account.as_ref().filter(|_| e.kind == RuleKind::Account);
    let accounts = || e.accounts.iter().chain(about);
    if !view
        .get(host)
        .is_some_and(|h| holds(h, accounts(), &e.rule))
    {
        pending.grow(view, host, accounts(), &e.rule);
    }
}

/// Whether `row`, as written, is an open alert whose pushed message shows its count (not
/// acknowledged or silenced).
fn editable(row: &Written) -> bool {
    row.state == "open" && !row.quiet && !row.outbox_ids.is_empty()
}

/// What an edit of `row`'s message shows (`None` for a rule no longer configured).
fn shown(settings: &LoginSettings, row: &Written) -> Option<Exceeding> {
    let rule = settings.rules.iter().find(|r| r.name == row.rule)?;
    let source = match (&row.ip, &row.host) {
        (Some(ip), _) => ip.parse().ok().map(Source::Ip),
        (None, Some(host)) => Some(Source::Host(host.clone())),
        _ => None,
    };
    Some(Exceeding {
        rule: row.rule.clone(),
        kind: rule.kind,
        key: row.key.clone(),
        source,
        account: row.account.clone(),
        added: 0,
        accounts: row.accounts.clone(),
        account_count: i64::from(row.account_count),
        also: row.rules.clone(),
        peak: u32::try_from(row.peak).unwrap_or_default(),
        fire_at: rule.fire_at,
        window_secs: rule.window_secs,
        gap_secs: rule.gap_secs(settings.cooldown_secs) as i64,
        since: row.first_at,
        first_exceeding: row.exceeding_from.unwrap_or(row.first_at),
        last_exceeding: row.last_at,
    })
}

/// The open alert of another rule about the episode's source (its address or host name,
/// by an address rule or a spray) whose own episode was under way when this one began
/// (it started before, and had an exceeding event within its rule's gap before — which,
/// for an episode, is the same as its span reaching this one: so the answer is the same
/// whether later events came in the same batch or not). What the episode folds into.
/// Never for a surge, which is about no source.
async fn source_alert(
    tx: &mut PgConnection,
    settings: &LoginSettings,
    e: &Exceeding,
) -> Result<Option<i64>, sqlx::Error> {
    let Some(source) = e.source.as_ref().filter(|_| e.kind != RuleKind::Surge) else {
        return Ok(None);
    };
    let keys = [source.key(), format!("spray:{source}")];
    let rules: Vec<&str> = settings.rules.iter().map(|r| r.name.as_str()).collect();
    let gaps: Vec<f64> = settings
        .rules
        .iter()
        .map(|r| r.gap_secs(settings.cooldown_secs) as f64)
        .collect();
    sqlx::query_scalar(
        "SELECT a.id FROM login_alerts a
           JOIN UNNEST($4::text[], $5::float8[]) AS g(rule, secs) ON g.rule = a.rule
         WHERE a.state = 'open' AND a.key = ANY($1) AND a.rule <> $2
           AND coalesce(a.exceeding_from, a.first_at) <= $3
           AND a.last_at > $3 - g.secs * interval '1 second'
         ORDER BY a.id LIMIT 1 FOR UPDATE OF a",
    )
    .bind(&keys[..])
    .bind(&e.rule)
    .bind(e.first_exceeding)
    .bind(&rules)
    .bind(&gaps)
    .fetch_optional(tx)
    .await
}

/// A new alert for an episode no alert covers: folded into `host`, or open. An open alert
/// of the key that ended before it is closed; one that is later (the episode came late)
/// stays open, and this one is recorded closed. Its accounts are stored with it.
async fn insert(
    tx: &mut PgConnection,
    view: &mut AlertView,
    e: &Exceeding,
    host: Option<i64>,
) -> Result<Written, sqlx::Error> {
    sqlx::query(
        "UPDATE login_alerts SET state = 'closed'
         WHERE rule = $1 AND key = $2 AND state = 'open' AND last_at < $3",
    )
    .bind(&e.rule)
    .bind(&e.key)
    .bind(e.first_exceeding)
    .execute(&mut *tx)
    .await?;
    view.closed_before(&e.rule, &e.key, e.first_exceeding);
    // A folded alert's accounts are its host's to show; a spray's are its count.
    let mut accounts = if host.is_none() || e.kind == RuleKind::Spray {
        e.accounts.clone()
    } else {
        Vec::new()
    };
    accounts.sort_unstable();
    accounts.dedup();
    accounts.truncate(usize::try_from(MAX_ACCOUNTS).unwrap_or(usize::MAX));
    let count = if e.kind == RuleKind::Spray {
        accounts.len() as i64
    } else {
        e.added
    };
    let statement = format!(
        "WITH a AS (
           INSERT INTO login_alerts AS a (rule, key, ip, host, account, count, first_at,
             last_at, exceeding_from, peak, accounts, account_count, merged_into, state)
           VALUES ($1, $2, $3::text::inet, $4, $5, $6, $7, $8, $9, $10, $11[1:$13],
             cardinality($11), $12,
             CASE WHEN $12 IS NOT NULL THEN 'folded'
                  WHEN EXISTS (SELECT 1 FROM login_alerts
                               WHERE rule = $1 AND key = $2 AND state = 'open')
                  THEN 'closed' ELSE 'open' END)
           RETURNING *),
         listed AS (
           INSERT INTO login_alert_accounts (alert_id, account)
           SELECT a.id, x FROM a, unnest($11::text[]) x)
         SELECT {} FROM a",
        super::alert_view::COLUMNS
    );
    sqlx::query_as(sqlx::AssertSqlSafe(statement))
        .bind(&e.rule)
        .bind(&e.key)
        .bind(
            e.source
                .as_ref()
                .and_then(|s| s.ip())
                .map(|ip| ip.to_string()),
        )
        .bind(e.source.as_ref().and_then(|s| s.host()))
        .bind(e.account.as_deref())
        .bind(count)
        .bind(e.since)
        .bind(e.last_exceeding)
        .bind(e.first_exceeding)
        .bind(i32::try_from(e.peak).unwrap_or(i32::MAX))
        .bind(&accounts)
        .bind(host)
        .bind(SHOWN_ACCOUNTS as i32)
        .fetch_one(tx)
        .await
}

/// Fold `others` into `survivor`: their counts, spans, accounts and rules; they become
/// `merged`. Returns the survivor as written.
async fn fold(
    tx: &mut PgConnection,
    survivor: i64,
    others: &[i64],
) -> Result<Written, sqlx::Error> {
    let statement = format!(
        "WITH gone AS (
           UPDATE login_alerts SET state = 'merged', merged_into = $1
           WHERE id = ANY($2)
           RETURNING count, first_at, exceeding_from, last_at, peak, rules),
         moved AS (
           INSERT INTO login_alert_accounts (alert_id, account)
           SELECT DISTINCT $1::bigint, account FROM login_alert_accounts
           WHERE alert_id = ANY($2)
           ON CONFLICT DO NOTHING
           RETURNING account)
         UPDATE login_alerts a SET
           count = a.count + (SELECT coalesce(sum(count), 0) FROM gone),
           first_at = least(a.first_at, (SELECT min(first_at) FROM gone)),
           exceeding_from = least(a.exceeding_from, (SELECT min(exceeding_from) FROM gone)),
           last_at = greatest(a.last_at, (SELECT max(last_at) FROM gone)),
           peak = greatest(a.peak, (SELECT max(peak) FROM gone)),
           account_count = a.account_count + (SELECT count(*) FROM moved),
           accounts = ARRAY(SELECT x FROM (
             SELECT unnest(a.accounts) AS x UNION ALL SELECT account FROM moved) u
             ORDER BY x COLLATE \"C\" LIMIT $3),
           rules = (SELECT coalesce(array_agg(DISTINCT r ORDER BY r), '{{}}') FROM (
             SELECT unnest(a.rules) AS r UNION ALL SELECT unnest(rules) FROM gone) u)
         WHERE a.id = $1 RETURNING {}",
        super::alert_view::COLUMNS
    );
    sqlx::query_as(sqlx::AssertSqlSafe(statement))
        .bind(survivor)
        .bind(others)
        .bind(SHOWN_ACCOUNTS as i64)
        .fetch_one(tx)
        .await
}
