//! Batches evaluated at the same time by one detector are recorded together (one alert
//! transaction at a time): each batch gets back the alerts its own episodes opened, and an
//! attack spread over concurrent batches pages once — on one replica or on several (before,
//! replicas recording the same key at once paged two or three times, or lost the crossing
//! to a unique violation).

use super::*;

fn ip_rule(s: &mut Settings) {
    only_rule(s, "ip-failures", 900);
}

/// `n` failures from `ip` on distinct accounts, a millisecond apart from `start`.
fn burst(ip: &str, n: usize, start: DateTime<Utc>) -> Vec<AuthEvent> {
    (0..n)
        .map(|i| {
            failure(
                ip,
                &format!("u{i}"),
                start + Duration::milliseconds(i as i64),
            )
        })
        .collect()
}

#[tokio::test]
async fn concurrent_batches_each_get_the_alerts_their_own_episodes_opened() {
    let app = spawn_app_with(ip_rule).await;
    let detector = detector(&app);
    let start = Utc::now() - Duration::seconds(30);
    let sources: Vec<String> = (1..=6).map(|i| format!("203.0.113.{i}")).collect();
    let batches: Vec<Vec<AuthEvent>> = sources.iter().map(|ip| burst(ip, 11, start)).collect();
    let opened = futures::future::join_all(batches.iter().map(|b| detector.detect(b))).await;
    for (ip, opened) in sources.iter().zip(opened) {
        let keys: Vec<String> = opened.unwrap().into_iter().map(|a| a.key).collect();
        assert_eq!(keys, [format!("ip:{ip}")]);
    }
    assert_eq!(pushes(&app).await.len(), 6);
}

#[tokio::test]
async fn an_attack_split_over_concurrent_batches_pages_once() {
    let app = spawn_app_with(ip_rule).await;
    let detector = detector(&app);
    let start = Utc::now() - Duration::seconds(30);
    // Four batches of 11 failures each from one address, at the same time: each alone
    // would cross the threshold.
    let batches: Vec<Vec<AuthEvent>> = (0..4)
        .map(|b| burst("198.51.100.7", 11, start + Duration::milliseconds(b * 20)))
        .collect();
    let opened = futures::future::join_all(batches.iter().map(|b| detector.detect(b))).await;
    let opened: usize = opened.into_iter().map(|o| o.unwrap().len()).sum();
    assert_eq!(opened, 1);
    assert_eq!(pushes(&app).await.len(), 1);
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count FROM login_alerts WHERE state <> 'merged'")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(rows, [("open".to_string(), 44)]);
}

#[tokio::test]
async fn an_attack_split_over_replicas_at_the_same_time_pages_once() {
    let app = spawn_app_with(ip_rule).await;
    // Four replicas (detectors on the same database and Redis), each one batch of the
    // attack, all at once: each batch alone crosses the threshold.
    let replicas: Vec<Detector> = (0..4).map(|_| detector(&app)).collect();
    let start = Utc::now() - Duration::seconds(30);
    let batches: Vec<Vec<AuthEvent>> = (0..4)
        .map(|b| burst("198.51.100.9", 11, start + Duration::milliseconds(b * 20)))
        .collect();
    let opened =
        futures::future::join_all(replicas.iter().zip(&batches).map(|(r, b)| r.detect(b))).await;
    let opened: usize = opened.into_iter().map(|o| o.unwrap().len()).sum();
    assert_eq!(opened, 1);
    assert_eq!(pushes(&app).await.len(), 1);
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count FROM login_alerts WHERE state <> 'merged'")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(rows, [("open".to_string(), 44)]);
}
