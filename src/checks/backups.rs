//! `backups`: the newest successful backup (older than 26 h is high) and the newest
//! verified restore (older than 8 days is medium), as the backup capability records them.
//! Until it exists, one finding says that nothing is recorded.

use super::Check;
use crate::domain::finding::{Finding, Severity};
use async_trait::async_trait;
use sqlx::PgPool;

pub struct Backups {
    /// Where backups will be catalogued (the opsguard database).
    _pool: PgPool,
}

impl Backups {
    pub fn new(pool: PgPool) -> Self {
        Backups { _pool: pool }
    }
}

pub const TARGET: &str = "opsguard backup catalogue";

#[async_trait]
impl Check for Backups {
    fn name(&self) -> &'static str {
        "backups"
    }

    fn targets(&self) -> Vec<String> {
        vec![TARGET.into()]
    }

    async fn check(&self, target: &str) -> Result<Vec<Finding>, String> {
        Ok(vec![Finding {
            check: self.name().into(),
            target: target.into(),
            severity: Severity::Medium,
            title: "No backups recorded".into(),
            evidence: "opsguard has no record of any backup or restore test".into(),
            remediation: "Schedule nightly backups (/backup) and a weekly restore test so that a successful backup is never older than 26 hours and a verified restore never older than 8 days.".into(),
            reference: "OWASP Database Security Cheat Sheet: https://cheatsheetseries.owasp.org/cheatsheets/Database_Security_Cheat_Sheet.html".into(),
        }])
    }
}
