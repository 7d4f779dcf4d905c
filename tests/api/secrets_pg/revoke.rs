//! `revoke` of `postgres_role`: retiring a version ends its logins and sessions, rolling
//! back undoes `set`; the live role is never touched; every call can be repeated.

use super::*;
use opsguard::secrets::kind::Revocation;

/// True once `conn` has been terminated by the server (polled: signals take a moment).
async fn is_terminated(conn: &mut PgConnection) -> bool {
    for _ in 0..50 {
        if sqlx::query("SELECT 1").execute(&mut *conn).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// v1 on `_a` (current) and v2 on `_b`, both set; v1 as promoted.
async fn two_versions(kind: &PostgresRole) -> (Version, Version) {
    let v1 = version(1, kind.generate(None).unwrap(), false);
    kind.set(&v1, None).await.unwrap();
    let v1 = version(1, v1.material, true);
    let v2 = version(2, kind.generate(Some(&v1)).unwrap(), false);
    kind.set(&v2, Some(&v1)).await.unwrap();
    (v1, v2)
}

#[tokio::test]
async fn retiring_an_alternating_version_ends_its_password_and_its_sessions() {
    let roles = Roles::create(false).await;
    let kind = roles.kind(Strategy::Alternating);
    let (v1, v2) = two_versions(&kind).await;
    let v2 = version(2, v2.material, true);
    let mut old_session = login(&roles.a(), v1.material.value.expose()).await.unwrap();

    let retired = Revocation::Retired { current: Some(&v2) };
    kind.revoke(&v1, retired).await.unwrap();
    kind.revoke(&v1, retired).await.unwrap(); // idempotent
    assert_refused(&roles.a(), v1.material.value.expose()).await;
    assert!(
        is_terminated(&mut old_session).await,
        "the old session lives on"
    );
    assert_logs_in(&roles.b(), &v2.material.value).await;

    // The current version's role is never touched, whatever the caller asks.
    let mut live_session = login(&roles.b(), v2.material.value.expose()).await.unwrap();
    kind.revoke(&v2, retired).await.unwrap();
    let rolled = Revocation::RolledBack { current: Some(&v2) };
    kind.revoke(&v2, rolled).await.unwrap();
    assert_logs_in(&roles.b(), &v2.material.value).await;
    sqlx::query("SELECT 1")
        .execute(&mut live_session)
        .await
        .expect("the live session was ended");
}

#[tokio::test]
async fn rolling_back_an_alternating_set_leaves_only_the_live_role() {
    let roles = Roles::create(false).await;
    let kind = roles.kind(Strategy::Alternating);
    let (v1, v2) = two_versions(&kind).await;
    let rolled = Revocation::RolledBack { current: Some(&v1) };
    kind.revoke(&v2, rolled).await.unwrap();
    kind.revoke(&v2, rolled).await.unwrap();
    assert_refused(&roles.b(), v2.material.value.expose()).await;
    assert_logs_in(&roles.a(), &v1.material.value).await;
    // A rotation that never got as far as creating its role has nothing to undo.
    let roles = Roles::create(false).await;
    let kind = roles.kind(Strategy::Alternating);
    let never_set = version(1, kind.generate(None).unwrap(), false);
    let rolled = Revocation::RolledBack { current: None };
    kind.revoke(&never_set, rolled).await.unwrap();
}

#[tokio::test]
async fn single_rollback_restores_the_old_password() {
    let roles = Roles::create(true).await;
    let kind = roles.kind(Strategy::Single);
    let v1 = version(1, kind.generate(None).unwrap(), false);
    assert_eq!(role_of(&v1), roles.group);
    assert_eq!(v1.material.public["strategy"], "single");
    kind.set(&v1, None).await.unwrap();
    kind.test(&v1).await.unwrap();
    let v1 = version(1, v1.material, true);

    let v2 = version(2, kind.generate(Some(&v1)).unwrap(), false);
    assert_eq!(role_of(&v2), roles.group);
    kind.set(&v2, Some(&v1)).await.unwrap();
    kind.test(&v2).await.unwrap();
    assert_refused(&roles.group, v1.material.value.expose()).await;

    let rolled = Revocation::RolledBack { current: Some(&v1) };
    kind.revoke(&v2, rolled).await.unwrap();
    kind.revoke(&v2, rolled).await.unwrap();
    assert_logs_in(&roles.group, &v1.material.value).await;
    assert_refused(&roles.group, v2.material.value.expose()).await;
    assert!(kind.test(&v2).await.is_err());
}

#[tokio::test]
async fn single_retirement_ends_only_sessions_older_than_the_current_version() {
    let roles = Roles::create(true).await;
    let kind = roles.kind(Strategy::Single);
    let v1 = version(1, kind.generate(None).unwrap(), false);
    kind.set(&v1, None).await.unwrap();
    let v1 = version(1, v1.material, true);
    let mut old_session = login(&roles.group, v1.material.value.expose())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let v2 = version(2, kind.generate(Some(&v1)).unwrap(), false);
    kind.set(&v2, Some(&v1)).await.unwrap();
    let v2 = version(2, v2.material, true);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut new_session = login(&roles.group, v2.material.value.expose())
        .await
        .unwrap();

    let retired = Revocation::Retired { current: Some(&v2) };
    kind.revoke(&v1, retired).await.unwrap();
    kind.revoke(&v1, retired).await.unwrap();
    assert!(
        is_terminated(&mut old_session).await,
        "the old session lives on"
    );
    sqlx::query("SELECT 1")
        .execute(&mut new_session)
        .await
        .expect("a session with the current password was ended");
    // The password is the current one: it still works.
    assert_logs_in(&roles.group, &v2.material.value).await;
}
