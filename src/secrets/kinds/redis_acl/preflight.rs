//! What `redis_acl` needs of a node's admin user, asked without running anything:
//! `ACL DRYRUN <admin> …` (Redis ≥ 7) for each command a rotation sends — `ACL GETUSER`
//! (every step reads the user's passwords), `ACL SETUSER` (set, retire, undo) and
//! `CLIENT KILL` (ending a retired credential's connections) — and whether the managed user
//! exists. Each missing right is named as the `ACL SETUSER` rule that grants it.

use redis::aio::MultiplexedConnection;
use redis::{RedisError, Value};

/// The commands a rotation sends, as (ACL rule, command words).
const NEEDED: [(&str, &[&str]); 3] = [
    ("+acl|getuser", &["ACL", "GETUSER"]),
    ("+acl|setuser", &["ACL", "SETUSER"]),
    ("+client|kill", &["CLIENT", "KILL", "USER"]),
];

/// The rights the connection's user lacks to rotate `user`'s password, as rules to add.
/// An error: the node could not be asked (unreachable, Redis < 7 without `ACL DRYRUN`, or
/// an admin user that may not run it).
pub(super) async fn missing(
    conn: &mut MultiplexedConnection,
    user: &str,
) -> Result<Vec<String>, RedisError> {
    let me: String = redis::cmd("ACL").arg("WHOAMI").query_async(conn).await?;
    let mut missing = Vec::new();
    let mut can_read = true;
    for (rule, words) in NEEDED {
        let answer: Value = redis::cmd("ACL")
            .arg("DRYRUN")
            .arg(&me)
            .arg(words)
            .arg(user)
            .query_async(conn)
            .await?;
        let allowed = match &answer {
            Value::Okay => true,
            Value::SimpleString(s) => s == "OK",
            _ => false,
        };
        if !allowed {
            can_read &= rule != "+acl|getuser";
            missing.push(format!("ACL SETUSER {me} {rule}"));
        }
    }
    if can_read {
        let found: Value = redis::cmd("ACL")
            .arg("GETUSER")
            .arg(user)
            .query_async(conn)
            .await?;
        if found == Value::Nil {
            missing.push(format!(
                "ACL SETUSER {user} on … (the ACL user {user} does not exist; create it with the rights it needs)"
            ));
        }
    }
    Ok(missing)
}
