//! Runs checks: every target of every selected check concurrently, each under its own
//! timeout, so a hanging target costs no more than the timeout.

use super::Check;
use crate::domain::finding::{Finding, Severity};
use futures::future::join_all;
use std::sync::Arc;
use std::time::Duration;

/// The findings of one run, worst first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// (check, target) pairs that were checked.
    pub checked: Vec<(String, String)>,
}

pub async fn run(checks: &[Arc<dyn Check>], timeout: Duration) -> Report {
    let jobs = checks.iter().flat_map(|check| {
        check.targets().into_iter().map(move |target| {
            let check = check.clone();
            async move {
                let found = match tokio::time::timeout(timeout, check.check(&target)).await {
                    Ok(Ok(findings)) => findings,
                    Ok(Err(why)) => vec![unreachable(check.name(), &target, &why)],
                    Err(_) => vec![unreachable(
                        check.name(),
                        &target,
                        &format!("no answer within {} ms", timeout.as_millis()),
                    )],
                };
                (check.name().to_string(), target, found)
            }
        })
    });
    let mut report = Report::default();
    for (check, target, found) in join_all(jobs).await {
        report.checked.push((check, target));
        report.findings.extend(found);
    }
    report.findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.key().cmp(&b.key()))
    });
    report
}

fn unreachable(check: &str, target: &str, why: &str) -> Finding {
    Finding::new(
        check,
        target,
        Severity::High,
        "Target unreachable",
        why,
        "Check that the target is up and reachable from opsguard, and that the configured address is right.",
        "opsguard",
    )
}
