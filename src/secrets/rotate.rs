//! The rotation runner: drives a rotation through create → set → test → finish, recording
//! each step before and after it runs. Every step is idempotent, so a rotation cut off at
//! any point is resumed by the next start or worker tick; a step that keeps failing is
//! retried with backoff, then rolled back (the old credential stays current) and alerted.

use super::catalog::{Catalog, ManagedSecret};
use super::kind::{KindError, Material, Revocation, Version, env_prefix};
use super::rotation_rows::{self as rows, RotationRow};
use super::sinks::Delivery;
use super::store::{self, NewVersion, VersionRow};
use super::vault::{MasterKey, VaultError};
use crate::config::RotationSettings;
use crate::domain::Reply;
use crate::domain::html::escape;
use crate::domain::rotation::{RotationStatus, SecretName, Step, VersionState, backoff_secs};
use crate::domain::secret::fingerprint;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::sync::Arc;

mod recovery;
mod resumed;
mod retire;
mod versions;
use recovery::lost;

/// What became of a rotation when the runner let go of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded {
        rotation: i64,
        version: i32,
        fingerprint: String,
        sinks: Vec<String>,
    },
    /// Set and tested, waiting until `until` before it may become current (a signing key
    /// published as "next" while verifiers' JWKS caches refresh).
    Waiting {
        rotation: i64,
        version: i32,
        until: DateTime<Utc>,
    },
    Retrying {
        rotation: i64,
        step: Step,
        error: String,
        next_at: DateTime<Utc>,
        attempt: i32,
    },
    GaveUp {
        rotation: i64,
        step: Step,
        error: String,
        status: RotationStatus,
    },
}

/// The answer to a request to rotate.
#[derive(Debug)]
pub enum Requested {
    Ran(Outcome),
    InProgress(RotationRow),
    Unknown(Vec<String>),
    /// Refused up front, nothing changed: the admin credentials lack these grants.
    MissingGrants(Vec<String>),
    /// Refused, nothing changed: the new value would go where `version`, still promised to
    /// work until `until`, lives (alternating users); possible from `until`.
    TooSoon {
        version: i32,
        until: DateTime<Utc>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// Why a step failed. Texts never hold a value.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error("{0}")]
    Kind(#[from] KindError),
    #[error("{0}")]
    Sink(String),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("no pending version to {0}")]
    NoPending(&'static str),
}

impl StepError {
    fn is_transient(&self) -> bool {
        match self {
            StepError::Kind(k) => k.is_transient(),
            StepError::Sink(_) | StepError::Db(_) => true,
            StepError::Vault(_) | StepError::NoPending(_) => false,
        }
    }
}

pub struct Rotations {
    pool: PgPool,
    key: MasterKey,
    catalog: Arc<Catalog>,
    settings: RotationSettings,
}

impl Rotations {
    pub fn new(
        pool: PgPool,
        key: MasterKey,
        catalog: Arc<Catalog>,
        settings: RotationSettings,
    ) -> Self {
        Rotations {
            pool,
            key,
            catalog,
            settings,
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The master key the vault was opened with (TOTP secrets are sealed under it too).
    pub fn key(&self) -> &MasterKey {
        &self.key
    }

    fn lease(&self) -> i64 {
        self.settings.lease_secs as i64
    }

    /// Start a rotation of `name` and drive it as far as it goes now.
    pub async fn request(
        &self,
        name: &str,
        by: Option<i64>,
        via: &str,
    ) -> Result<Requested, RotateError> {
        let Some(secret) = self.catalog.get(name) else {
            return Ok(Requested::Unknown(
                self.catalog.names().into_iter().map(String::from).collect(),
            ));
        };
        if let Some(refused) = self.refusal(secret).await? {
            return Ok(refused);
        }
        match rows::start(&self.pool, name, by, via, self.lease()).await? {
            Err(running) => Ok(Requested::InProgress(running)),
            Ok(row) => Ok(Requested::Ran(self.drive(secret, row).await?)),
        }
    }

    /// Resume or retry every rotation that is due, then revoke previous versions whose
    /// grace period is over. The worker calls this every tick, and `serve` at start.
    pub async fn tick(&self) -> Result<Vec<Outcome>, RotateError> {
        let mut outcomes = Vec::new();
        while let Some((row, interrupted)) = rows::claim_due(&self.pool, self.lease()).await? {
            match self.catalog.get(&row.secret) {
                Some(secret) if interrupted => {
                    outcomes.push(self.resume_interrupted(secret, row).await?)
                }
                Some(secret) => outcomes.push(self.drive(secret, row).await?),
                None => {
                    let error = "the secret is no longer configured";
                    rows::close(&self.pool, row.id, RotationStatus::Failed, error).await?;
                }
            }
        }
        self.retire_due().await?;
        Ok(outcomes)
    }

    /// Drive a rotation (holding its lease) from its recorded step to the end.
    pub async fn drive(
        &self,
        secret: &ManagedSecret,
        row: RotationRow,
    ) -> Result<Outcome, RotateError> {
        let mut step = row.step();
        if row.status() == RotationStatus::RollingBack {
            let reason = row.error.clone().unwrap_or_default();
            return self.rollback(secret, &row, step, reason).await;
        }
        if row.step_done {
            match step.next() {
                Some(next) => step = next,
                None => {
                    let error = "nothing left to do";
                    rows::close(&self.pool, row.id, RotationStatus::Failed, error).await?;
                    let status = RotationStatus::Failed;
                    return Ok(Outcome::GaveUp {
                        rotation: row.id,
                        step,
                        error: error.into(),
                        status,
                    });
                }
            }
        }
        loop {
            self.crash_hook(step, "before");
            rows::record(&self.pool, row.id, step, false, None, self.lease()).await?;
            let ran = match step {
                Step::Create => self.create(secret).await.map(Some),
                Step::Set => self.set(secret).await.map(|()| None),
                Step::Test => self.test(secret).await.map(|()| None),
                Step::Finish => match self.finish(secret, row.id).await {
                    Ok(outcome) => {
                        self.crash_hook(step, "after");
                        return Ok(outcome);
                    }
                    Err(e) => Err(e),
                },
            };
            match ran {
                Ok(version) => {
                    rows::record(&self.pool, row.id, step, true, version, self.lease()).await?;
                    self.crash_hook(step, "after");
                    step = step.next().unwrap_or(Step::Finish);
                }
                Err(error) => return self.failed(secret, &row, step, error).await,
            }
        }
    }

    /// Store a new pending version (or keep the one a cut-off run stored).
    async fn create(&self, secret: &ManagedSecret) -> Result<i32, StepError> {
        let name = secret.name.as_str();
        if let Some(pending) = store::versions(&self.pool, name, &["pending"]).await?.pop() {
            return Ok(pending.version);
        }
        // Alternating users: the new value goes to the previous version's role, whose grace
        // is over (`request` refuses before); the other kinds keep every previous version
        // until its own. A retirement that leaves only sessions to end does not stop this.
        if secret.kind.reuses_previous_slot() {
            for previous in store::versions(&self.pool, name, &["previous"]).await? {
                self.retire(secret, previous.version).await?;
            }
        }
        let current = self.one(secret, VersionState::Current).await?;
        let material = secret.kind.generate(current.as_ref())?;
        let version = store::next_version(&self.pool, name).await?;
        self.insert(&secret.name, version, VersionState::Pending, &material)
            .await?;
        Ok(version)
    }

    async fn set(&self, secret: &ManagedSecret) -> Result<(), StepError> {
        let pending = self
            .one(secret, VersionState::Pending)
            .await?
            .ok_or(StepError::NoPending("set"))?;
        let current = self.one(secret, VersionState::Current).await?;
        Ok(secret.kind.set(&pending, current.as_ref()).await?)
    }

    async fn test(&self, secret: &ManagedSecret) -> Result<(), StepError> {
        let pending = self
            .one(secret, VersionState::Pending)
            .await?
            .ok_or(StepError::NoPending("test"))?;
        Ok(secret.kind.test(&pending).await?)
    }

    /// Deliver the pending version to every sink, then promote it in one transaction.
    async fn finish(&self, secret: &ManagedSecret, rotation: i64) -> Result<Outcome, StepError> {
        let pending = self
            .one(secret, VersionState::Pending)
            .await?
            .ok_or(StepError::NoPending("finish"))?;
        let lead = secret.kind.publish_lead_secs();
        if lead > 0 {
            let name = secret.name.as_str();
            let created = store::version(&self.pool, name, pending.number)
                .await?
                .map(|v| v.created_at)
                .unwrap_or_else(Utc::now);
            let until = created + chrono::Duration::seconds(lead as i64);
            if until > Utc::now() {
                rows::wait_until(&self.pool, rotation, until).await?;
                let version = pending.number;
                return Ok(Outcome::Waiting {
                    rotation,
                    version,
                    until,
                });
            }
        }
        self.deliver(secret, &pending).await?;
        let grace = secret.policy.grace.num_seconds();
        let name = secret.name.as_str();
        if !store::promote(&self.pool, rotation, name, pending.number, grace).await? {
            return Ok(lost(rotation, Step::Finish));
        }
        Ok(Outcome::Succeeded {
            rotation,
            version: pending.number,
            fingerprint: pending.material.value.fingerprint(),
            sinks: secret.sinks.iter().map(|s| s.describe()).collect(),
        })
    }

    async fn deliver(&self, secret: &ManagedSecret, version: &Version) -> Result<(), StepError> {
        let values = secret.kind.delivery(&env_prefix(&secret.name), version);
        let print = version.material.value.fingerprint();
        let delivery = Delivery {
            secret: &secret.name,
            version: version.number,
            fingerprint: &print,
            values: &values,
        };
        for sink in &secret.sinks {
            sink.deliver(&delivery).await.map_err(StepError::Sink)?;
        }
        Ok(())
    }
}

impl From<RotateError> for StepError {
    fn from(e: RotateError) -> Self {
        match e {
            RotateError::Db(e) => StepError::Db(e),
            RotateError::Vault(e) => StepError::Vault(e),
        }
    }
}
