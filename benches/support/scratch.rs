//! A scratch world for one benchmark run: a fresh PostgreSQL database and a Redis key
//! prefix of its own, both removed afterwards whatever the run's result.

use sqlx::{Connection, PgConnection};
use std::collections::HashMap;
use std::future::Future;

pub const PG: &str = "postgres://root@127.0.0.1:5432";
pub const REDIS: &str = "redis://127.0.0.1:6379";

/// Run `body(database_url, name)`; the database `name` and the Redis keys under
/// `redis_prefix(name)` exist only for the call.
pub async fn with_scratch<F, Fut>(body: F) -> anyhow::Result<()>
where
    F: FnOnce(String, String) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let name = format!("opsguard_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&format!("{PG}/postgres")).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await?;
    let result = body(format!("{PG}/{name}"), name.clone()).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await?;
    forget_redis_keys(&redis_prefix(&name)).await?;
    result
}

/// The environment a benchmark starts the app with: the default settings file, the
/// scratch database `url`, the local Redis under the run's prefix, a free port — then
/// `extra`, which may override any of them.
pub fn app_env(url: &str, name: &str, extra: &[(&str, String)]) -> HashMap<String, String> {
    let base = [
        (
            "OPSGUARD_CONFIG",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml").to_string(),
        ),
        ("DATABASE_URL", url.to_string()),
        ("REDIS_URL", REDIS.to_string()),
        ("OPSGUARD_LISTEN", "127.0.0.1:0".to_string()),
        ("OPSGUARD__REDIS__KEY_PREFIX", redis_prefix(name)),
    ];
    // Settings given to the bench as `OPSGUARD__SECTION__KEY` reach the app too (a run's
    // own overrides, e.g. `OPSGUARD__REDIS__TIMEOUT_MS=2000`); `extra` still wins.
    let passed: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("OPSGUARD__"))
        .collect();
    let mut env: HashMap<String, String> = passed.into_iter().collect();
    env.extend(
        base.into_iter()
            .filter(|(k, _)| !env.contains_key(*k))
            .map(|(k, v)| (k.to_string(), v))
            .collect::<Vec<_>>(),
    );
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    env
}

/// The Redis key prefix of the run named `name`.
pub fn redis_prefix(name: &str) -> String {
    format!("bench:{name}:")
}

/// Remove every Redis key the run wrote (de-dup ids, rate-limit and detection windows):
/// SCAN in pages, never a KEYS over a large keyspace.
async fn forget_redis_keys(prefix: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(REDIS)?;
    let mut scan = client.get_multiplexed_async_connection().await?;
    let mut del = client.get_multiplexed_async_connection().await?;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(10_000)
            .query_async(&mut scan)
            .await?;
        if !keys.is_empty() {
            let _: () = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut del)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
