//! `backups` before the backup capability exists: it reports one finding saying nothing is
//! recorded (what issue 3 asks for until then). When the capability lands, its check
//! replaces this entry and reads what it records.

use super::Check;
use crate::domain::finding::{Finding, Severity};
use async_trait::async_trait;

/// A check whose capability records nothing yet.
pub struct Unrecorded {
    name: &'static str,
    target: &'static str,
    title: &'static str,
    evidence: &'static str,
    remediation: &'static str,
    reference: &'static str,
}

/// The newest successful backup (older than 26 h is high) and verified restore (older than
/// 8 days is medium), as the backup capability will record them.
pub const BACKUPS: Unrecorded = Unrecorded {
    name: "backups",
    target: "opsguard backup catalogue",
    title: "No backups recorded",
    evidence: "opsguard has no record of any backup or restore test",
    remediation: "Schedule nightly backups (/backup) and a weekly restore test so that a successful backup is never older than 26 hours and a verified restore never older than 8 days.",
    reference: "OWASP Database Security Cheat Sheet: https://cheatsheetseries.owasp.org/cheatsheets/Database_Security_Cheat_Sheet.html",
};

#[async_trait]
impl Check for Unrecorded {
    fn name(&self) -> &'static str {
        self.name
    }

    fn targets(&self) -> Vec<String> {
        vec![self.target.into()]
    }

    async fn check(&self, target: &str) -> Result<Vec<Finding>, String> {
        Ok(vec![Finding::new(
            self.name,
            target,
            Severity::Medium,
            self.title,
            self.evidence,
            self.remediation,
            self.reference,
        )])
    }
}
