//! Alerts, in ONE transaction per batch: open alerts whose key has been quiet for the
//! cool-down are closed; the batch's exceeding keys are upserted into `login_alerts` (an open
//! alert only counts on); a new alert that no silence matches is pushed to every alert chat
//! through the outbox, with chat-bound Ack, Silence 1h and Details buttons; and the pushed
//! messages of open alerts that counted on get a paced edit (`alert_text`).

use super::alert_text::{CountedOn, alert_text, edit_pushed};
use crate::config::{LoginSettings, RuleKind};
use crate::domain::{Button, Reply};
use crate::engine::gates::CHAT_ACTION_PREFIX;
use crate::storage::pending;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::HashSet;
use std::net::IpAddr;

/// One rule key that reached its threshold in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeding {
    pub rule: String,
    pub kind: RuleKind,
    /// `ip:<addr>`, `account:<name>`, `spray:<addr>` or `all`.
    pub key: String,
    /// Who: the key's IP, or for an account the IP of its latest failure.
    pub ip: Option<IpAddr>,
    pub account: Option<String>,
    /// What the batch adds to the alert's count (see `domain::detection::Verdict::increment`).
    pub added: i64,
    /// The highest window count in the batch, and the rule's threshold and window.
    pub peak: u32,
    pub fire_at: u32,
    pub window_secs: u64,
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
/// replicas writing the same keys is retried (the whole transaction, a few times).
pub async fn raise(
    pool: &PgPool,
    settings: &LoginSettings,
    mut found: Vec<Exceeding>,
) -> Result<Vec<NewAlert>, sqlx::Error> {
    if found.is_empty() {
        return Ok(Vec::new());
    }
    // One lock order for every replica.
    found.sort_by(|a, b| (&a.rule, &a.key).cmp(&(&b.rule, &b.key)));
    // The windows already hold this batch: a crossing not written now is never seen again,
    // so a deadlock or a brief loss of the database is waited out (0.1, 0.2, 0.4 s).
    let mut attempt = 0;
    loop {
        match raise_once(pool, settings, &found).await {
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
    found: &[Exceeding],
) -> Result<Vec<NewAlert>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let cooldown = settings.cooldown_secs as f64;
    let rules: Vec<&str> = found.iter().map(|e| e.rule.as_str()).collect();
    let keys: Vec<&str> = found.iter().map(|e| e.key.as_str()).collect();
    let firsts: Vec<DateTime<Utc>> = found.iter().map(|e| e.first_exceeding).collect();
    // Quiet for the cool-down in event time, for the keys at hand…
    sqlx::query(
        "UPDATE login_alerts a SET state = 'closed'
         FROM UNNEST($1::text[], $2::text[], $3::timestamptz[]) AS n(rule, key, first_at)
         WHERE a.state = 'open' AND a.rule = n.rule AND a.key = n.key
           AND a.last_at <= n.first_at - $4 * interval '1 second'",
    )
    .bind(&rules)
    .bind(&keys)
    .bind(&firsts)
    .bind(cooldown)
    .execute(&mut *tx)
    .await?;
    // …and by the clock for the rest (not one fired within the cool-down: a backlog replay).
    sqlx::query(
        "UPDATE login_alerts SET state = 'closed' WHERE id IN (
           SELECT id FROM login_alerts WHERE state = 'open'
             AND last_at < now() - $1 * interval '1 second'
             AND fired_at < now() - $1 * interval '1 second'
           FOR UPDATE SKIP LOCKED)",
    )
    .bind(cooldown)
    .execute(&mut *tx)
    .await?;
    let (opened, mut counted) = upsert(&mut tx, found).await?;
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
    counted.retain(|c| {
        let alert = &found[c.index];
        !silences.contains(&alert.rule) && !silences.contains(&alert.key)
    });
    edit_pushed(&mut tx, settings, found, &counted).await?;
    let mut new_alerts = Vec::with_capacity(opened.len());
    if !opened.is_empty() {
        for (id, index) in opened {
            let alert = &found[index];
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

/// A row the upsert returns: id, rule, key, whether inserted, count, first and last event,
/// whether silenced or acknowledged, and the outbox rows that pushed it.
type Upserted = (
    i64,
    String,
    String,
    bool,
    i64,
    DateTime<Utc>,
    DateTime<Utc>,
    bool,
    Vec<i64>,
);

/// Upsert every exceeding key; returns (alert id, index into `found`) of the inserted ones,
/// and the open alerts that counted on, were pushed, and are neither silenced nor acked.
async fn upsert(
    tx: &mut Transaction<'static, Postgres>,
    found: &[Exceeding],
) -> Result<(Vec<(i64, usize)>, Vec<CountedOn>), sqlx::Error> {
    let rules: Vec<&str> = found.iter().map(|e| e.rule.as_str()).collect();
    let keys: Vec<&str> = found.iter().map(|e| e.key.as_str()).collect();
    let ips: Vec<Option<String>> = found
        .iter()
        .map(|e| e.ip.map(|ip| ip.to_string()))
        .collect();
    let accounts: Vec<Option<&str>> = found.iter().map(|e| e.account.as_deref()).collect();
    let counts: Vec<i64> = found.iter().map(|e| e.added).collect();
    let since: Vec<DateTime<Utc>> = found.iter().map(|e| e.since).collect();
    let lasts: Vec<DateTime<Utc>> = found.iter().map(|e| e.last_exceeding).collect();
    let rows: Vec<Upserted> = sqlx::query_as(
        "INSERT INTO login_alerts (rule, key, ip, account, count, first_at, last_at)
         SELECT rule, key, ip::inet, account, count, first_at, last_at
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[],
                     $6::timestamptz[], $7::timestamptz[])
              AS n(rule, key, ip, account, count, first_at, last_at)
         ON CONFLICT (rule, key) WHERE state = 'open' DO UPDATE SET
           count = login_alerts.count + EXCLUDED.count,
           first_at = least(login_alerts.first_at, EXCLUDED.first_at),
           last_at = greatest(login_alerts.last_at, EXCLUDED.last_at)
         RETURNING id, rule, key, (xmax = 0) AS inserted, count, first_at, last_at,
                   silenced OR acked_by IS NOT NULL, outbox_ids",
    )
    .bind(&rules)
    .bind(&keys)
    .bind(&ips)
    .bind(&accounts)
    .bind(&counts)
    .bind(&since)
    .bind(&lasts)
    .fetch_all(&mut **tx)
    .await?;
    let (mut opened, mut counted) = (Vec::new(), Vec::new());
    for (id, rule, key, inserted, count, first_at, last_at, quiet, outbox_ids) in rows {
        let Ok(index) =
            found.binary_search_by(|e| (e.rule.as_str(), e.key.as_str()).cmp(&(&rule, &key)))
        else {
            continue;
        };
        if inserted {
            opened.push((id, index));
        } else if !quiet && !outbox_ids.is_empty() {
            counted.push(CountedOn {
                id,
                index,
                count,
                first_at,
                last_at,
                outbox_ids,
            });
        }
    }
    Ok((opened, counted))
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
