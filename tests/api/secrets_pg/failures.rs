//! How `postgres_role` fails: an unreachable or silent server is `Unreachable` (retried),
//! within the timeout; a refused login or an unmanaged role is `Refused`; and no error
//! text holds the admin DSN's password or a value of the secret (canaries are planted).

use super::*;
use opsguard::secrets::kind::{KindError, Revocation};
use std::time::Instant;

const ADMIN_CANARY: &str = "canary-Adm1nPw-7f3a";
const VALUE_CANARY: &str = "canary-Va1uePw-91c4";

fn canary_version(role: &str) -> Version {
    let material = Material {
        value: Secret::new(VALUE_CANARY),
        public: serde_json::json!({ "role": role, "strategy": "alternating" }),
    };
    version(1, material, false)
}

fn assert_clean(err: &KindError) {
    let text = format!("{err} {err:?}");
    assert!(!text.contains(ADMIN_CANARY), "{text}");
    assert!(!text.contains(VALUE_CANARY), "{text}");
}

fn kind_at(addr: &str, timeout: Duration) -> PostgresRole {
    let dsn = Secret::new(format!("postgres://root:{ADMIN_CANARY}@{addr}/postgres"));
    PostgresRole::new(dsn, "og_unreachable", Strategy::Alternating, timeout).unwrap()
}

#[tokio::test]
async fn an_unreachable_admin_dsn_is_transient_quick_and_shows_no_password() {
    let kind = kind_at("127.0.0.1:1", Duration::from_secs(2));
    let pending = canary_version("og_unreachable_a");
    let started = Instant::now();
    let errors = [
        kind.set(&pending, None).await.unwrap_err(),
        kind.test(&pending).await.unwrap_err(),
        kind.revoke(&pending, Revocation::Retired { current: None })
            .await
            .unwrap_err(),
    ];
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    for err in &errors {
        assert!(matches!(err, KindError::Unreachable(_)), "{err:?}");
        assert_clean(err);
    }
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_as_unreachable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let kind = kind_at(&addr, Duration::from_millis(300));
    let started = Instant::now();
    let err = kind
        .set(&canary_version("og_unreachable_a"), None)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, KindError::Unreachable(_)), "{err:?}");
    assert_clean(&err);
    held.abort();
}

#[tokio::test]
async fn a_wrong_password_is_refused_without_showing_it() {
    let roles = Roles::create(false).await;
    let kind = roles.kind(Strategy::Alternating);
    let v1 = version(1, kind.generate(None).unwrap(), false);
    kind.set(&v1, None).await.unwrap();
    let err = kind.test(&canary_version(&roles.a())).await.unwrap_err();
    assert!(matches!(err, KindError::Refused(_)), "{err:?}");
    assert_clean(&err);
    let text = err.to_string();
    assert!(!text.contains(v1.material.value.expose()), "{text}");
}

#[tokio::test]
async fn a_version_naming_a_role_it_does_not_manage_is_refused() {
    let roles = Roles::create(false).await;
    let kind = roles.kind(Strategy::Alternating);
    for foreign in ["postgres", "root", roles.group.as_str()] {
        let v = canary_version(foreign);
        let err = kind.set(&v, None).await.unwrap_err();
        assert!(matches!(err, KindError::Refused(_)), "{err:?}");
        let retired = Revocation::Retired { current: None };
        assert!(kind.revoke(&v, retired).await.is_err());
        assert_clean(&err);
    }
}
