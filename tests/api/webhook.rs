//! The webhook route: secret, body limit, malformed input, de-duplication, strangers,
//! groups, escaping and long replies.

use super::helpers::*;
use serde_json::json;

#[tokio::test]
async fn missing_or_wrong_secret_is_401_and_runs_nothing() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    let update = text_update(1, 42, 42, "/whoami").to_string();
    let missing = app
        .http
        .post(app.url("/telegram/webhook"))
        .body(update.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    let wrong = app
        .http
        .post(app.url("/telegram/webhook"))
        .header(
            "X-Telegram-Bot-Api-Secret-Token",
            format!("{WEBHOOK_SECRET}x"),
        )
        .body(update)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    // An update is counted in flight before its answer: none is, so none ran.
    app.idle().await;
    assert!(app.telegram.sent_to(42).is_empty());
    assert!(
        app.audit_rows().await.is_empty(),
        "a rejected webhook leaves no command behind"
    );
}

#[tokio::test]
async fn oversized_body_is_413_invalid_json_400_and_json_not_an_update_200() {
    let app = spawn_app().await;
    let big = format!(
        "{{\"update_id\": 1, \"pad\": \"{}\"}}",
        "a".repeat(1024 * 1024 + 10)
    );
    assert_eq!(app.post_webhook(big).await.status(), 413);
    assert_eq!(app.post_webhook("{not json").await.status(), 400);
    // JSON that is not an update is answered 200 (Telegram would resend it for a day),
    // logged and counted, and runs nothing.
    for not_an_update in [
        json!({"hello": "world"}),
        json!([1, 2]),
        json!({"update_id": "x"}),
    ] {
        let answer = app.post_webhook(not_an_update.to_string()).await;
        assert_eq!(answer.status(), 200, "{not_an_update}");
    }
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("opsguard_webhook_rejections_total{reason=\"too_large\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("reason=\"bad_json\""));
    assert!(
        metrics.contains("opsguard_webhook_rejections_total{reason=\"not_an_update\"}"),
        "{metrics}"
    );
    app.idle().await;
    assert!(app.audit_rows().await.is_empty());
    assert!(app.telegram.calls_to("sendMessage").is_empty());
}

#[tokio::test]
async fn an_update_with_no_message_is_acknowledged_and_ignored() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    let edited = json!({"update_id": 5, "edited_message": {"message_id": 1, "date": 1, "chat": {"id": 42, "type": "private"}, "text": "/whoami"}});
    assert_eq!(app.post_update(&edited).await.status(), 200);
    let bare = json!({"update_id": 6});
    assert_eq!(app.post_update(&bare).await.status(), 200);
    app.idle().await;
    assert!(app.telegram.sent_to(42).is_empty());
    assert!(app.audit_rows().await.is_empty());
}

#[tokio::test]
async fn a_replayed_update_id_runs_once() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    let update = text_update(777, 42, 42, "/whoami");
    assert_eq!(app.post_update(&update).await.status(), 200);
    app.wait_reply(42, 0).await;
    assert_eq!(app.post_update(&update).await.status(), 200);
    assert_eq!(app.post_update(&update).await.status(), 200);
    // Both replays were answered, and no update is in flight: a second run would be
    // counted from before its 200 until its reply and audit rows were written.
    app.idle().await;
    assert_eq!(app.telegram.sent_to(42).len(), 1);
    let whoami = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.entry.command == "whoami")
        .count();
    assert_eq!(whoami, 2, "one attempt and one outcome");
}

#[tokio::test]
async fn update_ids_beyond_32_bits_are_answered_and_de_duplicated() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    let big = 3_000_000_000_i64;
    let update = text_update(big, 42, 42, "/whoami");
    let first = app.post_update(&update).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.text().await.unwrap(), "ok");
    assert!(app.wait_reply(42, 0).await.text().contains("42"));
    let again = app.post_update(&update).await;
    assert_eq!(again.text().await.unwrap(), "duplicate");
    let next = text_update(big + 1, 42, 42, "/whoami");
    assert_eq!(app.post_update(&next).await.status(), 200);
    app.wait_reply(42, 1).await;
    let stored: Vec<i64> =
        sqlx::query_scalar("SELECT update_id FROM update_inbox ORDER BY update_id")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(stored, vec![big, big + 1]);
}

#[tokio::test]
async fn the_same_update_posted_concurrently_is_stored_and_run_once() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    let update = text_update(4242, 42, 42, "/whoami");
    let posts = (0..8).map(|_| app.post_update(&update));
    let answers = futures::future::join_all(posts).await;
    let mut said: Vec<String> = Vec::new();
    for answer in answers {
        assert_eq!(answer.status(), 200);
        said.push(answer.text().await.unwrap());
    }
    said.sort();
    assert_eq!(said.iter().filter(|s| *s == "ok").count(), 1, "{said:?}");
    assert_eq!(
        said.iter().filter(|s| *s == "duplicate").count(),
        7,
        "{said:?}"
    );
    app.wait_reply(42, 0).await;
    wait_for("the update marked done", || async {
        opsguard::storage::inbox::open_count(app.pool())
            .await
            .unwrap()
            == 0
    })
    .await;
    assert_eq!(app.telegram.sent_to(42).len(), 1);
}

#[tokio::test]
async fn a_stranger_gets_one_neutral_line_and_is_audited() {
    let app = spawn_app().await;
    let reply = app.say(999, "/help").await;
    assert_eq!(reply.text(), STRANGER_LINE);
    assert!(reply.buttons().is_empty());
    let rows = app.audit_rows().await;
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r.entry.decision == "denied" && r.entry.actor_id == Some(999))
    );
    assert_eq!(rows[0].entry.reason.as_deref(), Some("unknown user"));
    // Every command, known or not, is audited alike; the line is sent at most once an hour.
    for text in ["/grant 999 admin", "/nonsense"] {
        let update = text_update(app.next_update_id(), 999, 999, text);
        assert_eq!(app.post_update(&update).await.status(), 200);
    }
    app.idle().await;
    let rows = app.audit_rows().await;
    assert_eq!(rows.len(), 6);
    assert!(
        rows.iter()
            .all(|r| r.entry.reason.as_deref() == Some("unknown user"))
    );
    assert_eq!(app.telegram.sent_to(999).len(), 1, "one neutral line");
}

#[tokio::test]
async fn groups_are_silent_unless_allow_listed_and_membership_grants_nothing() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    let group = -100_123;
    assert_eq!(
        app.post_update(&text_update(app.next_update_id(), 42, group, "/whoami"))
            .await
            .status(),
        200
    );
    app.idle().await;
    assert!(
        app.telegram.sent_to(group).is_empty(),
        "no reply in a group that is not allow-listed"
    );
    assert!(
        app.telegram.calls_to("sendMessage").is_empty(),
        "nothing is sent anywhere"
    );
    let rows = app.audit_rows().await;
    assert_eq!(
        rows.last().unwrap().entry.reason.as_deref(),
        Some("chat not allow-listed")
    );

    opsguard::storage::chats::allow(app.pool(), opsguard::domain::ChatId(group), "ops")
        .await
        .unwrap();
    let reply = app.say_in(42, group, "/whoami").await;
    assert!(reply.text().contains("group -100123"), "{}", reply.text());
    // A stranger in an allowed group gets nothing at all.
    assert_eq!(
        app.post_update(&text_update(app.next_update_id(), 555, group, "/whoami"))
            .await
            .status(),
        200
    );
    app.idle().await;
    let stranger_rows = app.audit_rows().await;
    let stranger = stranger_rows
        .iter()
        .filter(|r| r.entry.actor_id == Some(555));
    assert!(
        stranger
            .map(|r| r.entry.reason.as_deref())
            .all(|r| r == Some("unknown user")),
        "the stranger's command is audited as such"
    );
    assert_eq!(app.telegram.sent_to(group).len(), 1);
}

#[tokio::test]
async fn markup_in_arguments_is_echoed_escaped() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    let reply = app.say(42, "/<b>bold</b>").await;
    assert!(
        reply.text().contains("&lt;b&gt;bold&lt;/b&gt;"),
        "{}",
        reply.text()
    );
    assert_eq!(reply.body["parse_mode"], "HTML");
    let reply = app.say(42, "/grant 42 <a href=\"tg://x\">x</a>").await;
    assert!(!reply.text().contains("<a"), "{}", reply.text());
    assert!(
        reply
            .text()
            .contains("Usage: <code>/grant &lt;user-id&gt; &lt;role&gt;</code>"),
        "{}",
        reply.text()
    );
}

#[tokio::test]
async fn unknown_commands_and_wrong_arguments_explain_themselves() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    assert!(
        app.say(42, "/frobnicate")
            .await
            .text()
            .contains("Unknown command <code>/frobnicate</code>")
    );
    let usage = app.say(42, "/audit many").await.text();
    assert!(
        usage.contains("Usage: <code>/audit [n|verify|checkpoint]</code>"),
        "{usage}"
    );
    let rows = app.audit_rows().await;
    let decisions: Vec<&str> = rows.iter().map(|r| r.entry.decision.as_str()).collect();
    assert_eq!(decisions, ["unknown", "unknown", "invalid", "invalid"]);
}

#[tokio::test]
async fn long_replies_are_split_under_the_telegram_limit() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    // Long enough as Telegram counts (the text after entity parsing) for two messages.
    for id in 1..=200 {
        app.add_user(10_000 + id, "viewer").await;
    }
    let before = app.telegram.sent_to(42).len();
    app.say(42, "/users").await;
    // The last user listed is proof the whole reply arrived (its parts are paced, behind
    // the menus of the 200 users just added).
    let telegram = app.telegram.clone();
    wait_for("the last part of the reply", || async {
        telegram.sent_to(42)[before..]
            .iter()
            .any(|c| c.text().contains("10200"))
    })
    .await;
    app.idle().await;
    let sent = &app.telegram.sent_to(42)[before..];
    assert!(
        sent.len() >= 2,
        "expected a split reply, got {}",
        sent.len()
    );
    // The fake refuses a message over 4096 characters as Telegram counts them.
    let all: String = sent.iter().map(|c| c.text()).collect();
    assert!(all.contains("10200"));
    assert!(
        app.telegram.refused().is_empty(),
        "{:?}",
        app.telegram.refused()
    );
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    app.add_user(42, "viewer").await;
    app.say(42, "/whoami").await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("opsguard_commands_total{command=\"whoami\",decision=\"allowed\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("opsguard_pipeline_seconds_bucket"));
}

#[tokio::test]
async fn at_start_each_user_gets_a_menu_of_what_they_may_run() {
    // The users exist before the app starts, and nobody writes or is granted anything:
    // whatever menu arrives was pushed at start.
    let db = TestDb::create().await;
    for (user, role) in [(42, "admin"), (7, "viewer")] {
        let id = opsguard::domain::UserId(user);
        opsguard::storage::users::upsert(&db.pool, id, &format!("User{user}"))
            .await
            .unwrap();
        let role = opsguard::domain::RoleName::parse(role).unwrap();
        opsguard::storage::users::grant(&db.pool, id, &role, "test")
            .await
            .unwrap();
    }
    let app = spawn_app_on(db, |_| {}).await;
    let menu_of = |calls: &[super::fake_telegram::Call], user: i64| -> Option<Vec<String>> {
        let menu = calls.iter().find(|c| {
            c.method == "setMyCommands" && c.body.pointer("/scope/chat_id") == Some(&json!(user))
        })?;
        let names = menu.body["commands"].as_array().unwrap().iter();
        Some(
            names
                .map(|c| c["command"].as_str().unwrap().to_string())
                .collect(),
        )
    };
    let calls = app
        .telegram
        .wait_until("a menu for users 42 and 7", |calls| {
            menu_of(calls, 42).is_some() && menu_of(calls, 7).is_some()
        })
        .await;
    assert!(
        calls.iter().all(|c| c.method != "sendMessage"),
        "no message and no command preceded the menus"
    );
    // A viewer's menu, as the design's default matrix lists it, in menu order.
    let viewer = [
        "start",
        "help",
        "whoami",
        "status",
        "schedules",
        "findings",
        "logins",
        "alerts",
        "secrets",
        "backups",
        "totp",
        "stepup",
    ];
    let mut shown = menu_of(&calls, 7).unwrap();
    shown.sort();
    let mut expected: Vec<String> = viewer.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(shown, expected, "a viewer's menu");
    let admin = menu_of(&calls, 42).unwrap();
    for command in [
        "grant",
        "revoke",
        "rotate",
        "audit",
        "users",
        "restore_test",
    ] {
        assert!(
            admin.iter().any(|c| c == command),
            "an admin's menu has /{command}: {admin:?}"
        );
    }
    // The default (unscoped) menu is removed: a stranger sees none.
    assert!(
        calls
            .iter()
            .any(|c| c.method == "deleteMyCommands" && c.body.get("scope").is_none()),
        "the default menu is cleared"
    );
}
