//! Secret rotation as data: secret names, version states (AWS Secrets Manager's staging
//! labels), the four steps and a rotation's status. Pure: what storage and the runner
//! record, and the order they must follow.

use std::fmt;

/// Whether `raw` is a name of the form secrets and backup targets share:
/// `[a-z0-9][a-z0-9_-]{0,47}`.
pub fn is_slug(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= 48
        && raw.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// A managed secret's name: `[a-z0-9][a-z0-9_-]{0,47}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretName(String);

impl SecretName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if is_slug(raw) {
            Ok(SecretName(raw.to_string()))
        } else {
            Err(
                "a secret name is 1–48 of a-z, 0-9, _ and -, starting with a letter or digit"
                    .into(),
            )
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionState {
    /// Made by `create`; being set and tested. Not yet delivered to anyone.
    Pending,
    /// What services should use.
    Current,
    /// The one before: still works until its grace period ends.
    Previous,
    /// Removed from the target (or never promoted).
    Revoked,
}

impl VersionState {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionState::Pending => "pending",
            VersionState::Current => "current",
            VersionState::Previous => "previous",
            VersionState::Revoked => "revoked",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending" => VersionState::Pending,
            "current" => VersionState::Current,
            "previous" => VersionState::Previous,
            "revoked" => VersionState::Revoked,
            _ => return None,
        })
    }
}

/// The four steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// A new value is generated and stored as the pending version.
    Create,
    /// The pending value is applied to the target beside the current one.
    Set,
    /// The target accepts the pending value.
    Test,
    /// The value is delivered to the sinks; pending becomes current, current previous.
    Finish,
}

impl Step {
    pub const ALL: [Step; 4] = [Step::Create, Step::Set, Step::Test, Step::Finish];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Create => "create",
            Step::Set => "set",
            Step::Test => "test",
            Step::Finish => "finish",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        Step::ALL.into_iter().find(|s| s.as_str() == raw)
    }
    pub fn next(self) -> Option<Step> {
        match self {
            Step::Create => Some(Step::Set),
            Step::Set => Some(Step::Test),
            Step::Test => Some(Step::Finish),
            Step::Finish => None,
        }
    }
}

/// A rotation's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationStatus {
    Running,
    /// A step failed; it is tried again after a backoff.
    Retrying,
    /// Giving up: the current version is re-delivered and the pending one taken off the
    /// target. Resumed after a crash, retried until done.
    RollingBack,
    Succeeded,
    /// Gave up; nothing had been changed that needed undoing.
    Failed,
    /// Gave up and undid what `set` had applied; the old credential stays current.
    RolledBack,
}

impl RotationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RotationStatus::Running => "running",
            RotationStatus::Retrying => "retrying",
            RotationStatus::RollingBack => "rolling_back",
            RotationStatus::Succeeded => "succeeded",
            RotationStatus::Failed => "failed",
            RotationStatus::RolledBack => "rolled_back",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "running" => RotationStatus::Running,
            "retrying" => RotationStatus::Retrying,
            "rolling_back" => RotationStatus::RollingBack,
            "succeeded" => RotationStatus::Succeeded,
            "failed" => RotationStatus::Failed,
            "rolled_back" => RotationStatus::RolledBack,
            _ => return None,
        })
    }
    pub fn is_active(self) -> bool {
        matches!(
            self,
            RotationStatus::Running | RotationStatus::Retrying | RotationStatus::RollingBack
        )
    }
}

/// Seconds to wait after the `attempt`-th failure: base · 2^(attempt−1), at most `cap`.
pub fn backoff_secs(attempt: i32, base: u64, cap: u64) -> u64 {
    let shift = attempt.clamp(1, 32) as u32 - 1;
    base.saturating_mul(1u64 << shift.min(31)).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(SecretName::parse("app-db").is_ok());
        assert!(SecretName::parse("app_db2").is_ok());
        for bad in ["", "App", "-x", "a b", "a;drop", &"x".repeat(49)] {
            assert!(SecretName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn steps_run_in_order_and_round_trip() {
        let mut step = Some(Step::Create);
        let mut seen = Vec::new();
        while let Some(s) = step {
            assert_eq!(Step::parse(s.as_str()), Some(s));
            seen.push(s);
            step = s.next();
        }
        assert_eq!(seen, Step::ALL);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff_secs(1, 30, 1800), 30);
        assert_eq!(backoff_secs(3, 30, 1800), 120);
        assert_eq!(backoff_secs(30, 30, 1800), 1800);
    }
}
