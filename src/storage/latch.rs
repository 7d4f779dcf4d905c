//! The known-down latch of PostgreSQL: once a query failed because the database could not be
//! reached, callers that ask first (`is_down`) fail at once instead of waiting out the pool's
//! acquire timeout again, while ONE background probe tries the database every
//! `PROBE_EVERY`; the first probe that gets an answer opens the latch again. A latch closed
//! by mistake costs at most one probe interval of refusals.

use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the probe tries while the database is known down.
const PROBE_EVERY: Duration = Duration::from_millis(200);
/// How long one probe may wait for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

pub struct DbLatch {
    pool: PgPool,
    down: AtomicBool,
}

impl DbLatch {
    pub fn new(pool: PgPool) -> Arc<Self> {
        Arc::new(DbLatch {
            pool,
            down: AtomicBool::new(false),
        })
    }

    /// Whether the database is known to be unreachable (ask before a query that would wait).
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// Note a query's error: one saying the database cannot be reached closes the latch and
    /// starts the probe (once; the error is logged by whoever handles it).
    pub fn observe(self: &Arc<Self>, error: &sqlx::Error) {
        if unreachable(error) {
            self.trip(error);
        }
    }

    /// Close the latch for an error already found to mean "unreachable" (see
    /// `unreachable`), and start the probe (once).
    pub fn trip(self: &Arc<Self>, error: &dyn std::fmt::Display) {
        if self.down.swap(true, Ordering::Relaxed) {
            return;
        }
        metrics::counter!("opsguard_database_down_total").increment(1);
        tracing::warn!(error = %error, "database.known_down");
        let latch = self.clone();
        tokio::spawn(async move { latch.probe().await });
    }

    async fn probe(&self) {
        loop {
            tokio::time::sleep(PROBE_EVERY).await;
            if self.pool.is_closed() {
                return;
            }
            let answered =
                tokio::time::timeout(PROBE_TIMEOUT, sqlx::query("SELECT 1").execute(&self.pool))
                    .await;
            if let Ok(Ok(_)) = answered {
                self.down.store(false, Ordering::Relaxed);
                tracing::info!("database.recovered");
                return;
            }
        }
    }
}

/// Whether an error says the database could not be reached (not that it refused a query).
pub fn unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::Protocol(_) => true,
        // admin_shutdown, crash_shutdown, cannot_connect_now, and a database that does
        // not accept connections (ALLOW_CONNECTIONS false).
        sqlx::Error::Database(e) => matches!(
            e.code().as_deref(),
            Some("57P01" | "57P02" | "57P03" | "55000")
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_errors_of_reaching_the_database_close_the_latch() {
        assert!(unreachable(&sqlx::Error::PoolTimedOut));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(unreachable(&sqlx::Error::Io(io)));
        assert!(!unreachable(&sqlx::Error::RowNotFound));
        assert!(!unreachable(&sqlx::Error::ColumnNotFound("x".into())));
    }
}
