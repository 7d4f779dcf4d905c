//! Gates in front of sensitive commands: confirm buttons (here), two-person approval
//! (`approval`) and TOTP step-up (`stepup`). Each refusal is explained, audited, and changes
//! nothing.

mod approval;
mod approval_push;
mod escalation;
mod pending;
mod stepup;
mod totp_hijack;
mod totp_legacy;

use super::helpers::*;
use opsguard::domain::{ActionId, RoleName, UserId};
use opsguard::storage;

/// Add a user and wait until the engine sees the role (change notifications are async).
pub async fn add(app: &TestApp, id: i64, role: &str) {
    app.add_user(id, role).await;
}

/// Whether the database says `user` holds `role`.
async fn has_role(app: &TestApp, user: i64, role: &str) -> bool {
    let p = storage::users::principal_of(app.pool(), UserId(user)).await;
    p.unwrap()
        .is_some_and(|p| p.user.roles.iter().any(|r| r == role))
}

#[track_caller]
fn says(reply: &str, needle: &str) {
    assert!(reply.contains(needle), "expected {needle:?} in {reply:?}");
}

/// Send a gated command as `user`; return its prompt's (confirm data, cancel data, message id).
async fn prompt(app: &TestApp, user: i64, text: &str) -> (String, String, i64) {
    let reply = app.say(user, text).await;
    let b = reply.buttons();
    assert_eq!(b.len(), 2, "{}", reply.text());
    (b[0].1.clone(), b[1].1.clone(), reply.message_id.unwrap())
}

/// Wait until every unused pending action has expired by the database's clock (which the
/// claim of a button or a step-up prompt compares with).
pub async fn wait_expired(app: &TestApp) {
    wait_for("every unused pending action to expire", || async {
        let live: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pending_actions WHERE used_at IS NULL AND expires_at > now()",
        )
        .fetch_one(app.pool())
        .await
        .unwrap();
        live == 0
    })
    .await;
}

/// Send `text` as 42, press its Confirm button, return the reply to that.
async fn confirmed(app: &TestApp, text: &str) -> String {
    let (confirm, _, msg) = prompt(app, 42, text).await;
    app.press(42, &confirm, msg).await.text()
}

/// (decision, reason) of every audit attempt row of `command`, oldest first.
async fn attempts(app: &TestApp, command: &str) -> Vec<(String, String)> {
    app.settle().await;
    let rows = app.audit_rows().await.into_iter();
    rows.filter(|r| r.entry.command == command && r.entry.phase == "attempt")
        .map(|r| (r.entry.decision, r.entry.reason.unwrap_or_default()))
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    let pair = |(d, r): &(&str, &str)| (d.to_string(), r.to_string());
    expected.iter().map(pair).collect()
}

async fn admin_and_viewer(app: &TestApp) {
    add(app, 42, "admin").await;
    add(app, 7, "viewer").await;
}

#[tokio::test]
async fn confirming_a_grant_with_the_button_applies_it() {
    let app = spawn_app().await;
    admin_and_viewer(&app).await;
    let reply = app.say(42, "/grant 7 operator").await;
    says(&reply.text(), "Confirm <code>/grant 7 operator</code>?");
    let buttons = reply.buttons();
    assert_eq!(buttons.len(), 2);
    let id = buttons[0].1.strip_prefix("c:").expect("c:<id>");
    assert!(ActionId::parse(id).is_ok() && buttons[0].0.contains("Confirm"));
    assert_eq!(buttons[1], ("✖ Cancel".to_string(), format!("x:{id}")));
    assert!(
        !has_role(&app, 7, "operator").await,
        "nothing runs before the button"
    );
    let msg = reply.message_id.unwrap();
    let done = app.press(42, &buttons[0].1, msg).await.text();
    says(&done, "now has the role <b>operator</b>");
    assert!(has_role(&app, 7, "operator").await);
    let expected = [
        ("pending", "confirmation required"),
        ("allowed", "confirmed with button"),
    ];
    assert_eq!(attempts(&app, "grant").await, pairs(&expected));
}

#[tokio::test]
async fn cancel_grants_nothing_and_spends_the_prompt() {
    let app = spawn_app().await;
    admin_and_viewer(&app).await;
    let (confirm, cancel, msg) = prompt(&app, 42, "/grant 7 operator").await;
    says(&app.press(42, &cancel, msg).await.text(), "Cancelled");
    let late = app.press(42, &confirm, msg).await.text();
    assert_eq!(late, "This button was already used.");
    assert!(!has_role(&app, 7, "operator").await);
    let grant = attempts(&app, "grant").await;
    assert_eq!(grant[1..], pairs(&[("denied", "cancelled by the user")]));
}

#[tokio::test]
async fn forged_and_junk_callbacks_are_refused_and_spend_nothing() {
    let app = spawn_app().await;
    admin_and_viewer(&app).await;
    let (confirm, _, msg) = prompt(&app, 42, "/grant 7 operator").await;
    let forged = format!("c:{}", ActionId::for_button());
    for data in [forged.as_str(), "hello"] {
        let reply = app.press(42, data, msg).await.text();
        assert_eq!(reply, "This button is not valid.");
    }
    assert!(!has_role(&app, 7, "operator").await);
    let expected = [
        ("denied", "unknown or forged action"),
        ("invalid", "malformed callback data"),
    ];
    assert_eq!(attempts(&app, "callback").await, pairs(&expected));
    // The real prompt was not touched by the forgeries.
    app.press(42, &confirm, msg).await;
    assert!(has_role(&app, 7, "operator").await);
}

#[tokio::test]
async fn an_expired_button_is_refused() {
    let app = spawn_app_with(|s| s.gates.confirm_ttl_secs = 1).await;
    admin_and_viewer(&app).await;
    let reply = app.say(42, "/grant 7 operator").await;
    says(&reply.text(), "expires in 1 s");
    wait_expired(&app).await;
    let msg = reply.message_id.unwrap();
    let late = app.press(42, &reply.buttons()[0].1, msg).await.text();
    says(&late, "This button has expired");
    assert!(!has_role(&app, 7, "operator").await);
    let expected = pairs(&[("denied", "action expired")]);
    assert_eq!(attempts(&app, "callback").await, expected);
}

#[tokio::test]
async fn a_button_is_single_use_and_bound_to_its_user() {
    let app = spawn_app().await;
    admin_and_viewer(&app).await;
    add(&app, 43, "admin").await;
    let (confirm, _, msg) = prompt(&app, 42, "/grant 7 operator").await;
    let foreign = app.press(43, &confirm, msg).await.text();
    assert_eq!(foreign, "This button is not yours.");
    assert!(!has_role(&app, 7, "operator").await);
    app.press(42, &confirm, msg).await;
    assert!(
        has_role(&app, 7, "operator").await,
        "the foreign press spent nothing"
    );
    // Take the role away again, then replay the button: it must not grant it a second time.
    let operator = RoleName::parse("operator").unwrap();
    storage::users::revoke(app.pool(), UserId(7), &operator)
        .await
        .unwrap();
    let replay = app.press(42, &confirm, msg).await.text();
    assert_eq!(replay, "This button was already used.");
    assert!(!has_role(&app, 7, "operator").await);
    let expected = [
        ("denied", "action belongs to another user"),
        ("denied", "action already used"),
    ];
    assert_eq!(attempts(&app, "callback").await, pairs(&expected));
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_revoked() {
    let app = spawn_app().await;
    add(&app, 42, "admin").await;
    add(&app, 43, "admin").await;
    let pool = app.pool();
    storage::users::set_active(pool, UserId(43), false)
        .await
        .unwrap();
    says(
        &confirmed(&app, "/revoke 42 admin").await,
        "last active admin",
    );
    assert!(has_role(&app, 42, "admin").await);
    app.settle().await;
    let rows = app.audit_rows().await;
    let failed = rows
        .iter()
        .find(|r| r.entry.outcome.as_deref() == Some("failed"));
    let failed = failed.expect("the refusal is audited").entry.clone();
    assert_eq!(failed.command, "revoke");
    says(&failed.error.unwrap_or_default(), "last active admin");
    // With a second active admin the same revoke goes through: the rule is about the last one.
    storage::users::set_active(pool, UserId(43), true)
        .await
        .unwrap();
    let done = confirmed(&app, "/revoke 42 admin").await;
    says(&done, "no longer has the role <b>admin</b>");
    assert!(!has_role(&app, 42, "admin").await);
}

#[tokio::test]
async fn a_grant_naming_an_unknown_user_or_role_is_refused_before_any_prompt() {
    let app = spawn_app().await;
    admin_and_viewer(&app).await;
    let unknown_user = app.say(42, "/grant 99999 viewer").await;
    says(&unknown_user.text(), "User <code>99999</code> is not known");
    says(
        &unknown_user.text(),
        "opsguard user add 99999 --role viewer",
    );
    let unknown_role = app.say(42, "/grant 7 superuser").await;
    says(&unknown_role.text(), "There is no role <b>superuser</b>");
    says(
        &unknown_role.text(),
        "Roles: admin, operator, scheduler, viewer.",
    );
    for reply in [&unknown_user, &unknown_role] {
        assert!(reply.buttons().is_empty(), "no confirmation is asked for");
        says(&reply.text(), "Nothing was changed.");
    }
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM pending_actions")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(pending, 0, "no pending action was created");
    assert!(!has_role(&app, 7, "superuser").await);
    let expected = [("invalid", "unknown user"), ("invalid", "unknown role")];
    assert_eq!(attempts(&app, "grant").await, pairs(&expected));
    // The same grant with both known asks for confirmation as before.
    says(&app.say(42, "/grant 7 operator").await.text(), "Confirm");
}
