//! Engine replies → Bot API calls: HTML messages with inline buttons, split at 4096
//! characters, or sent as a document when too long to read as messages; a reply's
//! attachment (a report file) follows as a document.

use super::Telegram;
use super::update::Target;
use crate::domain::html::to_plain;
use crate::domain::reply::MESSAGE_LIMIT;
use crate::domain::{Reply, html::escape};
use crate::engine::health::TelegramState;
use teloxide::RequestError;
use teloxide::payloads::{AnswerCallbackQuerySetters, SendDocumentSetters, SendMessageSetters};
use teloxide::requests::{Request, Requester};
use teloxide::types::{
    CallbackQueryId, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, MessageId,
    ParseMode,
};

/// More chunks than this and the reply goes as a document.
const MAX_CHUNKS: usize = 3;

pub async fn deliver(tg: &Telegram, target: &Target, reply: Option<Reply>) {
    let chat = ChatId(target.chat_id);
    if let Some(id) = &target.callback_id {
        // A refusal (or nothing, for a stranger) is shown to the presser alone, and the
        // prompt keeps its buttons for its owner.
        let notice = match &reply {
            None => Some("Not available.".to_string()),
            Some(r) if r.notice => Some(to_plain(&r.html).chars().take(200).collect()),
            Some(_) => None,
        };
        let answer = tg.bot.answer_callback_query(CallbackQueryId(id.clone()));
        let answer = match &notice {
            Some(text) => answer.text(text.clone()).show_alert(true),
            None => answer,
        };
        report(tg, answer.send().await.map(|_| ()));
        if notice.is_some() {
            return;
        }
        if let Some(message) = target.origin_message {
            // The action was used: take the buttons off its message.
            let _ = tg
                .bot
                .edit_message_reply_markup(chat, MessageId(message))
                .send()
                .await;
        }
    }
    let Some(reply) = reply else { return };
    let sent = send_text(tg, chat, &reply).await;
    if let (Some(tracked), Some(message)) = (reply.track, sent) {
        tg.engine.reply_sent(tracked, target.chat_id, message).await;
    }
    if let Some((name, bytes)) = &reply.attachment {
        let document = InputFile::memory(bytes.clone()).file_name(name.clone());
        let sent = tg.bot.send_document(chat, document).send().await;
        report(tg, sent.map(|_| ()));
    }
    if let Some(png) = &reply.photo {
        let photo = InputFile::memory(png.clone()).file_name("opsguard-chart.png");
        let sent = tg.bot.send_photo(chat, photo).send().await;
        report(tg, sent.map(|_| ()));
    }
}

/// Send the text; returns the message id when it went out as one message.
async fn send_text(tg: &Telegram, chat: ChatId, reply: &Reply) -> Option<i64> {
    let chunks = reply.chunks(MESSAGE_LIMIT);
    if chunks.len() > MAX_CHUNKS {
        let document =
            InputFile::memory(to_plain(&reply.html).into_bytes()).file_name("opsguard-reply.txt");
        let caption = format!(
            "The reply is long ({} characters), so here it is as a file.",
            crate::domain::telegram_text::telegram_len(&reply.html)
        );
        let sent = tg
            .bot
            .send_document(chat, document)
            .caption(escape(&caption))
            .parse_mode(ParseMode::Html)
            .send()
            .await;
        report(tg, sent.map(|_| ()));
        return None;
    }
    let last = chunks.len().saturating_sub(1);
    let mut one = None;
    for (i, chunk) in chunks.into_iter().enumerate() {
        let mut request = tg.bot.send_message(chat, chunk).parse_mode(ParseMode::Html);
        if reply.protect {
            request = request.protect_content(true);
        }
        if i == last && !reply.buttons.is_empty() {
            let row = reply
                .buttons
                .iter()
                .map(|b| InlineKeyboardButton::callback(b.label.clone(), b.data.clone()));
            request =
                request.reply_markup(InlineKeyboardMarkup::new(vec![row.collect::<Vec<_>>()]));
        }
        let mut result = request.clone().send().await;
        if let Err(RequestError::RetryAfter(wait)) = &result {
            tokio::time::sleep(wait.duration()).await;
            result = request.send().await;
        }
        if let Ok(message) = &result
            && last == 0
        {
            one = Some(i64::from(message.id.0));
        }
        report(tg, result.map(|_| ()));
    }
    one
}

fn report(tg: &Telegram, result: Result<(), RequestError>) {
    match result {
        Ok(()) => {
            if matches!(
                tg.engine.health().telegram(),
                TelegramState::Unreachable { .. }
            ) {
                tg.engine
                    .health()
                    .set_telegram(TelegramState::Reachable { mode: "recovered" });
            }
        }
        Err(e) => {
            metrics::counter!("opsguard_telegram_send_failures_total").increment(1);
            tracing::warn!(error = %e, "telegram.send_failed");
            if matches!(e, RequestError::Network(_)) {
                tg.engine.health().set_telegram(TelegramState::Unreachable {
                    error: e.to_string(),
                });
            }
        }
    }
}
