//! The ingest API and the Redis stream consumer: tokens, batches, bad input, duplicates.
//! Bad tokens and bad events are in `ingest/refusals.rs`, the stream in `ingest/stream.rs`,
//! the `token issue` command in `ingest/cli.rs`.

mod cli;
mod refusals;
mod shippers;
mod stream;

use super::helpers::*;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use opsguard::config::Settings;
use opsguard::domain::auth_event::AuthEvent;
use opsguard::domain::secret::Secret;
use opsguard::logins::ingest::Ingestor;
use serde_json::{Value, json};
use std::sync::Arc;

pub const SECRET: &str = "test-ingest-jwt-secret-0123456789abcdef";
pub const ISSUER: &str = "opsguard-ingest";

/// Settings for an ingest test: the JWT secret set, the stream consumer off.
pub fn with_secret(s: &mut Settings) {
    s.logins.ingest.jwt_secret = Some(Secret::new(SECRET));
    s.logins.stream.enabled = false;
}

pub fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// The claims of a good token; tests break one at a time.
pub fn claims() -> Value {
    json!({
        "sub": "auth-api", "iss": ISSUER, "aud": "opsguard",
        "exp": now() + 600, "scope": "events:write"
    })
}

pub fn sign(claims: &Value, key: &str) -> String {
    opsguard::jwt_crypto::install();
    let key = EncodingKey::from_secret(key.as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
}

pub fn good_token() -> String {
    sign(&claims(), SECRET)
}

/// An event dated a minute ago; `extra` fields override (serde_json keeps the last).
pub fn event(extra: Value) -> Value {
    let mut e = json!({
        "at": (chrono::Utc::now() - chrono::Duration::seconds(60)).to_rfc3339(),
        "ip": "203.0.113.9", "account": "alice", "service": "web", "outcome": "failure"
    });
    for (k, v) in extra.as_object().unwrap() {
        e[k] = v.clone();
    }
    e
}

/// POST a body with an optional Bearer token; the status and the JSON answer.
pub async fn post(app: &TestApp, token: Option<&str>, body: impl Into<String>) -> (u16, Value) {
    let mut request = app
        .http
        .post(app.url("/api/v1/auth-events"))
        .body(body.into());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub async fn stored(app: &TestApp) -> i64 {
    opsguard::logins::store::count(app.pool()).await.unwrap()
}

#[tokio::test]
async fn a_json_array_and_ndjson_are_stored_and_duplicate_ids_counted_once() {
    let app = spawn_app_with(with_secret).await;
    let token = good_token();
    let batch = json!([
        event(json!({"id": "e-1", "reason": "bad password", "user_agent": "curl/8.5"})),
        event(json!({"id": "e-2", "ip": "2001:db8::7", "outcome": "locked"})),
        event(json!({"id": "e-1", "account": "someone else"})),
        event(json!({"account": "<b>bob</b> & <a href=\"tg://x\">", "outcome": "success"})),
    ]);
    let (status, answer) = post(&app, Some(&token), batch.to_string()).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer, json!({"accepted": 3, "duplicates": 1}));

    let lines = [
        event(json!({"id": "e-2"})).to_string(),
        event(json!({"id": "e-3"})).to_string(),
        String::new(),
        event(json!({})).to_string(),
    ];
    let (status, answer) = post(&app, Some(&token), lines.join("\n")).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer, json!({"accepted": 2, "duplicates": 1}));
    assert_eq!(stored(&app).await, 5);

    // Ids are per sending service: another service's "e-1" is its own event, so no
    // service can claim (and so hide) ids another will send.
    let mut other = claims();
    other["sub"] = json!("billing");
    let other = sign(&other, SECRET);
    let (status, answer) = post(
        &app,
        Some(&other),
        json!([event(json!({"id": "e-1"}))]).to_string(),
    )
    .await;
    assert_eq!(
        (status, answer),
        (202, json!({"accepted": 1, "duplicates": 0}))
    );
    let (_, answer) = post(
        &app,
        Some(&other),
        json!([event(json!({"id": "e-1"}))]).to_string(),
    )
    .await;
    assert_eq!(answer, json!({"accepted": 0, "duplicates": 1}));
    sqlx::query("DELETE FROM auth_events WHERE sender = 'billing'")
        .execute(app.pool())
        .await
        .unwrap();

    type Row = (
        Option<String>,
        String,
        String,
        String,
        Option<String>,
        String,
    );
    let rows: Vec<Row> =
        sqlx::query_as(
            "SELECT event_id, host(ip), account, outcome, user_agent, sender FROM auth_events ORDER BY id",
        )
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(rows[0].0.as_deref(), Some("e-1"));
    assert_eq!(
        rows[0].2, "alice",
        "the first of two equal ids is the one kept"
    );
    assert_eq!(rows[0].4.as_deref(), Some("curl/8.5"));
    assert_eq!(
        (rows[1].1.as_str(), rows[1].3.as_str()),
        ("2001:db8::7", "locked")
    );
    assert_eq!(
        rows[2].2, "<b>bob</b> & <a href=\"tg://x\">",
        "stored verbatim"
    );
    assert!(
        rows.iter().all(|r| r.5 == "auth-api"),
        "the token's sub is the sender"
    );
}

#[tokio::test]
async fn without_a_jwt_secret_the_api_is_unavailable() {
    let app = spawn_app_with(|s| s.logins.stream.enabled = false).await;
    let (status, answer) = post(
        &app,
        Some(&good_token()),
        json!([event(json!({}))]).to_string(),
    )
    .await;
    assert_eq!(status, 503);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("OPSGUARD_INGEST_JWT_SECRET"),
        "{answer}"
    );
    assert_eq!(stored(&app).await, 0);
}

#[tokio::test]
async fn store_prune_deletes_only_events_older_than_the_retention() {
    let app = spawn_app_with(with_secret).await;
    let old = (chrono::Utc::now() - chrono::Duration::days(91)).to_rfc3339();
    let batch = json!([event(json!({"at": old})), event(json!({}))]);
    let (status, _) = post(&app, Some(&good_token()), batch.to_string()).await;
    assert_eq!(status, 202);
    let pruned = opsguard::logins::store::prune(app.pool(), 90)
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    assert_eq!(stored(&app).await, 1);
    assert_eq!(
        opsguard::logins::store::prune(app.pool(), u32::MAX)
            .await
            .unwrap(),
        0
    );
}

/// Records what it is handed; fails when asked to.
struct Recorder {
    seen: std::sync::Mutex<Vec<Option<String>>>,
    fail: bool,
}

#[async_trait::async_trait]
impl opsguard::logins::Evaluate for Recorder {
    async fn evaluate(&self, events: &[AuthEvent]) -> anyhow::Result<()> {
        let ids = events.iter().map(|e| e.id.clone());
        self.seen.lock().unwrap().extend(ids);
        if self.fail {
            anyhow::bail!("detector down");
        }
        Ok(())
    }
}

#[tokio::test]
async fn only_newly_stored_events_are_evaluated_and_an_evaluation_error_is_not_returned() {
    let app = spawn_app_with(with_secret).await;
    let limits = opsguard::domain::auth_batch::Limits {
        max_events: 100,
        max_future_secs: 300,
    };
    let parse = |v: Value| {
        opsguard::domain::auth_batch::parse_batch(v.to_string().as_bytes(), Utc::now(), &limits)
            .unwrap()
            .events
    };
    for fail in [false, true] {
        let recorder = Arc::new(Recorder {
            seen: Default::default(),
            fail,
        });
        let settings = app.engine.settings().logins.ingest.clone();
        let ingestor = Ingestor::new(app.pool().clone(), settings, recorder.clone());
        let tag = if fail { "f" } else { "ok" };
        let first = parse(json!([event(json!({"id": format!("{tag}-1")}))]));
        ingestor.ingest(first, "test").await.unwrap();
        let batch = parse(json!([
            event(json!({"id": format!("{tag}-1")})),
            event(json!({"id": format!("{tag}-2")})),
            event(json!({"id": format!("{tag}-2")})),
            event(json!({})),
        ]));
        let outcome = ingestor.ingest(batch, "test").await.unwrap();
        assert_eq!((outcome.accepted, outcome.duplicates), (2, 2));
        let seen = recorder.seen.lock().unwrap().clone();
        let want = [Some(format!("{tag}-1")), Some(format!("{tag}-2")), None];
        assert_eq!(seen, want, "each event evaluated once, when first stored");
    }
    assert_eq!(stored(&app).await, 6);
}
