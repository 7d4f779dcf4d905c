//! The preflight of `redis_acl` (`ACL DRYRUN` as the node's admin user): a right the admin
//! lacks is named as the `ACL SETUSER` rule that grants it, a managed user that does not
//! exist is said; and a retirement whose `CLIENT KILL` is refused removes the password but
//! reports the connections as still open (`SessionsLive`), which `end_sessions` ends once
//! the right is granted. With several nodes, the preflight asks each and names the node
//! whose admin lacks a right.

use super::{AclUser, NODE, kind, login, password_count, version};
use crate::helpers::PrivateRedis;
use opsguard::secrets::kind::{KindError, Revocation, SecretKind};

/// An admin ACL user `og_adm_<8 hex>` with a password and `rules` on one node; deleted on
/// drop. (The user, its password and the node's address.)
struct Admin(AclUser, String, String);

impl Admin {
    fn new(rules: &[&str]) -> Admin {
        Admin::on("127.0.0.1:6379", rules)
    }

    /// On the node at `host_port` (a server with no password of its own).
    fn on(host_port: &str, rules: &[&str]) -> Admin {
        let node = format!("redis://{host_port}");
        let user = AclUser::new(&[&node]);
        let password = uuid::Uuid::new_v4().simple().to_string();
        acl(&node, &user.name, &[&format!(">{password}")]);
        acl(&node, &user.name, rules);
        Admin(user, password, host_port.to_string())
    }

    fn url(&self) -> String {
        format!("redis://{}:{}@{}", self.0.name, self.1, self.2)
    }
}

fn acl(node: &str, user: &str, rules: &[&str]) {
    let mut conn = redis::Client::open(node).unwrap().get_connection().unwrap();
    redis::cmd("ACL")
        .arg("SETUSER")
        .arg(user)
        .arg(rules)
        .query::<()>(&mut conn)
        .unwrap();
}

#[tokio::test]
async fn the_preflight_names_each_missing_right_and_a_missing_user() {
    let user = AclUser::new(&[NODE]);
    assert_eq!(
        kind(&[NODE], &user.name).preflight().await.unwrap(),
        Vec::<String>::new()
    );
    let admin = Admin::new(&["-client|kill", "-acl|setuser"]);
    let missing = kind(&[&admin.url()], &user.name).preflight().await.unwrap();
    let name = &admin.0.name;
    assert_eq!(
        missing,
        vec![
            format!("node 127.0.0.1:6379: ACL SETUSER {name} +acl|setuser"),
            format!("node 127.0.0.1:6379: ACL SETUSER {name} +client|kill"),
        ]
    );
    let nobody = format!(
        "og_nobody_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let missing = kind(&[NODE], &nobody).preflight().await.unwrap();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(missing[0].contains("does not exist"), "{missing:?}");
    let err = kind(&["redis://127.0.0.1:1"], &user.name)
        .preflight()
        .await
        .unwrap_err();
    assert!(matches!(err, KindError::Unreachable(_)), "{err:?}");
}

#[tokio::test]
async fn a_refused_client_kill_removes_the_password_and_leaves_the_sessions_for_a_retry() {
    let user = AclUser::new(&[NODE]);
    let admin = Admin::new(&["-client|kill"]);
    let k = kind(&[&admin.url()], &user.name);
    let (v1, v2) = (version(&k, 1), version(&k, 2));
    k.set(&v1, None).await.unwrap();
    k.set(&v2, Some(&v1)).await.unwrap();
    let mut old_session = login(NODE, &user.name, &v1).await.unwrap();
    let err = k
        .revoke(&v1, Revocation::Retired { current: Some(&v2) })
        .await
        .unwrap_err();
    assert!(matches!(err, KindError::SessionsLive { .. }), "{err:?}");
    assert!(!err.to_string().contains(v1.material.value.expose()));
    assert_eq!(password_count(NODE, &user.name).await, Some(1));
    assert!(
        login(NODE, &user.name, &v1).await.is_err(),
        "v1 still logs in"
    );
    redis::cmd("PING")
        .query_async::<String>(&mut old_session)
        .await
        .expect("the old connection is still open");
    assert!(k.end_sessions(&v1, chrono::Utc::now()).await.is_err());

    acl(NODE, &admin.0.name, &["+client|kill"]);
    k.end_sessions(&v1, chrono::Utc::now()).await.unwrap();
    let ended = redis::cmd("PING")
        .query_async::<String>(&mut old_session)
        .await;
    assert!(ended.is_err(), "the old connection lives on");
    k.test(&v2).await.expect("the current password still works");
}

#[tokio::test]
async fn the_preflight_asks_every_node_and_names_the_one_whose_admin_lacks_a_right() {
    let second = PrivateRedis::start(&[]);
    second.ready().await;
    let host_port = format!("127.0.0.1:{}", second.port);
    let second_node = second.url();
    let user = AclUser::new(&[NODE, &second_node]);
    let full = Admin::on(&host_port, &[]);
    let nodes = [NODE.to_string(), full.url()];
    let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
    assert_eq!(
        kind(&nodes, &user.name).preflight().await.unwrap(),
        Vec::<String>::new(),
        "both admins hold every right"
    );
    let no_kill = Admin::on(&host_port, &["-client|kill"]);
    let nodes = [NODE.to_string(), no_kill.url()];
    let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let missing = kind(&nodes, &user.name).preflight().await.unwrap();
    assert_eq!(
        missing,
        vec![format!(
            "node {host_port}: ACL SETUSER {} +client|kill",
            no_kill.0.name
        )]
    );
}
