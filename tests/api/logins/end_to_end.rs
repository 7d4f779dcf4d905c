//! The whole road: a service posts failures over HTTP, the detector raises one alert, the
//! outbox pushes it to the on-call group with its buttons, an operator presses Ack there,
//! and further failures only update the count.

use super::press_in;
use crate::helpers::*;
use opsguard::domain::ChatId;
use opsguard::domain::secret::Secret;
use opsguard::logins::jwt;
use opsguard::storage::chats;
use serde_json::json;

const GROUP: i64 = -100_777;
const KEY: &str = "end-to-end-ingest-key-0123456789";

async fn post(app: &TestApp, token: &str, events: Vec<serde_json::Value>) {
    let response = app
        .http
        .post(app.url("/api/v1/auth-events"))
        .bearer_auth(token)
        .json(&events)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
}

fn failures(account: &str, n: usize, offset: usize) -> Vec<serde_json::Value> {
    let at = chrono::Utc::now().to_rfc3339();
    (0..n)
        .map(|i| {
            json!({ "at": at, "ip": format!("203.0.113.{}", offset + i), "account": account,
                    "service": "sso", "outcome": "failure" })
        })
        .collect()
}

#[tokio::test]
async fn posted_failures_raise_one_pushed_alert_that_an_operator_acks_from_the_group() {
    let app = spawn_app_with(|s| {
        s.logins.ingest.jwt_secret = Some(Secret::new(KEY));
        s.logins.alert_chats = vec![GROUP];
        s.outbox.poll_interval_ms = 20;
        s.outbox.per_chat_interval_ms = 50;
    })
    .await;
    chats::allow(app.pool(), ChatId(GROUP), "on-call")
        .await
        .unwrap();
    app.add_user(42, "operator").await;
    let settings = &app.engine.settings().logins.ingest;
    let token = jwt::issue(
        "sso",
        std::time::Duration::from_secs(600),
        &Secret::new(KEY),
        &settings.issuer,
        chrono::Utc::now().timestamp() as u64,
    )
    .unwrap();

    post(&app, &token, failures("<b>carol</b>", 4, 1)).await;
    post(&app, &token, failures("<b>carol</b>", 1, 10)).await;
    let telegram = app.telegram.clone();
    telegram
        .wait_until("the pushed alert", |_| !telegram.sent_to(GROUP).is_empty())
        .await;
    let pushed = telegram.sent_to(GROUP)[0].clone();
    let text = pushed.text();
    assert!(
        text.contains("Failed logins on account &lt;b&gt;carol&lt;/b&gt;"),
        "{text}"
    );
    assert!(text.contains("account-lockout"), "{text}");
    let labels: Vec<String> = pushed.buttons().into_iter().map(|(l, _)| l).collect();
    assert_eq!(labels, ["✅ Ack", "🔕 Silence 1h", "🔎 Details"]);

    let ack = pushed.buttons()[0].1.clone();
    let before = telegram.sent_to(GROUP).len();
    press_in(&app, 42, GROUP, &ack).await;
    let acked = app.wait_reply(GROUP, before).await.text();
    assert!(acked.contains("acknowledged"), "{acked}");

    // The attack goes on: the alert counts on, nobody is paged again.
    post(&app, &token, failures("<b>carol</b>", 10, 20)).await;
    // The alert has counted all 15 (a push would be queued in the same transaction), and
    // the outbox holds nothing pending for the group: every push there has been made.
    wait_for(
        "the alert at 15 and nothing pending for the group",
        || async {
            let (count, pending): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT count FROM login_alerts WHERE rule = 'account-lockout'),
                    (SELECT count(*) FROM outbox WHERE chat_id = $1 AND status = 'pending')",
            )
            .bind(GROUP)
            .fetch_one(app.pool())
            .await
            .unwrap();
            count == 15 && pending == 0
        },
    )
    .await;
    let pushes = telegram
        .sent_to(GROUP)
        .iter()
        .filter(|c| c.text().contains("🚨"))
        .count();
    assert_eq!(pushes, 1, "one alert, not one per failure");
    let (count, acked_by): (i64, Option<i64>) =
        sqlx::query_as("SELECT count, acked_by FROM login_alerts WHERE rule = 'account-lockout'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!((count, acked_by), (15, Some(42)));
}
