//! The PostgreSQL store: pool, migrations, and the queries of the engine's own tables
//! (users and roles, chats, audit log, pending actions and the approval requests pushed to
//! admins, processed updates, TOTP).
//! Capabilities keep their own queries in their own folders.

pub mod approvals;
pub mod audit;
pub mod audit_writer;
pub mod chats;
pub mod inbox;
pub mod inbox_writer;
pub mod latch;
pub mod pending;
pub mod totp;
pub mod updates;
pub mod users;

use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::time::Duration;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub type StoreResult<T> = Result<T, sqlx::Error>;

/// A pool that connects on first use, so a process can start (and say what is wrong)
/// while PostgreSQL is down.
pub fn pool(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .connect_lazy(url)
}

/// Create the database if it does not exist, then apply pending migrations. Nothing is
/// touched when every migration is applied, so a runtime role that may not create objects
/// (see `audit::roles`) starts without the owner's privileges.
pub async fn migrate(url: &str, pool: &PgPool) -> anyhow::Result<()> {
    if migrations_applied(pool).await.unwrap_or(false) {
        return Ok(());
    }
    if !sqlx::Postgres::database_exists(url).await? {
        sqlx::Postgres::create_database(url).await?;
    }
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// True when every migration this binary knows is applied (what `/readyz` reports).
pub async fn migrations_applied(pool: &PgPool) -> StoreResult<bool> {
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await?;
    Ok(MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .all(|m| applied.contains(&m.version)))
}
