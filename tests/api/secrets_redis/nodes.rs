//! `redis_acl` across several nodes: the shared Redis and a private `redis-server` started
//! for the test on a free port (killed at the end). Every operation reaches every node.

use super::{AclUser, NODE, assert_clean, kind, login, password_count, version};
use crate::helpers::PrivateRedis;
use opsguard::secrets::kind::{KindError, Revocation, SecretKind};

#[tokio::test]
async fn every_operation_goes_to_every_node() {
    let mut second = PrivateRedis::start(&[]);
    second.ready().await;
    let url = second.url();
    let nodes = [NODE, url.as_str()];
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
    second.child.kill().unwrap();
    second.child.wait().unwrap();
    let err = k.test(&v2).await.expect_err("a node is down");
    assert!(matches!(err, KindError::Unreachable(_)), "{err}");
    let port = second.port.to_string();
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert_clean(&err, &[&v1, &v2]);
}
