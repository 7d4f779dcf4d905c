//! The master key at start-up: a wrong, missing or malformed key stops start-up with a
//! clear error and changes nothing in the vault.

use super::*;
use opsguard::domain::secret::Secret;
use opsguard::startup::Application;

async fn keycheck(db: &TestDb) -> Vec<u8> {
    sqlx::query_scalar("SELECT sealed FROM vault_keycheck")
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

async fn build_error(settings: Settings) -> String {
    match Application::build(settings).await {
        Ok(_) => panic!("start-up should have stopped"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn a_wrong_missing_or_malformed_master_key_stops_start_up_and_changes_nothing() {
    let db = TestDb::create().await;
    let dir = Scratch::new();
    let base = |key: Option<&str>| {
        let mut s = settings_for(&db, "http://127.0.0.1:9");
        with_vault(&mut s, vec![api_key("app-key", &dir.file("a.env"), false)]);
        s.master_key = key.map(Secret::new);
        s
    };
    drop(
        Application::build(base(Some(MASTER_KEY)))
            .await
            .expect("the right key starts"),
    );
    let sealed = keycheck(&db).await;

    let other = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let wrong = build_error(base(Some(&other))).await;
    assert!(
        wrong.contains("OPSGUARD_MASTER_KEY does not open this vault"),
        "{wrong}"
    );
    assert!(!wrong.contains(&other));
    let missing = build_error(base(None)).await;
    assert!(
        missing.contains("OPSGUARD_MASTER_KEY is not set"),
        "{missing}"
    );
    let malformed = build_error(base(Some("c2hvcnQ="))).await;
    assert!(malformed.contains("not base64 of 32 bytes"), "{malformed}");
    // Nothing configured any more, but the vault holds a key check: a key is still required.
    let mut bare = settings_for(&db, "http://127.0.0.1:9");
    bare.master_key = None;
    assert!(
        build_error(bare)
            .await
            .contains("OPSGUARD_MASTER_KEY is not set")
    );
    assert_eq!(
        keycheck(&db).await,
        sealed,
        "the key check was not rewritten"
    );
    drop(
        Application::build(base(Some(MASTER_KEY)))
            .await
            .expect("the right key still starts"),
    );
}

#[tokio::test]
async fn without_secrets_or_a_key_opsguard_starts_and_says_so() {
    let app = spawn_app().await;
    add(&app, 7, "viewer").await;
    let reply = app.say(7, "/secrets").await.text();
    assert!(reply.contains("No secrets are managed here"), "{reply}");
}
