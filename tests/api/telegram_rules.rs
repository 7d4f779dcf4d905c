//! Telegram's own rules, everywhere: replies that parse and fit (long lines split between
//! tags, an unknown command's name echoed short), and the fake Bot API refusing what
//! Telegram refuses. Pacing of replies is in `telegram_rules/pacing.rs`; menus of users
//! Telegram has not seen and upgraded groups in `telegram_rules/chats.rs`.

mod chats;
mod pacing;

use super::fake_telegram::FakeTelegram;
use super::helpers::*;
use serde_json::{Value, json};

/// Call the fake Bot API directly: (HTTP status, body).
async fn call(fake: &FakeTelegram, method: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/bot{BOT_TOKEN}/{method}", fake.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn description(body: &Value) -> String {
    body["description"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn an_unknown_command_with_a_4000_character_name_is_answered_with_its_start_only() {
    let app = spawn_app().await;
    app.add_user(42, "viewer").await;
    let name = "a<b>&".repeat(800);
    let reply = app.say(42, &format!("/{name}")).await;
    // The first 64 characters of the name: "a<b>&" twelve times and "a<b>", then "…",
    // HTML-escaped.
    let echoed = format!("{}a&lt;b&gt;…", "a&lt;b&gt;&amp;".repeat(12));
    assert_eq!(
        reply.text(),
        format!("Unknown command <code>/{echoed}</code>. Send /help to see yours.")
    );
    assert!(
        app.telegram.refused().is_empty(),
        "{:?}",
        app.telegram.refused()
    );
}

#[tokio::test]
async fn the_fake_refuses_html_telegram_cannot_parse_and_text_over_its_limits() {
    let fake = FakeTelegram::start().await;
    let send = |text: String| json!({ "chat_id": 5, "text": text, "parse_mode": "HTML" });
    for bad in [
        "<b>open",
        "<b><i>x</b></i>",
        "<div>x</div>",
        "</b>",
        "1 < 2",
    ] {
        let (status, body) = call(&fake, "sendMessage", send(bad.into())).await;
        assert_eq!(status, 400, "{bad}");
        assert!(
            description(&body).starts_with("Bad Request: can't parse entities:"),
            "{bad}: {body}"
        );
    }
    let fits = format!("<b>{}</b>", "&lt;".repeat(4096));
    assert_eq!(call(&fake, "sendMessage", send(fits)).await.0, 200);
    let (status, body) = call(&fake, "sendMessage", send("x".repeat(4097))).await;
    assert_eq!(
        (status, description(&body).as_str()),
        (400, "Bad Request: message is too long")
    );
    // Emoji take two UTF-16 units each.
    assert_eq!(
        call(&fake, "sendMessage", send("😀".repeat(2049))).await.0,
        400
    );
    let caption = json!({ "chat_id": 5, "document": "x", "caption": "c".repeat(1025) });
    assert_eq!(call(&fake, "sendDocument", caption).await.0, 400);
    assert_eq!(fake.refused().len(), 8);
}

#[tokio::test]
async fn the_fake_refuses_bad_buttons_and_commands_and_floods_of_a_group_or_all_chats_with_429() {
    let fake = FakeTelegram::start().await;
    let button = |data: &str| {
        json!({ "chat_id": 5, "text": "x",
                "reply_markup": { "inline_keyboard": [[{ "text": "b", "callback_data": data }]] } })
    };
    assert_eq!(
        call(&fake, "sendMessage", button(&"d".repeat(64))).await.0,
        200
    );
    assert_eq!(
        call(&fake, "sendMessage", button(&"d".repeat(65))).await.0,
        400
    );
    assert_eq!(call(&fake, "sendMessage", button("")).await.0, 400);
    let many: Vec<Value> = (0..101)
        .map(|i| json!({ "text": "b", "callback_data": format!("{i}") }))
        .collect();
    let body = json!({ "chat_id": 5, "text": "x", "reply_markup": { "inline_keyboard": [many] } });
    assert_eq!(call(&fake, "sendMessage", body).await.0, 400);
    let commands = |c: Value| json!({ "commands": [c] });
    let ok = json!({ "command": "check_all", "description": "Run checks" });
    assert_eq!(call(&fake, "setMyCommands", commands(ok)).await.0, 200);
    for bad in [
        json!({ "command": "Check", "description": "x" }),
        json!({ "command": "c".repeat(33), "description": "x" }),
        json!({ "command": "check", "description": "" }),
        json!({ "command": "check", "description": "d".repeat(257) }),
    ] {
        assert_eq!(
            call(&fake, "setMyCommands", commands(bad.clone())).await.0,
            400,
            "{bad}"
        );
    }
    for i in 0..20 {
        let (status, _) = call(
            &fake,
            "sendMessage",
            json!({ "chat_id": -7, "text": format!("{i}") }),
        )
        .await;
        assert_eq!(status, 200, "message {i}");
    }
    let (status, body) = call(
        &fake,
        "sendMessage",
        json!({ "chat_id": -7, "text": "21st" }),
    )
    .await;
    assert_eq!(status, 429);
    assert!(
        body["parameters"]["retry_after"].as_u64().unwrap() >= 1,
        "{body}"
    );
    // A private chat is not held back by the group's limit.
    assert_eq!(
        call(&fake, "sendMessage", json!({ "chat_id": 8, "text": "hi" }))
            .await
            .0,
        200
    );
    overall_limit_refuses_the_31st_message_of_a_second().await;
}

/// The overall limit: 30 messages a second across chats, the 31st answered 429, though
/// each of the 31 private chats got one message only. A fresh fake (the one above counted
/// sends already); a try whose 31 calls took a second or more proves nothing and is made
/// again with a fresh fake.
async fn overall_limit_refuses_the_31st_message_of_a_second() {
    for _ in 0..5 {
        let fake = FakeTelegram::start().await;
        let started = std::time::Instant::now();
        let mut answers = Vec::new();
        for chat in 1..=31 {
            let body = json!({ "chat_id": 9_000 + chat, "text": format!("to {chat}") });
            answers.push(call(&fake, "sendMessage", body).await);
        }
        if started.elapsed() >= std::time::Duration::from_secs(1) {
            continue;
        }
        for (i, (status, body)) in answers[..30].iter().enumerate() {
            assert_eq!(*status, 200, "message {}: {body}", i + 1);
        }
        let (status, body) = &answers[30];
        assert_eq!(*status, 429, "{body}");
        assert_eq!(body["parameters"]["retry_after"], json!(1), "{body}");
        assert_eq!(fake.refused().len(), 1);
        return;
    }
    panic!("31 calls never fitted in one second in five tries");
}
