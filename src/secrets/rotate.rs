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
        match rows::start(&self.pool, name, by, via, self.lease()).await? {
            Err(running) => Ok(Requested::InProgress(running)),
            Ok(row) => Ok(Requested::Ran(self.drive(secret, row).await?)),
        }
    }

    /// Resume or retry every rotation that is due, then revoke previous versions whose
    /// grace period is over. The worker calls this every tick, and `serve` at start.
    pub async fn tick(&self) -> Result<Vec<Outcome>, RotateError> {
        let mut outcomes = Vec::new();
        while let Some(row) = rows::claim_due(&self.pool, self.lease()).await? {
            match self.catalog.get(&row.secret) {
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

    /// Testing only (`[rotation] crash_at`): abort the process at a step boundary.
    fn crash_hook(&self, step: Step, when: &str) {
        if self.settings.crash_at.as_deref() == Some(&format!("{}:{when}", step.as_str())) {
            eprintln!(
                "opsguard: crash_at {}:{when} (a test hook): aborting",
                step.as_str()
            );
            std::process::abort();
        }
    }

    /// Store a new pending version (or keep the one a cut-off run stored).
    async fn create(&self, secret: &ManagedSecret) -> Result<i32, StepError> {
        let name = secret.name.as_str();
        if let Some(pending) = store::versions(&self.pool, name, &["pending"]).await?.pop() {
            return Ok(pending.version);
        }
        // Alternating users: the new value goes to the previous version's role, so its
        // grace period ends now (the other kinds keep every previous version until its own).
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

    /// A step failed: retry later, or give up, undo and alert.
    async fn failed(
        &self,
        secret: &ManagedSecret,
        row: &RotationRow,
        step: Step,
        error: StepError,
    ) -> Result<Outcome, RotateError> {
        let attempt = row.attempts + 1;
        let text = format!("{error}");
        tracing::warn!(rotation.id = row.id, secret = %secret.name, rotation.step = step.as_str(), rotation.attempt = attempt, error = %text, "secrets.step_failed");
        if error.is_transient() && attempt < self.settings.max_attempts {
            let wait = backoff_secs(
                attempt,
                self.settings.backoff_base_secs,
                self.settings.backoff_cap_secs,
            );
            let next_at = Utc::now() + chrono::Duration::seconds(wait as i64);
            rows::retry_later(&self.pool, row.id, &text, next_at).await?;
            if attempt == 1 {
                self.alert(
                    secret,
                    step,
                    &format!(
                        "{text} — retrying with backoff (up to {} attempts)",
                        self.settings.max_attempts
                    ),
                )
                .await;
            }
            return Ok(Outcome::Retrying {
                rotation: row.id,
                step,
                error: text,
                next_at,
                attempt,
            });
        }
        if !rows::start_rollback(&self.pool, row.id, &text).await? {
            return Ok(lost(row.id, step));
        }
        self.rollback(secret, row, step, text).await
    }

    /// Give up: re-deliver the current version where sinks may hold the pending one, take
    /// the pending value off the target, then revoke it in the vault. Recorded first
    /// (`rolling_back`), so a crash resumes the undo — never the step — and an undo that
    /// fails is retried with backoff until it is done.
    async fn rollback(
        &self,
        secret: &ManagedSecret,
        row: &RotationRow,
        step: Step,
        reason: String,
    ) -> Result<Outcome, RotateError> {
        let pending = self.one(secret, VersionState::Pending).await?;
        let current = self.one(secret, VersionState::Current).await?;
        let mut undo = Ok(());
        if step == Step::Finish
            && let Some(current) = &current
        {
            undo = self.deliver(secret, current).await;
        }
        if undo.is_ok()
            && step >= Step::Set
            && let Some(pending) = &pending
        {
            let why = Revocation::RolledBack {
                current: current.as_ref(),
            };
            undo = secret
                .kind
                .revoke(pending, why)
                .await
                .map_err(StepError::from);
        }
        if let Err(e) = undo {
            let attempt = row.attempts + 1;
            let wait = backoff_secs(
                attempt,
                self.settings.backoff_base_secs,
                self.settings.backoff_cap_secs,
            );
            let next_at = Utc::now() + chrono::Duration::seconds(wait as i64);
            let text = format!("{reason}; undoing it failed: {e}");
            rows::retry_later(&self.pool, row.id, &text, next_at).await?;
            if row.status() != RotationStatus::RollingBack {
                self.alert(secret, step, &format!("{text} — the undo is retried"))
                    .await;
            }
            return Ok(Outcome::GaveUp {
                rotation: row.id,
                step,
                error: text,
                status: RotationStatus::RollingBack,
            });
        }
        if let Some(pending) = &pending {
            store::revoke_version(&self.pool, secret.name.as_str(), pending.number).await?;
        }
        let status = if step >= Step::Set {
            RotationStatus::RolledBack
        } else {
            RotationStatus::Failed
        };
        rows::close(&self.pool, row.id, status, &reason).await?;
        self.alert(
            secret,
            step,
            &format!("{reason} — gave up; the old credential stays current"),
        )
        .await;
        Ok(Outcome::GaveUp {
            rotation: row.id,
            step,
            error: reason,
            status,
        })
    }

    async fn alert(&self, secret: &ManagedSecret, step: Step, text: &str) {
        let reply = Reply::html(format!(
            "🔴 Rotation of <b>{}</b> failed at step <code>{}</code>: {}",
            escape(secret.name.as_str()),
            step.as_str(),
            escape(text)
        ));
        for chat in &self.settings.alert_chats {
            if let Err(e) = crate::outbox::enqueue(&self.pool, *chat, &reply, "rotation").await {
                tracing::error!(error = %e, secret = %secret.name, "secrets.alert_failed");
            }
        }
    }

    /// Revoke previous versions whose grace period is over. Errors wait for the next tick.
    pub async fn retire_due(&self) -> Result<(), RotateError> {
        for (name, number) in store::due_for_retirement(&self.pool).await? {
            let Some(secret) = self.catalog.get(&name) else {
                continue;
            };
            if let Err(e) = self.retire(secret, number).await {
                tracing::warn!(secret = %name, secret.version = number, error = %e, "secrets.retire_failed");
            }
        }
        Ok(())
    }

    /// Take a previous version off the target and revoke it, holding its row locked so a
    /// rotation and a worker (or two workers) never retire it while a new value is set.
    async fn retire(&self, secret: &ManagedSecret, number: i32) -> Result<(), StepError> {
        let name = secret.name.as_str();
        let mut tx = self.pool.begin().await?;
        if !store::lock_previous(&mut tx, name, number).await? {
            return Ok(());
        }
        let row = store::version(&mut *tx, name, number)
            .await?
            .ok_or(StepError::NoPending("retire"))?;
        let previous = self.open(&secret.name, &row)?;
        let current = self.one(secret, VersionState::Current).await?;
        secret
            .kind
            .revoke(
                &previous,
                Revocation::Retired {
                    current: current.as_ref(),
                },
            )
            .await?;
        store::revoke_version(&mut *tx, name, number).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The decrypted version of a secret in `state`, if any.
    pub async fn one(
        &self,
        secret: &ManagedSecret,
        state: VersionState,
    ) -> Result<Option<Version>, RotateError> {
        let rows = store::versions(&self.pool, secret.name.as_str(), &[state.as_str()]).await?;
        rows.first()
            .map(|row| self.open(&secret.name, row))
            .transpose()
            .map_err(Into::into)
    }

    fn open(&self, name: &SecretName, row: &VersionRow) -> Result<Version, VaultError> {
        Ok(Version {
            secret: name.clone(),
            number: row.version,
            material: Material {
                value: self.key.open(name, row.version, &row.nonce, &row.sealed)?,
                public: row.public.clone(),
            },
            promoted_at: row.promoted_at,
        })
    }

    async fn insert(
        &self,
        name: &SecretName,
        version: i32,
        state: VersionState,
        material: &Material,
    ) -> Result<(), sqlx::Error> {
        let sealed = self.key.seal(name, version, &material.value);
        let print = fingerprint(material.value.expose().as_bytes());
        store::insert_version(
            &self.pool,
            NewVersion {
                secret: name.as_str(),
                version,
                state,
                nonce: &sealed.nonce,
                sealed: &sealed.sealed,
                public: &material.public,
                fingerprint: &print,
            },
        )
        .await
    }
}

/// Another replica finished or abandoned the rotation while this one worked on it.
fn lost(rotation: i64, step: Step) -> Outcome {
    Outcome::GaveUp {
        rotation,
        step,
        error: "another replica finished or took over this rotation".into(),
        status: RotationStatus::Failed,
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
