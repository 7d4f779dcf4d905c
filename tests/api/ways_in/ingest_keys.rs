//! The ingest key: too short a key stops start-up; `nbf` is checked; and the key is rotated
//! without dropping events — tokens signed under the previous key (named by their `kid`)
//! keep working until the previous key is removed. Tokens come from the real
//! `opsguard token issue`, as an operator would make them.

use crate::helpers::*;
use crate::ingest::{SECRET, claims, event, now, post, sign, stored, with_secret};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use opsguard::domain::secret::Secret;
use opsguard::logins::keys::Keys;
use serde_json::json;

const OLD: &str = "the-old-ingest-key-0123456789abcdef";
const NEW: &str = "the-new-ingest-key-0123456789abcdef";

async fn token_issue(db: &TestDb, current: &str, previous: Option<&str>) -> String {
    let mut cmd = crate::process::opsguard(db);
    cmd.args(["token", "issue", "--service", "sso", "--ttl", "1h"])
        .env("OPSGUARD_INGEST_JWT_SECRET", current);
    if let Some(previous) = previous {
        cmd.env("OPSGUARD_INGEST_JWT_PREVIOUS_SECRET", previous);
    }
    let out = cmd.output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn kid_of(token: &str) -> Option<String> {
    jsonwebtoken::decode_header(token).unwrap().kid
}

fn batch(id: &str) -> String {
    json!([event(json!({ "id": id }))]).to_string()
}

#[tokio::test]
async fn a_short_ingest_key_stops_start_up() {
    let db = TestDb::create().await;
    let short = "thirty-one-bytes-is-not-enough!";
    assert_eq!(short.len(), 31);
    for var in [
        "OPSGUARD_INGEST_JWT_SECRET",
        "OPSGUARD_INGEST_JWT_PREVIOUS_SECRET",
    ] {
        for args in [
            &["config", "check"][..],
            &["token", "issue", "--service", "x"][..],
        ] {
            let out = crate::process::opsguard(&db)
                .args(args)
                .env("OPSGUARD_INGEST_JWT_SECRET", OLD)
                .env(var, short)
                .output()
                .await
                .unwrap();
            let (stdout, stderr) = (
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
            assert!(!out.status.success(), "{var} {args:?}: {stdout}");
            assert!(stderr.contains(var), "{stderr}");
            assert!(stderr.contains("at least 32 bytes"), "{stderr}");
            assert!(!stderr.contains(short) && !stdout.contains(short));
        }
    }
    let telegram = crate::fake_telegram::FakeTelegram::start().await;
    let mut settings = settings_for(&db, &telegram.url);
    settings.logins.ingest.jwt_secret = Some(Secret::new(short));
    let refused = opsguard::startup::Application::build(settings).await;
    assert!(refused.is_err(), "a short key in code is refused as well");
}

#[tokio::test]
async fn a_token_before_its_nbf_or_naming_an_unknown_key_is_refused() {
    let app = spawn_app_with(with_secret).await;
    let mut early = claims();
    early["nbf"] = json!(now() + 3600);
    let (status, answer) = post(&app, Some(&sign(&early, SECRET)), batch("n-1")).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("token not valid yet"))
    );
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("0badc0de".into());
    opsguard::jwt_crypto::install();
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let unknown = jsonwebtoken::encode(&header, &claims(), &key).unwrap();
    let (status, answer) = post(&app, Some(&unknown), batch("n-2")).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("unknown key id (kid)"))
    );
    assert_eq!(stored(&app).await, 0);
}

#[tokio::test]
async fn the_ingest_key_is_rotated_without_dropping_events() {
    let before = spawn_app_with(|s| s.logins.ingest.jwt_secret = Some(Secret::new(OLD))).await;
    let old_token = token_issue(&before.db, OLD, None).await;
    assert_eq!(kid_of(&old_token), Some(Keys::kid(&Secret::new(OLD))));
    assert_eq!(post(&before, Some(&old_token), batch("r-1")).await.0, 202);

    // Step 1: every replica gets the new key, the old one as the previous.
    let rotated = before
        .spawn_replica_with(|s| {
            s.logins.ingest.jwt_secret = Some(Secret::new(NEW));
            s.logins.ingest.jwt_previous_secret = Some(Secret::new(OLD));
        })
        .await;
    let (status, answer) = post(&rotated, Some(&old_token), batch("r-2")).await;
    assert_eq!(status, 202, "a token of the old key still posts: {answer}");
    // Step 2: new tokens are signed with the new key and name it.
    let new_token = token_issue(&before.db, NEW, Some(OLD)).await;
    assert_eq!(kid_of(&new_token), Some(Keys::kid(&Secret::new(NEW))));
    assert_eq!(post(&rotated, Some(&new_token), batch("r-3")).await.0, 202);
    // (A replica not yet given the new key does not know it: roll every replica first.)
    let (status, answer) = post(&before, Some(&new_token), batch("r-x")).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("unknown key id (kid)"))
    );

    // Step 3: once no service uses an old token, the previous key is removed.
    let after = before
        .spawn_replica_with(|s| s.logins.ingest.jwt_secret = Some(Secret::new(NEW)))
        .await;
    let (status, answer) = post(&after, Some(&old_token), batch("r-4")).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("unknown key id (kid)"))
    );
    assert_eq!(post(&after, Some(&new_token), batch("r-5")).await.0, 202);
    let ids: Vec<String> = sqlx::query_scalar("SELECT event_id FROM auth_events ORDER BY event_id")
        .fetch_all(before.pool())
        .await
        .unwrap();
    assert_eq!(ids, ["r-1", "r-2", "r-3", "r-5"], "no event was dropped");
}
