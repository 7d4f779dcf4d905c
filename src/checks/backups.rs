//! The `backups` check reads the backup catalogue: per target, no good backup or one older
//! than 26 hours, a last backup that failed, no passing restore test or none in 8 days, a
//! last restore test that failed — and, with no target configured, a reminder to add one.

use super::Check;
use crate::backups::catalogue;
use crate::domain::finding::{Finding, Severity};
use async_trait::async_trait;
use chrono::{Duration, Utc};
use sqlx::PgPool;

const CATALOGUE: &str = "opsguard backup catalogue";
const REFERENCE: &str = "OWASP Database Security Cheat Sheet: https://cheatsheetseries.owasp.org/cheatsheets/Database_Security_Cheat_Sheet.html";
const MAX_BACKUP_AGE_HOURS: i64 = 26;
const MAX_VERIFIED_AGE_DAYS: i64 = 8;

pub struct BackupsCheck {
    pool: PgPool,
    targets: Vec<String>,
}

impl BackupsCheck {
    pub fn new(pool: &PgPool, targets: Vec<String>) -> Self {
        BackupsCheck {
            pool: pool.clone(),
            targets,
        }
    }

    async fn findings_of(&self, target: &str) -> Result<Vec<Finding>, sqlx::Error> {
        let shown = format!("{CATALOGUE}: {target}");
        let finding = |severity, title: &str, evidence: String, remediation: &str| {
            Finding::new(
                "backups",
                &shown,
                severity,
                title,
                evidence,
                remediation,
                REFERENCE,
            )
        };
        let mut found = Vec::new();
        let now = Utc::now();
        let recent = catalogue::list(&self.pool, Some(target), 1).await?;
        if let Some(last) = recent.first().filter(|b| b.status == "failed") {
            found.push(finding(
                Severity::High,
                "Last backup failed",
                format!("backup #{} failed: {}", last.id, last.error.as_deref().unwrap_or("")),
                "Fix the cause shown and run /backup; failures are also alerted to [backups] alert_chats.",
            ));
        }
        let good = catalogue::good_of(&self.pool, target).await?;
        match good.first() {
            None => found.push(finding(
                Severity::High,
                "No backups recorded",
                format!("{target} has no good backup in the catalogue"),
                "Run /backup now and give the target a nightly schedule in [[backups.targets]].",
            )),
            Some(b) if now - b.finished_at.unwrap_or(b.started_at) > Duration::hours(MAX_BACKUP_AGE_HOURS) => {
                found.push(finding(
                    Severity::High,
                    "Newest backup is stale",
                    format!(
                        "the newest good backup (#{}) finished {} hours ago",
                        b.id,
                        (now - b.finished_at.unwrap_or(b.started_at)).num_hours()
                    ),
                    "Check the target's schedule and the worker; a good backup should never be older than 26 hours.",
                ))
            }
            Some(_) => {}
        }
        let last_test = good
            .iter()
            .filter(|b| b.verified_at.is_some())
            .max_by_key(|b| b.verified_at);
        if let Some(b) = last_test.filter(|b| b.verified_ok == Some(false)) {
            found.push(finding(
                Severity::High,
                "Last restore test failed",
                format!("restore test of backup #{}: {}", b.id, b.verify_error.as_deref().unwrap_or("")),
                "Find out why the backup does not restore (the reason is shown), then run /restore_test again.",
            ));
        }
        let verified = good
            .iter()
            .filter(|b| b.verified_ok == Some(true))
            .filter_map(|b| b.verified_at)
            .max();
        match verified {
            None if !good.is_empty() => found.push(finding(
                Severity::Medium,
                "Backups never restore-tested",
                format!("no backup of {target} has passed a restore test"),
                "Run /restore_test latest and keep the weekly restore-test schedule enabled.",
            )),
            Some(at) if now - at > Duration::days(MAX_VERIFIED_AGE_DAYS) => found.push(finding(
                Severity::Medium,
                "No recent restore test",
                format!(
                    "the last passing restore test was {} days ago",
                    (now - at).num_days()
                ),
                "Run /restore_test latest; a verified restore should never be older than 8 days.",
            )),
            _ => {}
        }
        Ok(found)
    }
}

#[async_trait]
impl Check for BackupsCheck {
    fn name(&self) -> &'static str {
        "backups"
    }

    fn targets(&self) -> Vec<String> {
        if self.targets.is_empty() {
            vec![CATALOGUE.into()]
        } else {
            self.targets.clone()
        }
    }

    async fn check(&self, target: &str) -> Result<Vec<Finding>, String> {
        if self.targets.is_empty() {
            return Ok(vec![Finding::new(
                "backups",
                CATALOGUE,
                Severity::Medium,
                "No backups recorded",
                "no [[backups.targets]] are configured, so opsguard backs nothing up",
                "Declare the platform's databases in [[backups.targets]] with a nightly schedule; a weekly restore test runs by default.",
                REFERENCE,
            )]);
        }
        self.findings_of(target)
            .await
            .map_err(|e| format!("the catalogue could not be read: {e}"))
    }
}
