//! Two-person approval: `/grant <user> admin` runs only after a second admin's `/approve`.

use super::*;

/// `/grant 7 admin` by 42, confirmed: returns the approval request id from the reply.
async fn approval_request(app: &TestApp) -> String {
    let reply = app.say(42, "/grant 7 admin").await;
    says(&reply.text(), "Then a second admin must approve it.");
    let msg = reply.message_id.unwrap();
    let asked = app.press(42, &reply.buttons()[0].1, msg).await.text();
    let id = app.approval_id(&asked).await;
    assert!(ActionId::parse(&id).is_ok(), "{asked}");
    id
}

async fn two_admins_and_an_operator() -> TestApp {
    let app = spawn_app().await;
    admin_and_viewer(&app).await;
    add(&app, 43, "admin").await;
    add(&app, 44, "operator").await;
    app
}

#[tokio::test]
async fn a_second_admin_approval_runs_the_grant_as_its_requester() {
    let app = two_admins_and_an_operator().await;
    let id = approval_request(&app).await;
    assert!(
        !has_role(&app, 7, "admin").await,
        "confirming alone grants nothing"
    );
    let approve = format!("/approve {id}");
    let own = app.say(42, &approve).await.text();
    says(&own, "cannot approve or deny your own request");
    let operator = app.say(44, &approve).await.text();
    assert_eq!(operator, "⛔ You may not run /approve.");
    assert!(!has_role(&app, 7, "admin").await);
    let ok = app.say(43, &approve).await.text();
    says(
        &ok,
        &format!("Approved request <code>{id}</code> from <code>42</code>"),
    );
    says(&ok, "now has the role <b>admin</b>");
    assert!(has_role(&app, 7, "admin").await);
    says(&app.say(43, &approve).await.text(), "was already decided");
    let unknown = app.say(43, "/approve zzzzzzzzzz").await.text();
    says(&unknown, "There is no approval request zzzzzzzzzz");
    app.settle().await;
    let rows = app.audit_rows().await;
    let ran: Vec<_> = rows
        .iter()
        .filter(|r| r.entry.command == "grant" && r.entry.outcome.as_deref() == Some("ok"))
        .collect();
    assert_eq!(ran.len(), 1, "the grant ran exactly once");
    assert_eq!(ran[0].entry.actor_id, Some(42), "it runs as the requester");
    let reason = ran[0].entry.reason.clone().unwrap_or_default();
    says(&reason, &format!("approved by 43 (request {id})"));
    let by_operator = rows.iter().find(|r| r.entry.actor_id == Some(44)).unwrap();
    assert_eq!(by_operator.entry.decision, "denied");
    let reason = by_operator.entry.reason.as_deref();
    assert_eq!(reason, Some("missing permission approvals.decide"));
}

#[tokio::test]
async fn a_denied_request_runs_nothing_and_cannot_be_approved_later() {
    let app = two_admins_and_an_operator().await;
    let id = approval_request(&app).await;
    let own = app.say(42, &format!("/deny {id}")).await.text();
    says(&own, "cannot approve or deny your own request");
    let denied = app.say(43, &format!("/deny {id}")).await.text();
    says(&denied, &format!("Denied request <code>{id}</code>"));
    says(&denied, "Nothing was run");
    let late = app.say(43, &format!("/approve {id}")).await.text();
    says(&late, "was already decided");
    assert!(!has_role(&app, 7, "admin").await);
    let grant = attempts(&app, "grant").await;
    let expected = [
        ("pending", "confirmation required"),
        ("pending", "second admin's approval required"),
    ];
    assert_eq!(grant, pairs(&expected), "the grant never ran");
}
