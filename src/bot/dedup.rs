//! Update de-duplication across replicas: an update id is taken once (Redis `SET NX EX`),
//! or in PostgreSQL while Redis is down, so Telegram's retries never run a command twice.

use crate::engine::Engine;

/// True when this process is the first to take the update.
pub async fn first_sight(engine: &Engine, update_id: i64) -> bool {
    let redis = engine.redis();
    if let Some(mut conn) = redis.conn() {
        let key = redis.key(&format!("update:{update_id}"));
        let ttl = engine.settings().redis.dedup_ttl_secs;
        let taken: Result<Option<String>, _> = redis::cmd("SET")
            .arg(&key)
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(ttl)
            .query_async(&mut conn)
            .await;
        match taken {
            Ok(reply) => {
                redis.record_ok();
                return reply.is_some();
            }
            Err(e) => redis.record_error(&e.to_string()),
        }
    }
    match crate::storage::updates::first_sight(engine.pool(), update_id).await {
        Ok(first) => first,
        Err(e) => {
            // Neither store answers: run it (the engine will refuse, since it cannot audit).
            tracing::error!(error = %e, update.id = update_id, "dedup.unavailable");
            true
        }
    }
}
