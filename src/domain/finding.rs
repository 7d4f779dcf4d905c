//! Findings: what a security check reports about one target, and how bad it is.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Ordered from least to most severe, so `max()` is the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn icon(self) -> &'static str {
        match self {
            Severity::Info => "ℹ️",
            Severity::Low => "🔹",
            Severity::Medium => "🟠",
            Severity::High => "🔴",
            Severity::Critical => "🚨",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem (or fact) a check found on one target. Text fields hold raw, untrusted
/// text (header values, server settings): escape them when rendering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The check's name, e.g. `http_headers`.
    pub check: String,
    /// The configured target, e.g. `https://app.example.com` or `db.example.com:5432`.
    pub target: String,
    pub severity: Severity,
    pub title: String,
    /// What was observed (a header value, a setting), cut short by the check.
    pub evidence: String,
    pub remediation: String,
    /// Where the rule comes from (Mozilla HTTP Observatory test, CIS item, OWASP page).
    pub reference: String,
}

/// How much observed text a finding keeps.
pub const EVIDENCE_MAX_CHARS: usize = 300;

impl Finding {
    /// A finding, its evidence cut to `EVIDENCE_MAX_CHARS`.
    pub fn new(
        check: &str,
        target: &str,
        severity: Severity,
        title: &str,
        evidence: impl AsRef<str>,
        remediation: &str,
        reference: &str,
    ) -> Self {
        Finding {
            check: check.into(),
            target: target.into(),
            severity,
            title: title.into(),
            evidence: evidence.as_ref().chars().take(EVIDENCE_MAX_CHARS).collect(),
            remediation: remediation.into(),
            reference: reference.into(),
        }
    }

    /// The identity used to compare runs: the same problem on the same target.
    pub fn key(&self) -> (String, String, String) {
        (self.check.clone(), self.target.clone(), self.title.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_order_from_info_to_critical() {
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Info);
        assert_eq!(Severity::ALL.iter().max(), Some(&Severity::Critical));
    }
}
