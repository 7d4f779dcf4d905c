//! The design's default role matrix written out as data (every command × every role,
//! allowed or denied: DESIGN.md "Default roles" and the seeding migrations), checked
//! against the permission each command requires; and the literal names permissions and
//! risk classes print as.

use super::*;
use crate::domain::command::SPECS;

/// The default roles' permissions as the design states them (viewer: read; operator:
/// viewer + run checks, trigger backups, ack/silence alerts; admin: everything).
const VIEWER: &[&str] = &[
    "help",
    "whoami",
    "status",
    "totp.self",
    "findings.read",
    "logins.read",
    "alerts.read",
    "backups.read",
    "secrets.read",
    "schedules.read",
];
const OPERATOR_ADDS: &[&str] = &["checks.run", "backups.run", "alerts.manage"];
const ADMIN_ADDS: &[&str] = &[
    "secrets.rotate",
    "backups.restore_test",
    "backups.prune",
    "logins.prune",
    "users.read",
    "users.manage",
    "audit.read",
    "approvals.decide",
    "outbox.manage",
];

fn holds(role: &str, permission: &str) -> bool {
    let viewer = VIEWER.contains(&permission);
    let operator = viewer || OPERATOR_ADDS.contains(&permission);
    match role {
        "viewer" => viewer,
        "operator" => operator,
        "admin" => operator || ADMIN_ADDS.contains(&permission),
        other => panic!("no default role {other}"),
    }
}

/// (command, viewer, operator, admin): whether each default role may run it.
#[rustfmt::skip]
const MATRIX: &[(&str, bool, bool, bool)] = &[
    ("start",         true,  true,  true),
    ("help",          true,  true,  true),
    ("whoami",        true,  true,  true),
    ("status",        true,  true,  true),
    ("audit",         false, false, true),
    ("schedules",     true,  true,  true),
    ("check",         false, true,  true),
    ("findings",      true,  true,  true),
    ("logins",        true,  true,  true),
    ("alerts",        true,  true,  true),
    ("ack",           false, true,  true),
    ("silence",       false, true,  true),
    ("prune_logins",  false, false, true),
    ("secrets",       true,  true,  true),
    ("rotate",        false, false, true),
    ("rotate_due",    false, false, true),
    ("backup",        false, true,  true),
    ("backups",       true,  true,  true),
    ("restore_test",  false, false, true),
    ("prune_backups", false, false, true),
    ("outbox",        false, false, true),
    ("users",         false, false, true),
    ("grant",         false, false, true),
    ("revoke",        false, false, true),
    ("approve",       false, false, true),
    ("deny",          false, false, true),
    ("totp",          true,  true,  true),
    ("stepup",        true,  true,  true),
];

#[test]
fn every_command_for_every_default_role_is_decided_as_the_design_says() {
    let names: Vec<&str> = SPECS.iter().map(|s| s.name).collect();
    let listed: Vec<&str> = MATRIX.iter().map(|row| row.0).collect();
    assert_eq!(
        names, listed,
        "the matrix lists every command, in menu order"
    );
    for (spec, &(name, viewer, operator, admin)) in SPECS.iter().zip(MATRIX) {
        let permission = spec.permission.as_str();
        for (role, want) in [("viewer", viewer), ("operator", operator), ("admin", admin)] {
            assert_eq!(
                holds(role, permission),
                want,
                "{role} /{name} ({permission})"
            );
        }
    }
}

#[test]
fn permissions_print_their_stored_names() {
    #[rustfmt::skip]
    let names = [
        (Permission::HELP, "help"), (Permission::WHOAMI, "whoami"),
        (Permission::STATUS, "status"), (Permission::TOTP_SELF, "totp.self"),
        (Permission::AUDIT_READ, "audit.read"), (Permission::USERS_READ, "users.read"),
        (Permission::USERS_MANAGE, "users.manage"),
        (Permission::APPROVALS_DECIDE, "approvals.decide"),
        (Permission::SCHEDULES_READ, "schedules.read"), (Permission::CHECKS_RUN, "checks.run"),
        (Permission::FINDINGS_READ, "findings.read"), (Permission::LOGINS_READ, "logins.read"),
        (Permission::ALERTS_READ, "alerts.read"), (Permission::ALERTS_MANAGE, "alerts.manage"),
        (Permission::LOGINS_PRUNE, "logins.prune"), (Permission::SECRETS_READ, "secrets.read"),
        (Permission::SECRETS_ROTATE, "secrets.rotate"), (Permission::BACKUPS_READ, "backups.read"),
        (Permission::BACKUPS_RUN, "backups.run"),
        (Permission::BACKUPS_RESTORE_TEST, "backups.restore_test"),
        (Permission::BACKUPS_PRUNE, "backups.prune"),
        (Permission::OUTBOX_MANAGE, "outbox.manage"),
    ];
    for (permission, name) in names {
        assert_eq!(permission.as_str(), name);
        assert_eq!(permission.to_string(), name);
        assert_eq!(
            format!("missing permission {permission}"),
            format!("missing permission {name}")
        );
    }
}

#[test]
fn risk_classes_print_and_serialize_in_lowercase() {
    for (risk, name) in [
        (RiskClass::Read, "read"),
        (RiskClass::Operate, "operate"),
        (RiskClass::Sensitive, "sensitive"),
    ] {
        assert_eq!(risk.as_str(), name);
        assert_eq!(serde_json::to_string(&risk).unwrap(), format!("\"{name}\""));
    }
}
