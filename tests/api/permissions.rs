//! The permission matrix: every command in `SPECS` × every default role, driven through
//! the engine and checked against the default role matrix of the design, written out here
//! as literal data (not read from `role_permissions`, which the product itself reads).

use super::gates::add;
use super::helpers::*;
use opsguard::domain::command::{Command, SPECS};
use opsguard::domain::{Actor, Chat, RoleName, UserId};
use opsguard::engine::{Input, Request};
use opsguard::storage;
use std::collections::{HashMap, HashSet};

/// A valid line for each command. A command added to `SPECS` without one fails here.
fn line_for(name: &str) -> &'static str {
    match name {
        "start" => "/start",
        "help" => "/help",
        "whoami" => "/whoami",
        "status" => "/status",
        "audit" => "/audit 3",
        "check" => "/check",
        "findings" => "/findings",
        "users" => "/users",
        "schedules" => "/schedules",
        "grant" => "/grant 7 viewer",
        "revoke" => "/revoke 7 viewer",
        "approve" => "/approve abcdefgh23",
        "deny" => "/deny abcdefgh23",
        "totp" => "/totp",
        "stepup" => "/stepup 123456",
        "logins" => "/logins 15m",
        "alerts" => "/alerts",
        "ack" => "/ack 1",
        "silence" => "/silence ip-failures 1h",
        "prune_logins" => "/prune_logins",
        "secrets" => "/secrets",
        "rotate" => "/rotate app-key",
        "rotate_due" => "/rotate_due",
        "backup" => "/backup main",
        "backups" => "/backups",
        "restore_test" => "/restore_test 1",
        "prune_backups" => "/prune_backups",
        "outbox" => "/outbox",
        other => panic!("no test line for /{other}: add one to the permission matrix"),
    }
}

/// The default roles of the design, in the column order of `DEFAULT_MATRIX`.
const ROLES: [&str; 3] = ["viewer", "operator", "admin"];

/// The design's default role matrix (`DESIGN.md`, "Default roles"): for every command,
/// whether a viewer, an operator and an admin may run it. Viewers read (help, whoami,
/// status, findings, logins, alerts, backups, the secrets list, the schedules, their own
/// TOTP); operators also run checks and backups and ack/silence alerts; admins run
/// everything. Written out by hand: a migration that grants `secrets.rotate` to operators
/// fails here.
const DEFAULT_MATRIX: &[(&str, [bool; 3])] = &[
    //               viewer operator admin
    ("start", [true, true, true]),
    ("help", [true, true, true]),
    ("whoami", [true, true, true]),
    ("status", [true, true, true]),
    ("audit", [false, false, true]),
    ("schedules", [true, true, true]),
    ("check", [false, true, true]),
    ("findings", [true, true, true]),
    ("logins", [true, true, true]),
    ("alerts", [true, true, true]),
    ("ack", [false, true, true]),
    ("silence", [false, true, true]),
    ("prune_logins", [false, false, true]),
    ("secrets", [true, true, true]),
    ("rotate", [false, false, true]),
    ("rotate_due", [false, false, true]),
    ("backup", [false, true, true]),
    ("backups", [true, true, true]),
    ("restore_test", [false, false, true]),
    ("prune_backups", [false, false, true]),
    ("outbox", [false, false, true]),
    ("users", [false, false, true]),
    ("grant", [false, false, true]),
    ("revoke", [false, false, true]),
    ("approve", [false, false, true]),
    ("deny", [false, false, true]),
    ("totp", [true, true, true]),
    ("stepup", [true, true, true]),
];

/// Whether the design lets `role` run `/command`.
fn may(role: &str, command: &str) -> bool {
    let column = ROLES
        .iter()
        .position(|r| *r == role)
        .unwrap_or_else(|| panic!("{role}"));
    let row = DEFAULT_MATRIX.iter().find(|(c, _)| *c == command);
    row.unwrap_or_else(|| panic!("/{command} is not in the literal matrix: add it"))
        .1[column]
}

#[test]
fn the_literal_matrix_names_every_command_once() {
    let names: Vec<&str> = DEFAULT_MATRIX.iter().map(|(c, _)| *c).collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "a command listed twice");
    let mut specs: Vec<&str> = SPECS.iter().map(|s| s.name).collect();
    specs.sort();
    assert_eq!(
        unique, specs,
        "the literal matrix and SPECS name the same commands"
    );
}

/// Every role a person may hold, each with a user of its own (ids 100, 101, …). System
/// roles (the scheduler's) are held by no person (`gates::escalation` tests that).
async fn users_per_role(app: &TestApp) -> Vec<(String, i64)> {
    let roles: Vec<String> =
        sqlx::query_scalar("SELECT name FROM roles WHERE NOT system ORDER BY name")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(
        roles,
        ["admin", "operator", "viewer"],
        "the default roles, no more"
    );
    let mut users = Vec::new();
    for (i, role) in ROLES.into_iter().enumerate() {
        let user = 100 + i as i64;
        add(app, user, role).await;
        users.push((role.to_string(), user));
    }
    users
}

fn request(user: i64, line: &str) -> Request {
    let (actor, chat) = (Actor::console(UserId(user)), Chat::private(UserId(user)));
    Request::new(actor, chat, Input::Text(line.into()))
}

#[tokio::test]
async fn every_command_for_every_role_is_decided_as_the_design_matrix_says() {
    let app = spawn_app_with(|s| {
        s.rate_limits.read = 1000;
        s.rate_limits.operate = 1000;
        s.rate_limits.sensitive = 1000;
    })
    .await;
    app.add_user(7, "viewer").await;
    let mut decided: HashMap<(String, &str), String> = HashMap::new();
    for (role, user) in users_per_role(&app).await {
        for spec in SPECS {
            let line = line_for(spec.name);
            assert_eq!(Command::parse(line).unwrap().spec(), spec, "{line}");
            let req = request(user, line);
            let request_id = req.id.to_string();
            let reply = app
                .engine
                .handle(req)
                .await
                .expect("every command gets a reply");
            let rows = storage::audit::for_request(app.pool(), &request_id)
                .await
                .unwrap();
            let phases: Vec<&str> = rows.iter().map(|r| r.entry.phase.as_str()).collect();
            assert_eq!(
                phases,
                ["attempt", "outcome"],
                "{role} {line}: both rows audited"
            );
            let attempt = &rows[0].entry;
            assert_eq!(
                (attempt.command.as_str(), attempt.actor_id),
                (spec.name, Some(user))
            );
            let decision = attempt.decision.as_str();
            if may(&role, spec.name) {
                assert!(
                    matches!(decision, "allowed" | "pending"),
                    "{role} {line}: {decision}"
                );
            } else {
                let reason = format!("missing permission {}", permission_of(spec.name));
                assert_eq!(decision, "denied", "{role} {line}");
                assert_eq!(
                    attempt.reason.as_deref(),
                    Some(reason.as_str()),
                    "{role} {line}"
                );
                assert_eq!(reply.html, format!("⛔ You may not run /{}.", spec.name));
                // The literal shape of the refusal, for one command.
                if spec.name == "rotate" {
                    assert_eq!(reply.html, "⛔ You may not run /rotate.");
                    assert_eq!(
                        attempt.reason.as_deref(),
                        Some("missing permission secrets.rotate")
                    );
                }
            }
            decided.insert((role.clone(), spec.name), decision.to_string());
        }
    }
    let denied = |role: &str, cmd: &str| decided[&(role.to_string(), cmd)] == "denied";
    for cmd in ["grant", "revoke", "audit", "users", "approve", "deny"] {
        assert!(denied("viewer", cmd), "a viewer may not /{cmd}");
    }
    for cmd in ["grant", "revoke", "audit", "users"] {
        assert!(denied("operator", cmd), "an operator may not /{cmd}");
    }
    for cmd in ["help", "whoami", "status", "totp", "logins", "alerts"] {
        assert!(!denied("viewer", cmd), "a viewer may /{cmd}");
    }
    for cmd in ["ack", "silence", "prune_logins"] {
        assert!(denied("viewer", cmd), "a viewer may not /{cmd}");
    }
    for cmd in ["ack", "silence"] {
        assert!(!denied("operator", cmd), "an operator may /{cmd}");
    }
    assert!(denied("operator", "prune_logins"), "pruning is for admins");
    for spec in SPECS {
        assert!(!denied("admin", spec.name), "an admin may /{}", spec.name);
    }
    let grant = decided[&("admin".to_string(), "grant")].as_str();
    assert_eq!(grant, "pending", "a sensitive command waits for its gate");
}

#[tokio::test]
async fn every_spec_names_a_permission_admin_holds_and_menus_follow_the_table() {
    let app = spawn_app().await;
    let names: HashSet<&str> = SPECS.iter().map(|s| s.name).collect();
    assert_eq!(names.len(), SPECS.len(), "command names are unique");
    for spec in SPECS {
        assert_eq!(
            spec.permission.as_str(),
            permission_of(spec.name),
            "/{}",
            spec.name
        );
        assert_eq!(Command::parse(line_for(spec.name)).unwrap().spec(), spec);
    }
    // The menu (and /help) a user sees is exactly what the design lets their role run.
    for (role, user) in users_per_role(&app).await {
        let menu = app.engine.allowed_commands(UserId(user)).await.unwrap();
        let menu: Vec<&str> = menu.iter().map(|s| s.name).collect();
        let expected: Vec<&str> = SPECS
            .iter()
            .filter(|s| may(&role, s.name))
            .map(|s| s.name)
            .collect();
        assert_eq!(menu, expected, "{role}");
        if role == "admin" {
            assert_eq!(menu.len(), SPECS.len());
        }
    }
}

/// The permission each command needs, as the design's permission names (literal data).
fn permission_of(command: &str) -> &'static str {
    match command {
        "start" | "help" => "help",
        "whoami" => "whoami",
        "status" => "status",
        "audit" => "audit.read",
        "schedules" => "schedules.read",
        "check" => "checks.run",
        "findings" => "findings.read",
        "logins" => "logins.read",
        "alerts" => "alerts.read",
        "ack" | "silence" => "alerts.manage",
        "prune_logins" => "logins.prune",
        "secrets" => "secrets.read",
        "rotate" | "rotate_due" => "secrets.rotate",
        "backup" => "backups.run",
        "backups" => "backups.read",
        "restore_test" => "backups.restore_test",
        "prune_backups" => "backups.prune",
        "outbox" => "outbox.manage",
        "users" => "users.read",
        "grant" | "revoke" => "users.manage",
        "approve" | "deny" => "approvals.decide",
        "totp" | "stepup" => "totp.self",
        other => panic!("no literal permission for /{other}"),
    }
}

#[tokio::test]
async fn permissions_are_data_removing_one_denies_the_command() {
    let app = spawn_app().await;
    add(&app, 42, "viewer").await;
    let ok = app.engine.handle(request(42, "/whoami")).await.unwrap();
    assert!(!ok.html.starts_with('⛔'), "{}", ok.html);
    sqlx::query("DELETE FROM role_permissions WHERE role = 'viewer' AND permission = 'whoami'")
        .execute(app.pool())
        .await
        .unwrap();
    // The change is broadcast; the cached permissions are dropped within moments.
    wait_for(
        "/whoami refused after the viewer lost the permission",
        || async {
            let reply = app.engine.handle(request(42, "/whoami")).await.unwrap();
            reply.html == "⛔ You may not run /whoami."
        },
    )
    .await;
}

#[tokio::test]
async fn a_lookup_that_overlaps_an_eviction_is_not_cached() {
    // No Telegram token: no menu task that could look the user up behind the test's back.
    let app = spawn_app_with(|s| s.telegram.token = None).await;
    add(&app, 42, "operator").await;
    let authz = app.engine.authz().clone();
    authz.evict(UserId(42));
    // A lookup is in flight when a change notification evicts the user: what it read may
    // predate the change, so it must not be cached.
    let mut lookup = Box::pin(authz.principal(UserId(42)));
    assert!(futures::poll!(&mut lookup).is_pending());
    authz.evict(UserId(42));
    lookup.await.unwrap();
    // Change the roles without a notification: only an uncached lookup can see it.
    let quiet = "ALTER TABLE user_roles DISABLE TRIGGER user_roles_authz";
    sqlx::query(quiet).execute(app.pool()).await.unwrap();
    let operator = RoleName::parse("operator").unwrap();
    storage::users::revoke(app.pool(), UserId(42), &operator)
        .await
        .unwrap();
    let now = authz.principal(UserId(42)).await.unwrap().unwrap();
    assert!(
        now.user.roles.is_empty(),
        "stale roles cached: {:?}",
        now.user.roles
    );
}
