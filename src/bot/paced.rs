//! Direct replies under Telegram's limits, shared with the outbox: each message waits for
//! its slot (`outbox::pace`: per chat, per group) and a token of the overall bucket; a 429
//! waits `retry_after` and tries again; a network error or a 5xx is tried again with backoff;
//! a group upgraded to a supergroup is followed. What cannot go within `reply_max_wait_ms`
//! is handed back to be queued in the outbox, never dropped (a message the outbox cannot
//! carry — a file, protected text — fails then, logged and counted). A quiet chat's reply
//! finds its slot free and goes at once.

use super::Telegram;
use crate::outbox::{pace, store};
use std::future::Future;
use std::time::{Duration, Instant};
use teloxide::RequestError;
use teloxide::types::Seconds;

/// What became of one paced call.
pub enum Paced<T> {
    Sent(T),
    /// Not sent: queue it in the outbox for this chat, due after the delay.
    Queue {
        chat: i64,
        after: Duration,
    },
    Failed(RequestError),
}

/// How many 429s one call waits out before it is queued instead.
const MAX_RETRIES: u32 = 5;
/// The longest `retry_after` a send that cannot be queued waits out: a longer one (or more
/// than `MAX_RETRIES` of them) fails the send instead of holding its task for hours.
const UNQUEUED_MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// The first wait after a transient failure (network, 5xx); it doubles, up to 8×.
const TRANSIENT_FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// Send through `call(chat)` paced. `may_queue`: the caller can queue the message in the
/// outbox (text); without it (documents, protected text) the call waits as long as it takes.
pub async fn send<T, F, Fut>(tg: &Telegram, chat: i64, may_queue: bool, call: F) -> Paced<T>
where
    F: Fn(i64) -> Fut,
    Fut: Future<Output = Result<T, RequestError>>,
{
    paced(tg, chat, may_queue, true, call).await
}

/// A call that puts no message in a chat (a command menu): paced by the overall bucket
/// only, 429s and transient failures handled as for a message; it waits as long as it takes.
pub async fn call<T, F, Fut>(tg: &Telegram, chat: i64, call: F) -> Paced<T>
where
    F: Fn(i64) -> Fut,
    Fut: Future<Output = Result<T, RequestError>>,
{
    paced(tg, chat, false, false, call).await
}

async fn paced<T, F, Fut>(
    tg: &Telegram,
    mut chat: i64,
    may_queue: bool,
    in_chat: bool,
    call: F,
) -> Paced<T>
where
    F: Fn(i64) -> Fut,
    Fut: Future<Output = Result<T, RequestError>>,
{
    let s = &tg.engine.settings().outbox;
    let max_wait = may_queue.then(|| Duration::from_millis(s.reply_max_wait_ms));
    let deadline = Duration::from_millis(s.reply_max_wait_ms);
    let started = Instant::now();
    let (mut retries, mut failures) = (0, 0u32);
    loop {
        if !slot(tg, chat, in_chat, max_wait).await {
            return Paced::Queue {
                chat,
                after: Duration::ZERO,
            };
        }
        match call(chat).await {
            Ok(sent) => return Paced::Sent(sent),
            Err(RequestError::RetryAfter(wait)) => {
                let wait = wait.duration();
                retries += 1;
                metrics::counter!("opsguard_telegram_retry_after_total").increment(1);
                if max_wait.is_some_and(|max| wait > max) || retries > MAX_RETRIES && may_queue {
                    tracing::info!(
                        chat.id = chat,
                        retry_after_s = wait.as_secs(),
                        "reply.queued"
                    );
                    return Paced::Queue { chat, after: wait };
                }
                if !may_queue && (wait > UNQUEUED_MAX_RETRY_AFTER || retries > MAX_RETRIES) {
                    // The caller reports the failure (logged and counted once there).
                    return Paced::Failed(RequestError::RetryAfter(Seconds::from_seconds(
                        wait.as_secs().try_into().unwrap_or(u32::MAX),
                    )));
                }
                tokio::time::sleep(wait).await;
            }
            Err(RequestError::MigrateToChatId(new)) if new.0 != chat => {
                if let Err(e) = crate::storage::chats::moved(tg.engine.pool(), chat, new.0).await {
                    tracing::error!(error = %e, chat.old = chat, "reply.chat_move_failed");
                }
                tracing::info!(chat.old = chat, chat.new = new.0, "reply.chat_upgraded");
                chat = new.0;
            }
            Err(e) if super::api::is_transient(&e) => {
                // The network or a 5xx: try again with backoff until the deadline, then
                // hand the message to the outbox (which keeps retrying), never drop it.
                failures += 1;
                let backoff = TRANSIENT_FIRST_BACKOFF * 2u32.pow(failures.min(4) - 1);
                if started.elapsed() + backoff > deadline {
                    metrics::counter!("opsguard_telegram_send_failures_total").increment(1);
                    if may_queue {
                        tracing::warn!(error = %e, chat.id = chat, attempts = failures, "reply.queued_after_failures");
                        return Paced::Queue {
                            chat,
                            after: Duration::ZERO,
                        };
                    }
                    return Paced::Failed(e);
                }
                tracing::info!(error = %e, chat.id = chat, retry_in_ms = backoff.as_millis() as u64, "reply.retrying");
                tokio::time::sleep(backoff).await;
            }
            Err(e) => return Paced::Failed(e),
        }
    }
}

/// Wait for this chat's slot (`in_chat`) and an overall token: `false` when that would take
/// longer than `max_wait` (nothing is reserved then). A database error lets the reply go (a
/// reply is never held back by a failing database; Telegram's own 429 still paces it).
async fn slot(tg: &Telegram, chat: i64, in_chat: bool, max_wait: Option<Duration>) -> bool {
    let pool = tg.engine.pool();
    let s = &tg.engine.settings().outbox;
    let started = Instant::now();
    if tg.engine.db_latch().is_down() {
        // Known down (`storage::latch`): the reply goes unpaced, as on an error.
        return true;
    }
    let reserved = if in_chat {
        pace::reserve(pool, chat, s, max_wait).await
    } else {
        Ok(Some(Duration::ZERO))
    };
    match reserved {
        Ok(Some(wait)) => {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        Ok(None) => return false,
        Err(e) => {
            tg.engine.db_latch().observe(&e);
            tracing::warn!(error = %e, chat.id = chat, "reply.pacing_failed");
            return true;
        }
    }
    if s.global_per_second == 0 {
        return true;
    }
    let step = Duration::from_secs_f64(1.0 / (f64::from(s.global_per_second) * 0.9));
    loop {
        match store::take_tokens(pool, s.global_per_second, 1).await {
            Ok(n) if n > 0 => return true,
            Ok(_) => {}
            Err(e) => {
                tg.engine.db_latch().observe(&e);
                tracing::warn!(error = %e, chat.id = chat, "reply.pacing_failed");
                return true;
            }
        }
        if max_wait.is_some_and(|max| started.elapsed() + step > max) {
            return false;
        }
        tokio::time::sleep(step).await;
    }
}
