//! Two replicas on one PostgreSQL and Redis: an update delivered to both runs once, and a
//! revoke on one is in force on the other at once.

use super::helpers::*;

#[tokio::test]
async fn an_update_delivered_to_both_replicas_runs_once() {
    let a = spawn_app().await;
    let b = a.spawn_replica().await;
    a.add_user(42, "admin").await;
    let update = text_update(a.next_update_id(), 42, 42, "/whoami");
    let (ra, rb) = tokio::join!(a.post_update(&update), b.post_update(&update));
    assert_eq!((ra.status().as_u16(), rb.status().as_u16()), (200, 200));
    a.wait_reply(42, 0).await;
    // Both answered 200, so whichever ran it counted it in flight before answering: with
    // neither replica busy, a second run would have replied and been audited by now.
    a.idle().await;
    b.idle().await;
    assert_eq!(
        a.telegram.sent_to(42).len(),
        1,
        "exactly one reply across both replicas"
    );
    let rows = a.audit_rows().await;
    assert_eq!(
        rows.iter().filter(|r| r.entry.command == "whoami").count(),
        2
    );
}

#[tokio::test]
async fn a_revoke_on_one_replica_is_in_force_on_the_other() {
    let a = spawn_app().await;
    let b = a.spawn_replica().await;
    a.add_user(42, "admin").await;
    a.add_user(7, "admin").await;
    // Warm replica b's permission cache for user 7.
    assert!(
        b.say(7, "/users").await.text().contains("users"),
        "user 7 may list users on b"
    );

    // Revoking from another admin takes a second admin's approval (43's).
    a.add_user(43, "admin").await;
    let prompt = a.say(42, "/revoke 7 admin").await;
    let (_, confirm) = prompt.buttons()[0].clone();
    let asked = a
        .press(42, &confirm, prompt.message_id.unwrap())
        .await
        .text();
    let id = a.approval_id(&asked).await;
    let done = a.say(43, &format!("/approve {id}")).await;
    assert!(
        done.text().contains("no longer has the role"),
        "{}",
        done.text()
    );

    let denied = b.say(7, "/users").await;
    assert!(
        denied.text().contains("You may not run /users"),
        "{}",
        denied.text()
    );
}

#[tokio::test]
async fn a_grant_on_one_replica_is_in_force_on_the_other() {
    let a = spawn_app().await;
    let b = a.spawn_replica().await;
    a.add_user(42, "admin").await;
    a.add_user(7, "viewer").await;
    assert!(
        b.say(7, "/users")
            .await
            .text()
            .contains("You may not run /users")
    );
    // A shell grant (no engine involved at all) reaches both caches through NOTIFY.
    opsguard::storage::users::grant(
        a.pool(),
        opsguard::domain::UserId(7),
        &opsguard::domain::RoleName::parse("admin").unwrap(),
        "test",
    )
    .await
    .unwrap();
    let authz = b.engine.authz();
    wait_for("replica b to see the grant", || async {
        let p = authz.principal(opsguard::domain::UserId(7)).await.unwrap();
        p.is_some_and(|p| p.user.roles.iter().any(|r| r == "admin"))
    })
    .await;
    assert!(b.say(7, "/users").await.text().contains("users</b>"));
}
