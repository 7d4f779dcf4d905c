//! The command table: each command's name, permission, risk class, usage and summary.

use crate::domain::permission::{Permission, RiskClass};

/// What the engine knows about a command before running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    pub name: &'static str,
    pub permission: Permission,
    pub risk: RiskClass,
    pub usage: &'static str,
    pub summary: &'static str,
}

const fn spec(
    name: &'static str,
    permission: Permission,
    risk: RiskClass,
    usage: &'static str,
    summary: &'static str,
) -> CommandSpec {
    CommandSpec {
        name,
        permission,
        risk,
        usage,
        summary,
    }
}

use RiskClass::{Operate, Read, Sensitive};

/// Every command, in menu order. A test walks this table × every role.
pub const SPECS: &[CommandSpec] = &[
    spec(
        "start",
        Permission::HELP,
        Read,
        "/start",
        "introduce yourself to the bot",
    ),
    spec(
        "help",
        Permission::HELP,
        Read,
        "/help",
        "list the commands you may run",
    ),
    spec(
        "whoami",
        Permission::WHOAMI,
        Read,
        "/whoami",
        "show your id, roles and permissions",
    ),
    spec(
        "status",
        Permission::STATUS,
        Read,
        "/status",
        "versions, uptime, components, degraded modes",
    ),
    spec(
        "audit",
        Permission::AUDIT_READ,
        Read,
        "/audit [n|verify|checkpoint]",
        "latest audit rows, verify the chain, or sign its head outside the database",
    ),
    spec(
        "schedules",
        Permission::SCHEDULES_READ,
        Read,
        "/schedules",
        "scheduled commands, their next run and last result",
    ),
    spec(
        "check",
        Permission::CHECKS_RUN,
        Operate,
        "/check [name|all] [json|sarif]",
        "run security checks on the configured targets",
    ),
    spec(
        "findings",
        Permission::FINDINGS_READ,
        Read,
        "/findings",
        "the last check report in full",
    ),
    spec(
        "logins",
        Permission::LOGINS_READ,
        Read,
        "/logins [15m|1h|24h|7d]",
        "failed logins: totals, top IPs and accounts, a chart",
    ),
    spec(
        "alerts",
        Permission::ALERTS_READ,
        Read,
        "/alerts [alert-id]",
        "active login alerts and silences, or one alert",
    ),
    spec(
        "ack",
        Permission::ALERTS_MANAGE,
        Operate,
        "/ack <alert-id>",
        "acknowledge a login alert",
    ),
    spec(
        "silence",
        Permission::ALERTS_MANAGE,
        Operate,
        "/silence <alert-id|rule|key> <duration>",
        "mute an alert's key or a rule, e.g. /silence 17 1h",
    ),
    spec(
        "prune_logins",
        Permission::LOGINS_PRUNE,
        Operate,
        "/prune_logins",
        "delete auth events past the retention period",
    ),
    spec(
        "secrets",
        Permission::SECRETS_READ,
        Read,
        "/secrets",
        "managed secrets: fingerprint, age, next and last rotation",
    ),
    spec(
        "rotate",
        Permission::SECRETS_ROTATE,
        Sensitive,
        "/rotate <secret>",
        "rotate a secret: create, set, test, then promote",
    ),
    spec(
        "rotate_due",
        Permission::SECRETS_ROTATE,
        Operate,
        "/rotate_due",
        "rotate the secrets whose scheduled rotation is due",
    ),
    spec(
        "backup",
        Permission::BACKUPS_RUN,
        Operate,
        "/backup [target]",
        "back up a database now: dump, compress, encrypt, checksum, store",
    ),
    spec(
        "backups",
        Permission::BACKUPS_READ,
        Read,
        "/backups [target]",
        "the backup catalogue: size, checksum, restore-test result",
    ),
    spec(
        "restore_test",
        Permission::BACKUPS_RESTORE_TEST,
        Operate,
        "/restore_test <backup-id|latest>",
        "restore a backup into a scratch database and compare row counts",
    ),
    spec(
        "prune_backups",
        Permission::BACKUPS_PRUNE,
        Operate,
        "/prune_backups",
        "delete backups past their retention (never the newest verified)",
    ),
    spec(
        "outbox",
        Permission::OUTBOX_MANAGE,
        Operate,
        "/outbox [retry [id…]]",
        "dead letters (pushes given up on), or re-send them",
    ),
    spec(
        "users",
        Permission::USERS_READ,
        Read,
        "/users",
        "list users and their roles",
    ),
    spec(
        "grant",
        Permission::USERS_MANAGE,
        Sensitive,
        "/grant <user-id> <role>",
        "give a user a role",
    ),
    spec(
        "revoke",
        Permission::USERS_MANAGE,
        Sensitive,
        "/revoke <user-id> <role>",
        "take a role from a user",
    ),
    spec(
        "approve",
        Permission::APPROVALS_DECIDE,
        Operate,
        "/approve <request-id>",
        "approve another admin's request",
    ),
    spec(
        "deny",
        Permission::APPROVALS_DECIDE,
        Operate,
        "/deny <request-id>",
        "deny another admin's request",
    ),
    spec(
        "totp",
        Permission::TOTP_SELF,
        Operate,
        "/totp [enroll [current code]|confirm <code>]",
        "enrol a TOTP authenticator (private chat)",
    ),
    spec(
        "stepup",
        Permission::TOTP_SELF,
        Operate,
        "/stepup <6-digit code>",
        "answer a TOTP step-up prompt",
    ),
];

pub fn spec_by_name(name: &str) -> Option<&'static CommandSpec> {
    SPECS.iter().find(|s| s.name == name)
}
