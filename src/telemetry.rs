//! Logging: JSON lines through `tracing` (level from `RUST_LOG`, default `info`), to stderr.

use tracing_subscriber::{EnvFilter, fmt};

/// Install the global subscriber; `default_level` applies when `RUST_LOG` is unset. sqlx's
/// slow-statement warnings are left out by default: a restore test's `DROP DATABASE` or a
/// backup's row counts are slow by nature, not a problem to report.
pub fn init(default_level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_level},sqlx::query=error")));
    let _ = fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_writer(std::io::stderr)
        .try_init();
}
