//! Retiring previous versions once their grace period is over: the credential is taken off
//! the target, then the sessions opened with it are ended. A failure is recorded on the
//! version and retried with the worker's backoff (`[rotation] backoff_*`), alerted once;
//! a credential that is off the target is revoked even while its sessions wait, so a failing
//! retirement never stops the next rotation. Also what `request` refuses up front: missing
//! grants (the preflight) and a new value that would end a promised grace early.

use super::*;
use crate::secrets::retirement;

impl Rotations {
    /// `Some`: the rotation is refused and nothing was changed.
    pub(super) async fn refusal(
        &self,
        secret: &ManagedSecret,
    ) -> Result<Option<Requested>, RotateError> {
        if secret.kind.waits_for_grace()
            && let Some((version, until)) =
                retirement::in_grace(&self.pool, secret.name.as_str()).await?
        {
            return Ok(Some(Requested::TooSoon { version, until }));
        }
        match secret.kind.preflight().await {
            Ok(missing) if !missing.is_empty() => Ok(Some(Requested::MissingGrants(missing))),
            Ok(_) => Ok(None),
            // The steps will meet the same trouble and retry it with backoff.
            Err(e) => {
                tracing::warn!(secret = %secret.name, error = %e, "secrets.preflight_unavailable");
                Ok(None)
            }
        }
    }

    /// Retire what is due: previous versions past their grace, and the sessions of revoked
    /// ones whose backoff is over. Failures are recorded, alerted once and retried later.
    pub async fn retire_due(&self) -> Result<(), RotateError> {
        for (name, number) in store::due_for_retirement(&self.pool).await? {
            let Some(secret) = self.catalog.get(&name) else {
                continue;
            };
            if let Err(e) = self.retire(secret, number).await
                && !matches!(e, StepError::Kind(_))
            {
                tracing::warn!(secret = %name, secret.version = number, error = %e, "secrets.retire_failed");
            }
        }
        for (name, number) in retirement::sessions_due(&self.pool).await? {
            let Some(secret) = self.catalog.get(&name) else {
                continue;
            };
            if let Err(e) = self.end_sessions(secret, number).await {
                tracing::warn!(secret = %name, secret.version = number, error = %e, "secrets.retire_failed");
            }
        }
        Ok(())
    }

    /// Take a previous version off the target and revoke it, holding its row locked so a
    /// rotation and a worker (or two workers) never retire it while a new value is set.
    /// `Ok` once the credential is off the target, even if its sessions are left for a retry.
    pub(super) async fn retire(
        &self,
        secret: &ManagedSecret,
        number: i32,
    ) -> Result<(), StepError> {
        let name = secret.name.as_str();
        let mut tx = self.pool.begin().await?;
        let Some(attempts) = retirement::lock_previous(&mut tx, name, number).await? else {
            return Ok(());
        };
        let row = store::version(&mut *tx, name, number)
            .await?
            .ok_or(StepError::NoPending("retire"))?;
        let previous = self.open(&secret.name, &row)?;
        let current = self.one(secret, VersionState::Current).await?;
        let why = Revocation::Retired {
            current: current.as_ref(),
        };
        let error = match secret.kind.revoke(&previous, why).await {
            Ok(()) => {
                retirement::retired(&mut *tx, name, number, secret.kind.ends_sessions()).await?;
                tx.commit().await?;
                self.recovered(secret, number, attempts);
                return Ok(());
            }
            Err(e) => e,
        };
        let before = match &error {
            KindError::SessionsLive { before, .. } => Some(*before),
            _ => None,
        };
        let text = error.to_string();
        let next_at = self.retry_at(attempts + 1);
        let attempts = retirement::failed(&mut *tx, name, number, &text, next_at, before).await?;
        tx.commit().await?;
        self.retirement_failed(secret, number, attempts, &text, next_at, before.is_some())
            .await;
        match before {
            Some(_) => Ok(()),
            None => Err(error.into()),
        }
    }

    /// Retry ending the sessions of a revoked version (those older than its revocation).
    async fn end_sessions(&self, secret: &ManagedSecret, number: i32) -> Result<(), StepError> {
        let name = secret.name.as_str();
        let mut tx = self.pool.begin().await?;
        let Some((attempts, before)) = retirement::lock_sessions(&mut tx, name, number).await?
        else {
            return Ok(());
        };
        let row = store::version(&mut *tx, name, number)
            .await?
            .ok_or(StepError::NoPending("retire"))?;
        let version = self.open(&secret.name, &row)?;
        match secret.kind.end_sessions(&version, before).await {
            Ok(()) => {
                retirement::retired(&mut *tx, name, number, true).await?;
                tx.commit().await?;
                self.recovered(secret, number, attempts);
            }
            Err(e) => {
                let text = e.to_string();
                let next_at = self.retry_at(attempts + 1);
                let attempts =
                    retirement::failed(&mut *tx, name, number, &text, next_at, None).await?;
                tx.commit().await?;
                self.retirement_failed(secret, number, attempts, &text, next_at, true)
                    .await;
            }
        }
        Ok(())
    }

    fn retry_at(&self, attempt: i32) -> DateTime<Utc> {
        let s = &self.settings;
        let wait = backoff_secs(attempt, s.backoff_base_secs, s.backoff_cap_secs);
        Utc::now() + chrono::Duration::seconds(wait as i64)
    }

    fn recovered(&self, secret: &ManagedSecret, number: i32, attempts: i32) {
        if attempts > 0 {
            tracing::info!(secret = %secret.name, secret.version = number, retire.attempts = attempts + 1, "secrets.retired_after_retries");
        }
    }

    /// Logged every attempt; alerted once, at the first failure, with the grants the
    /// preflight finds missing.
    async fn retirement_failed(
        &self,
        secret: &ManagedSecret,
        number: i32,
        attempt: i32,
        error: &str,
        next_at: DateTime<Utc>,
        revoked: bool,
    ) {
        tracing::warn!(secret = %secret.name, secret.version = number, retire.attempt = attempt, retire.next_at = %next_at, error = %error, "secrets.retire_failed");
        if attempt != 1 {
            return;
        }
        let state = if revoked {
            "The credential is revoked, but the sessions opened with it are still open"
        } else {
            "The previous credential still works"
        };
        let missing = match secret.kind.preflight().await {
            Ok(missing) if !missing.is_empty() => format!("\nMissing: {}", missing.join("; ")),
            _ => String::new(),
        };
        let reply = Reply::html(format!(
            "🔴 Retiring version {number} of <b>{}</b> failed: {}\n{state}. Retried with backoff \
             (next at {}); no further alert. Rotations are not held up.{}",
            escape(secret.name.as_str()),
            escape(error),
            next_at.format("%Y-%m-%d %H:%M:%S UTC"),
            escape(&missing)
        ));
        for chat in &self.settings.alert_chats {
            if let Err(e) = crate::outbox::enqueue(&self.pool, *chat, &reply, "rotation").await {
                tracing::error!(error = %e, secret = %secret.name, "secrets.alert_failed");
            }
        }
    }
}
