//! When a rotation goes wrong: a failed step is retried with backoff or given up; giving
//! up is recorded (`rolling_back`) before the undo — re-deliver the current value, take the
//! pending one off the target — which is resumed and retried until done; alerts go through
//! the outbox. Also the test hook that aborts the process at a step boundary.

use super::*;

impl Rotations {
    /// A step failed: retry later, or give up, undo and alert.
    pub(super) async fn failed(
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
    pub(super) async fn rollback(
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
            // A retried undo starts from the stored error: keep only its original cause, so
            // the text does not grow with every attempt.
            let cause = reason
                .split("; undoing it failed: ")
                .next()
                .unwrap_or(&reason);
            let text = format!("{cause}; undoing it failed: {e}");
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

    /// Testing only (`[rotation] crash_at`): abort the process at a step boundary.
    pub(super) fn crash_hook(&self, step: Step, when: &str) {
        if self.settings.crash_at.as_deref() == Some(&format!("{}:{when}", step.as_str())) {
            eprintln!(
                "opsguard: crash_at {}:{when} (a test hook): aborting",
                step.as_str()
            );
            std::process::abort();
        }
    }
}

/// Another replica finished or abandoned the rotation while this one worked on it.
pub(super) fn lost(rotation: i64, step: Step) -> Outcome {
    Outcome::GaveUp {
        rotation,
        step,
        error: "another replica finished or took over this rotation".into(),
        status: RotationStatus::Failed,
    }
}
