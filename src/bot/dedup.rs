//! Update de-duplication across replicas, so Telegram's retries never run a command twice.
//! Redis (`SET NX EX`) is a fast filter: a hit there means "seen". PostgreSQL is the
//! authority: an id is taken only by the one insert that creates its row — whatever Redis
//! said, and whether or not Redis was reachable when the update first came.

use crate::engine::Engine;

/// True when this process is the first to take the update.
pub async fn first_sight(engine: &Engine, update_id: i64) -> bool {
    if seen_in_redis(engine, update_id).await {
        return false;
    }
    match crate::storage::updates::first_sight(engine.pool(), update_id).await {
        Ok(first) => first,
        Err(e) => {
            // The store is down: run it (the engine refuses, since it cannot audit).
            tracing::error!(error = %e, update.id = update_id, "dedup.unavailable");
            true
        }
    }
}

async fn seen_in_redis(engine: &Engine, update_id: i64) -> bool {
    let redis = engine.redis();
    let Some(mut conn) = redis.conn() else {
        return false;
    };
    let key = redis.key(&format!("update:{update_id}"));
    let ttl = engine.settings().redis.dedup_ttl_secs;
    let set: Result<Option<String>, _> = redis::cmd("SET")
        .arg(&key)
        .arg(1)
        .arg("NX")
        .arg("EX")
        .arg(ttl)
        .query_async(&mut conn)
        .await;
    match set {
        Ok(reply) => {
            redis.record_ok();
            reply.is_none()
        }
        Err(e) => {
            redis.record_error(&e.to_string());
            false
        }
    }
}
