//! `redis_acl`: the password of a Redis ACL user, on every node (ACL changes do not
//! replicate). A rotation adds the new password beside the old one (Redis users may hold
//! several), proves it with AUTH + PING on every node, and later removes the old one and
//! ends the connections of the user. Passwords travel as SHA-256 hashes (`#`/`!` ACL rules)
//! on the admin connection, and no error text shows a password or an admin URL.

mod preflight;

use crate::domain::secret::Secret;
use crate::secrets::kind::percent_encode as encode;
use crate::secrets::kind::{KindError, Material, Revocation, SecretKind, Version, random_token};
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisError};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::Duration;

struct Node {
    info: ConnectionInfo,
    host: String,
    port: u16,
}

impl Node {
    fn label(&self) -> String {
        format!("node {}:{}", self.host, self.port)
    }
}

pub struct RedisAcl {
    nodes: Vec<Node>,
    user: String,
    timeout: Duration,
}

impl RedisAcl {
    pub fn new(nodes: Vec<Secret>, user: &str, timeout: Duration) -> Result<Self, String> {
        if nodes.is_empty() {
            return Err("target.nodes must list at least one node".into());
        }
        let valid_user = (1..=64).contains(&user.len())
            && user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid_user {
            return Err("target.user must be 1–64 of A-Z, a-z, 0-9, _ . -".into());
        }
        let nodes = nodes
            .iter()
            .enumerate()
            .map(|(i, url)| {
                parse_node(url).ok_or_else(|| {
                    format!("target.nodes[{i}] is not a redis://[user:pass@]host:port URL")
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(RedisAcl {
            nodes,
            user: user.to_string(),
            timeout,
        })
    }

    /// Run `op` on every node at once, each bounded by the timeout; the first error wins.
    async fn on_every_node<'a, F, Fut>(&'a self, op: F) -> Result<(), KindError>
    where
        F: Fn(&'a Node) -> Fut,
        Fut: Future<Output = Result<(), RedisError>> + 'a,
    {
        let runs = self.nodes.iter().map(|node| {
            let run = op(node);
            async move {
                match tokio::time::timeout(self.timeout, run).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(classify(node, &e)),
                    Err(_) => Err(KindError::Unreachable(format!(
                        "{}: timed out after {} ms",
                        node.label(),
                        self.timeout.as_millis()
                    ))),
                }
            }
        });
        futures::future::join_all(runs)
            .await
            .into_iter()
            .collect::<Result<Vec<()>, _>>()
            .map(|_| ())
    }

    /// Remove `password` from the user on every node (if it is there); with `kill`, end
    /// the user's connections too, since removing a password leaves them open. Connections
    /// that cannot be ended once the password is gone everywhere are `SessionsLive`.
    async fn remove(&self, password: &Secret, kill: bool) -> Result<(), KindError> {
        let hash = password_hash(password);
        self.on_every_node(|node| {
            let hash = hash.clone();
            async move {
                let mut conn = admin(node).await?;
                let Some(passwords) = passwords(&mut conn, &self.user).await? else {
                    return Ok(()); // no such user: nothing to remove
                };
                if passwords.contains(&hash) {
                    redis::cmd("ACL")
                        .arg("SETUSER")
                        .arg(&self.user)
                        .arg(format!("!{hash}"))
                        .query_async::<()>(&mut conn)
                        .await?;
                }
                Ok(())
            }
        })
        .await?;
        if !kill {
            return Ok(());
        }
        let before = chrono::Utc::now();
        self.kill().await.map_err(|e| match e {
            KindError::Refused(error) | KindError::Unreachable(error) => {
                KindError::SessionsLive { error, before }
            }
            other => other,
        })
    }

    /// `CLIENT KILL USER` on every node.
    async fn kill(&self) -> Result<(), KindError> {
        self.on_every_node(|node| async move {
            let mut conn = admin(node).await?;
            redis::cmd("CLIENT")
                .arg("KILL")
                .arg("USER")
                .arg(&self.user)
                .query_async::<i64>(&mut conn)
                .await
                .map(drop)
        })
        .await
    }
}

fn parse_node(url: &Secret) -> Option<Node> {
    let raw = url.expose();
    if !raw.starts_with("redis://") {
        return None;
    }
    let info = raw.into_connection_info().ok()?;
    let (host, port) = match info.addr() {
        ConnectionAddr::Tcp(host, port) => (host.clone(), *port),
        _ => return None,
    };
    Some(Node { info, host, port })
}

/// A connection with the node's admin credentials (from its URL).
async fn admin(node: &Node) -> Result<redis::aio::MultiplexedConnection, RedisError> {
    redis::Client::open(node.info.clone())?
        .get_multiplexed_async_connection()
        .await
}

/// The SHA-256 hashes of the user's passwords, or `None` if the user does not exist.
async fn passwords(
    conn: &mut redis::aio::MultiplexedConnection,
    user: &str,
) -> Result<Option<Vec<String>>, RedisError> {
    let found: Option<HashMap<String, redis::Value>> = redis::cmd("ACL")
        .arg("GETUSER")
        .arg(user)
        .query_async(conn)
        .await?;
    Ok(found.map(|fields| {
        fields
            .get("passwords")
            .and_then(|v| redis::from_redis_value_ref::<Vec<String>>(v).ok())
            .unwrap_or_default()
    }))
}

/// How Redis stores a password: lower-case hex of its SHA-256.
fn password_hash(password: &Secret) -> String {
    hex::encode(Sha256::digest(password.expose().as_bytes()))
}

/// An error text built from the error's kind only: server details may echo ACL rules.
fn classify(node: &Node, e: &RedisError) -> KindError {
    use redis::{ErrorKind, ServerErrorKind};
    let label = node.label();
    if e.is_io_error() {
        let what = if e.is_connection_refusal() {
            "connection refused"
        } else if e.is_timeout() {
            "timed out"
        } else {
            "connection failed"
        };
        return KindError::Unreachable(format!("{label}: {what}"));
    }
    match e.kind() {
        ErrorKind::InvalidClientConfig => KindError::Refused(format!(
            "{label}: the ACL user does not exist; create it with the rights it needs first"
        )),
        ErrorKind::AuthenticationFailed => {
            KindError::Refused(format!("{label}: authentication failed"))
        }
        ErrorKind::Server(
            ServerErrorKind::BusyLoading | ServerErrorKind::TryAgain | ServerErrorKind::MasterDown,
        ) => KindError::Unreachable(format!("{label}: busy ({})", e.code().unwrap_or("?"))),
        _ => KindError::Refused(format!(
            "{label}: refused ({})",
            e.code().unwrap_or(e.category())
        )),
    }
}

#[async_trait::async_trait]
impl SecretKind for RedisAcl {
    fn kind(&self) -> &'static str {
        "redis_acl"
    }

    fn generate(&self, _current: Option<&Version>) -> Result<Material, KindError> {
        Ok(Material {
            value: random_token(),
            public: serde_json::json!({ "user": self.user }),
        })
    }

    async fn set(&self, pending: &Version, _current: Option<&Version>) -> Result<(), KindError> {
        let hash = password_hash(&pending.material.value);
        self.on_every_node(|node| {
            let hash = hash.clone();
            async move {
                let mut conn = admin(node).await?;
                let mut cmd = redis::cmd("ACL");
                cmd.arg("SETUSER").arg(&self.user);
                // A missing user is not created: what it may do is not opsguard's to choose.
                if passwords(&mut conn, &self.user).await?.is_none() {
                    return Err(RedisError::from((
                        redis::ErrorKind::InvalidClientConfig,
                        "missing user",
                    )));
                }
                cmd.arg(format!("#{hash}"));
                cmd.query_async::<()>(&mut conn).await
            }
        })
        .await
    }

    async fn test(&self, pending: &Version) -> Result<(), KindError> {
        self.on_every_node(|node| async move {
            // A fresh connection to the node's address with no credentials of its own.
            let info = node
                .info
                .addr()
                .clone()
                .into_connection_info()?
                .set_redis_settings(redis::RedisConnectionInfo::default().set_skip_set_lib_name());
            let mut conn = redis::Client::open(info)?
                .get_multiplexed_async_connection()
                .await?;
            redis::cmd("AUTH")
                .arg(&self.user)
                .arg(pending.material.value.expose())
                .query_async::<()>(&mut conn)
                .await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await?;
            Ok(())
        })
        .await
    }

    async fn revoke(&self, version: &Version, why: Revocation<'_>) -> Result<(), KindError> {
        let (current, kill) = match why {
            Revocation::Retired { current } => (current, true),
            Revocation::RolledBack { current } => (current, false),
        };
        // The guard: a value that is also the current one is never removed.
        let value = &version.material.value;
        if current.is_some_and(|c| c.material.value.matches(value.expose().as_bytes())) {
            tracing::warn!(
                secret = %version.secret,
                version = version.number,
                "redis_acl: not removing a password that is also the current one"
            );
            return Ok(());
        }
        self.remove(value, kill).await
    }

    fn ends_sessions(&self) -> bool {
        true
    }

    async fn end_sessions(
        &self,
        _version: &Version,
        _before: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), KindError> {
        self.kill().await
    }

    async fn preflight(&self) -> Result<Vec<String>, KindError> {
        let missing = std::sync::Mutex::new(Vec::new());
        self.on_every_node(|node| {
            let missing = &missing;
            async move {
                let mut conn = admin(node).await?;
                let found = preflight::missing(&mut conn, &self.user).await?;
                let label = node.label();
                let mut all = missing.lock().expect("preflight lock");
                all.extend(found.into_iter().map(|m| format!("{label}: {m}")));
                Ok(())
            }
        })
        .await?;
        Ok(missing.into_inner().expect("preflight lock"))
    }

    fn delivery(&self, prefix: &str, version: &Version) -> Vec<(String, Secret)> {
        let password = version.material.value.expose();
        let node = &self.nodes[0];
        let host = if node.host.contains(':') {
            format!("[{}]", node.host)
        } else {
            node.host.clone()
        };
        let url = format!(
            "redis://{}:{}@{host}:{}",
            encode(&self.user),
            encode(password),
            node.port
        );
        vec![
            (format!("{prefix}_USER"), Secret::new(self.user.clone())),
            (format!("{prefix}_PASSWORD"), version.material.value.clone()),
            (format!("{prefix}_URL"), Secret::new(url)),
        ]
    }
}
