//! A second rotation inside the grace period of a kind that keeps several credentials
//! (`redis_acl`, against the real Redis): the previous credential keeps its own promised
//! grace and the one before it too, so both previous passwords still log in beside the
//! current one, and `/secrets` shows each `works until` its own time.

use super::*;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use opsguard::config::TargetSettings;
use opsguard::domain::secret::Secret;

const GRACE_SECS: i64 = 3600;

/// An ACL user `og_ig_<8 hex>` on the shared Redis, deleted on drop.
struct RedisUser(String);

impl RedisUser {
    fn create() -> RedisUser {
        let name = format!("og_ig_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let mut conn = redis::Client::open(REDIS_URL)
            .unwrap()
            .get_connection()
            .unwrap();
        redis::cmd("ACL")
            .arg(&["SETUSER", &name, "on", "~*", "+@all"])
            .query::<()>(&mut conn)
            .unwrap();
        RedisUser(name)
    }
}

impl Drop for RedisUser {
    fn drop(&mut self) {
        if let Ok(mut conn) = redis::Client::open(REDIS_URL).and_then(|c| c.get_connection()) {
            let _: Result<i64, _> = redis::cmd("ACL")
                .arg("DELUSER")
                .arg(&self.0)
                .query(&mut conn);
        }
    }
}

/// Whether `password` logs in as `user`.
async fn logs_in(user: &str, password: &str) -> bool {
    let client = redis::Client::open(REDIS_URL).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("AUTH")
        .arg(user)
        .arg(password)
        .query_async::<()>(&mut conn)
        .await
        .is_ok()
}

/// The time `/secrets` says a previous version (`password`'s) works until.
fn works_until(listed: &str, version: i32, password: &str) -> DateTime<Utc> {
    let head = format!(
        "previous v{version} <code>sha256:{}</code> works until ",
        fingerprint(password)
    );
    let at = listed
        .find(&head)
        .unwrap_or_else(|| panic!("{head}: {listed}"))
        + head.len();
    let shown = &listed[at..at + "2026-01-01 00:00:00 UTC".len()];
    NaiveDateTime::parse_from_str(shown, "%Y-%m-%d %H:%M:%S UTC")
        .unwrap_or_else(|e| panic!("{shown}: {e}"))
        .and_utc()
}

/// `t` is within a second of `from..=to` (the note shows whole seconds).
fn within(t: DateTime<Utc>, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    let second = TimeDelta::seconds(1);
    t >= from - second && t <= to + second
}

#[tokio::test]
async fn a_second_rotation_inside_the_grace_keeps_both_previous_passwords_working() {
    let dir = Scratch::new();
    let env = dir.file("cache.env");
    let user = RedisUser::create();
    let mut secret = api_key("app-cache", &env, false);
    secret.kind = "redis_acl".into();
    secret.target = TargetSettings {
        user: Some(user.0.clone()),
        nodes: vec![Secret::new(REDIS_URL)],
        ..Default::default()
    };
    secret.policy.grace_secs = Some(GRACE_SECS as u64);
    let app = spawn_app_with(|s| {
        with_vault(s, vec![secret]);
        // Three rotations within a minute: more sensitive commands than the default allows.
        s.rate_limits.sensitive = 100;
    })
    .await;
    add(&app, 42, "admin").await;
    // v1, then v2 (v1 previous), then v3 inside v1's grace (v1 and v2 previous).
    let mut passwords = Vec::new();
    let mut promoted = Vec::new();
    let mut listed_before_third = String::new();
    for n in 1..=3 {
        if n == 3 {
            listed_before_third = app.say(42, "/secrets").await.text();
        }
        let from = Utc::now();
        let reply = rotate(&app, 42, "app-cache").await;
        assert!(reply.contains("Rotated"), "{reply}");
        promoted.push((from, Utc::now()));
        passwords.push(env_value(&env, "APP_CACHE_PASSWORD").unwrap());
    }
    for (n, password) in passwords.iter().enumerate() {
        assert!(logs_in(&user.0, password).await, "v{} logs in", n + 1);
    }
    let listed = app.say(42, "/secrets").await.text();
    let grace = TimeDelta::seconds(GRACE_SECS);
    let v1_until = works_until(&listed, 1, &passwords[0]);
    let v2_until = works_until(&listed, 2, &passwords[1]);
    // Each keeps the grace promised when it became previous: v1 from the second rotation,
    // v2 from the third; the third did not shorten v1's.
    let (from, to) = promoted[1];
    assert!(within(v1_until, from + grace, to + grace), "{listed}");
    let (from, to) = promoted[2];
    assert!(within(v2_until, from + grace, to + grace), "{listed}");
    assert_eq!(
        works_until(&listed_before_third, 1, &passwords[0]),
        v1_until,
        "{listed_before_third}"
    );
    assert!(
        listed.contains(&format!(
            "current v3 <code>sha256:{}</code>",
            fingerprint(&passwords[2])
        )),
        "{listed}"
    );
}
