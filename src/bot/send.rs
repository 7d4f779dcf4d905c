//! Engine replies → Bot API calls: HTML messages with inline buttons, split at 4096
//! characters, or sent as a document when too long to read as messages; a reply's
//! attachment (a report file) follows as a document. Every message is paced with the
//! outbox's limits (`paced`); what a busy chat cannot take now is queued in the outbox.

use super::Telegram;
use super::api;
use super::paced::{self, Paced};
use super::update::Target;
use crate::domain::html::to_plain;
use crate::domain::reply::MESSAGE_LIMIT;
use crate::domain::{Reply, html::escape};
use crate::engine::health::TelegramState;
use std::time::Duration;
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
        report(tg, api::call(&tg.bot, answer).await.map(|_| ()));
        if notice.is_some() {
            return;
        }
        if let Some(message) = target.origin_message {
            // The action was used: take the buttons off its message.
            let _ = api::call(
                &tg.bot,
                tg.bot.edit_message_reply_markup(chat, MessageId(message)),
            )
            .await;
        }
    }
    let Some(reply) = reply else { return };
    let sent = send_text(tg, chat, &reply).await;
    if let (Some(tracked), Some(message)) = (reply.track, sent) {
        tg.engine.reply_sent(tracked, target.chat_id, message).await;
    }
    if let Some((name, bytes)) = &reply.attachment {
        let sent = paced::send(tg, chat.0, false, |c| {
            let document = InputFile::memory(bytes.clone()).file_name(name.clone());
            tg.bot.send_document(ChatId(c), document).send()
        })
        .await;
        report_paced(tg, sent);
    }
    if let Some(png) = &reply.photo {
        let sent = paced::send(tg, chat.0, false, |c| {
            let photo = InputFile::memory(png.clone()).file_name("opsguard-chart.png");
            tg.bot.send_photo(ChatId(c), photo).send()
        })
        .await;
        report_paced(tg, sent);
    }
}

/// Send the text; returns the message id when it went out as one message.
async fn send_text(tg: &Telegram, chat: ChatId, reply: &Reply) -> Option<i64> {
    let chunks = reply.chunks(MESSAGE_LIMIT);
    if chunks.len() > MAX_CHUNKS {
        let caption = format!(
            "The reply is long ({} characters), so here it is as a file.",
            crate::domain::telegram_text::telegram_len(&reply.html)
        );
        let plain = to_plain(&reply.html).into_bytes();
        let sent = paced::send(tg, chat.0, false, |c| {
            let document = InputFile::memory(plain.clone()).file_name("opsguard-reply.txt");
            tg.bot
                .send_document(ChatId(c), document)
                .caption(escape(&caption))
                .parse_mode(ParseMode::Html)
                .send()
        })
        .await;
        report_paced(tg, sent);
        return None;
    }
    // The outbox carries neither `protect_content` nor the tracking of a message: such a
    // reply waits for its slot however long it takes.
    let may_queue = !reply.protect && reply.track.is_none();
    let last = chunks.len().saturating_sub(1);
    let mut one = None;
    for (i, chunk) in chunks.iter().enumerate() {
        let keyboard = (i == last && !reply.buttons.is_empty()).then(|| {
            let row = reply
                .buttons
                .iter()
                .map(|b| InlineKeyboardButton::callback(b.label.clone(), b.data.clone()));
            InlineKeyboardMarkup::new(vec![row.collect::<Vec<_>>()])
        });
        let sent = paced::send(tg, chat.0, may_queue, |c| {
            let mut request = tg
                .bot
                .send_message(ChatId(c), chunk.clone())
                .parse_mode(ParseMode::Html);
            if reply.protect {
                request = request.protect_content(true);
            }
            if let Some(keyboard) = keyboard.clone() {
                request = request.reply_markup(keyboard);
            }
            api::call(&tg.bot, request)
        })
        .await;
        match sent {
            Paced::Sent(message) => {
                if last == 0 {
                    one = Some(i64::from(message.id.0));
                }
                report(tg, Ok(()));
            }
            Paced::Queue { chat, after } => {
                queue(tg, chat, &chunks[i..], reply, after).await;
                return None;
            }
            Paced::Failed(e) => report(tg, Err(e)),
        }
    }
    one
}

/// The chunks a busy chat could not take now go to the outbox (buttons on the last).
async fn queue(tg: &Telegram, chat: i64, rest: &[String], reply: &Reply, after: Duration) {
    let pool = tg.engine.pool();
    for (i, chunk) in rest.iter().enumerate() {
        let mut queued = Reply::html(chunk.clone());
        if i + 1 == rest.len() {
            queued.buttons = reply.buttons.clone();
        }
        match crate::outbox::enqueue(pool, chat, &queued, "reply").await {
            Ok(id) if !after.is_zero() => {
                if let Err(e) = crate::outbox::pace::hold(pool, id, after).await {
                    tracing::warn!(error = %e, outbox.id = id, "reply.hold_failed");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, chat.id = chat, "reply.queue_failed"),
        }
    }
    metrics::counter!("opsguard_replies_queued_total").increment(1);
    tracing::info!(chat.id = chat, chunks = rest.len(), "reply.sent_to_outbox");
}

fn report_paced<T>(tg: &Telegram, sent: Paced<T>) {
    match sent {
        Paced::Sent(_) => report(tg, Ok(())),
        Paced::Failed(e) => report(tg, Err(e)),
        // Only text may be queued.
        Paced::Queue { chat, .. } => tracing::error!(chat.id = chat, "reply.not_queueable"),
    }
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
