//! What a pushed alert says: what, who, how many, since when; and, while it stays open,
//! unacknowledged and unsilenced and counts on, the same message edited in place with its
//! count so far (its buttons, while they work), paced by the outbox to one edit per
//! `update_every_secs` per chat, always ending on the latest.

use super::alerts::Exceeding;
use crate::config::{LoginSettings, RuleKind};
use crate::domain::html::escape;
use crate::engine::gates::CHAT_ACTION_PREFIX;
use crate::outbox::{Edit, EditButtons};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::time::Duration;

/// An open, pushed alert that this batch counted on (not acknowledged, not silenced).
#[derive(Debug, Clone)]
pub struct CountedOn {
    pub id: i64,
    /// What its message shows: the alert as written (its rule, who, accounts, rules
    /// folded in, highest count).
    pub shown: Exceeding,
    /// The alert's count so far, and its first and last events.
    pub count: i64,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    /// The outbox rows that pushed it, one per alert chat.
    pub outbox_ids: Vec<i64>,
}

/// Queue the edits of every counted-on alert's messages, in the transaction that counted
/// (one statement for them all).
/// A message whose buttons were used (the bot took them off) or have expired is edited
/// without them.
pub async fn edit_pushed(
    tx: &mut sqlx::PgConnection,
    settings: &LoginSettings,
    counted: &[CountedOn],
) -> Result<(), sqlx::Error> {
    if settings.update_every_secs == 0 {
        return Ok(());
    }
    let every = Duration::from_secs(settings.update_every_secs);
    let now = Utc::now();
    // Whose buttons still work, for every pushed message of the batch at once.
    let pushed: Vec<i64> = counted.iter().flat_map(|a| a.outbox_ids.clone()).collect();
    if pushed.is_empty() {
        return Ok(());
    }
    let working: HashMap<i64, bool> = sqlx::query_as(
        "SELECT o.id, NOT EXISTS (
           SELECT 1 FROM jsonb_array_elements(o.buttons) b
           JOIN pending_actions p
             ON p.id = substr(b->>'data', char_length($2) + 1)
            AND starts_with(b->>'data', $2)
           WHERE p.used_at IS NOT NULL OR p.expires_at <= now())
         FROM outbox o WHERE o.id = ANY($1)",
    )
    .bind(&pushed)
    .bind(CHAT_ACTION_PREFIX)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let mut edits = Vec::with_capacity(pushed.len());
    for alert in counted {
        let text = updated_text(alert, now);
        for row in &alert.outbox_ids {
            let Some(&buttons_work) = working.get(row) else {
                continue;
            };
            edits.push(Edit {
                of: *row,
                html: text.clone(),
                buttons: if buttons_work {
                    EditButtons::Keep
                } else {
                    EditButtons::Remove
                },
            });
        }
    }
    crate::outbox::enqueue_edits(&mut *tx, &edits, every).await?;
    Ok(())
}

/// The pushed text as the alert counts on: since its first event, with the count so far.
pub fn updated_text(alert: &CountedOn, now: DateTime<Utc>) -> String {
    let exceeding = &alert.shown;
    let first = Exceeding {
        since: alert.first_at.min(exceeding.since),
        ..exceeding.clone()
    };
    format!(
        "{}
📈 so far {} {} · last {}",
        alert_text(alert.id, &first, now),
        alert.count,
        counted(exceeding.kind),
        clock(alert.last_at, now),
    )
}

/// What a rule counts.
fn counted(kind: RuleKind) -> &'static str {
    match kind {
        RuleKind::Spray => "accounts",
        RuleKind::Ip | RuleKind::Account | RuleKind::Surge => "failures",
    }
}

/// A time as a phone shows it: the time of day if today, else the date too.
fn clock(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if at.date_naive() == now.date_naive() {
        at.format("%H:%M:%S UTC").to_string()
    } else {
        at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    }
}

/// The pushed text: what, who, how many, since when; every piece of sent text escaped.
pub fn alert_text(id: i64, alert: &Exceeding, now: DateTime<Utc>) -> String {
    let ip = alert.source.as_ref().map(|s| escape(&s.to_string()));
    let account = alert.account.as_deref().map(escape);
    let counted = counted(alert.kind);
    let (title, who) = match alert.kind {
        RuleKind::Ip => (
            format!("Brute force from {}", ip.unwrap_or_default()),
            account.map(|a| format!("latest on account {a}\n")),
        ),
        RuleKind::Account => (
            format!("Failed logins on account {}", account.unwrap_or_default()),
            ip.map(|ip| format!("latest from {ip}\n")),
        ),
        RuleKind::Spray => (
            format!("Password spraying from {}", ip.unwrap_or_default()),
            None,
        ),
        RuleKind::Surge => ("Surge of failed logins".to_string(), None),
    };
    let since = clock(alert.since, now);
    format!(
        "🚨 <b>{title}</b>\nrule {}: {} {counted} in {} (fires at {})\n{}{}since {since} · alert #{id}",
        escape(&alert.rule),
        alert.peak,
        window_text(alert.window_secs),
        alert.fire_at,
        who.unwrap_or_default(),
        folded_in(alert),
    )
}

/// Accounts shown on an alert before "+N more" (the first in byte order: an alert row
/// keeps these, `login_alert_accounts` the rest).
pub(super) const SHOWN_ACCOUNTS: usize = 8;

/// What was folded into an alert about a source: the accounts tried, the other rules.
fn folded_in(alert: &Exceeding) -> String {
    let mut out = String::new();
    let listed = matches!(alert.kind, RuleKind::Ip | RuleKind::Spray) || !alert.also.is_empty();
    let total = alert.account_count.max(alert.accounts.len() as i64);
    if listed && total > 1 {
        let names: Vec<String> = alert
            .accounts
            .iter()
            .take(SHOWN_ACCOUNTS)
            .map(|a| escape(a))
            .collect();
        let more = total.saturating_sub(names.len() as i64);
        let more = if more > 0 {
            format!(" +{more} more")
        } else {
            String::new()
        };
        out.push_str(&format!("{total} accounts: {}{more}\n", names.join(", ")));
    }
    if !alert.also.is_empty() {
        let rules: Vec<String> = alert.also.iter().map(|r| escape(r)).collect();
        out.push_str(&format!("also: {}\n", rules.join(", ")));
    }
    out
}

/// `60 s`, `15 min`, `2 h`: what a phone shows of a window length.
fn window_text(secs: u64) -> String {
    match secs {
        s if s >= 7200 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 120 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}
