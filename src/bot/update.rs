//! Updates as read (`inbound`) → engine requests. Only text messages (or command captions)
//! and button presses from users become requests; everything else (edits, stickers,
//! channel posts, bots, anonymous admins) is ignored. A forwarded message (`forward_origin`,
//! or an automatic forward into a discussion group) becomes `Input::Forwarded`, which the
//! engine never runs as a command.

use super::inbound::{self, Body, ChatRef, User};
use crate::domain::{Actor, Chat, ChatId, ChatKind, UserId};
use crate::engine::{Input, Request};

/// Where the reply goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub chat_id: i64,
    /// Set for button presses: the callback query to answer.
    pub callback_id: Option<String>,
    /// Set for button presses: the message whose buttons were pressed.
    pub origin_message: Option<i32>,
}

#[derive(Debug, Clone)]
pub struct Incoming {
    pub request: Request,
    pub target: Target,
}

fn actor(user: &User) -> Option<Actor> {
    if user.is_bot {
        return None;
    }
    let id = i64::try_from(user.id).ok()?;
    Some(Actor::telegram(UserId(id), user.full_name()))
}

fn chat(chat: &ChatRef) -> Chat {
    let kind = if chat.is_private() {
        ChatKind::Private
    } else {
        ChatKind::Group
    };
    Chat {
        id: ChatId(chat.id),
        kind,
    }
}

/// `None` for updates that carry nothing to run: other kinds (edits, channel posts,
/// reactions, inline queries, ...), messages without a text or command caption, from a
/// bot, or sent on behalf of a chat (anonymous admins, channels), and presses of buttons
/// on inline messages.
pub fn translate(update: &inbound::Update) -> Option<Incoming> {
    match &update.body {
        Body::Message(message) => {
            let actor = actor(message.from.as_ref()?)?;
            let text = message.input()?.to_string();
            let chat = chat(&message.chat);
            let input = if message.is_relayed() {
                Input::Forwarded(text)
            } else if message.sender_chat.is_some() {
                return None;
            } else {
                Input::Text(text)
            };
            Some(Incoming {
                request: Request::new(actor, chat, input),
                target: Target {
                    chat_id: chat.id.0,
                    callback_id: None,
                    origin_message: None,
                },
            })
        }
        Body::Callback(query) => {
            let actor = actor(&query.from)?;
            let message = query.message.as_ref()?;
            let chat = chat(&message.chat);
            let data = query.data.clone().unwrap_or_default();
            // A chat-bound button (on a pushed alert) stays on its message for the next
            // person; any other used button is taken off.
            let bound = data.starts_with(crate::engine::gates::CHAT_ACTION_PREFIX);
            Some(Incoming {
                request: Request::new(actor, chat, Input::Callback(data)),
                target: Target {
                    chat_id: chat.id.0,
                    callback_id: Some(query.id.clone()),
                    origin_message: (!bound).then_some(message.message_id),
                },
            })
        }
        Body::Unused | Body::Unreadable(_) => None,
    }
}

/// The bot a command (typed or forwarded) is addressed to: `otherbot` in
/// `/cmd@otherbot args`.
pub fn addressee(request: &Request) -> Option<&str> {
    let (Input::Text(text) | Input::Forwarded(text)) = &request.input else {
        return None;
    };
    let head = text.trim().strip_prefix('/')?.split_whitespace().next()?;
    head.split_once('@').map(|(_, to)| to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(text: &str) -> Request {
        let actor = Actor::telegram(UserId(1), "a");
        let chat = Chat {
            id: ChatId(1),
            kind: ChatKind::Private,
        };
        Request::new(actor, chat, Input::Text(text.into()))
    }

    #[test]
    fn the_addressee_is_the_part_after_the_at() {
        assert_eq!(addressee(&typed("/help@OtherBot x")), Some("OtherBot"));
        assert_eq!(addressee(&typed("  /help@")), Some(""));
        assert_eq!(addressee(&typed("/help x@y")), None);
        assert_eq!(addressee(&typed("hello@bot")), None);
        let mut forwarded = typed("");
        forwarded.input = Input::Forwarded("/start@OtherBot".into());
        assert_eq!(addressee(&forwarded), Some("OtherBot"));
    }
}
