//! No privilege escalation by one admin: role-change gates follow permissions, not role
//! names. Granting a role that holds a sensitive permission, or revoking any role from
//! another admin, needs a second admin; a system role (the scheduler's) is granted to no
//! person, from chat or from the shell. The adversary is a single malicious admin.

use super::*;
use crate::process::opsguard;

const DENIED: &str = "denied: no permission";
const SYSTEM: &str = "refused: system role";
const CONFIRM: &str = "confirm only";
const APPROVAL: &str = "confirm, then a second admin";

/// Granters, in the order of each row's gates: user id and role.
const GRANTERS: [(i64, &str); 4] = [
    (45, "viewer"),
    (44, "operator"),
    (42, "admin"),
    (46, "rotator"),
];

/// (command, role, target: a plain user 7 or the admin 43) → the gate for each granter
/// above. `rotator` is a custom role holding `secrets.rotate` (a sensitive permission).
#[rustfmt::skip]
const MATRIX: &[(&str, &str, &str, [&str; 4])] = &[
    ("grant",  "viewer",    "user",  [DENIED, DENIED, CONFIRM,  DENIED]),
    ("grant",  "viewer",    "admin", [DENIED, DENIED, CONFIRM,  DENIED]),
    ("grant",  "operator",  "user",  [DENIED, DENIED, CONFIRM,  DENIED]),
    ("grant",  "operator",  "admin", [DENIED, DENIED, CONFIRM,  DENIED]),
    ("grant",  "admin",     "user",  [DENIED, DENIED, APPROVAL, DENIED]),
    ("grant",  "admin",     "admin", [DENIED, DENIED, APPROVAL, DENIED]),
    ("grant",  "rotator",   "user",  [DENIED, DENIED, APPROVAL, DENIED]),
    ("grant",  "rotator",   "admin", [DENIED, DENIED, APPROVAL, DENIED]),
    ("grant",  "scheduler", "user",  [DENIED, DENIED, SYSTEM,   DENIED]),
    ("grant",  "scheduler", "admin", [DENIED, DENIED, SYSTEM,   DENIED]),
    ("revoke", "viewer",    "user",  [DENIED, DENIED, CONFIRM,  DENIED]),
    ("revoke", "viewer",    "admin", [DENIED, DENIED, APPROVAL, DENIED]),
    ("revoke", "operator",  "user",  [DENIED, DENIED, CONFIRM,  DENIED]),
    ("revoke", "operator",  "admin", [DENIED, DENIED, APPROVAL, DENIED]),
    ("revoke", "admin",     "user",  [DENIED, DENIED, CONFIRM,  DENIED]),
    ("revoke", "admin",     "admin", [DENIED, DENIED, APPROVAL, DENIED]),
    ("revoke", "rotator",   "user",  [DENIED, DENIED, CONFIRM,  DENIED]),
    ("revoke", "rotator",   "admin", [DENIED, DENIED, APPROVAL, DENIED]),
    ("revoke", "scheduler", "user",  [DENIED, DENIED, CONFIRM,  DENIED]),
    ("revoke", "scheduler", "admin", [DENIED, DENIED, APPROVAL, DENIED]),
];

/// Which gate a reply shows.
fn gate(reply: &str) -> &'static str {
    if reply.contains("You may not run /") {
        DENIED
    } else if reply.contains("is a system role") {
        SYSTEM
    } else if reply.contains("Confirm <code>") && reply.contains("a second admin must approve") {
        APPROVAL
    } else if reply.contains("Confirm <code>") {
        CONFIRM
    } else {
        panic!("no gate recognised in {reply:?}")
    }
}

async fn add_rotator_role(app: &TestApp) {
    sqlx::query(
        "INSERT INTO roles (name, description) VALUES ('rotator', 'test: rotates secrets')",
    )
    .execute(app.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO role_permissions (role, permission) VALUES ('rotator', 'secrets.rotate'), ('rotator', 'help')",
    )
    .execute(app.pool())
    .await
    .unwrap();
}

async fn roles_held(app: &TestApp) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT telegram_id, role FROM user_roles ORDER BY 1, 2")
        .fetch_all(app.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn every_role_change_by_every_granter_gets_the_gate_its_permissions_call_for() {
    // No role is named in the policy: the gates must come from permissions alone.
    let app = spawn_app_with(|s| {
        s.gates
            .commands
            .get_mut("grant")
            .unwrap()
            .approval_for_roles
            .clear();
        s.gates
            .commands
            .get_mut("revoke")
            .unwrap()
            .approval_for_roles
            .clear();
        s.rate_limits.sensitive = 10_000;
    })
    .await;
    add_rotator_role(&app).await;
    for (id, role) in GRANTERS {
        add(&app, id, role).await;
    }
    add(&app, 7, "viewer").await;
    add(&app, 43, "admin").await;
    let before = roles_held(&app).await;
    let mut seen = Vec::new();
    for (command, role, target, gates) in MATRIX {
        let target_id = if *target == "admin" { 43 } else { 7 };
        for ((granter, granter_role), expected) in GRANTERS.iter().zip(gates) {
            let text = format!("/{command} {target_id} {role}");
            let reply = app.say(*granter, &text).await.text();
            seen.push((text.clone(), *granter_role, gate(&reply)));
            assert_eq!(
                gate(&reply),
                *expected,
                "{text} by a {granter_role}: {reply}"
            );
        }
    }
    assert_eq!(seen.len(), MATRIX.len() * GRANTERS.len());
    assert_eq!(
        roles_held(&app).await,
        before,
        "no prompt was pressed: nothing changed"
    );
    let system = attempts(&app, "grant").await;
    let refused = system
        .iter()
        .filter(|(d, r)| d == "denied" && r == "system role cannot be granted to a person");
    assert_eq!(refused.count(), 2, "each system-role refusal is audited");
}

#[tokio::test]
async fn one_admin_cannot_strip_another_admin_alone() {
    let app = spawn_app().await;
    add(&app, 42, "admin").await;
    add(&app, 43, "admin").await;
    add(&app, 44, "admin").await;
    let asked = confirmed(&app, "/revoke 43 admin").await;
    says(&asked, "needs a second admin");
    assert!(
        has_role(&app, 43, "admin").await,
        "confirming alone revokes nothing"
    );
    let id = app.approval_id(&asked).await;
    let own = app.say(42, &format!("/approve {id}")).await.text();
    says(&own, "cannot approve or deny your own request");
    assert!(has_role(&app, 43, "admin").await);
    let ok = app.say(44, &format!("/approve {id}")).await.text();
    says(&ok, "no longer has the role <b>admin</b>");
    assert!(!has_role(&app, 43, "admin").await);
}

#[tokio::test]
async fn a_system_role_is_refused_from_the_shell_and_in_the_database() {
    let app = spawn_app().await;
    add(&app, 7, "viewer").await;
    let before = roles_held(&app).await;
    for args in [
        vec!["user", "grant", "7", "scheduler"],
        vec!["user", "add", "8", "--role", "scheduler"],
    ] {
        let out = opsguard(&app.db).args(&args).output().await.unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            err.contains("scheduler is a system role"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(roles_held(&app).await, before, "nothing changed");
    let user_8 = storage::users::principal_of(app.pool(), UserId(8))
        .await
        .unwrap();
    assert!(user_8.is_none(), "the refused add created no user");
    app.settle().await;
    let rows = app.audit_rows().await;
    let failed: Vec<_> = rows
        .iter()
        .filter(|r| r.entry.actor_kind == "cli" && r.entry.outcome.as_deref() == Some("failed"))
        .map(|r| {
            (
                r.entry.command.as_str(),
                r.entry.error.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed.iter().all(|(_, e)| e.contains("system role")),
        "{failed:?}"
    );
    // Whatever writes the row (an old binary, a hand-typed INSERT): the database refuses it.
    let direct = sqlx::query(
        "INSERT INTO user_roles (telegram_id, role, granted_by) VALUES (7, 'scheduler', 'sql')",
    )
    .execute(app.pool())
    .await;
    assert!(direct.is_err());
    assert!(!has_role(&app, 7, "scheduler").await);
}
