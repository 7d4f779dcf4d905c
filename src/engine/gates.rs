//! Gates in front of sensitive commands: which ones a command needs (from policy), and the
//! replies that ask for them. The pending actions themselves live in `storage::pending`.

use crate::config::Settings;
use crate::domain::command::Command;
use crate::domain::html::escape;
use crate::domain::{ActionId, Button, Reply, RiskClass};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GatePlan {
    pub confirm: bool,
    pub stepup: bool,
    pub approval: bool,
}

/// The gates policy puts in front of this exact command.
pub fn plan(settings: &Settings, command: &Command) -> GatePlan {
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
        Command::Grant(c) | Command::Revoke(c) => policy
            .approval_for_roles
            .iter()
            .any(|r| r == c.role.as_str()),
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
