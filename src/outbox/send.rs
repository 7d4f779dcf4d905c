//! One outbox row → one Bot API call (an HTML message with its inline buttons, or a
//! document when the text is too long for one message, or an edit of a message an earlier
//! row sent), and what its result means for the row: sent, retry after Telegram's
//! `retry_after`, or retry after a backoff.

use super::store::{Claimed, Outcome};
use crate::bot::api;
use crate::config::OutboxSettings;
use crate::domain::html::{escape, to_plain};
use crate::domain::reply::MESSAGE_LIMIT;
use crate::domain::telegram_text::telegram_len;
use serde::Deserialize;
use teloxide::Bot;
use teloxide::payloads::{EditMessageTextSetters, SendDocumentSetters, SendMessageSetters};
use teloxide::requests::{Request, Requester};
use teloxide::types::{
    ChatId, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, MessageId, ParseMode,
};
use teloxide::{ApiError, RequestError};

/// Longest `last_error` kept.
const ERROR_CHARS: usize = 500;

#[derive(Deserialize)]
struct StoredButton {
    label: String,
    data: String,
}

/// Send one claimed row and say what became of it. Never panics, never returns the token.
pub async fn send(bot: &Bot, settings: &OutboxSettings, row: &Claimed) -> Outcome {
    let result = tokio::time::timeout(settings.send_timeout(), call(bot, row)).await;
    let failed = |counts: bool, error: String, retry_in| Outcome {
        transient: false,
        id: row.id,
        sent: false,
        counts,
        error: Some(scrub(&error, bot.token())),
        retry_in,
        message_id: None,
        moved_to: None,
    };
    let backoff = settings.backoff(row.attempts + 1);
    match result {
        Ok(Ok(message_id)) => Outcome {
            transient: false,
            id: row.id,
            sent: true,
            counts: true,
            error: None,
            retry_in: Default::default(),
            message_id,
            moved_to: None,
        },
        // The group became a supergroup: not the message's fault, and sent again at once
        // to the new id once the chat's records have moved (by the worker).
        Ok(Err(RequestError::MigrateToChatId(new))) => Outcome {
            moved_to: Some(new.0),
            ..failed(
                false,
                format!("group chat was upgraded to supergroup {}", new.0),
                Default::default(),
            )
        },
        // Flood control: wait exactly what Telegram asks; it is not the message's fault,
        // so it does not count towards dead-lettering.
        Ok(Err(RequestError::RetryAfter(wait))) => failed(
            false,
            format!("429 Too Many Requests: retry after {wait}"),
            wait.duration(),
        ),
        // The network or a 5xx is Telegram's trouble, not the message's: retried with
        // backoff for as long as it lasts, never dead-lettered for it (an outage of a few
        // minutes must not kill every queued alert).
        Ok(Err(e)) if crate::bot::api::is_transient(&e) => Outcome {
            transient: true,
            ..failed(true, e.to_string(), backoff)
        },
        Ok(Err(e)) => failed(true, e.to_string(), backoff),
        Err(_) => Outcome {
            transient: true,
            ..failed(
                true,
                format!(
                    "no answer from the Bot API within {} ms",
                    settings.send_timeout_ms
                ),
                backoff,
            )
        },
    }
}

async fn call(bot: &Bot, row: &Claimed) -> Result<Option<i64>, RequestError> {
    let chat = ChatId(row.chat_id);
    if let Some(message) = row.delete_message {
        return match api::call(bot, bot.delete_message(chat, MessageId(message as i32))).await {
            // Already gone (deleted by the user, or too old for the bot to delete): done.
            Ok(_) | Err(RequestError::Api(ApiError::MessageToDeleteNotFound)) => Ok(None),
            Err(RequestError::Api(ApiError::MessageCantBeDeleted)) => Ok(None),
            Err(e) => Err(e),
        };
    }
    let buttons: Vec<StoredButton> =
        serde_json::from_value(row.buttons.clone()).unwrap_or_default();
    let keyboard = (!buttons.is_empty()).then(|| {
        let row = buttons
            .into_iter()
            .map(|b| InlineKeyboardButton::callback(b.label, b.data))
            .collect::<Vec<_>>();
        InlineKeyboardMarkup::new(vec![row])
    });
    if let Some(message) = row.edits_message
        && telegram_len(&row.html) <= MESSAGE_LIMIT
    {
        let mut request = bot
            .edit_message_text(chat, MessageId(message as i32), row.html.clone())
            .parse_mode(ParseMode::Html);
        if let Some(keyboard) = keyboard.clone() {
            request = request.reply_markup(keyboard);
        }
        match api::call(bot, request).await {
            Ok(_) => return Ok(Some(message)),
            // The same text again (a progress edit that changed nothing) is not a failure.
            Err(RequestError::Api(ApiError::MessageNotModified)) => return Ok(Some(message)),
            // Deleted by the user, or too old to edit: carry on in a new message (below),
            // which later edits then target.
            Err(RequestError::Api(
                ApiError::MessageToEditNotFound | ApiError::MessageCantBeEdited,
            )) => {}
            Err(e) => return Err(e),
        }
    }
    // An edit whose message was never delivered (dead-lettered) or is gone goes out as a new
    // message; `store::record` makes it the one later edits target.
    if telegram_len(&row.html) > MESSAGE_LIMIT {
        // One row is one Bot API call, so a retry never repeats half a report.
        let document = InputFile::memory(to_plain(&row.html).into_bytes())
            .file_name(format!("opsguard-{}.txt", row.id));
        let caption = format!(
            "This message is long ({} characters), so here it is as a file.",
            telegram_len(&row.html)
        );
        let sent = bot
            .send_document(chat, document)
            .caption(escape(&caption))
            .parse_mode(ParseMode::Html)
            .send()
            .await?;
        return Ok(Some(i64::from(sent.id.0)));
    }
    let mut request = bot
        .send_message(chat, row.html.clone())
        .parse_mode(ParseMode::Html);
    if let Some(keyboard) = keyboard {
        request = request.reply_markup(keyboard);
    }
    let sent = api::call(bot, request).await?;
    Ok(Some(i64::from(sent.id.0)))
}

/// The error as stored in `last_error`: the token (plain or URL-encoded) cut out, and
/// shortened. teloxide already strips URLs from network errors; this covers the rest
/// (an error description that echoes the request path, say).
pub fn scrub(error: &str, token: &str) -> String {
    let mut text = error.to_string();
    if !token.is_empty() {
        text = text.replace(token, "<token>");
        text = text.replace(&token.replace(':', "%3A"), "<token>");
        // The secret half alone is as good as the whole.
        if let Some((_, secret)) = token.split_once(':')
            && secret.len() >= 8
        {
            text = text.replace(secret, "<token>");
        }
    }
    text.chars().take(ERROR_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn the_token_never_reaches_last_error() {
        let token = "123456:ABCdef-secret_part";
        let out = scrub(
            "404 for /bot123456:ABCdef-secret_part/sendMessage and /bot123456%3AABCdef-secret_part/x and ABCdef-secret_part",
            token,
        );
        assert!(!out.contains("ABCdef-secret_part"), "{out}");
        assert!(out.contains("<token>"));
        assert_eq!(scrub(&"x".repeat(2_000), token).len(), 500);
    }
}
