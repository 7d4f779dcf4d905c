//! The `secrets` check reads the vault: a managed secret never rotated, a current version
//! older than its rotation period (90 days when it has none), a last rotation that failed or
//! is still retrying, a secret with no scheduled rotation — and, with nothing managed, a
//! reminder to register the platform's secrets. Values are opsguard's own 32 random bytes,
//! so strength is a matter of having rotated; only fingerprints are ever read.

use super::Check;
use crate::config::SecretSettings;
use crate::domain::finding::{Finding, Severity};
use crate::secrets::{rotation_rows, store};
use async_trait::async_trait;
use chrono::Utc;
use sqlx::PgPool;

const TARGET: &str = "opsguard secrets vault";
const REFERENCE: &str = "OWASP Secrets Management Cheat Sheet: https://cheatsheetseries.owasp.org/cheatsheets/Secrets_Management_Cheat_Sheet.html";
/// The age past which a secret is a finding even when it has no rotation period.
const MAX_AGE_DAYS: i64 = 90;

pub struct SecretsCheck {
    pool: PgPool,
    secrets: Vec<SecretSettings>,
}

impl SecretsCheck {
    pub fn new(pool: &PgPool, secrets: &[SecretSettings]) -> Self {
        SecretsCheck {
            pool: pool.clone(),
            secrets: secrets.to_vec(),
        }
    }

    async fn findings_of(&self, s: &SecretSettings) -> Result<Vec<Finding>, sqlx::Error> {
        let finding = |severity, title: &str, evidence: String, remediation: &str| {
            let target = format!("{TARGET}: {}", s.name);
            Finding::new(
                "secrets",
                &target,
                severity,
                title,
                evidence,
                remediation,
                REFERENCE,
            )
        };
        let mut found = Vec::new();
        let period = s.scheduled_every_days();
        let current = store::versions(&self.pool, &s.name, &["current"]).await?;
        match current.first() {
            None => found.push(finding(
                Severity::High,
                "Managed secret never rotated",
                format!(
                    "{} ({}) has no current version in the vault",
                    s.name, s.kind
                ),
                "Run /rotate for it, so opsguard holds, delivers and can rotate its value.",
            )),
            Some(v) => {
                let since = v.promoted_at.unwrap_or(v.created_at);
                let age = (Utc::now() - since).num_days();
                let limit = period.map_or(MAX_AGE_DAYS, i64::from);
                if age >= limit {
                    found.push(finding(
                        Severity::High,
                        "Secret older than its rotation period",
                        format!("{} version {} (sha256:{}) is {age} days old; the limit is {limit} days", s.name, v.version, v.fingerprint),
                        "Rotate it now (/rotate), and let /rotate_due run on a schedule.",
                    ));
                }
            }
        }
        if let Some(last) = rotation_rows::latest(&self.pool, &s.name).await? {
            let status = last.status();
            if matches!(status.as_str(), "failed" | "rolled_back" | "retrying") {
                found.push(finding(
                    Severity::Medium,
                    "Last rotation did not succeed",
                    format!(
                        "rotation #{} of {} is {} at step {}: {}",
                        last.id,
                        s.name,
                        status.as_str(),
                        last.step,
                        last.error.clone().unwrap_or_default()
                    ),
                    "Fix the cause shown (target reachable, sink writable), then /rotate again.",
                ));
            }
        }
        if period.is_none() {
            found.push(finding(
                Severity::Low,
                "Secret has no scheduled rotation",
                format!("{} is rotated only by hand (policy: scheduled = false or rotate_every_days = 0)", s.name),
                "Set policy.rotate_every_days (90 by default) so /rotate_due rotates it.",
            ));
        }
        Ok(found)
    }
}

#[async_trait]
impl Check for SecretsCheck {
    fn name(&self) -> &'static str {
        "secrets"
    }

    fn targets(&self) -> Vec<String> {
        vec![TARGET.into()]
    }

    async fn check(&self, target: &str) -> Result<Vec<Finding>, String> {
        if self.secrets.is_empty() {
            return Ok(vec![Finding::new(
                "secrets",
                target,
                Severity::Medium,
                "No managed secrets",
                "opsguard manages no secret: nothing records when the platform's credentials were last rotated",
                "Declare the platform's secrets (database roles, Redis ACL users, JWT keys, API keys) in [[secrets]] and rotate each at least every 90 days.",
                REFERENCE,
            )]);
        }
        let mut all = Vec::new();
        for s in &self.secrets {
            all.extend(
                self.findings_of(s)
                    .await
                    .map_err(|e| format!("cannot read the vault: {e}"))?,
            );
        }
        Ok(all)
    }
}
