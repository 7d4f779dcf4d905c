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

use sqlx::Connection;
use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::time::Duration;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub type StoreResult<T> = Result<T, sqlx::Error>;

/// A pooled connection idle at least this long is pinged before it is handed out (one
/// that was in use just now has just proved itself; a ping per checkout was a round trip
/// on every statement of the update path).
const PING_IF_IDLE: Duration = Duration::from_secs(1);

/// A pool that connects on first use, so a process can start (and say what is wrong)
/// while PostgreSQL is down. Its sessions run without JIT compilation: opsguard's
/// statements are short, and a plan whose estimate crossed `jit_above_cost` (a table not
/// yet analysed, a 1,000-row batch) spent half a second compiling a 2 ms statement.
pub fn pool(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for < PING_IF_IDLE {
                    return Ok(true);
                }
                Ok(conn.ping().await.is_ok())
            })
        })
        .connect_lazy_with(options.options([("jit", "off")])))
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
