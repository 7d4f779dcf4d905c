//! Update de-duplication across replicas, so Telegram's retries never run a command twice.
//! PostgreSQL alone decides: an id is taken only by the one insert that creates its row.
//! Redis is not asked: whoever can write to it could plant "seen" keys for the next update
//! ids and silence the bot, and a "not seen" there proves nothing either (it may have been
//! down, or have forgotten). The insert commits asynchronously (`take_update`), so the cost
//! is one round trip without a WAL flush.

use crate::engine::Engine;

/// True when this process is the first to take the update.
pub async fn first_sight(engine: &Engine, update_id: i64) -> bool {
    if engine.db_latch().is_down() {
        // Known down (`storage::latch`): run it, as on an error, without waiting again.
        return true;
    }
    match crate::storage::updates::first_sight(engine.pool(), update_id).await {
        Ok(first) => first,
        Err(e) => {
            engine.db_latch().observe(&e);
            // The store is down: run it (the engine refuses, since it cannot audit).
            tracing::error!(error = %e, update.id = update_id, "dedup.unavailable");
            true
        }
    }
}
