//! /logins, /alerts, /ack, /silence, /prune_logins and the buttons on pushed alerts, seen
//! as the operator sees them through the fake Bot API. Events and alerts are seeded in
//! the database directly; ingest and detection have their own tests.

mod end_to_end;
mod replay;

use super::helpers::*;
use opsguard::domain::{ActionId, ChatId};
use opsguard::engine::gates::CHAT_ACTION_PREFIX;
use opsguard::storage::{chats, pending};
use serde_json::json;

/// Seed `n` events of one kind, `minutes_ago` in the past.
async fn seed(app: &TestApp, ip: &str, account: &str, outcome: &str, n: i64, minutes_ago: f64) {
    sqlx::query(
        "INSERT INTO auth_events (at, ip, account, service, outcome, sender)
         SELECT now() - $5 * interval '1 minute', $1::inet, $2, 'sso', $3, 'test'
         FROM generate_series(1, $4)",
    )
    .bind(ip)
    .bind(account)
    .bind(outcome)
    .bind(n)
    .bind(minutes_ago)
    .execute(app.pool())
    .await
    .unwrap();
}

async fn alert(
    app: &TestApp,
    rule: &str,
    key: &str,
    ip: Option<&str>,
    account: Option<&str>,
) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO login_alerts (rule, key, ip, account, count, first_at, last_at)
         VALUES ($1, $2, $3::inet, $4, 12, now() - interval '5 minutes', now()) RETURNING id",
    )
    .bind(rule)
    .bind(key)
    .bind(ip)
    .bind(account)
    .fetch_one(app.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn logins_shows_totals_top_ips_and_accounts_escaped_and_a_chart() {
    let app = spawn_app().await;
    app.add_user(42, "viewer").await;
    seed(&app, "203.0.113.7", "<b>evil</b>&co", "failure", 30, 3.0).await;
    seed(&app, "198.51.100.2", "alice", "failure", 5, 20.0).await;
    seed(&app, "198.51.100.2", "alice", "locked", 1, 20.0).await;
    seed(&app, "192.0.2.1", "bob", "success", 64, 10.0).await;
    seed(&app, "192.0.2.9", "old", "failure", 99, 120.0).await;
    let id = alert(
        &app,
        "ip-failures",
        "ip:203.0.113.7",
        Some("203.0.113.7"),
        None,
    )
    .await;

    let reply = app.say(42, "/logins").await.text();
    assert!(reply.contains("Logins, last 1h"), "{reply}");
    assert!(
        reply.contains("35 failed · 1 locked · 64 succeeded"),
        "{reply}"
    );
    assert!(reply.contains("failure rate 36.0%"), "{reply}");
    assert!(
        reply.contains("&lt;b&gt;evil&lt;/b&gt;&amp;co"),
        "escaped: {reply}"
    );
    assert!(!reply.contains("<b>evil"), "{reply}");
    assert!(!reply.contains("192.0.2.9"), "outside the window: {reply}");
    let ips = reply.find("203.0.113.7").unwrap();
    assert!(
        ips < reply.find("198.51.100.2").unwrap(),
        "most failures first"
    );
    assert!(reply.contains(&format!("#{id} ip-failures")), "{reply}");

    let photos = app
        .telegram
        .wait_until("the chart", |calls| {
            calls.iter().any(|c| c.method == "sendPhoto")
        })
        .await;
    let photo = photos.iter().find(|c| c.method == "sendPhoto").unwrap();
    assert_eq!(photo.body["chat_id"], json!(42));
    assert!(photo.raw().contains("PNG"), "a PNG was uploaded");
    assert!(photo.raw().len() > 10_000);

    let day = app.say(42, "/logins 24h").await.text();
    assert!(day.contains("134 failed"), "{day}");
    let bad = app.say(42, "/logins 3w").await.text();
    assert!(bad.contains("15m, 1h, 24h or 7d"), "{bad}");
}

#[tokio::test]
async fn alerts_ack_and_silence_from_chat() {
    let app = spawn_app().await;
    app.add_user(42, "operator").await;
    app.add_user(43, "viewer").await;
    let id = alert(
        &app,
        "account-lockout",
        "account:<i>bob</i>",
        // The detector records the last IP of an account alert too.
        Some("198.51.100.250"),
        Some("<i>bob</i>"),
    )
    .await;
    seed(&app, "203.0.113.9", "<i>bob</i>", "failure", 6, 2.0).await;

    let list = app.say(43, "/alerts").await.text();
    assert!(list.contains(&format!("#{id}")), "{list}");
    assert!(list.contains("account:&lt;i&gt;bob&lt;/i&gt;"), "{list}");
    let details = app.say(43, &format!("/alerts {id}")).await.text();
    assert!(
        details.contains("IPs that failed on this account"),
        "{details}"
    );
    assert!(details.contains("203.0.113.9"), "{details}");

    let denied = app.say(43, &format!("/ack {id}")).await.text();
    assert!(denied.contains("may not run /ack"), "{denied}");
    let acked = app.say(42, &format!("/ack {id}")).await.text();
    assert!(
        acked.contains(&format!("Alert #{id} acknowledged")),
        "{acked}"
    );
    let again = app.say(42, &format!("/ack {id}")).await.text();
    assert!(again.contains("already acknowledged by 42"), "{again}");
    let missing = app.say(42, "/ack 999999").await.text();
    assert!(missing.contains("There is no alert #999999"), "{missing}");

    let silenced = app.say(42, &format!("/silence {id} 1h")).await.text();
    assert!(
        silenced.contains("Silenced <code>account:&lt;i&gt;bob&lt;/i&gt;</code> for 1h"),
        "{silenced}"
    );
    let matcher: String = sqlx::query_scalar("SELECT matcher FROM login_silences")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(matcher, "account:<i>bob</i>");
    // A second silence of the same key extends the first instead of adding a row.
    app.say(42, &format!("/silence {id} 2h")).await;
    let rule = app.say(42, "/silence ip-failures 30m").await.text();
    assert!(rule.contains("Silenced <code>ip-failures</code>"), "{rule}");
    let listed = app.say(43, "/alerts").await.text();
    assert!(listed.contains("🔕 Silences"), "{listed}");
    assert!(listed.contains("✅ acked by 42"), "{listed}");

    for (line, expected) in [
        (
            "/silence nosuchrule 1h",
            "No rule named nosuchrule. Rules: ip-failures",
        ),
        ("/silence ip-failures 45d", "1 minute to 30 days"),
        ("/silence ip:not-an-ip 1h", "not an IP address"),
        ("/silence 17", "Usage: <code>/silence"),
    ] {
        let reply = app.say(42, line).await.text();
        assert!(reply.contains(expected), "{line}: {reply}");
    }
    let silences: i64 = sqlx::query_scalar("SELECT count(*) FROM login_silences")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(silences, 2, "bad input changed nothing");
}

/// Press `data` in `chat` as `user`; returns the answerCallbackQuery call.
pub async fn press_in(
    app: &TestApp,
    user: i64,
    chat: i64,
    data: &str,
) -> super::fake_telegram::Call {
    let update_id = app.next_update_id();
    let update = callback_update(update_id, user, chat, data, 777);
    assert_eq!(app.post_update(&update).await.status(), 200);
    let id = json!(format!("cb{update_id}"));
    let calls = app
        .telegram
        .wait_until("the callback answer", |calls| {
            calls
                .iter()
                .any(|c| c.method == "answerCallbackQuery" && c.body["callback_query_id"] == id)
        })
        .await;
    calls
        .into_iter()
        .find(|c| c.method == "answerCallbackQuery" && c.body["callback_query_id"] == id)
        .unwrap()
}

#[tokio::test]
async fn chat_buttons_run_their_command_for_whoever_may_and_stay_on_the_message() {
    let app = spawn_app().await;
    let group = -100_555;
    chats::allow(app.pool(), ChatId(group), "on-call")
        .await
        .unwrap();
    app.add_user(42, "operator").await;
    app.add_user(43, "viewer").await;
    let id = alert(
        &app,
        "ip-failures",
        "ip:203.0.113.7",
        Some("203.0.113.7"),
        None,
    )
    .await;
    let ttl = chrono::Duration::hours(1);
    let ack = pending::create_for_chat(app.pool(), group, &format!("/ack {id}"), ttl)
        .await
        .unwrap();
    let ack = format!("{CHAT_ACTION_PREFIX}{ack}");

    // A viewer's press is refused privately and changes nothing.
    let refused = press_in(&app, 43, group, &ack).await;
    assert_eq!(refused.body["text"], "⛔ You may not run /ack.");
    let acked_by: Option<i64> =
        sqlx::query_scalar("SELECT acked_by FROM login_alerts WHERE id = $1")
            .bind(id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(acked_by, None);

    // An operator's press acknowledges, in the group, and the buttons stay.
    let before = app.telegram.sent_to(group).len();
    let answer = press_in(&app, 42, group, &ack).await;
    assert!(answer.body.get("text").is_none(), "{:?}", answer.body);
    let shown = app.wait_reply(group, before).await.text();
    assert!(
        shown.contains(&format!("Alert #{id} acknowledged")),
        "{shown}"
    );
    assert!(app.telegram.calls_to("editMessageReplyMarkup").is_empty());
    let rows = app.audit_rows().await;
    assert!(
        rows.iter()
            .any(|r| r.entry.command == "ack" && r.entry.actor_id == Some(42))
    );

    // The same button in another chat, a forged id and an expired one are refused.
    // The literal refusal, the same for all three, so none tells which it was.
    const REFUSED: &str = "⌛ This button has expired or does not belong here.";
    let other = press_in(&app, 42, 42, &ack).await;
    assert_eq!(other.body["text"], REFUSED);
    let forged = press_in(
        &app,
        42,
        group,
        &format!("{CHAT_ACTION_PREFIX}{}", ActionId::for_button()),
    )
    .await;
    assert_eq!(forged.body["text"], REFUSED);
    let old = pending::create_for_chat(app.pool(), group, "/alerts", chrono::Duration::seconds(-1))
        .await
        .unwrap();
    let expired = press_in(&app, 42, group, &format!("{CHAT_ACTION_PREFIX}{old}")).await;
    assert_eq!(expired.body["text"], REFUSED);
    app.idle().await;
    let refusals = app.audit_rows().await.into_iter().filter(|r| {
        r.entry.phase == "attempt"
            && r.entry.reason.as_deref() == Some("unknown, expired or foreign chat button")
    });
    assert_eq!(refusals.count(), 3, "each refusal audited");
    let acked_by: Option<i64> =
        sqlx::query_scalar("SELECT acked_by FROM login_alerts WHERE id = $1")
            .bind(id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(acked_by, Some(42), "acknowledged by 42 alone");
}

#[tokio::test]
async fn prune_logins_removes_only_events_past_retention_and_is_audited() {
    let app = spawn_app_with(|s| s.logins.retention_days = 30).await;
    app.add_user(1, "admin").await;
    app.add_user(2, "operator").await;
    seed(&app, "203.0.113.7", "a", "failure", 7, 31.0 * 1440.0).await;
    seed(&app, "203.0.113.7", "a", "failure", 3, 29.0 * 1440.0).await;
    let denied = app.say(2, "/prune_logins").await.text();
    assert!(denied.contains("may not run"), "{denied}");
    let done = app.say(1, "/prune_logins").await.text();
    assert!(
        done.contains("Removed 7 auth events older than 30 days"),
        "{done}"
    );
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM auth_events")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(left, 3);
    app.settle().await;
    let rows = app.audit_rows().await;
    assert!(
        rows.iter()
            .any(|r| r.entry.command == "prune_logins" && r.entry.phase == "outcome")
    );
}
