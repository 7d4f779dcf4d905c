//! Permissions commands require and the risk classes that decide their gates and limits.
//! Which role holds which permission is data (`role_permissions`), not code.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A permission name, as stored in `role_permissions.permission`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Permission(pub &'static str);

impl Permission {
    pub const HELP: Permission = Permission("help");
    pub const WHOAMI: Permission = Permission("whoami");
    pub const STATUS: Permission = Permission("status");
    pub const TOTP_SELF: Permission = Permission("totp.self");
    pub const AUDIT_READ: Permission = Permission("audit.read");
    pub const USERS_READ: Permission = Permission("users.read");
    pub const USERS_MANAGE: Permission = Permission("users.manage");
    pub const APPROVALS_DECIDE: Permission = Permission("approvals.decide");
    pub const SCHEDULES_READ: Permission = Permission("schedules.read");
    pub const CHECKS_RUN: Permission = Permission("checks.run");
    pub const FINDINGS_READ: Permission = Permission("findings.read");
    pub const LOGINS_READ: Permission = Permission("logins.read");
    pub const ALERTS_READ: Permission = Permission("alerts.read");
    pub const ALERTS_MANAGE: Permission = Permission("alerts.manage");
    pub const LOGINS_PRUNE: Permission = Permission("logins.prune");
    pub const SECRETS_READ: Permission = Permission("secrets.read");
    pub const SECRETS_ROTATE: Permission = Permission("secrets.rotate");
    pub const BACKUPS_READ: Permission = Permission("backups.read");
    pub const BACKUPS_RUN: Permission = Permission("backups.run");
    pub const BACKUPS_RESTORE_TEST: Permission = Permission("backups.restore_test");
    pub const BACKUPS_PRUNE: Permission = Permission("backups.prune");
    pub const OUTBOX_MANAGE: Permission = Permission("outbox.manage");

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Risk class of a command: decides its rate limit bucket and its default gates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RiskClass {
    Read,
    Operate,
    Sensitive,
}

impl RiskClass {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskClass::Read => "read",
            RiskClass::Operate => "operate",
            RiskClass::Sensitive => "sensitive",
        }
    }
}

#[cfg(test)]
#[path = "permission_tests.rs"]
mod tests;
