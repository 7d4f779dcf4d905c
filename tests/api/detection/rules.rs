//! The other rules and the shared state: password spraying (20 distinct accounts, not 19),
//! a surge (101 failures a minute), two detectors on one Redis prefix raising one alert,
//! and detection from the stored events while Redis is unreachable.

use super::*;
use opsguard::redis_link::RedisLink;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn spraying_twenty_accounts_fires_and_nineteen_do_not() {
    let app = spawn_app_with(|s| only_rule(s, "password-spray", 900)).await;
    let detector = detector(&app);
    let now = Utc::now();
    let spray = |ip: &str, accounts: usize, repeats: usize| -> Vec<AuthEvent> {
        (0..accounts * repeats)
            .map(|i| {
                let at = now + Duration::milliseconds(i as i64);
                failure(ip, &format!("user{}", i % accounts), at)
            })
            .collect()
    };
    let nineteen = detector.detect(&spray("203.0.113.9", 19, 3)).await.unwrap();
    assert!(nineteen.is_empty(), "19 accounts, tried three times each");
    let twenty = detector
        .detect(&spray("203.0.113.10", 20, 1))
        .await
        .unwrap();
    assert_eq!(twenty.len(), 1);
    assert_eq!(twenty[0].key, "spray:203.0.113.10");
    let (_, html, _) = &pushes(&app).await[0];
    assert!(
        html.contains("Password spraying from 203.0.113.10"),
        "{html}"
    );
    assert!(
        html.contains("20 accounts in 10 min (fires at 20)"),
        "{html}"
    );
    // The 19-account IP's 20th account, later: it fires too.
    let one_more = vec![failure("203.0.113.9", "user19", now + Duration::seconds(1))];
    assert_eq!(detector.detect(&one_more).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_surge_of_more_than_a_hundred_failures_a_minute_fires() {
    let app = spawn_app_with(|s| only_rule(s, "surge", 900)).await;
    let detector = detector(&app);
    let mut events = Vec::new();
    for i in 0..101 {
        let at = Utc::now() + Duration::milliseconds(i);
        events.push(failure(
            &format!("192.0.2.{}", i % 200 + 1),
            &format!("u{i}"),
            at,
        ));
    }
    let mut success = events[0].clone();
    success.outcome = Outcome::Success;
    let mut batch = events[..100].to_vec();
    batch.push(success);
    assert!(
        detector.detect(&batch).await.unwrap().is_empty(),
        "100 failures and a success"
    );
    let fired = detector.detect(&events[100..]).await.unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].key, "all");
    let (_, html, _) = &pushes(&app).await[0];
    assert!(
        html.contains("101 failures in 60 s (fires at 101)"),
        "{html}"
    );
}

#[tokio::test]
async fn two_detectors_sharing_redis_raise_exactly_one_alert_for_an_interleaved_burst() {
    let app = spawn_app_with(|s| {
        only_rule(s, "account-lockout", 900);
        s.logins.rules[0].fire_at = 20;
    })
    .await;
    let shutdown = CancellationToken::new();
    let other_link = RedisLink::connect(
        REDIS_URL,
        &app.db.redis_prefix,
        std::time::Duration::from_secs(2),
        shutdown.clone(),
    )
    .await;
    let settings = app.engine.settings().logins.clone();
    let one = Arc::new(detector_with(&app, settings.clone()));
    let two = Arc::new(Detector::new(app.pool().clone(), settings, other_link));
    let accounts = ["frank", "grace", "heidi", "ivan", "judy"];
    let mut tasks = Vec::new();
    for account in accounts {
        let burst = failures_on(account, 20, Utc::now());
        let (even, odd): (Vec<_>, Vec<_>) =
            burst.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
        for (detector, half) in [(one.clone(), even), (two.clone(), odd)] {
            let half: Vec<AuthEvent> = half.into_iter().map(|(_, e)| e).collect();
            tasks.push(tokio::spawn(async move {
                for pair in half.chunks(2) {
                    detector.detect(pair).await.unwrap();
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let rows = alerts(&app).await;
    let mut keys: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    keys.sort();
    let expected: Vec<String> = accounts.iter().map(|a| format!("account:{a}")).collect();
    assert_eq!(keys, expected, "exactly one alert per burst");
    assert_eq!(pushes(&app).await.len(), accounts.len());
    assert!(!app.engine.redis().is_degraded());
    shutdown.cancel();
}

#[tokio::test]
async fn with_redis_unreachable_detection_continues_from_the_stored_events() {
    let app = spawn_app_with(|s| only_rule(s, "account-lockout", 900)).await;
    let shutdown = CancellationToken::new();
    let dead = RedisLink::connect(
        "redis://127.0.0.1:1",
        &app.db.redis_prefix,
        std::time::Duration::from_millis(200),
        shutdown.clone(),
    )
    .await;
    let detector = Detector::new(
        app.pool().clone(),
        app.engine.settings().logins.clone(),
        dead.clone(),
    );
    let events = failures_on("mallory", 6, Utc::now());
    // Stored first, as ingest does. The first four came through another replica (this
    // detector never saw them): while Redis is unreachable the windows are the stored events'
    // (issue 20), so they count.
    opsguard::logins::store::insert_batch(app.pool(), &events, "web")
        .await
        .unwrap();
    assert_eq!(detector.detect(&events[4..]).await.unwrap().len(), 1);
    assert!(dead.is_degraded());
    assert_eq!(alerts(&app).await[0].3, 6);
    shutdown.cancel();
}
