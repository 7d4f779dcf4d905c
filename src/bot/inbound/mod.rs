//! What opsguard reads of a Telegram update, in its own small types: the update id; of a
//! message, its chat, sender (`from`, `sender_chat`), text or caption and forward markers;
//! of a button press, its id, presser, data and message. Everything else Telegram sends —
//! fields, entity types, enum values and update kinds of any Bot API version, past or
//! future — is skipped unread, so it can neither fail a command nor silence it. An update
//! whose needed parts are malformed, or whose kind is unknown, comes out `Unreadable`.
//!
//! Invariant: reading never panics and never refuses a JSON object with a valid
//! `update_id`; only such objects are updates (`NotAnUpdate` otherwise).

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

/// The `kind` labels of `opsguard_webhook_unparsed_total`: the known kinds, then
/// `UNKNOWN_KIND` and `NO_KIND`.
pub const KIND_LABELS: &[&str] = &[
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "guest_message",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
    "managed_bot",
    UNKNOWN_KIND,
    NO_KIND,
];

/// Update kinds of the Bot API (10.1) opsguard knows: it reads `message` and
/// `callback_query`, and has no use for the others (they are ignored, not unreadable).
pub const KNOWN_KINDS: &[&str] = KIND_LABELS.split_at(KIND_LABELS.len() - 2).0;

/// The `kind` label of an update whose kind no known Bot API version has.
pub const UNKNOWN_KIND: &str = "unknown";
/// The `kind` label of an update that carries nothing but its id.
pub const NO_KIND: &str = "none";

/// A Telegram user as the identity rules see it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct User {
    pub id: u64,
    pub is_bot: bool,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: Option<String>,
}

impl User {
    /// First and last name, as Telegram shows them.
    pub fn full_name(&self) -> String {
        match &self.last_name {
            Some(last) => format!("{} {last}", self.first_name),
            None => self.first_name.clone(),
        }
    }
}

/// A chat: its id and whether it is a private chat (any other type, known or not, is
/// treated as a group).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChatRef {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
}

impl ChatRef {
    pub fn is_private(&self) -> bool {
        self.kind == "private"
    }
}

/// A message, as much as the pipeline and the identity rules use. Presence markers are
/// read as `IgnoredAny`: their content never matters, only that they are there.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub chat: ChatRef,
    #[serde(default)]
    pub from: Option<User>,
    /// Sent on behalf of a chat (an anonymous admin, a channel): `from` is a placeholder.
    #[serde(default)]
    pub sender_chat: Option<IgnoredAny>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub caption: Option<String>,
    #[serde(default)]
    pub forward_origin: Option<IgnoredAny>,
    /// Forward markers of Bot API < 7.0, still honoured should a server send them.
    #[serde(default)]
    pub forward_from: Option<IgnoredAny>,
    #[serde(default)]
    pub forward_from_chat: Option<IgnoredAny>,
    #[serde(default)]
    pub forward_sender_name: Option<IgnoredAny>,
    #[serde(default)]
    pub forward_date: Option<IgnoredAny>,
    #[serde(default)]
    pub is_automatic_forward: Option<bool>,
    /// Sent through an inline bot: the text is that bot's result, not typed by the sender.
    #[serde(default)]
    pub via_bot: Option<IgnoredAny>,
}

impl Message {
    /// Forwarded, by anyone from anywhere, or automatically into a discussion group.
    pub fn is_forwarded(&self) -> bool {
        self.forward_origin.is_some()
            || self.forward_from.is_some()
            || self.forward_from_chat.is_some()
            || self.forward_sender_name.is_some()
            || self.forward_date.is_some()
            || self.is_automatic_forward == Some(true)
    }

    /// Not the sender's own words: forwarded, or an inline bot's result sent through it.
    pub fn is_relayed(&self) -> bool {
        self.is_forwarded() || self.via_bot.is_some()
    }

    /// What the sender typed: the text, or a caption that is a command (a photo's caption
    /// is otherwise chatter, never answered).
    pub fn input(&self) -> Option<&str> {
        match (&self.text, &self.caption) {
            (Some(text), _) => Some(text),
            (None, Some(caption)) if caption.trim_start().starts_with('/') => Some(caption),
            _ => None,
        }
    }
}

/// The message a pressed button sits on (accessible or not, both carry these).
#[derive(Debug, Clone, Deserialize)]
pub struct ButtonMessage {
    pub message_id: i32,
    pub chat: ChatRef,
}

/// A button press.
#[derive(Debug, Clone, Deserialize)]
pub struct CallbackQuery {
    pub id: String,
    pub from: User,
    /// Absent for buttons on inline messages, which run nothing.
    #[serde(default)]
    pub message: Option<ButtonMessage>,
    #[serde(default)]
    pub data: Option<String>,
}

/// What an update came to.
#[derive(Debug, Clone)]
pub enum Body {
    Message(Message),
    Callback(CallbackQuery),
    /// A kind opsguard knows and has no use for.
    Unused,
    /// Malformed where opsguard needs it, or of a kind it does not know: why.
    Unreadable(String),
}

/// Who sent an update and where, read leniently from any kind (for the flood limits):
/// `from` or `user`, and `chat` or `message.chat`. Malformed parts count as absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Origin {
    pub sender: Option<i64>,
    /// The chat id, and whether it is private.
    pub chat: Option<(i64, bool)>,
}

/// An update as read.
#[derive(Debug, Clone)]
pub struct Update {
    pub id: i64,
    /// The `kind` label: a known kind, `unknown` or `none`.
    pub kind: &'static str,
    /// The kind as sent (for the log of an unknown one), at most 64 characters.
    pub kind_sent: String,
    pub origin: Origin,
    pub body: Body,
}

/// Not a JSON object with a non-negative integer `update_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAnUpdate;

/// Read an update from its JSON.
pub fn read(value: &Value) -> Result<Update, NotAnUpdate> {
    let object = value.as_object().ok_or(NotAnUpdate)?;
    let id = object
        .get("update_id")
        .and_then(Value::as_i64)
        .filter(|id| *id >= 0)
        .ok_or(NotAnUpdate)?;
    // Telegram sends one kind an update; the ones opsguard runs come first should there
    // be more, then any other known kind, then whatever else is there.
    let keys = || object.keys().filter(|k| *k != "update_id");
    let sent = ["message", "callback_query"]
        .into_iter()
        .find(|k| object.contains_key(*k))
        .or_else(|| {
            KNOWN_KINDS
                .iter()
                .copied()
                .find(|k| object.contains_key(*k))
        });
    let (kind, kind_sent) = match (sent, keys().next()) {
        (Some(kind), _) => (kind, kind.to_string()),
        (None, Some(other)) => (UNKNOWN_KIND, other.chars().take(64).collect()),
        (None, None) => (NO_KIND, String::new()),
    };
    let payload = object.get(kind_sent.as_str()).unwrap_or(&Value::Null);
    let body = match kind {
        "message" => typed(payload, "message").map(Body::Message),
        "callback_query" => typed(payload, "callback_query").map(Body::Callback),
        UNKNOWN_KIND => Err("an update kind no known Bot API version has".to_string()),
        NO_KIND => Err("no update kind".to_string()),
        _ => Ok(Body::Unused),
    }
    .unwrap_or_else(Body::Unreadable);
    Ok(Update {
        id,
        kind,
        kind_sent,
        origin: origin(payload),
        body,
    })
}

/// `T` from `value`, or why not, with the path of the malformed part (values cut short).
fn typed<T: for<'de> Deserialize<'de>>(value: &Value, kind: &str) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = match e.path().to_string() {
            root if root == "." => kind.to_string(),
            path => format!("{kind}.{path}"),
        };
        let mut reason = format!("{path}: {}", e.into_inner());
        if reason.len() > 200 {
            let cut = (0..=200).rev().find(|i| reason.is_char_boundary(*i));
            reason.truncate(cut.unwrap_or(0));
            reason.push('…');
        }
        reason
    })
}

fn origin(payload: &Value) -> Origin {
    let user_id = |v: Option<&Value>| {
        v.and_then(|u| u.get("id"))
            .and_then(Value::as_u64)
            .and_then(|id| i64::try_from(id).ok())
    };
    let chat = payload
        .get("chat")
        .or_else(|| payload.get("message").and_then(|m| m.get("chat")));
    Origin {
        sender: user_id(payload.get("from")).or_else(|| user_id(payload.get("user"))),
        chat: chat.and_then(|c| {
            let id = c.get("id")?.as_i64()?;
            Some((id, c.get("type").and_then(Value::as_str) == Some("private")))
        }),
    }
}

#[cfg(test)]
mod tests;
