//! One page per attack and the settings around it: an account alert from a source that
//! already has an open alert is folded into that alert (one page, edited in place with the
//! account and the rule), a host-name source alerts like an address, ignored networks never
//! alert, a per-account threshold, and escalation of what nobody acknowledged.

use super::*;
use opsguard::domain::auth_event::Source;

fn rules(names: &[&str]) -> impl FnOnce(&mut Settings) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    move |s| {
        s.logins.rules.retain(|r| names.contains(&r.name));
        for r in &mut s.logins.rules {
            r.cooldown_secs = None;
        }
        s.logins.alert_chats = vec![ALERT_CHAT];
        s.logins.update_every_secs = 1;
    }
}

/// `n` failures from `source` on `account`, a second apart from `start`.
fn from(source: Source, account: &str, n: usize, start: DateTime<Utc>) -> Vec<AuthEvent> {
    (0..n)
        .map(|i| AuthEvent {
            source: source.clone(),
            ..failure("192.0.2.1", account, start + Duration::seconds(i as i64))
        })
        .collect()
}

fn ip(s: &str) -> Source {
    Source::Ip(s.parse().unwrap())
}

#[tokio::test]
async fn an_account_alert_from_an_alerted_address_is_folded_into_its_page() {
    let app = spawn_app_with(rules(&["ip-failures", "account-lockout"])).await;
    let detector = detector(&app);
    let start = Utc::now() - Duration::seconds(120);
    // 11 accounts tried once each from one address: the address pages.
    let spread: Vec<AuthEvent> = (0..11)
        .map(|i| AuthEvent {
            source: ip("203.0.113.7"),
            ..failure("192.0.2.1", &format!("u{i}"), start + Duration::seconds(i))
        })
        .collect();
    assert_eq!(detector.detect(&spread).await.unwrap().len(), 1);
    // Then five on alice from the same address: an account alert, folded, not paged.
    let alice = from(ip("203.0.113.7"), "alice", 5, start + Duration::seconds(20));
    assert!(detector.detect(&alice).await.unwrap().is_empty());
    let pushed = pushes(&app).await;
    assert_eq!(pushed.len(), 1, "one page for the attack");
    assert!(
        pushed[0].1.contains("Brute force from 203.0.113.7"),
        "{}",
        pushed[0].1
    );
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT a.key, a.state, h.key FROM login_alerts a
         LEFT JOIN login_alerts h ON h.id = a.merged_into ORDER BY a.id",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            ("ip:203.0.113.7".into(), "open".into(), None),
            (
                "account:alice".into(),
                "folded".into(),
                Some("ip:203.0.113.7".into())
            ),
        ]
    );
    // The page is edited in place: the account and the rule folded in.
    let edits = alert_edits(&app).await;
    let text = &edits.last().expect("an edit of the page").1;
    assert_eq!(edits.last().unwrap().0, pushed[0].0);
    assert!(text.contains("alice"), "{text}");
    assert!(text.contains("also: account-lockout"), "{text}");
    // More failures on alice count on her own row, and still page nothing.
    let more = from(ip("203.0.113.7"), "alice", 3, start + Duration::seconds(40));
    assert!(detector.detect(&more).await.unwrap().is_empty());
    let count: i64 =
        sqlx::query_scalar("SELECT count FROM login_alerts WHERE key = 'account:alice'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(count, 8);
    assert_eq!(pushes(&app).await.len(), 1);
}

#[tokio::test]
async fn a_host_name_source_alerts_and_events_without_an_account_count() {
    let app = spawn_app_with(rules(&["ip-failures", "account-lockout"])).await;
    let detector = detector(&app);
    let host = Source::Host("scanner.example.net".into());
    let mut events = from(host, "x", 11, Utc::now() - Duration::seconds(30));
    for e in &mut events {
        e.account = None;
    }
    let fired = detector.detect(&events).await.unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].key, "host:scanner.example.net");
    let pushed = pushes(&app).await;
    assert!(
        pushed[0].1.contains("Brute force from scanner.example.net"),
        "{}",
        pushed[0].1
    );
    let host: Option<String> = sqlx::query_scalar("SELECT host FROM login_alerts")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(host.as_deref(), Some("scanner.example.net"));
}

#[tokio::test]
async fn ignored_networks_never_alert_and_an_account_threshold_overrides_the_rule() {
    let app = spawn_app_with(|s| {
        rules(&["ip-failures", "account-lockout"])(s);
        s.logins.ignore = vec!["192.0.2.0/24".parse().unwrap()];
        let lockout = s
            .logins
            .rules
            .iter_mut()
            .find(|r| r.name == "account-lockout");
        lockout.unwrap().accounts.insert("root".into(), 20);
    })
    .await;
    let detector = detector(&app);
    let start = Utc::now() - Duration::seconds(60);
    // 30 failures on root from an ignored address: nothing.
    let office = from(ip("192.0.2.9"), "root", 30, start);
    assert!(detector.detect(&office).await.unwrap().is_empty());
    // 19 on root from distinct addresses: under root's own threshold of 20.
    let root: Vec<AuthEvent> = failures_on("root", 19, start);
    assert!(detector.detect(&root).await.unwrap().is_empty());
    // The 20th fires; alice fires at the rule's 5.
    let twentieth = failures_on("root", 1, start + Duration::seconds(5));
    let fired = detector.detect(&twentieth).await.unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].key, "account:root");
    let alice = detector
        .detect(&failures_on("alice", 5, start))
        .await
        .unwrap();
    assert_eq!(alice.len(), 1);
    let keys: Vec<String> = alerts(&app).await.into_iter().map(|a| a.2).collect();
    assert_eq!(keys, ["account:root", "account:alice"]);
}

#[tokio::test]
async fn an_unacknowledged_alert_escalates_once_saying_who_was_paged_and_when() {
    const ESCALATION: i64 = -100_999;
    let app = spawn_app_with(|s| {
        rules(&["account-lockout"])(s);
        s.logins.escalation_chats = vec![ESCALATION];
        s.logins.escalate_after_secs = 600;
    })
    .await;
    let settings = app.engine.settings().logins.clone();
    let detector = detector(&app);
    let start = Utc::now() - Duration::seconds(60);
    let bob = detector
        .detect(&failures_on("bob", 5, start))
        .await
        .unwrap();
    let carol = detector
        .detect(&failures_on("carol", 5, start))
        .await
        .unwrap();
    let escalate = || opsguard::logins::escalation::escalate_due(app.pool(), &settings);
    // Not yet due.
    assert_eq!(escalate().await.unwrap(), Vec::<i64>::new());
    // Paged 11 minutes ago; carol's alert was acknowledged.
    sqlx::query("UPDATE login_alerts SET fired_at = now() - interval '11 minutes'")
        .execute(app.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE login_alerts SET acked_by = 42, acked_at = now() WHERE id = $1")
        .bind(carol[0].id)
        .execute(app.pool())
        .await
        .unwrap();
    assert_eq!(escalate().await.unwrap(), [bob[0].id]);
    assert_eq!(escalate().await.unwrap(), Vec::<i64>::new(), "once");
    let (html, buttons): (String, serde_json::Value) = sqlx::query_as(
        "SELECT html, buttons FROM outbox WHERE chat_id = $1 AND source LIKE 'alert-escalation:%'",
    )
    .bind(ESCALATION)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert!(
        html.starts_with(&format!(
            "⏫ <b>Unacknowledged for 11 min: alert #{}</b>",
            bob[0].id
        )),
        "{html}"
    );
    // The page is either still queued or delivered by now (the outbox runs meanwhile):
    // the escalation says which, with the time it was delivered.
    let paged = format!("paged chat {ALERT_CHAT} ");
    let when = html
        .split(&paged)
        .nth(1)
        .unwrap_or_else(|| panic!("{html}"));
    assert!(
        when.starts_with("(not delivered yet)") || when.starts_with("at "),
        "{html}"
    );
    assert!(html.contains("Failed logins on account bob"), "{html}");
    let labels: Vec<&str> = buttons
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["✅ Ack", "🔎 Details"]);
}
