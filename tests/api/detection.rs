//! Detection against real Redis and PostgreSQL: sliding windows, rules, alerts, silences.
//! A `Detector` is built on the test app's pool and Redis prefix and fed events directly.
//! Alert lifecycle and pushes are in `detection/alerts.rs`; spray, surge, replicas and the
//! fallback to the stored events in `detection/rules.rs`; a Redis outage and restart in
//! `detection/redis_outage.rs`; a Redis too slow to answer an exchange in
//! `detection/slow_redis.rs`.

mod accounts;
mod alert_edits;
mod alerts;
mod batchings;
mod concurrent;
mod counts_behind;
mod redis_outage;
mod rules;
mod shared_windows;
mod slow_redis;
mod sources;
mod windows;

use super::helpers::*;
use chrono::{DateTime, Duration, Utc};
use opsguard::config::{LoginSettings, Settings};
use opsguard::domain::auth_event::{AuthEvent, Outcome, Source};
use opsguard::logins::detect::Detector;

pub const ALERT_CHAT: i64 = -100_777;

/// Only the named default rule, alerts pushed to `ALERT_CHAT`, and the given cool-down
/// (the rule's own cool-down, if it has one, removed).
pub fn only_rule(s: &mut Settings, rule: &str, cooldown_secs: u64) {
    s.logins.rules.retain(|r| r.name == rule);
    assert_eq!(s.logins.rules.len(), 1, "no default rule {rule}");
    s.logins.rules[0].cooldown_secs = None;
    s.logins.alert_chats = vec![ALERT_CHAT];
    s.logins.cooldown_secs = cooldown_secs;
}

pub fn detector(app: &TestApp) -> Detector {
    detector_with(app, app.engine.settings().logins.clone())
}

pub fn detector_with(app: &TestApp, settings: LoginSettings) -> Detector {
    Detector::new(app.pool().clone(), settings, app.engine.redis().clone())
}

pub fn failure(ip: &str, account: &str, at: DateTime<Utc>) -> AuthEvent {
    AuthEvent {
        id: None,
        at,
        source: Source::Ip(ip.parse().unwrap()),
        account: Some(account.into()),
        service: "web".into(),
        outcome: Outcome::Failure,
        reason: Some("bad password".into()),
        user_agent: None,
    }
}

/// `n` failures on `account` from distinct IPs, a millisecond apart from `start`.
pub fn failures_on(account: &str, n: usize, start: DateTime<Utc>) -> Vec<AuthEvent> {
    (0..n)
        .map(|i| {
            let ip = format!("198.51.{}.{}", i / 250, i % 250 + 1);
            failure(&ip, account, start + Duration::milliseconds(i as i64))
        })
        .collect()
}

/// (id, rule, key, count, state, silenced, outbox_id) of every alert, oldest first.
pub type AlertRow = (i64, String, String, i64, String, bool, Option<i64>);

pub async fn alerts(app: &TestApp) -> Vec<AlertRow> {
    sqlx::query_as(
        "SELECT id, rule, key, count, state, silenced, outbox_id FROM login_alerts ORDER BY id",
    )
    .fetch_all(app.pool())
    .await
    .unwrap()
}

/// (id, html, buttons) of the alert pushes in the outbox (not their edits), oldest first.
pub async fn pushes(app: &TestApp) -> Vec<(i64, String, serde_json::Value)> {
    sqlx::query_as(
        "SELECT id, html, buttons FROM outbox
         WHERE source LIKE 'alert:%' AND edit_of IS NULL ORDER BY id",
    )
    .fetch_all(app.pool())
    .await
    .unwrap()
}

/// (edit_of, html, buttons, seconds between the push and the edit's earliest send) of the
/// queued edits of alert pushes, oldest first.
pub async fn alert_edits(app: &TestApp) -> Vec<(i64, String, serde_json::Value, f64)> {
    sqlx::query_as(
        "SELECT e.edit_of, e.html, e.buttons,
                extract(epoch FROM e.not_before - o.created_at)::float8
         FROM outbox e JOIN outbox o ON o.id = e.edit_of
         WHERE e.source LIKE 'alert:%' ORDER BY e.id",
    )
    .fetch_all(app.pool())
    .await
    .unwrap()
}
