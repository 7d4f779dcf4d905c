//! Gates in front of sensitive commands: which ones a command needs (from policy and, for
//! role changes, from what the role grants and whom it touches), and the replies that ask
//! for them. The pending actions themselves live in `storage::pending`.

use crate::config::{GatePolicy, Settings};
use crate::domain::command::{Command, SPECS};
use crate::domain::html::escape;
use crate::domain::{ActionId, Button, Reply, RiskClass};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GatePlan {
    pub confirm: bool,
    pub stepup: bool,
    pub approval: bool,
}

/// What the gate of a role change depends on, read from the store before planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoleFacts {
    /// The role holds a permission of a sensitive command (see [`sensitive_permissions`]).
    pub role_sensitive: bool,
    /// The target is someone else who holds `users.manage` (another admin).
    pub target_other_admin: bool,
}

/// The permissions of sensitive commands: a role holding one of them is a sensitive role.
pub fn sensitive_permissions() -> Vec<&'static str> {
    let mut perms: Vec<&'static str> = SPECS
        .iter()
        .filter(|s| s.risk == RiskClass::Sensitive)
        .map(|s| s.permission.as_str())
        .collect();
    perms.sort_unstable();
    perms.dedup();
    perms
}

/// Whether a role change needs a second admin. Gates follow permissions, not role names:
/// granting a role that holds a sensitive permission, or revoking any role from another
/// admin, needs one. `approval_for_roles` names roles that need one on top of that.
pub fn role_change_needs_approval(
    policy: &GatePolicy,
    grant: bool,
    role: &str,
    facts: &RoleFacts,
) -> bool {
    let named = policy.approval_for_roles.iter().any(|r| r == role);
    let by_permissions = if grant {
        facts.role_sensitive
    } else {
        facts.target_other_admin
    };
    named || by_permissions
}

/// The gates policy puts in front of this exact command; `facts` matter only for `/grant`
/// and `/revoke`.
pub fn plan(settings: &Settings, command: &Command, facts: &RoleFacts) -> GatePlan {
    if command.spec().risk != RiskClass::Sensitive {
        return GatePlan::default();
    }
    if let Command::Rotate(name) = command {
        // Each secret carries its own policy; an unknown one is answered without gates.
        return match settings.secrets.iter().find(|s| s.name == name.as_str()) {
            Some(secret) => GatePlan {
                confirm: true,
                stepup: secret.policy.totp,
                approval: secret.needs_approval(),
            },
            None => GatePlan::default(),
        };
    }
    let policy = settings.gate_policy(command.spec().name);
    let role_needs_approval = match command {
        Command::Grant(c) => role_change_needs_approval(&policy, true, c.role.as_str(), facts),
        Command::Revoke(c) => role_change_needs_approval(&policy, false, c.role.as_str(), facts),
        _ => false,
    };
    GatePlan {
        confirm: policy.confirm,
        stepup: policy.stepup,
        approval: policy.approval || role_needs_approval,
    }
}

pub const CONFIRM_PREFIX: &str = "c:";
pub const CANCEL_PREFIX: &str = "x:";
/// A chat-bound button on a pushed message (`storage::pending::create_for_chat`).
pub const CHAT_ACTION_PREFIX: &str = "a:";

pub fn confirm_prompt(command: &Command, id: &ActionId, ttl_secs: i64, more: &GatePlan) -> Reply {
    let mut then = String::new();
    if more.stepup {
        then.push_str("\nThen you will be asked for a TOTP code.");
    }
    if more.approval {
        then.push_str("\nThen a second admin must approve it.");
    }
    Reply::html(format!(
        "⚠️ Confirm <code>{}</code>?\nThis button expires in {} s.{then}",
        escape(&command.canonical()),
        ttl_secs
    ))
    .with_buttons(vec![
        Button {
            label: "✅ Confirm".into(),
            data: format!("{CONFIRM_PREFIX}{id}"),
        },
        Button {
            label: "✖ Cancel".into(),
            data: format!("{CANCEL_PREFIX}{id}"),
        },
    ])
}

pub fn stepup_prompt(command: &Command, ttl_secs: i64) -> Reply {
    Reply::html(format!(
        "🔐 <code>{}</code> needs a TOTP code.\nSend <code>/stepup 123456</code> with the code from your authenticator within {} min.",
        escape(&command.canonical()),
        (ttl_secs / 60).max(1)
    ))
}

pub fn approval_prompt(command: &Command, id: &ActionId, ttl_secs: i64) -> Reply {
    Reply::html(format!(
        "🧑‍🤝‍🧑 <code>{}</code> needs a second admin.\nRequest <code>{id}</code>: another admin sends <code>/approve {id}</code> (or <code>/deny {id}</code>) within {} min.",
        escape(&command.canonical()),
        (ttl_secs / 60).max(1)
    ))
}

/// A callback's data: confirm or cancel of an action.
pub fn parse_callback(data: &str) -> Option<(bool, ActionId)> {
    let (confirm, raw) = if let Some(raw) = data.strip_prefix(CONFIRM_PREFIX) {
        (true, raw)
    } else {
        (false, data.strip_prefix(CANCEL_PREFIX)?)
    };
    ActionId::parse(raw).ok().map(|id| (confirm, id))
}

#[cfg(test)]
mod tests;
