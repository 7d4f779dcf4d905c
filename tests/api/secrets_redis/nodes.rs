//! `redis_acl` across several nodes: the shared Redis and a private `redis-server` started
//! for the test on a free port (killed at the end). Every operation reaches every node.

use super::{AclUser, NODE, assert_clean, kind, login, password_count, version};
use opsguard::secrets::kind::{KindError, Revocation, SecretKind};
use std::time::Duration;

/// A private `redis-server` on a free port, killed when dropped.
struct PrivateRedis {
    child: tokio::process::Child,
    url: String,
}

impl PrivateRedis {
    async fn start() -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--daemonize", "no"])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server on PATH");
        let url = format!("redis://127.0.0.1:{port}");
        for _ in 0..100 {
            if let Ok(client) = redis::Client::open(url.as_str())
                && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return PrivateRedis { child, url };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the private redis-server did not start");
    }
}

#[tokio::test]
async fn every_operation_goes_to_every_node() {
    let mut second = PrivateRedis::start().await;
    let nodes = [NODE, second.url.as_str()];
    let user = AclUser::new(&nodes);
    let k = kind(&nodes, &user.name);
    let (v1, v2) = (version(&k, 1), version(&k, 2));
    k.set(&v1, None).await.unwrap();
    k.set(&v2, Some(&v1)).await.unwrap();
    for node in nodes {
        assert_eq!(password_count(node, &user.name).await, Some(2), "{node}");
        login(node, &user.name, &v2)
            .await
            .expect("the new password works on every node");
    }
    k.test(&v2).await.unwrap();
    k.revoke(&v1, Revocation::Retired { current: Some(&v2) })
        .await
        .unwrap();
    for node in nodes {
        assert_eq!(password_count(node, &user.name).await, Some(1), "{node}");
        assert!(login(node, &user.name, &v1).await.is_err(), "{node}");
    }
    // One node down fails the step, naming that node only.
    second.child.kill().await.unwrap();
    let err = k.test(&v2).await.expect_err("a node is down");
    assert!(matches!(err, KindError::Unreachable(_)), "{err}");
    let port = second.url.rsplit(':').next().unwrap();
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert_clean(&err, &[&v1, &v2]);
}
