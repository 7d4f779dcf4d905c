//! Telegram updates → engine requests. Only text messages and button presses from users
//! become requests; everything else (edits, stickers, channel posts, bots) is ignored. A
//! forwarded message (`forward_origin`, or an automatic forward into a discussion group)
//! becomes `Input::Forwarded`, which the engine never runs as a command.

use crate::domain::{Actor, Chat, ChatId, ChatKind, UserId};
use crate::engine::{Input, Request};
use teloxide::types::{Update, UpdateKind, User};

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
    let id = i64::try_from(user.id.0).ok()?;
    Some(Actor::telegram(UserId(id), user.full_name()))
}

fn chat(chat: &teloxide::types::Chat) -> Chat {
    let kind = if chat.is_private() {
        ChatKind::Private
    } else {
        ChatKind::Group
    };
    Chat {
        id: ChatId(chat.id.0),
        kind,
    }
}

/// `None` for updates that carry nothing to run.
pub fn translate(update: &Update) -> Option<Incoming> {
    match &update.kind {
        UpdateKind::Message(message) => {
            let actor = actor(message.from.as_ref()?)?;
            let text = message.text()?.to_string();
            let chat = chat(&message.chat);
            let input = if message.forward_origin().is_some() || message.is_automatic_forward() {
                Input::Forwarded(text)
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
        UpdateKind::CallbackQuery(query) => {
            let actor = actor(&query.from)?;
            let message = query.message.as_ref()?;
            let chat = chat(message.chat());
            Some(Incoming {
                request: Request::new(
                    actor,
                    chat,
                    Input::Callback(query.data.clone().unwrap_or_default()),
                ),
                target: Target {
                    chat_id: chat.id.0,
                    callback_id: Some(query.id.0.clone()),
                    // A chat-bound button (on a pushed alert) stays on its message for the
                    // next person; any other used button is taken off.
                    origin_message: (!query
                        .data
                        .as_deref()
                        .unwrap_or_default()
                        .starts_with(crate::engine::gates::CHAT_ACTION_PREFIX))
                    .then(|| message.id().0),
                },
            })
        }
        _ => None,
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
