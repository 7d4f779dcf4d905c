//! Refusals of the ingest API: every bad token (401, or 403 without `events:write`), bad
//! events (422 naming each index), oversized and malformed bodies — each with its reason
//! in the JSON answer, and nothing stored.

use super::*;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[tokio::test]
async fn bad_tokens_are_refused_with_their_reason_and_store_nothing() {
    let app = spawn_app_with(with_secret).await;
    let with = |k: &str, v: Value| {
        let mut c = claims();
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(k);
        c
    };
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let none_body = URL_SAFE_NO_PAD.encode(claims().to_string());
    let cases: Vec<(&str, Option<String>, u16, &str)> = vec![
        ("no token", None, 401, "missing bearer token"),
        (
            "empty token",
            Some(String::new()),
            401,
            "missing bearer token",
        ),
        ("garbage", Some("not.a.jwt".into()), 401, "malformed token"),
        (
            "expired",
            Some(sign(&with("exp", json!(now() - 3600)), SECRET)),
            401,
            "token expired",
        ),
        (
            "other key",
            Some(sign(&claims(), "another-secret-entirely")),
            401,
            "bad signature",
        ),
        (
            "alg none",
            Some(format!("{none_header}.{none_body}.")),
            401,
            "algorithm not allowed: only HS256 is accepted",
        ),
        (
            "wrong audience",
            Some(sign(&with("aud", json!("someone-else")), SECRET)),
            401,
            "wrong audience",
        ),
        (
            "wrong issuer",
            Some(sign(&with("iss", json!("mallory")), SECRET)),
            401,
            "wrong issuer",
        ),
        (
            "no exp",
            Some(sign(&without("exp"), SECRET)),
            401,
            "missing claim: exp",
        ),
        (
            "no sub",
            Some(sign(&without("sub"), SECRET)),
            401,
            "missing claim: sub",
        ),
        (
            "no scope",
            Some(sign(&without("scope"), SECRET)),
            403,
            "token lacks the scope events:write",
        ),
        (
            "read scope only",
            Some(sign(&with("scope", json!("events:read admin")), SECRET)),
            403,
            "token lacks the scope events:write",
        ),
    ];
    let body = json!([event(json!({}))]).to_string();
    for (name, token, want, reason) in cases {
        let (status, answer) = post(&app, token.as_deref(), body.clone()).await;
        assert_eq!(status, want, "{name}: {answer}");
        assert_eq!(answer["error"], reason, "{name}");
    }
    assert_eq!(stored(&app).await, 0);
}

#[tokio::test]
async fn the_token_is_checked_before_the_body_is_read() {
    let app = spawn_app_with(|s| {
        with_secret(s);
        s.logins.ingest.max_body_bytes = 1024;
    })
    .await;
    let (status, answer) = post(&app, None, "x".repeat(4096)).await;
    assert_eq!(status, 401, "{answer}");
}

#[tokio::test]
async fn bad_events_are_rejected_one_by_one_naming_every_index_and_the_good_ones_stored() {
    let app = spawn_app_with(with_secret).await;
    let future = (chrono::Utc::now() + chrono::Duration::seconds(600)).to_rfc3339();
    let batch = json!([
        event(json!({"id": "ok-1"})),
        event(json!({"ip": "999.1.1.1"})),
        event(json!({"at": future})),
        {"ip": "192.0.2.1", "outcome": "failure"},
        event(json!({"outcome": "maybe"})),
        event(json!({"account": "a".repeat(257), "service": "s".repeat(257)})),
        event(json!({"reason": "r".repeat(513), "user_agent": "u".repeat(513), "id": "i".repeat(129)})),
        event(json!({"account": "eve\u{7}", "service": "web\nx"})),
        event(json!({"ip": 17})),
        "not an object",
        event(json!({"account": "x".repeat(256), "reason": "r".repeat(512), "id": "i".repeat(128)})),
    ]);
    let (status, answer) = post(&app, Some(&good_token()), batch.to_string()).await;
    // 202: the shipper must not send the batch again (the good events are stored).
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        (
            &answer["accepted"],
            &answer["duplicates"],
            &answer["rejected"]
        ),
        (&json!(2), &json!(0), &json!(9))
    );
    let problems: Vec<(u64, &str)> = answer["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["index"].as_u64().unwrap(), p["problem"].as_str().unwrap()))
        .collect();
    assert_eq!(
        problems,
        [
            (1, "ip: not an IP address"),
            (2, "at: more than 300 seconds in the future"),
            (3, "at: missing; service: missing"),
            (4, "outcome: must be failure, success or locked"),
            (
                5,
                "account: longer than 256 characters; service: longer than 256 characters"
            ),
            (
                6,
                "id: longer than 128 characters; reason: longer than 512 characters; user_agent: longer than 512 characters"
            ),
            (
                7,
                "account: contains control characters; service: contains control characters"
            ),
            (8, "ip: must be a string, not a number"),
            (9, "an event must be a JSON object"),
        ]
    );
    let kept: Vec<Option<String>> =
        sqlx::query_scalar("SELECT event_id FROM auth_events ORDER BY id")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(kept, [Some("ok-1".to_string()), Some("i".repeat(128))]);

    // A batch with no valid event is refused whole, 422, and stores nothing more.
    let bad = json!([event(json!({"ip": "999.1.1.1"})), "x"]);
    let (status, answer) = post(&app, Some(&good_token()), bad.to_string()).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"], "2 invalid events; nothing was stored");
    assert_eq!(answer["problems"][1]["index"], 1);
    assert_eq!(stored(&app).await, 2);
}

#[tokio::test]
async fn oversized_batches_are_413_and_malformed_bodies_400() {
    let app = spawn_app_with(|s| {
        with_secret(s);
        s.logins.ingest.max_events = 3;
        s.logins.ingest.max_body_bytes = 2048;
    })
    .await;
    let token = good_token();
    let four = json!([
        event(json!({})),
        event(json!({})),
        event(json!({})),
        event(json!({}))
    ]);
    let (status, answer) = post(&app, Some(&token), four.to_string()).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(
        answer["error"],
        "the batch holds more than 3 events (at least 4)"
    );
    let lines = vec![event(json!({})).to_string(); 4].join("\n");
    assert_eq!(post(&app, Some(&token), lines).await.0, 413);

    let padded = event(json!({"reason": "r".repeat(500), "user_agent": "u".repeat(500)}));
    let big = json!([padded, padded]).to_string();
    assert!(big.len() > 2048);
    let (status, answer) = post(&app, Some(&token), big).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"], "the body is larger than 2048 bytes");

    let (status, answer) = post(&app, Some(&token), "[{\"at\":").await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("the body is not a JSON array or NDJSON")
    );
    let (status, answer) = post(&app, Some(&token), "[]").await;
    assert_eq!(
        (status, &answer["error"]),
        (422, &json!("the batch holds no events"))
    );
    assert_eq!(stored(&app).await, 0);
}
