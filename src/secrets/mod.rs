//! Secret rotation with zero downtime: managed secrets declared in `[[secrets]]`, their
//! versions sealed in the vault (AES-256-GCM under `OPSGUARD_MASTER_KEY`), and rotations
//! driven step by step (create → set → test → finish) so a crash at any point is resumed.
//!
//! - [`vault`]: the master key, sealing and opening values, the start-up key check.
//! - [`catalog`]: `[[secrets]]` parsed into typed secrets with their policy and sinks.
//! - [`kind`]: what every kind implements; [`kinds`]: postgres_role, redis_acl,
//!   jwt_signing_key, api_key.
//! - [`jwks`]: the public keys of the signing keys, at `/.well-known/jwks.json`.
//! - [`sinks`]: delivery to services (env file, signed webhook).
//! - [`store`], [`rotation_rows`], [`retirement`]: the queries (versions; rotations;
//!   retirements and their retries).
//! - [`open`]: the vault at start-up; [`rotate`]: the runner; [`worker`]: resumes,
//!   retries and retires on a timer.
//! - [`status`]: what `/secrets` shows; [`preflight`]: the privileges every step needs,
//!   checked at start, before each rotation and by `opsguard secret check`.
//!
//! Invariants: a value is never logged, audited, shown or put in an error text (only its
//! fingerprint); a version becomes current only after its value was set, tested and
//! delivered; the current version is never changed by a failed rotation.

pub mod catalog;
pub mod cli;
pub mod jwks;
pub mod kind;
pub mod kinds;
pub mod preflight;
pub mod retirement;
pub mod rotate;
pub mod rotation_rows;
pub mod sinks;
pub mod status;
pub mod store;
pub mod vault;
pub mod worker;

use crate::config::Settings;
use anyhow::Context;
use catalog::Catalog;
use rotate::Rotations;
use sqlx::PgPool;
use std::sync::Arc;
use vault::MasterKey;

/// Open the vault at start-up: parse `[[secrets]]`, and when secrets are configured or the
/// vault holds anything, require a master key that opens it. `None`: nothing to manage.
pub async fn open(pool: &PgPool, settings: &Settings) -> anyhow::Result<Option<Arc<Rotations>>> {
    let catalog = Catalog::build(settings)?;
    let in_use = vault::in_use(pool)
        .await
        .context("cannot read the secrets vault")?;
    if catalog.is_empty() && !in_use && settings.master_key.as_ref().is_none_or(|k| k.is_empty()) {
        return Ok(None);
    }
    let key = MasterKey::parse(settings.master_key.as_ref())?;
    key.check(pool).await?;
    Ok(Some(Arc::new(Rotations::new(
        pool.clone(),
        key,
        Arc::new(catalog),
        settings.rotation.clone(),
    ))))
}
