//! Detection through a Redis outage and restart (issue 20): the stored events are the truth.
//! The timeline, posted to the ingest API one event per request: 18 failures from
//! one address over 14.5 s and 6 on one account over 13 s; a private Redis is killed at
//! 5 s (event time) and an empty one is back at 12 s. Both alerts are raised, with the
//! counts the same timeline gives without the kill.

use super::*;
use crate::ingest::{good_token, post, with_secret};
use opsguard::domain::secret::Secret;
use serde_json::json;

const ADDRESS: &str = "203.0.113.50";
const ACCOUNT: &str = "victim";

/// (offset ms, ip, account) of the timeline's events, in time order.
fn timeline() -> Vec<(i64, String, String)> {
    let mut events: Vec<(i64, String, String)> = (0..18)
        .map(|i| (i * 14_500 / 17, ADDRESS.to_string(), format!("guess{i}")))
        .collect();
    events.extend((0..6).map(|i| {
        (
            i * 13_000 / 5,
            format!("198.51.100.{}", i + 1),
            ACCOUNT.into(),
        )
    }));
    events.sort();
    events
}

async fn post_one(app: &TestApp, t0: DateTime<Utc>, (offset, ip, account): &(i64, String, String)) {
    let event = json!({
        "at": (t0 + Duration::milliseconds(*offset)).to_rfc3339(),
        "ip": ip, "account": account, "service": "web", "outcome": "failure"
    });
    let (status, body) = post(app, Some(&good_token()), json!([event]).to_string()).await;
    assert_eq!(status, 202, "{body}");
}

/// The two rules the timeline exercises; the account rule crosses at the 6th failure
/// (13 s): with an outage, only after the empty Redis is back.
fn two_rules(s: &mut Settings) {
    with_secret(s);
    s.logins
        .rules
        .retain(|r| r.name == "ip-failures" || r.name == "account-lockout");
    for rule in &mut s.logins.rules {
        if rule.name == "account-lockout" {
            rule.fire_at = 6;
        }
    }
    s.logins.alert_chats = vec![ALERT_CHAT];
}

/// (rule, key, count) of every alert, sorted.
async fn rule_key_counts(app: &TestApp) -> Vec<(String, String, i64)> {
    let mut rows: Vec<(String, String, i64)> = alerts(app)
        .await
        .into_iter()
        .map(|r| (r.1, r.2, r.3))
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn a_brute_force_across_a_redis_outage_and_restart_raises_both_alerts() {
    let redis = PrivateRedis::start(&[]);
    redis.ready().await;
    let port = redis.port;
    let url = redis.url();
    let app = spawn_app_with(|s| {
        two_rules(s);
        s.redis.url = Secret::new(url);
    })
    .await;
    let t0 = Utc::now() - Duration::seconds(60);
    let events = timeline();
    let mut redis = Some(redis);
    let mut back = None;
    for event in &events {
        if event.0 >= 5_000 && redis.is_some() {
            drop(redis.take());
        }
        if event.0 >= 12_000 && back.is_none() {
            let mut fresh = PrivateRedis::start(&["--port", &port.to_string()]);
            fresh.port = port;
            fresh.ready().await;
            wait_for("opsguard to reach the empty Redis", || async {
                app.engine.redis().ping().await.is_ok()
            })
            .await;
            back = Some(fresh);
        }
        post_one(&app, t0, event).await;
        if event.0 >= 5_000 && event.0 < 12_000 {
            assert!(
                app.engine.redis().is_degraded(),
                "Redis is down at {}",
                event.0
            );
        }
    }
    assert!(back.is_some() && !app.engine.redis().is_degraded());
    app.stop().await;
    assert_eq!(
        rule_key_counts(&app).await,
        vec![
            ("account-lockout".into(), format!("account:{ACCOUNT}"), 6),
            ("ip-failures".into(), format!("ip:{ADDRESS}"), 18),
        ],
        "both alerts, counted as without the outage"
    );
}

/// The same timeline with Redis up all along: the baseline the outage test must equal.
#[tokio::test]
async fn the_same_timeline_without_an_outage_raises_the_same_alerts() {
    let app = spawn_app_with(|s| {
        two_rules(s);
    })
    .await;
    let t0 = Utc::now() - Duration::seconds(60);
    for event in &timeline() {
        post_one(&app, t0, event).await;
    }
    app.stop().await;
    assert_eq!(
        rule_key_counts(&app).await,
        vec![
            ("account-lockout".into(), format!("account:{ACCOUNT}"), 6),
            ("ip-failures".into(), format!("ip:{ADDRESS}"), 18),
        ]
    );
}
