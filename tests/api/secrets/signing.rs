//! A JWT signing key is published as "next" in the JWKS for a cache margin before it becomes
//! current (verifiers that cached the key set learn its `kid` before any token carries it);
//! the rotation waits without failing and the worker finishes it.

use super::*;
use std::time::Duration;

async fn kids(app: &TestApp) -> Vec<String> {
    let doc: serde_json::Value = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = doc["keys"].as_array().cloned().unwrap_or_default();
    keys.iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

async fn states(app: &TestApp) -> Vec<(i32, String)> {
    sqlx::query_as("SELECT version, state FROM secret_versions ORDER BY version")
        .fetch_all(app.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_new_signing_key_is_next_in_the_jwks_for_a_cache_margin_before_it_is_current() {
    let dir = Scratch::new();
    let env = dir.file("jwt.env");
    let app = spawn_app_with(|s| {
        let mut key = api_key("app-jwt", &env, false);
        key.kind = "jwt_signing_key".into();
        key.target.token_ttl_secs = Some(2);
        key.target.cache_margin_secs = Some(1);
        with_vault(s, vec![key]);
        // The key's windows are a few seconds: replies paced at Telegram's per-chat rate
        // would hold the prompts past them.
        s.outbox.reply_burst = 100;
        s.rotation.worker_interval_ms = 100;
    })
    .await;
    add(&app, 42, "admin").await;
    let reply = rotate(&app, 42, "app-jwt").await;
    assert!(reply.contains("published as the next key"), "{reply}");
    assert_eq!(states(&app).await, vec![(1, "pending".to_string())]);
    assert_eq!(kids(&app).await.len(), 1, "the next key is published");
    assert!(
        env_value(&env, "APP_JWT_KID").is_none(),
        "not delivered yet"
    );
    for _ in 0..50 {
        if states(&app).await == vec![(1, "current".to_string())] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(states(&app).await, vec![(1, "current".to_string())]);
    let first_kid = env_value(&env, "APP_JWT_KID").expect("delivered once current");
    assert_eq!(kids(&app).await, vec![first_kid.clone()]);

    rotate(&app, 42, "app-jwt").await;
    let published = kids(&app).await;
    assert_eq!(published.len(), 2, "current and next");
    assert_eq!(published[0], first_kid, "the current key is listed first");
    assert_eq!(
        env_value(&env, "APP_JWT_KID").unwrap(),
        first_kid,
        "still signing with v1"
    );
    let listed = app.say(42, "/secrets").await.text();
    assert!(listed.contains("waiting at step finish"), "{listed}");
    assert!(
        !listed.contains("last error"),
        "waiting is not an error: {listed}"
    );
}
