//! Alert lifecycle: the 5th failure on an account fires once with three chat-bound buttons,
//! further failures count on silently, the cool-down allows a new alert, silences record
//! without pushing, and account names are escaped in the pushed text.

use super::*;

#[tokio::test]
async fn the_fifth_failure_on_an_account_raises_one_alert_with_three_buttons() {
    let app = spawn_app_with(|s| only_rule(s, "account-lockout", 900)).await;
    let detector = detector(&app);
    let start = Utc::now() - Duration::seconds(60);
    let events = failures_on("alice", 35, start);

    let none = detector.detect(&events[..4]).await.unwrap();
    assert!(none.is_empty(), "4 failures must not fire");
    assert!(alerts(&app).await.is_empty());

    let fired = detector.detect(&events[4..5]).await.unwrap();
    assert_eq!(fired.len(), 1);
    let alert = &fired[0];
    assert_eq!(
        (alert.rule.as_str(), alert.key.as_str()),
        ("account-lockout", "account:alice")
    );
    assert!(!alert.silenced);
    let rows = alerts(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].3, 5, "count at the crossing");
    let pushed = pushes(&app).await;
    assert_eq!(pushed.len(), 1);
    assert_eq!(rows[0].6, Some(pushed[0].0), "outbox_id");
    let (_, html, buttons) = &pushed[0];
    assert!(html.contains("Failed logins on account alice"), "{html}");
    assert!(html.contains("5 failures in 15 min (fires at 5)"), "{html}");
    assert!(html.contains(&format!("alert #{}", alert.id)), "{html}");

    let buttons = buttons.as_array().unwrap();
    let labels: Vec<&str> = buttons
        .iter()
        .map(|b| b["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["✅ Ack", "🔕 Silence 1h", "🔎 Details"]);
    let mut commands = Vec::new();
    for b in buttons {
        let id = b["data"]
            .as_str()
            .unwrap()
            .strip_prefix("a:")
            .expect("a: prefix");
        let (kind, chat, command): (String, i64, String) =
            sqlx::query_as("SELECT kind, chat_id, command FROM pending_actions WHERE id = $1")
                .bind(id)
                .fetch_one(app.pool())
                .await
                .unwrap();
        assert_eq!((kind.as_str(), chat), ("chat", ALERT_CHAT));
        commands.push(command);
    }
    let id = alert.id;
    assert_eq!(
        commands,
        [
            format!("/ack {id}"),
            format!("/silence {id} 1h"),
            format!("/alerts {id}")
        ]
    );

    // 30 more failures, in batches: the open alert counts on, nothing new is pushed; its
    // message gets ONE edit (paced: not before 30 s after the push) with the latest count
    // and the same buttons.
    for chunk in events[5..].chunks(7) {
        assert!(detector.detect(chunk).await.unwrap().is_empty());
    }
    let rows = alerts(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].3, 35);
    assert_eq!(pushes(&app).await.len(), 1);
    let edits = alert_edits(&app).await;
    assert_eq!(edits.len(), 1, "{edits:?}");
    let (of, html, edit_buttons, after) = &edits[0];
    assert_eq!(*of, pushed[0].0);
    assert!(html.contains("Failed logins on account alice"), "{html}");
    assert!(html.contains("so far 35 failures"), "{html}");
    assert_eq!(edit_buttons, &pushed[0].2, "the buttons stay");
    assert!(*after >= 29.9, "paced: {after} s after the push");
}

#[tokio::test]
async fn after_the_cool_down_a_new_alert_fires() {
    // A cool-down is never shorter than the rule's window: a 10 s window here.
    let app = spawn_app_with(|s| {
        only_rule(s, "account-lockout", 2);
        s.logins.rules[0].window_secs = 10;
    })
    .await;
    let detector = detector(&app);
    let first = detector
        .detect(&failures_on("bob", 5, Utc::now() - Duration::seconds(30)))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    // Within the cool-down: counted on.
    let again = detector
        .detect(&failures_on("bob", 2, Utc::now() - Duration::seconds(29)))
        .await
        .unwrap();
    assert!(again.is_empty());
    // Quiet for longer than the cool-down: a new alert, and the old one is closed.
    let later = detector
        .detect(&failures_on("bob", 5, Utc::now()))
        .await
        .unwrap();
    assert_eq!(later.len(), 1);
    assert_ne!(later[0].id, first[0].id);
    let rows = alerts(&app).await;
    let states: Vec<&str> = rows.iter().map(|r| r.4.as_str()).collect();
    assert_eq!(states, ["closed", "open"]);
    assert_eq!(rows[0].3, 7);
    assert_eq!(pushes(&app).await.len(), 2);
}

#[tokio::test]
async fn a_silence_records_the_alert_without_pushing_it() {
    let app = spawn_app_with(|s| only_rule(s, "account-lockout", 900)).await;
    for matcher in ["account-lockout", "account:carol"] {
        sqlx::query("DELETE FROM login_silences")
            .execute(app.pool())
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO login_silences (matcher, until) VALUES ($1, now() + interval '1 hour')",
        )
        .bind(matcher)
        .execute(app.pool())
        .await
        .unwrap();
        let account = if matcher == "account-lockout" {
            "dave"
        } else {
            "carol"
        };
        let fired = detector(&app)
            .detect(&failures_on(account, 5, Utc::now()))
            .await
            .unwrap();
        assert_eq!(fired.len(), 1, "silenced by {matcher}");
        assert!(fired[0].silenced && fired[0].outbox_ids.is_empty());
    }
    // An expired silence no longer matches.
    sqlx::query("UPDATE login_silences SET until = now() - interval '1 second'")
        .execute(app.pool())
        .await
        .unwrap();
    let fired = detector(&app)
        .detect(&failures_on("erin", 5, Utc::now()))
        .await
        .unwrap();
    assert!(!fired[0].silenced);
    let rows = alerts(&app).await;
    let silenced: Vec<(bool, Option<i64>)> = rows.iter().map(|r| (r.5, r.6)).collect();
    assert_eq!(silenced[..2], [(true, None), (true, None)]);
    assert!(!silenced[2].0 && silenced[2].1.is_some());
    assert_eq!(pushes(&app).await.len(), 1);
}

#[tokio::test]
async fn an_account_name_is_escaped_in_the_pushed_text() {
    let app = spawn_app_with(|s| only_rule(s, "account-lockout", 900)).await;
    let fired = detector(&app)
        .detect(&failures_on("<b>boss</b> & co", 5, Utc::now()))
        .await
        .unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].key, "account:<b>boss</b> & co");
    let (_, html, _) = &pushes(&app).await[0];
    assert!(
        html.contains("account &lt;b&gt;boss&lt;/b&gt; &amp; co"),
        "{html}"
    );
    assert!(!html.contains("<b>boss"), "{html}");
}
