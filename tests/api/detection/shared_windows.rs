//! The address rules share one window state per address (`logins::window_states`): Redis
//! holds each address's failures once, under the rule with the longest window, and every
//! address rule reads its own window from it, including a state written before the rules
//! shared it.

use super::*;

const ADDRESS: &str = "203.0.113.9";

fn address_rules(s: &mut Settings) {
    s.logins
        .rules
        .retain(|r| ["ip-failures", "ip-slow", "ip-long"].contains(&r.name.as_str()));
    assert_eq!(s.logins.rules.len(), 3, "the three default address rules");
    s.logins.alert_chats = vec![ALERT_CHAT];
}

async fn redis() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(REDIS_URL).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// The window hashes under the app's prefix, without it.
async fn window_hashes(app: &TestApp) -> Vec<String> {
    let mut conn = redis().await;
    let prefix = format!("{}logins:win:", app.db.redis_prefix);
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.retain(|k| !k.contains('~'));
    let mut names: Vec<String> = keys
        .iter()
        .map(|k| k[prefix.len()..].split(':').next().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// (rule, count) of every alert, by rule.
async fn rule_counts(app: &TestApp) -> Vec<(String, i64)> {
    let mut rows: Vec<(String, i64)> = alerts(app).await.into_iter().map(|r| (r.1, r.3)).collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn the_address_rules_keep_one_state_per_address_and_each_still_fires() {
    let app = spawn_app_with(address_rules).await;
    let detector = detector(&app);
    let start = Utc::now() - Duration::seconds(30);
    let events: Vec<AuthEvent> = (0..12)
        .map(|i| failure(ADDRESS, "root", start + Duration::seconds(i)))
        .collect();
    detector.detect(&events).await.unwrap();

    assert_eq!(window_hashes(&app).await, vec!["ip-long".to_string()]);
    // ip-slow (5 in 10 min) and ip-failures (11 in a minute) both fired, counting all 12;
    // ip-long (20 in a day) did not.
    assert_eq!(
        rule_counts(&app).await,
        vec![("ip-failures".into(), 12), ("ip-slow".into(), 12)]
    );
}

#[tokio::test]
async fn a_state_written_before_the_rules_shared_it_counts_for_every_address_rule() {
    // ip-slow left out: its alert would have been raised before, by the events seeded.
    let app = spawn_app_with(|s| {
        address_rules(s);
        s.logins.rules.retain(|r| r.name != "ip-slow");
    })
    .await;
    let mut conn = redis().await;
    // Ten failures in the last 30 s, as ip-long's own state held them before the rules
    // shared it: a field of the hash for the current day (its window) on Redis's clock.
    let (secs, _): (i64, i64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
    let now_ms = secs * 1000;
    let times: Vec<String> = (1..=10)
        .map(|i| (now_ms - 30_000 + i * 1000).to_string())
        .collect();
    let hash = format!(
        "{}logins:win:ip-long:{}",
        app.db.redis_prefix,
        now_ms / 86_400_000
    );
    let _: () = redis::cmd("HSET")
        .arg(&hash)
        .arg(format!("ip:{ADDRESS}"))
        .arg(times.join(","))
        .query_async(&mut conn)
        .await
        .unwrap();

    let at = DateTime::from_timestamp_millis(now_ms - 5_000).unwrap();
    detector(&app)
        .detect(&[failure(ADDRESS, "root", at)])
        .await
        .unwrap();

    // The eleventh failure in a minute: ip-failures counts all eleven.
    assert_eq!(rule_counts(&app).await, vec![("ip-failures".into(), 11)]);
}
