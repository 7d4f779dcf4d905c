//! Reading updates: what the identity rules need is read, everything else skipped; the
//! bodies that silenced commands or panicked teloxide 0.17 (issue 19) are read here.

use super::*;
use serde_json::json;

fn admin_message(extra: Value) -> Value {
    let mut message = json!({
        "message_id": 5, "date": 1_700_000_000,
        "from": { "id": 42, "is_bot": false, "first_name": "Ada", "last_name": "L" },
        "chat": { "id": 42, "type": "private", "first_name": "Ada" },
        "text": "/whoami",
        "entities": [{ "type": "bot_command", "offset": 0, "length": 7 }]
    });
    for (k, v) in extra.as_object().unwrap() {
        message[k] = v.clone();
    }
    json!({ "update_id": 10, "message": message })
}

fn message_of(value: &Value) -> Message {
    match read(value).unwrap().body {
        Body::Message(m) => m,
        other => panic!("not read as a message: {other:?}"),
    }
}

#[test]
fn a_command_carrying_what_teloxide_did_not_know_is_still_read() {
    let date_time = json!({ "type": "date_time", "offset": 8, "length": 5, "unix_time": 1,
                             "date_time_format": "t" });
    for extra in [
        json!({ "entities": [{ "type": "bot_command", "offset": 0, "length": 7 }, date_time] }),
        json!({ "quote": { "text": "12:00", "position": 0, "entities": [date_time] } }),
        json!({ "reply_to_message": { "message_id": 1, "date": 1, "text": "at 12:00",
                "chat": { "id": 42, "type": "private" }, "entities": [date_time] } }),
        json!({ "external_reply": { "origin": { "type": "user", "date": 1,
                "sender_user": { "id": 7, "is_bot": false, "first_name": "B" } },
                "chat": { "id": -100, "type": "channel" }, "message_id": 3 } }),
        json!({ "a_field_of_bot_api_99": { "deeply": [1, { "nested": null }] } }),
        json!({ "entities": [{ "type": "holo_link", "offset": 0, "length": 2 }] }),
    ] {
        let update = admin_message(extra.clone());
        let m = message_of(&update);
        assert_eq!(m.input(), Some("/whoami"), "{extra}");
        assert_eq!(m.from.as_ref().unwrap().full_name(), "Ada L");
        assert!(m.chat.is_private() && !m.is_forwarded(), "{extra}");
    }
}

#[test]
fn forward_markers_of_every_api_version_mark_a_message_forwarded() {
    for extra in [
        json!({ "forward_origin": { "type": "hidden_user", "date": 1, "sender_user_name": "X" } }),
        json!({ "forward_origin": { "type": "a_new_origin_type" } }),
        json!({ "is_automatic_forward": true }),
        json!({ "forward_from": { "id": 1, "is_bot": false, "first_name": "Y" } }),
        json!({ "forward_from_chat": { "id": -1, "type": "channel" } }),
        json!({ "forward_sender_name": "Z" }),
        json!({ "forward_date": 1 }),
    ] {
        assert!(
            message_of(&admin_message(extra.clone())).is_forwarded(),
            "{extra}"
        );
    }
    let not = admin_message(json!({ "is_automatic_forward": false }));
    assert!(!message_of(&not).is_forwarded());
}

#[test]
fn a_caption_counts_only_when_it_is_a_command() {
    let photo = |caption: &str| {
        let mut update = admin_message(json!({ "caption": caption, "photo": [] }));
        update["message"].as_object_mut().unwrap().remove("text");
        update
    };
    assert_eq!(message_of(&photo(" /whoami")).input(), Some(" /whoami"));
    assert_eq!(message_of(&photo("holiday")).input(), None);
}

#[test]
fn kinds_opsguard_has_no_use_for_are_unused_even_when_malformed() {
    // teloxide 0.17 panicked on the first two.
    for (kind, payload) in [
        (
            "message_reaction",
            json!({ "chat": { "id": -5, "type": "group" }, "message_id": 1,
            "date": 1, "old_reaction": [], "new_reaction": [{ "type": "paid" }] }),
        ),
        ("poll_answer", json!({ "poll_id": "p", "option_ids": [0] })),
        ("edited_message", json!("not even an object")),
        ("managed_bot", json!({ "user": { "id": 42 } })),
    ] {
        let read = read(&json!({ "update_id": 3, kind: payload })).unwrap();
        assert_eq!(read.kind, kind);
        assert!(matches!(read.body, Body::Unused), "{kind}: {:?}", read.body);
    }
}

#[test]
fn what_cannot_be_read_says_its_kind_and_where() {
    let cases = [
        (
            admin_message(json!({ "from": { "id": "42", "is_bot": false } })),
            "message",
            "message.from.id: invalid type: string \"42\", expected u64",
        ),
        (
            admin_message(json!({ "text": 7 })),
            "message",
            "message.text: invalid type: integer `7`, expected a string",
        ),
        (
            admin_message(json!({ "chat": { "id": 42 } })),
            "message",
            "message.chat: missing field `type`",
        ),
        (
            admin_message(json!({ "from": { "id": 42, "first_name": "A" } })),
            "message",
            "message.from: missing field `is_bot`",
        ),
        (
            json!({ "update_id": 1, "callback_query": { "id": "c" } }),
            "callback_query",
            "callback_query: missing field `from`",
        ),
        (
            json!({ "update_id": 1, "story_reply": { "from": { "id": 42 } } }),
            "unknown",
            "an update kind no known Bot API version has",
        ),
        (json!({ "update_id": 1 }), "none", "no update kind"),
    ];
    for (update, kind, reason) in cases {
        let read = read(&update).unwrap();
        assert_eq!(read.kind, kind, "{update}");
        match read.body {
            Body::Unreadable(r) => assert_eq!(r, reason, "{update}"),
            other => panic!("{update}: {other:?}"),
        }
    }
    let unknown = read(&json!({ "update_id": 1, "story_reply": {} })).unwrap();
    assert_eq!(unknown.kind_sent, "story_reply");
}

#[test]
fn only_an_object_with_a_non_negative_integer_update_id_is_an_update() {
    for not in [
        json!([]),
        json!("x"),
        json!({ "hello": "world" }),
        json!({ "update_id": -1, "message": {} }),
        json!({ "update_id": "1" }),
        json!({ "update_id": 1.5 }),
    ] {
        assert_eq!(read(&not).unwrap_err(), NotAnUpdate, "{not}");
    }
}

#[test]
fn the_origin_of_any_kind_is_read_for_the_flood_limits() {
    let origin = |update: Value| read(&update).unwrap().origin;
    assert_eq!(
        origin(admin_message(json!({}))),
        Origin {
            sender: Some(42),
            chat: Some((42, true))
        }
    );
    let reaction = json!({ "update_id": 1, "message_reaction": {
        "user": { "id": 7 }, "chat": { "id": -9, "type": "supergroup" } } });
    assert_eq!(
        origin(reaction),
        Origin {
            sender: Some(7),
            chat: Some((-9, false))
        }
    );
    let press = json!({ "update_id": 1, "callback_query": {
        "from": { "id": 8 }, "message": { "chat": { "id": 8, "type": "private" } } } });
    assert_eq!(
        origin(press),
        Origin {
            sender: Some(8),
            chat: Some((8, true))
        }
    );
    let broken = json!({ "update_id": 1, "poll_answer": { "user": { "id": "x" } } });
    assert_eq!(origin(broken), Origin::default());
}
