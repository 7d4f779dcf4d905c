//! The `redis` check against the real local Redis, with ACL users of the test's own
//! (unique names, deleted by a guard even when the test fails).

use super::{assert_unreachable, dead_ports, run, titled};
use crate::helpers::{PrivateRedis, REDIS_URL};
use opsguard::checks::Check;
use opsguard::checks::redis::Redis;
use opsguard::config::RedisTargets;
use opsguard::domain::finding::Severity;
use opsguard::domain::secret::Secret;

/// ACL users created for one test; deleted on drop.
struct Users(Vec<String>);

impl Users {
    async fn create(rules: &[&[&str]]) -> (Users, Vec<(String, String)>) {
        let mut conn = redis::Client::open(REDIS_URL)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let mut made = Vec::new();
        for rule in rules {
            let name = format!("opsguard_test_{}", uuid::Uuid::new_v4().simple());
            let password = format!("planted-{}", uuid::Uuid::new_v4().simple());
            let mut cmd = redis::cmd("ACL");
            cmd.arg("SETUSER")
                .arg(&name)
                .arg("on")
                .arg(format!(">{password}"));
            rule.iter().for_each(|r| {
                cmd.arg(*r);
            });
            let () = cmd.query_async(&mut conn).await.unwrap();
            made.push((name, password));
        }
        (Users(made.iter().map(|(n, _)| n.clone()).collect()), made)
    }
}

impl Drop for Users {
    fn drop(&mut self) {
        let names = std::mem::take(&mut self.0);
        let _ = std::thread::spawn(move || {
            let client = redis::Client::open(REDIS_URL).unwrap();
            if let Ok(mut conn) = client.get_connection() {
                let _: Result<i64, _> =
                    redis::cmd("ACL").arg("DELUSER").arg(names).query(&mut conn);
            }
        })
        .join();
    }
}

fn check(url: String) -> Redis {
    Redis::new(&RedisTargets {
        urls: vec![Secret::new(url)],
    })
}

#[tokio::test]
async fn users_allowed_everything_or_dangerous_commands_are_reported() {
    let (_guard, users) =
        Users::create(&[&["+@all", "~*"], &["~*", "+get", "+set", "+flushdb"]]).await;
    let (admin, admin_pw) = &users[0];
    let (narrow, narrow_pw) = &users[1];

    let found = run(check(format!(
        "redis://{admin}:{admin_pw}@127.0.0.1:6379/0"
    )))
    .await;
    assert!(
        found.iter().all(|f| f.target == "127.0.0.1:6379"),
        "{found:?}"
    );
    let all = found
        .iter()
        .find(|f| f.title.contains("+@all") && f.evidence.contains(admin.as_str()))
        .expect("+@all user reported");
    assert_eq!(all.severity, Severity::High);
    let risky = found
        .iter()
        .find(|f| {
            f.title == "User allowed dangerous commands" && f.evidence.contains(narrow.as_str())
        })
        .expect("FLUSHDB user reported");
    assert_eq!(risky.severity, Severity::Medium);
    assert!(risky.evidence.contains("+flushdb"), "{}", risky.evidence);
    for f in &found {
        let shown = format!("{f:?}");
        assert!(
            !shown.contains(admin_pw.as_str()) && !shown.contains(narrow_pw.as_str()),
            "credential leaked: {f:?}"
        );
        assert!(
            !shown.contains('#'),
            "password hashes are never shown: {f:?}"
        );
    }

    // The narrow user may not read CONFIG or ACL: info findings, not a crash.
    let found = run(check(format!(
        "redis://{narrow}:{narrow_pw}@127.0.0.1:6379"
    )))
    .await;
    assert_eq!(
        titled(&found, "CONFIG could not be read").map(|f| f.severity),
        Some(Severity::Info),
        "{found:?}"
    );
    assert_eq!(
        titled(&found, "ACL could not be read").map(|f| f.severity),
        Some(Severity::Info),
        "{found:?}"
    );
    assert!(!format!("{found:?}").contains(narrow_pw.as_str()));
}

#[tokio::test]
async fn the_default_user_without_a_password_is_critical() {
    let found = run(check(REDIS_URL.to_string())).await;
    // The local Redis runs with the default `user default on nopass`.
    let f = titled(&found, "Default user has no password").expect("nopass default user reported");
    assert_eq!(f.severity, Severity::Critical);
    assert!(
        titled(&found, "Listening on every interface").is_none(),
        "bound to loopback: {found:?}"
    );
}

#[tokio::test]
async fn unreachable_redis_never_shows_the_url() {
    let (closed, hanging) = dead_ports().await;
    let urls = [
        format!("redis://u:planted-redis-pw@127.0.0.1:{closed}"),
        format!("redis://:planted-redis-pw@127.0.0.1:{hanging}/1"),
    ];
    let check = Redis::new(&RedisTargets {
        urls: urls.iter().map(Secret::new).collect(),
    });
    assert_eq!(
        check.targets(),
        vec![
            format!("127.0.0.1:{closed}"),
            format!("127.0.0.1:{hanging}")
        ]
    );
    let found = assert_unreachable(check, 2).await;
    assert!(
        !format!("{found:?}").contains("planted-redis-pw"),
        "{found:?}"
    );
}

#[tokio::test]
async fn protected_mode_off_and_requirepass_beside_acl_users_are_reported() {
    let server = PrivateRedis::start(&[
        "--protected-mode",
        "no",
        "--requirepass",
        "planted-requirepass",
    ]);
    let url = format!("redis://:planted-requirepass@127.0.0.1:{}", server.port);
    let mut conn = None;
    for _ in 0..100 {
        if let Ok(c) = redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
        {
            conn = Some(c);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut conn = conn.expect("the private redis-server came up");
    let () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("app")
        .arg("on")
        .arg(">planted-app-password")
        .arg("~*")
        .arg("+get")
        .query_async(&mut conn)
        .await
        .unwrap();
    let found = run(Redis::new(&RedisTargets {
        urls: vec![Secret::new(url)],
    }))
    .await;
    let protected = titled(&found, "Protected mode disabled").expect("protected mode finding");
    assert_eq!(protected.severity, Severity::Medium);
    let both = titled(&found, "requirepass set alongside ACL users").expect("requirepass finding");
    assert_eq!(both.severity, Severity::Low);
    assert!(
        titled(&found, "Listening on every interface").is_none(),
        "bound to loopback only"
    );
    let all = format!("{found:?}");
    assert!(!all.contains("planted-"), "no password is shown: {all}");
}

#[tokio::test]
async fn listening_on_every_interface_is_reported() {
    // A later --bind replaces the loopback one PrivateRedis starts with; the password
    // keeps this short-lived server closed while it listens on every interface.
    let server = PrivateRedis::start(&["--bind", "0.0.0.0", "--requirepass", "planted-bind-pw"]);
    let url = format!("redis://:planted-bind-pw@127.0.0.1:{}", server.port);
    for _ in 0..100 {
        let client = redis::Client::open(url.as_str()).unwrap();
        if client.get_multiplexed_async_connection().await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let found = run(Redis::new(&RedisTargets {
        urls: vec![Secret::new(url)],
    }))
    .await;
    let bind =
        titled(&found, "Listening on every interface").unwrap_or_else(|| panic!("{found:?}"));
    assert_eq!(bind.severity, Severity::Medium);
    assert!(bind.evidence.contains("0.0.0.0"), "{}", bind.evidence);
    assert!(!format!("{found:?}").contains("planted-"));
}
