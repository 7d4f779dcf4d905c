//! `secrets`: the age (against the 90-day policy) and strength of managed secrets, as the
//! secret-rotation capability records them. Until it exists, one finding says that
//! nothing is recorded.

use super::Check;
use crate::domain::finding::{Finding, Severity};
use async_trait::async_trait;
use sqlx::PgPool;

pub struct Secrets {
    /// Where rotations will be recorded (the opsguard database).
    _pool: PgPool,
}

impl Secrets {
    pub fn new(pool: PgPool) -> Self {
        Secrets { _pool: pool }
    }
}

pub const TARGET: &str = "opsguard secrets vault";

#[async_trait]
impl Check for Secrets {
    fn name(&self) -> &'static str {
        "secrets"
    }

    fn targets(&self) -> Vec<String> {
        vec![TARGET.into()]
    }

    async fn check(&self, target: &str) -> Result<Vec<Finding>, String> {
        Ok(vec![Finding {
            check: self.name().into(),
            target: target.into(),
            severity: Severity::Medium,
            title: "No secret rotations recorded".into(),
            evidence: "opsguard has no record of any managed secret or of its last rotation".into(),
            remediation: "Register the platform's secrets (database roles, Redis ACL users, JWT keys, API keys) with opsguard and rotate each at least every 90 days.".into(),
            reference: "OWASP Secrets Management Cheat Sheet: https://cheatsheetseries.owasp.org/cheatsheets/Secrets_Management_Cheat_Sheet.html".into(),
        }])
    }
}
