//! Fast tests of the gate decisions (no database): `plan` for every kind of command and
//! policy, and the role-change rule as a full truth table.

use super::*;
use crate::config::{SecretSettings, Settings};
use std::collections::HashMap;

fn settings() -> Settings {
    let env: HashMap<String, String> =
        HashMap::from([("OPSGUARD_SYSTEM_CONFIG".to_string(), String::new())]);
    Settings::load_with(&env).expect("the built-in defaults load")
}

fn cmd(text: &str) -> Command {
    Command::parse(text).unwrap()
}

const NONE: RoleFacts = RoleFacts {
    role_sensitive: false,
    target_other_admin: false,
};
const SENSITIVE_ROLE: RoleFacts = RoleFacts {
    role_sensitive: true,
    target_other_admin: false,
};
const OTHER_ADMIN: RoleFacts = RoleFacts {
    role_sensitive: false,
    target_other_admin: true,
};

fn gates(confirm: bool, stepup: bool, approval: bool) -> GatePlan {
    GatePlan {
        confirm,
        stepup,
        approval,
    }
}

#[test]
fn read_and_operate_commands_pass_without_gates_whatever_the_facts() {
    let s = settings();
    for text in [
        "/whoami",
        "/status",
        "/check all",
        "/totp enroll",
        "/findings",
        "/backups",
    ] {
        assert_eq!(
            plan(&s, &cmd(text), &SENSITIVE_ROLE),
            GatePlan::default(),
            "{text}"
        );
    }
}

#[test]
fn a_grant_of_a_plain_role_asks_for_confirmation_only() {
    let s = settings();
    let want = gates(true, false, false);
    assert_eq!(plan(&s, &cmd("/grant 7 operator"), &NONE), want);
    // A grant of a plain role to another admin is no escalation.
    assert_eq!(plan(&s, &cmd("/grant 7 operator"), &OTHER_ADMIN), want);
    assert_eq!(plan(&s, &cmd("/revoke 7 operator"), &NONE), want);
    // Revoking a sensitive role from someone who is not an admin is not stripping an admin.
    assert_eq!(plan(&s, &cmd("/revoke 7 rotator"), &SENSITIVE_ROLE), want);
}

#[test]
fn permissions_not_names_call_for_a_second_admin() {
    let mut s = settings();
    s.gates
        .commands
        .get_mut("grant")
        .unwrap()
        .approval_for_roles
        .clear();
    let want = gates(true, false, true);
    assert_eq!(plan(&s, &cmd("/grant 7 rotator"), &SENSITIVE_ROLE), want);
    assert_eq!(plan(&s, &cmd("/grant 7 admin"), &SENSITIVE_ROLE), want);
    assert_eq!(plan(&s, &cmd("/revoke 43 viewer"), &OTHER_ADMIN), want);
    assert!(!plan(&s, &cmd("/grant 7 admin"), &NONE).approval);
}

#[test]
fn approval_for_roles_still_adds_a_second_admin_by_name() {
    let mut s = settings();
    assert_eq!(
        s.gate_policy("grant").approval_for_roles,
        vec!["admin".to_string()]
    );
    assert!(plan(&s, &cmd("/grant 7 admin"), &NONE).approval);
    assert!(!plan(&s, &cmd("/grant 7 viewer"), &NONE).approval);
    let revoke = s.gates.commands.get_mut("revoke").unwrap();
    revoke.approval_for_roles = vec!["operator".into()];
    assert!(plan(&s, &cmd("/revoke 7 operator"), &NONE).approval);
    assert!(!plan(&s, &cmd("/revoke 7 viewer"), &NONE).approval);
}

#[test]
fn the_command_policy_sets_each_gate() {
    let mut s = settings();
    let grant = s.gates.commands.get_mut("grant").unwrap();
    grant.confirm = false;
    grant.stepup = true;
    assert_eq!(
        plan(&s, &cmd("/grant 7 viewer"), &NONE),
        gates(false, true, false)
    );
    let grant = s.gates.commands.get_mut("grant").unwrap();
    grant.approval = true;
    grant.stepup = false;
    assert_eq!(
        plan(&s, &cmd("/grant 7 viewer"), &NONE),
        gates(false, false, true)
    );
    // A sensitive command without an entry asks for confirmation only.
    s.gates.commands.remove("revoke");
    assert_eq!(
        plan(&s, &cmd("/revoke 7 viewer"), &NONE),
        gates(true, false, false)
    );
}

#[test]
fn a_rotation_follows_its_secret_and_an_unknown_secret_passes_to_be_answered() {
    let mut s = settings();
    let mut secret = SecretSettings {
        name: "app-key".into(),
        kind: "api_key".into(),
        target: Default::default(),
        policy: Default::default(),
        sinks: Vec::new(),
    };
    secret.policy.totp = true;
    secret.policy.approval = Some(true);
    s.secrets = vec![secret];
    assert_eq!(
        plan(&s, &cmd("/rotate app-key"), &NONE),
        gates(true, true, true)
    );
    s.secrets[0].policy.totp = false;
    s.secrets[0].policy.approval = Some(false);
    assert_eq!(
        plan(&s, &cmd("/rotate app-key"), &NONE),
        gates(true, false, false)
    );
    assert_eq!(plan(&s, &cmd("/rotate nope"), &NONE), GatePlan::default());
}

#[test]
fn the_role_change_rule_as_a_truth_table() {
    let named = GatePolicy {
        approval_for_roles: vec!["admin".into()],
        ..GatePolicy::default()
    };
    let unnamed = GatePolicy::default();
    // (policy names the role, grant, role sensitive, target another admin) → approval
    #[rustfmt::skip]
    let table = [
        (false, true,  false, false, false),
        (false, true,  false, true,  false),
        (false, true,  true,  false, true),
        (false, true,  true,  true,  true),
        (false, false, false, false, false),
        (false, false, true,  false, false),
        (false, false, false, true,  true),
        (false, false, true,  true,  true),
        (true,  true,  false, false, true),
        (true,  false, false, false, true),
    ];
    for (is_named, grant, role_sensitive, target_other_admin, want) in table {
        let policy = if is_named { &named } else { &unnamed };
        let facts = RoleFacts {
            role_sensitive,
            target_other_admin,
        };
        let got = role_change_needs_approval(policy, grant, "admin", &facts);
        assert_eq!(got, want, "named {is_named}, grant {grant}, {facts:?}");
    }
}

#[test]
fn sensitive_permissions_are_those_of_sensitive_commands() {
    assert_eq!(
        sensitive_permissions(),
        vec!["secrets.rotate", "users.manage"]
    );
}

#[test]
fn callbacks_parse_to_confirm_or_cancel_and_nothing_else() {
    let id = ActionId::for_button();
    assert_eq!(parse_callback(&format!("c:{id}")), Some((true, id.clone())));
    assert_eq!(
        parse_callback(&format!("x:{id}")),
        Some((false, id.clone()))
    );
    assert_eq!(parse_callback(&format!("a:{id}")), None);
    assert_eq!(parse_callback("c:"), None);
    assert_eq!(parse_callback("hello"), None);
}

#[test]
fn the_confirm_prompt_announces_the_gates_still_to_come() {
    let id = ActionId::for_button();
    let grant = cmd("/grant 7 admin");
    let bare = confirm_prompt(&grant, &id, 120, &gates(true, false, false)).html;
    assert!(
        !bare.contains("TOTP") && !bare.contains("second admin"),
        "{bare}"
    );
    let both = confirm_prompt(&grant, &id, 120, &gates(true, true, true)).html;
    assert!(both.contains("TOTP code") && both.contains("second admin must approve"));
    let prompt = confirm_prompt(&grant, &id, 120, &gates(true, false, true));
    assert_eq!(prompt.buttons[0].data, format!("c:{id}"));
    assert_eq!(prompt.buttons[1].data, format!("x:{id}"));
}

#[test]
fn the_step_up_prompt_names_the_command_and_the_minutes_left() {
    let grant = cmd("/grant 7 admin");
    assert_eq!(
        stepup_prompt(&grant, 300).html,
        "🔐 <code>/grant 7 admin</code> needs a TOTP code.\nSend <code>/stepup 123456</code> with the code from your authenticator within 5 min."
    );
    // Under a minute is still "1 min", never "0 min".
    assert!(stepup_prompt(&grant, 30).html.ends_with("within 1 min."));
    assert!(stepup_prompt(&grant, 0).html.ends_with("within 1 min."));
}

#[test]
fn the_approval_prompt_names_the_request_and_the_minutes_left() {
    let id = ActionId::for_button();
    let grant = cmd("/grant 7 admin");
    assert_eq!(
        approval_prompt(&grant, &id, 600).html,
        format!(
            "🧑‍🤝‍🧑 <code>/grant 7 admin</code> needs a second admin.\nRequest <code>{id}</code>: another admin sends <code>/approve {id}</code> (or <code>/deny {id}</code>) within 10 min."
        )
    );
    assert!(
        approval_prompt(&grant, &id, 59)
            .html
            .ends_with("within 1 min.")
    );
}

#[test]
fn the_confirm_prompt_reads_as_written() {
    let id = ActionId::for_button();
    let prompt = confirm_prompt(&cmd("/grant 7 admin"), &id, 120, &gates(true, true, true));
    assert_eq!(
        prompt.html,
        "⚠️ Confirm <code>/grant 7 admin</code>?\nThis button expires in 120 s.\nThen you will be asked for a TOTP code.\nThen a second admin must approve it."
    );
    let labels: Vec<&str> = prompt.buttons.iter().map(|b| b.label.as_str()).collect();
    assert_eq!(labels, ["✅ Confirm", "✖ Cancel"]);
}
