//! Long polling (`getUpdates`), used when no webhook secret is configured. The updates
//! come back as plain JSON (not teloxide's types) and are read by `bot::inbound`, as the
//! webhook's are, then taken in by `bot::receive`.

use super::Telegram;
use super::clients::cause_chain;
use super::receive::{self, Received};
use crate::engine::health::TelegramState;
use serde::Serialize;
use std::time::Duration;
use teloxide::requests::{JsonRequest, Payload, Request, Requester};
use tokio_util::sync::CancellationToken;

/// `getUpdates`, answered as JSON values: teloxide sends it, opsguard reads the updates.
#[derive(Debug, Clone, Serialize)]
struct GetRawUpdates {
    offset: i64,
    timeout: u32,
}

impl Payload for GetRawUpdates {
    type Output = Vec<serde_json::Value>;
    const NAME: &'static str = "getUpdates";
}

pub fn spawn(
    tg: Telegram,
    timeout_secs: u32,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // A registered webhook makes getUpdates fail: polling mode removes it.
        if let Err(e) = tg.bot.delete_webhook().send().await {
            tracing::warn!(error = %cause_chain(&e), "telegram.delete_webhook_failed");
        }
        let mut offset: i64 = 0;
        let mut backoff = Duration::from_secs(1);
        loop {
            // The polling client, not `tg.bot`: its timeout outlasts the poll's hold.
            let payload = GetRawUpdates {
                offset,
                timeout: timeout_secs,
            };
            let poll = JsonRequest::new(tg.poll_bot.clone(), payload).send();
            let result = tokio::select! {
                _ = shutdown.cancelled() => return,
                result = poll => result,
            };
            match result {
                Ok(updates) => {
                    backoff = Duration::from_secs(1);
                    tg.engine
                        .health()
                        .set_telegram(TelegramState::Reachable { mode: "polling" });
                    for value in updates {
                        // Past an update that is not one, so it cannot hold the queue up.
                        let Ok(update) = receive::read(&value) else {
                            tracing::warn!("telegram.poll_not_an_update");
                            continue;
                        };
                        let next = update.id.saturating_add(1);
                        // Stored before the next poll's offset acknowledges it; one neither
                        // stored nor run (or refused by the store) is not acknowledged:
                        // polled again after a pause.
                        let taken = receive::take_in(&tg, update).await;
                        if matches!(taken, Received::Busy | Received::Refused) {
                            tokio::select! {
                                _ = shutdown.cancelled() => return,
                                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                            }
                            break;
                        }
                        offset = offset.max(next);
                    }
                }
                Err(e) => {
                    let error = cause_chain(&e);
                    metrics::counter!("opsguard_telegram_poll_failures_total").increment(1);
                    tracing::warn!(error = %error, retry_in_secs = backoff.as_secs(), "telegram.poll_failed");
                    tg.engine
                        .health()
                        .set_telegram(TelegramState::Unreachable { error });
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    })
}
