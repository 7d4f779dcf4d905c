//! The permission matrix: every command in `SPECS` × every role in the database, driven
//! through the engine and checked against what `role_permissions` says (roles are data).

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

/// What the `role_permissions` table says the role holds.
async fn held(app: &TestApp, role: &str) -> HashSet<String> {
    let perms: Vec<String> =
        sqlx::query_scalar("SELECT permission FROM role_permissions WHERE role = $1")
            .bind(role)
            .fetch_all(app.pool())
            .await
            .unwrap();
    perms.into_iter().collect()
}

/// Every role a person may hold, each with a user of its own (ids 100, 101, …). System
/// roles (the scheduler's) are held by no person (`gates::escalation` tests that).
async fn users_per_role(app: &TestApp) -> Vec<(String, i64)> {
    let roles: Vec<String> =
        sqlx::query_scalar("SELECT name FROM roles WHERE NOT system ORDER BY name")
            .fetch_all(app.pool())
            .await
            .unwrap();
    for default in ["viewer", "operator", "admin"] {
        assert!(
            roles.iter().any(|r| r == default),
            "default role {default} missing"
        );
    }
    let mut users = Vec::new();
    for (i, role) in roles.into_iter().enumerate() {
        let user = 100 + i as i64;
        add(app, user, &role).await;
        users.push((role, user));
    }
    users
}

fn request(user: i64, line: &str) -> Request {
    let (actor, chat) = (Actor::console(UserId(user)), Chat::private(UserId(user)));
    Request::new(actor, chat, Input::Text(line.into()))
}

#[tokio::test]
async fn every_command_for_every_role_is_decided_as_role_permissions_says() {
    let app = spawn_app_with(|s| {
        s.rate_limits.read = 1000;
        s.rate_limits.operate = 1000;
        s.rate_limits.sensitive = 1000;
    })
    .await;
    app.add_user(7, "viewer").await;
    let mut decided: HashMap<(String, &str), String> = HashMap::new();
    for (role, user) in users_per_role(&app).await {
        let holds = held(&app, &role).await;
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
            if holds.contains(spec.permission.as_str()) {
                assert!(
                    matches!(decision, "allowed" | "pending"),
                    "{role} {line}: {decision}"
                );
            } else {
                let reason = format!("missing permission {}", spec.permission);
                assert_eq!(decision, "denied", "{role} {line}");
                assert_eq!(
                    attempt.reason.as_deref(),
                    Some(reason.as_str()),
                    "{role} {line}"
                );
                assert_eq!(reply.html, format!("⛔ You may not run /{}.", spec.name));
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
    let admin = held(&app, "admin").await;
    let names: HashSet<&str> = SPECS.iter().map(|s| s.name).collect();
    assert_eq!(names.len(), SPECS.len(), "command names are unique");
    for spec in SPECS {
        assert!(
            admin.contains(spec.permission.as_str()),
            "{}: {}",
            spec.name,
            spec.permission
        );
        assert_eq!(Command::parse(line_for(spec.name)).unwrap().spec(), spec);
    }
    // The menu (and /help) a user sees is exactly what the table lets their role run.
    for (role, user) in users_per_role(&app).await {
        let holds = held(&app, &role).await;
        let menu = app.engine.allowed_commands(UserId(user)).await.unwrap();
        let menu: Vec<&str> = menu.iter().map(|s| s.name).collect();
        let expected: Vec<&str> = SPECS
            .iter()
            .filter(|s| holds.contains(s.permission.as_str()))
            .map(|s| s.name)
            .collect();
        assert_eq!(menu, expected, "{role}");
        if role == "admin" {
            assert_eq!(menu.len(), SPECS.len());
        }
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
    for _ in 0..100 {
        let reply = app.engine.handle(request(42, "/whoami")).await.unwrap();
        if reply.html == "⛔ You may not run /whoami." {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("/whoami was still allowed after the viewer lost the permission");
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
