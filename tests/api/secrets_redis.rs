//! The `redis_acl` kind against the real Redis on 127.0.0.1:6379, with an ACL user of its
//! own per test (deleted at the end): dual passwords, retirement that ends the old sessions,
//! roll-back, unreachable nodes, clean error texts. Several nodes: `nodes`.

use opsguard::domain::rotation::SecretName;
use opsguard::domain::secret::Secret;
use opsguard::secrets::kind::{KindError, Revocation, SecretKind, Version};
use opsguard::secrets::kinds::redis_acl::RedisAcl;
use std::time::{Duration, Instant};

mod nodes;
mod preflight;

const NODE: &str = "redis://127.0.0.1:6379";

/// A fresh ACL user name, deleted from every node it was used on when dropped.
struct AclUser {
    name: String,
    nodes: Vec<String>,
}

impl AclUser {
    fn new(nodes: &[&str]) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let user = AclUser {
            name: format!("og_{}", &id[..8]),
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
        };
        // The user exists with its rights and no password (as an operator would create it).
        for node in nodes {
            let mut conn = redis::Client::open(*node)
                .unwrap()
                .get_connection()
                .unwrap();
            redis::cmd("ACL")
                .arg("SETUSER")
                .arg(&user.name)
                .arg("on")
                .arg("~*")
                .arg("+@all")
                .query::<()>(&mut conn)
                .unwrap();
        }
        user
    }
}

impl Drop for AclUser {
    fn drop(&mut self) {
        for node in &self.nodes {
            if let Ok(mut conn) =
                redis::Client::open(node.as_str()).and_then(|c| c.get_connection())
            {
                let _: Result<i64, _> = redis::cmd("ACL")
                    .arg("DELUSER")
                    .arg(&self.name)
                    .query(&mut conn);
            }
        }
    }
}

fn kind(nodes: &[&str], user: &str) -> RedisAcl {
    let nodes = nodes.iter().map(|n| Secret::new(*n)).collect();
    RedisAcl::new(nodes, user, Duration::from_secs(2)).unwrap()
}

fn version(kind: &RedisAcl, number: i32) -> Version {
    Version {
        secret: SecretName::parse("cache").unwrap(),
        number,
        material: kind.generate(None).unwrap(),
        promoted_at: None,
    }
}

/// A connection authenticated as `user` with `version`'s password.
async fn login(
    node: &str,
    user: &str,
    v: &Version,
) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let mut conn = redis::Client::open(node)?
        .get_multiplexed_async_connection()
        .await?;
    redis::cmd("AUTH")
        .arg(user)
        .arg(v.material.value.expose())
        .query_async::<()>(&mut conn)
        .await?;
    Ok(conn)
}

/// The number of passwords the user has on `node` (`None`: no such user).
async fn password_count(node: &str, user: &str) -> Option<usize> {
    let mut conn = redis::Client::open(node)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let found: Option<std::collections::HashMap<String, redis::Value>> = redis::cmd("ACL")
        .arg("GETUSER")
        .arg(user)
        .query_async(&mut conn)
        .await
        .unwrap();
    found.map(|f| {
        redis::from_redis_value_ref::<Vec<String>>(&f["passwords"])
            .unwrap()
            .len()
    })
}

fn assert_clean(err: &KindError, values: &[&Version]) {
    let text = err.to_string();
    for v in values {
        assert!(
            !text.contains(v.material.value.expose()),
            "error shows a password: {text}"
        );
    }
}

#[tokio::test]
async fn set_keeps_both_passwords_and_retiring_removes_the_old_one_and_ends_its_sessions() {
    let user = AclUser::new(&[NODE]);
    let k = kind(&[NODE], &user.name);
    let v1 = version(&k, 1);
    assert_eq!(v1.material.public, serde_json::json!({"user": user.name}));
    k.set(&v1, None).await.unwrap();
    k.set(&v1, None).await.expect("set is idempotent");
    k.test(&v1).await.unwrap();
    let v2 = version(&k, 2);
    k.set(&v2, Some(&v1)).await.unwrap();
    k.test(&v1)
        .await
        .expect("the current password keeps working");
    k.test(&v2).await.expect("the new one works beside it");
    assert_eq!(password_count(NODE, &user.name).await, Some(2));

    let mut old_session = login(NODE, &user.name, &v1).await.unwrap();
    redis::cmd("PING")
        .query_async::<String>(&mut old_session)
        .await
        .unwrap();
    let retired = Revocation::Retired { current: Some(&v2) };
    k.revoke(&v1, retired).await.unwrap();
    let err = k.test(&v1).await.expect_err("the retired password is gone");
    assert!(matches!(err, KindError::Refused(_)), "{err}");
    assert!(err.to_string().contains("node 127.0.0.1:6379"), "{err}");
    assert_clean(&err, &[&v1, &v2]);
    k.test(&v2).await.expect("the current password still works");
    assert!(
        redis::cmd("PING")
            .query_async::<String>(&mut old_session)
            .await
            .is_err(),
        "a session opened with the retired password was ended"
    );
    k.revoke(&v1, retired).await.expect("revoke is idempotent");
    // The guard: a version equal to the current one is never removed.
    k.revoke(&v2, Revocation::Retired { current: Some(&v2) })
        .await
        .unwrap();
    k.test(&v2)
        .await
        .expect("the current password was not removed");
}

#[tokio::test]
async fn rolling_back_removes_only_the_pending_password() {
    let user = AclUser::new(&[NODE]);
    let k = kind(&[NODE], &user.name);
    let (v1, v2) = (version(&k, 1), version(&k, 2));
    k.set(&v1, None).await.unwrap();
    k.set(&v2, Some(&v1)).await.unwrap();
    let mut session = login(NODE, &user.name, &v1).await.unwrap();
    let back = Revocation::RolledBack { current: Some(&v1) };
    k.revoke(&v2, back).await.unwrap();
    k.revoke(&v2, back).await.expect("idempotent");
    assert!(matches!(k.test(&v2).await, Err(KindError::Refused(_))));
    k.test(&v1)
        .await
        .expect("current is again the only password");
    assert_eq!(password_count(NODE, &user.name).await, Some(1));
    redis::cmd("PING")
        .query_async::<String>(&mut session)
        .await
        .expect("no session is ended");
    // Revoking for a user that does not exist is a no-op.
    let ghost = kind(&[NODE], "og_ghost_never_created");
    ghost.revoke(&v2, back).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_node_fails_fast_and_is_transient_without_showing_credentials() {
    let admin = "redis://admin:canary-admin-pw@127.0.0.1:1";
    let k = kind(&[admin], "og_unreachable");
    let v = version(&k, 1);
    let started = Instant::now();
    let err = k
        .set(&v, None)
        .await
        .expect_err("nothing listens on port 1");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(err, KindError::Unreachable(_)) && err.is_transient(),
        "{err}"
    );
    assert_eq!(err.to_string(), "node 127.0.0.1:1: connection refused");
    for err in [
        k.test(&v).await.unwrap_err(),
        k.revoke(&v, Revocation::RolledBack { current: None })
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(err, KindError::Unreachable(_)), "{err}");
        assert!(!err.to_string().contains("canary-admin-pw"));
        assert_clean(&err, &[&v]);
    }
    // Bad admin credentials are refused, and the text shows neither password.
    let wrong = kind(
        &["redis://og_nobody:canary-admin-pw@127.0.0.1:6379"],
        "og_x",
    );
    let err = wrong.set(&v, None).await.unwrap_err();
    assert!(matches!(err, KindError::Refused(_)), "{err}");
    assert!(!err.to_string().contains("canary-admin-pw"), "{err}");
    assert_clean(&err, &[&v]);
}

#[test]
fn bad_targets_are_refused_at_start_up_without_echoing_urls() {
    let t = Duration::from_secs(1);
    assert!(RedisAcl::new(vec![], "app", t).is_err());
    for user in ["", "has space", "semi;colon", &"x".repeat(65)] {
        assert!(
            RedisAcl::new(vec![Secret::new(NODE)], user, t).is_err(),
            "{user:?}"
        );
    }
    let err = RedisAcl::new(vec![Secret::new("http://u:canary-pw@host:1")], "app", t)
        .err()
        .unwrap();
    assert!(
        err.contains("target.nodes[0]") && !err.contains("canary-pw"),
        "{err}"
    );
    assert!(RedisAcl::new(vec![Secret::new(NODE), Secret::new(NODE)], "a.b-c_1", t).is_ok());
}

#[test]
fn delivery_names_the_user_password_and_a_url_for_the_first_node() {
    let k = kind(&["redis://admin:adminpw@10.0.0.5:6380", NODE], "app.user");
    let v = version(&k, 1);
    let got = k.delivery("CACHE", &v);
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["CACHE_USER", "CACHE_PASSWORD", "CACHE_URL"]);
    assert_eq!(got[0].1.expose(), "app.user");
    assert_eq!(got[1].1.expose(), v.material.value.expose());
    let url = format!(
        "redis://app.user:{}@10.0.0.5:6380",
        v.material.value.expose()
    );
    assert_eq!(got[2].1.expose(), url);
    assert!(!got[2].1.expose().contains("adminpw"));
}

#[tokio::test]
async fn a_missing_user_is_refused_not_created() {
    let name = format!("og_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let k = kind(&[NODE], &name);
    let v = version(&k, 1);
    let err = k.set(&v, None).await.unwrap_err();
    assert!(matches!(err, KindError::Refused(_)), "{err}");
    assert!(
        err.to_string().contains("the ACL user does not exist"),
        "{err}"
    );
    assert_eq!(
        password_count(NODE, &name).await,
        None,
        "nothing was created"
    );
}
