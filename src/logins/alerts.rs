//! Alerts, in ONE transaction per batch: open alerts whose key has been quiet for the
//! cool-down are closed; the batch's exceeding keys are upserted into `login_alerts` (an open
//! alert only counts on); a new alert that no silence matches is pushed to every alert chat
//! through the outbox, with chat-bound Ack, Silence 1h and Details buttons; and the pushed
//! messages of open alerts that counted on get a paced edit (`alert_text`).

use super::alert_counts::Stored;
use super::alert_text::{alert_text, edit_pushed};
use super::counts_behind::CountsBehind;
use super::known_accounts::KnownAccounts;
use crate::config::{LoginSettings, RuleKind};
use crate::domain::auth_event::Source;
use crate::domain::{Button, Reply};
use crate::engine::gates::CHAT_ACTION_PREFIX;
use crate::storage::pending;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::HashSet;

/// One rule key that reached its threshold in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeding {
    pub rule: String,
    pub kind: RuleKind,
    /// `ip:<addr>`, `account:<name>`, `spray:<addr>` or `all`.
    pub key: String,
    /// Who: the key's source, or for an account the source of its latest failure.
    pub source: Option<Source>,
    pub account: Option<String>,
    /// What the episode adds to the alert's count: the events it newly covers
    /// (`domain::detection::episodes`); a spray counts its distinct `accounts` instead.
    pub added: i64,
    /// The distinct accounts of the episode's events in this batch (a spray's: in its
    /// exceeding windows), sorted; as an alert's page shows them, the first of the alert's.
    pub accounts: Vec<String>,
    /// How many distinct accounts: `accounts.len()` for an episode, the alert's count of
    /// them (of which `accounts` lists the first) on a page.
    pub account_count: i64,
    /// Other rules whose alerts about the same source were folded into this one.
    pub also: Vec<String>,
    /// The highest window count in the batch, and the rule's threshold and window.
    pub peak: u32,
    pub fire_at: u32,
    pub window_secs: u64,
    /// Exceeding events this far apart are separate episodes (the rule's cool-down).
    pub gap_secs: i64,
    /// Since when: the oldest event counted in the first exceeding window.
    pub since: DateTime<Utc>,
    pub first_exceeding: DateTime<Utc>,
    pub last_exceeding: DateTime<Utc>,
}

/// An alert the batch opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    pub id: i64,
    pub rule: String,
    pub key: String,
    pub silenced: bool,
    /// One outbox row per alert chat (none when silenced).
    pub outbox_ids: Vec<i64>,
}

/// Record the batch's exceeding keys; returns the alerts it opened. A deadlock between
/// replicas writing the same keys is retried (the whole transaction, a few times). Once
/// committed, `behind` learns which alerts are open.
pub async fn raise(
    pool: &PgPool,
    settings: &LoginSettings,
    known: &KnownAccounts,
    behind: Option<&CountsBehind>,
    mut found: Vec<&Exceeding>,
) -> Result<Vec<NewAlert>, sqlx::Error> {
    if found.is_empty() {
        return Ok(Vec::new());
    }
    // Event-time order (which alert of a source came first decides which pages), and one
    // lock order for every replica among episodes that start together.
    found.sort_by(|a, b| {
        (a.first_exceeding, &a.rule, &a.key).cmp(&(b.first_exceeding, &b.rule, &b.key))
    });
    // The windows already hold this batch: a crossing not written now is never seen again,
    // so a deadlock or a brief loss of the database is waited out (0.1, 0.2, 0.4 s).
    let mut attempt = 0;
    loop {
        match raise_once(pool, settings, known, behind, &found).await {
            Err(e) if attempt < 3 && is_transient(&e) => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
            done => return done,
        }
    }
}

/// A failure the same transaction may not meet again: a deadlock or serialization
/// conflict, or the connection (or the pool) failing rather than the statement.
fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            matches!(db.code().as_deref(), Some("40P01" | "40001" | "57P01"))
                || db.code().is_some_and(|c| c.starts_with("08"))
        }
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
        _ => false,
    }
}

async fn raise_once(
    pool: &PgPool,
    settings: &LoginSettings,
    known: &KnownAccounts,
    behind: Option<&CountsBehind>,
    found: &[&Exceeding],
) -> Result<Vec<NewAlert>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // One alert transaction at a time across replicas: two recording the same key at once
    // each saw no alert (the other's was not committed when they read), so both opened one
    // (two pages for one attack) or one failed on `login_alerts_open` and its crossing was
    // lost. A replica records concurrent batches together (`alert_groups`), so this orders
    // replicas, not batches.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('opsguard.login_alerts'))")
        .execute(&mut *tx)
        .await?;
    // Closed by the clock: quiet for its rule's cool-down and not one fired within it (a
    // backlog replay). In event time, `alert_record` closes what an episode follows.
    let rules: Vec<&str> = settings.rules.iter().map(|r| r.name.as_str()).collect();
    let gaps: Vec<f64> = settings
        .rules
        .iter()
        .map(|r| r.gap_secs(settings.cooldown_secs) as f64)
        .collect();
    sqlx::query(
        "UPDATE login_alerts SET state = 'closed' WHERE id IN (
           SELECT a.id FROM login_alerts a
             LEFT JOIN UNNEST($2::text[], $3::float8[]) AS g(rule, secs) ON g.rule = a.rule
           WHERE a.state = 'open'
             AND a.last_at < now() - coalesce(g.secs, $1) * interval '1 second'
             AND a.fired_at < now() - coalesce(g.secs, $1) * interval '1 second'
           FOR UPDATE OF a SKIP LOCKED)",
    )
    .bind(settings.cooldown_secs as f64)
    .bind(&rules)
    .bind(&gaps)
    .execute(&mut *tx)
    .await?;
    let mut stored = Stored {
        known,
        sent: Vec::new(),
    };
    let (opened, mut counted, view) =
        super::alert_record::record(&mut tx, settings, found, &mut stored).await?;
    let silences: HashSet<String> = if opened.is_empty() && counted.is_empty() {
        HashSet::new()
    } else {
        sqlx::query_scalar("SELECT matcher FROM login_silences WHERE until > now()")
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect()
    };
    // A key or rule silenced since its alert was pushed: its message is left as it is.
    counted.retain(|c| !silences.contains(&c.shown.rule) && !silences.contains(&c.shown.key));
    edit_pushed(&mut tx, settings, &counted).await?;
    let mut new_alerts = Vec::with_capacity(opened.len());
    if !opened.is_empty() {
        for (id, alert) in &opened {
            let id = *id;
            let silenced = silences.contains(&alert.rule) || silences.contains(&alert.key);
            let outbox_ids = if silenced {
                Vec::new()
            } else {
                push(&mut tx, settings, id, alert).await?
            };
            new_alerts.push(NewAlert {
                id,
                rule: alert.rule.clone(),
                key: alert.key.clone(),
                silenced,
                outbox_ids,
            });
        }
        record_pushes(&mut tx, &new_alerts).await?;
    }
    tx.commit().await?;
    known.remember(&stored.sent);
    if let Some(behind) = behind {
        behind.learn(&view);
    }
    for alert in &new_alerts {
        tracing::info!(
            alert.id = alert.id,
            alert.rule = %alert.rule,
            alert.key = %alert.key,
            alert.silenced = alert.silenced,
            "logins.alert.raised"
        );
    }
    Ok(new_alerts)
}

/// Queue the alert to every alert chat with its three buttons; returns the outbox ids.
async fn push(
    tx: &mut Transaction<'static, Postgres>,
    settings: &LoginSettings,
    id: i64,
    alert: &Exceeding,
) -> Result<Vec<i64>, sqlx::Error> {
    let ttl = chrono::Duration::seconds(settings.button_ttl_secs);
    let text = alert_text(id, alert, Utc::now());
    let mut outbox_ids = Vec::with_capacity(settings.alert_chats.len());
    for &chat in &settings.alert_chats {
        let mut buttons = Vec::with_capacity(3);
        for (label, command) in [
            ("✅ Ack", format!("/ack {id}")),
            ("🔕 Silence 1h", format!("/silence {id} 1h")),
            ("🔎 Details", format!("/alerts {id}")),
        ] {
            let action = pending::create_for_chat(&mut **tx, chat, &command, ttl).await?;
            buttons.push(Button {
                label: label.into(),
                data: format!("{CHAT_ACTION_PREFIX}{action}"),
            });
        }
        let reply = Reply::html(text.clone()).with_buttons(buttons);
        let source = format!("alert:{id}");
        outbox_ids.push(crate::outbox::enqueue(&mut **tx, chat, &reply, &source).await?);
    }
    Ok(outbox_ids)
}

/// Mark silenced alerts, and store each pushed alert's outbox rows (and the first apart).
async fn record_pushes(
    tx: &mut Transaction<'static, Postgres>,
    alerts: &[NewAlert],
) -> Result<(), sqlx::Error> {
    let silenced: Vec<i64> = alerts.iter().filter(|a| a.silenced).map(|a| a.id).collect();
    if !silenced.is_empty() {
        sqlx::query("UPDATE login_alerts SET silenced = true WHERE id = ANY($1)")
            .bind(&silenced)
            .execute(&mut **tx)
            .await?;
    }
    for alert in alerts.iter().filter(|a| !a.outbox_ids.is_empty()) {
        sqlx::query("UPDATE login_alerts SET outbox_id = $2[1], outbox_ids = $2 WHERE id = $1")
            .bind(alert.id)
            .bind(&alert.outbox_ids)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
