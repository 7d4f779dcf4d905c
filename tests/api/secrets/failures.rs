//! A failing step leaves the old credential current: an env-file sink that cannot be
//! written stops the rotation before `finish`, it is retried with backoff, then rolled back
//! and alerted through the outbox, and `/secrets` shows the step and the error.

use super::*;
use opsguard::domain::rotation::SecretName;
use opsguard::domain::secret::Secret;
use opsguard::secrets::{store, vault::MasterKey};
use std::time::Duration;

async fn status_of(app: &TestApp, id: i64) -> String {
    sqlx::query_scalar("SELECT status FROM rotations WHERE id = $1")
        .bind(id)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn an_unwritable_sink_stops_before_finish_then_rolls_back_and_alerts() {
    let dir = Scratch::new();
    let env = dir.file("app.env");
    let app = spawn_app_with(|s| {
        with_vault(s, vec![api_key("app-key", &env, false)]);
        s.rotation.max_attempts = 2;
        s.rotation.backoff_base_secs = 0;
        s.rotation.worker_interval_ms = 100;
    })
    .await;
    add(&app, 42, "admin").await;
    rotate(&app, 42, "app-key").await;
    let first = env_value(&env, "APP_KEY_API_KEY").unwrap();
    std::fs::remove_dir_all(&dir.0).unwrap();

    let reply = rotate(&app, 42, "app-key").await;
    assert!(
        reply.contains("step <code>finish</code> failed (attempt 1)"),
        "{reply}"
    );
    assert!(
        reply.contains(&format!("env file {}", env.display())),
        "{reply}"
    );
    assert!(
        reply.contains("The old credential stays current. Retrying at"),
        "{reply}"
    );
    let id: i64 = sqlx::query_scalar("SELECT max(id) FROM rotations")
        .fetch_one(app.pool())
        .await
        .unwrap();

    // The worker retries once more (backoff 0), then gives up: the undo re-delivers the
    // current value first, which fails too while the directory is gone, so it is retried.
    let error_of = async |app: &TestApp| -> String {
        sqlx::query_scalar::<_, Option<String>>("SELECT error FROM rotations WHERE id = $1")
            .bind(id)
            .fetch_one(app.pool())
            .await
            .unwrap()
            .unwrap_or_default()
    };
    for _ in 0..100 {
        if error_of(&app).await.contains("undoing it failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status_of(&app, id).await, "rolling_back");
    assert!(env_value(&env, "APP_KEY_API_KEY").is_none());
    std::fs::create_dir_all(&dir.0).unwrap();
    for _ in 0..100 {
        if status_of(&app, id).await == "rolled_back" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status_of(&app, id).await, "rolled_back");
    let redelivered = env_value(&env, "APP_KEY_API_KEY");
    assert_eq!(
        redelivered.as_deref(),
        Some(first.as_str()),
        "current re-delivered"
    );
    let states: Vec<(i32, String)> =
        sqlx::query_as("SELECT version, state FROM secret_versions ORDER BY version")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(states, vec![(1, "current".into()), (2, "revoked".into())]);
    let listed = app.say(42, "/secrets").await.text();
    assert!(
        listed.contains(&format!(
            "current v1 <code>sha256:{}</code>",
            fingerprint(&first)
        )),
        "{listed}"
    );
    assert!(
        listed.contains(&format!("#{id} rolled_back"))
            && listed.contains("at step finish: env file"),
        "{listed}"
    );
    let alerts: Vec<String> =
        sqlx::query_scalar("SELECT html FROM outbox WHERE chat_id = -100555 ORDER BY id")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(alerts.len(), 3, "{alerts:?}");
    assert!(alerts[0].contains("Rotation of <b>app-key</b> failed at step <code>finish</code>"));
    assert!(alerts[0].contains("retrying with backoff"));
    assert!(alerts[1].contains("undoing it failed") && alerts[1].contains("the undo is retried"));
    assert!(
        alerts[2].contains("gave up; the old credential stays current"),
        "{}",
        alerts[2]
    );
    assert_nowhere(&app, &first).await;
    // The value that never became current stays out of sight too.
    let master = MasterKey::parse(Some(&Secret::new(MASTER_KEY))).unwrap();
    let name = SecretName::parse("app-key").unwrap();
    let v2 = &store::versions(app.pool(), "app-key", &["revoked"])
        .await
        .unwrap()[0];
    let pending = master
        .open(&name, v2.version, &v2.nonce, &v2.sealed)
        .unwrap();
    assert_nowhere(&app, pending.expose()).await;
}

#[tokio::test]
async fn the_secrets_check_reports_never_rotated_and_failed_rotations_by_fingerprint() {
    let dir = Scratch::new();
    let env = dir.file("a.env");
    let app = spawn_app_with(|s| {
        let mut manual = api_key("manual", &dir.file("m.env"), false);
        manual.policy.rotate_every_days = Some(0);
        with_vault(s, vec![api_key("app-key", &env, false), manual]);
        s.rotation.max_attempts = 1;
    })
    .await;
    add(&app, 42, "admin").await;
    let report = app.say(42, "/check secrets").await.text();
    assert!(report.contains("Managed secret never rotated"), "{report}");
    rotate(&app, 42, "app-key").await;
    let value = env_value(&env, "APP_KEY_API_KEY").unwrap();
    std::fs::remove_dir_all(&dir.0).unwrap();
    let failed = rotate(&app, 42, "manual").await;
    assert!(failed.contains("rolled back at step finish"), "{failed}");
    app.say(42, "/check secrets").await;
    let full = app.say(42, "/findings").await.text();
    assert!(full.contains("Last rotation did not succeed"), "{full}");
    assert!(full.contains("Secret has no scheduled rotation"), "{full}");
    assert!(
        !full.contains("app-key</code> · Managed secret never rotated"),
        "{full}"
    );
    assert_nowhere(&app, &value).await;
}

#[tokio::test]
async fn an_unreachable_target_keeps_the_old_state_and_is_retried_with_backoff_then_given_up() {
    let dir = Scratch::new();
    let app = spawn_app_with(|s| {
        let mut cache = api_key("app-cache", &dir.file("c.env"), false);
        cache.kind = "redis_acl".into();
        cache.target.user = Some("og_nowhere".into());
        cache.target.nodes = vec![Secret::new("redis://admin:canary-admin-pw@127.0.0.1:1")];
        with_vault(s, vec![cache]);
        s.rotation.max_attempts = 3;
        s.rotation.backoff_base_secs = 0;
        s.rotation.worker_interval_ms = 100;
    })
    .await;
    add(&app, 42, "admin").await;
    let reply = rotate(&app, 42, "app-cache").await;
    assert!(
        reply.contains("step <code>set</code> failed (attempt 1)"),
        "{reply}"
    );
    assert!(
        reply.contains("node 127.0.0.1:1: connection refused"),
        "{reply}"
    );
    assert!(!reply.contains("canary-admin-pw"));
    // Retried (backoff 0 here) up to max_attempts, then given up: the undo of `set` cannot
    // reach the node either, so the rotation stays `rolling_back` (retried, never promoted).
    let mut attempts = 0;
    for _ in 0..100 {
        let (status, n): (String, i32) = sqlx::query_as("SELECT status, attempts FROM rotations")
            .fetch_one(app.pool())
            .await
            .unwrap();
        attempts = n;
        if status == "rolling_back" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(attempts >= 2, "the step was retried");
    let current: i64 =
        sqlx::query_scalar("SELECT count(*) FROM secret_versions WHERE state = 'current'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(current, 0, "nothing was promoted");
    let listed = app.say(42, "/secrets").await.text();
    assert!(listed.contains("rolling_back at step set"), "{listed}");
    assert!(!listed.contains("canary-admin-pw"), "{listed}");
    let again = rotate(&app, 42, "app-cache").await;
    assert!(again.contains("already in progress"), "{again}");
}
