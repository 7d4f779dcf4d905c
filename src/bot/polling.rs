//! Long polling (`getUpdates`), used when no webhook secret is configured.

use super::clients::cause_chain;
use super::inbox::{self, Taken};
use super::{Telegram, dedup, flood};
use crate::engine::health::TelegramState;
use std::time::Duration;
use teloxide::payloads::GetUpdatesSetters;
use teloxide::requests::{Request, Requester};
use tokio_util::sync::CancellationToken;

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
        let mut offset: i32 = 0;
        let mut backoff = Duration::from_secs(1);
        loop {
            // The polling client, not `tg.bot`: its timeout outlasts the poll's hold.
            let poll = tg
                .poll_bot
                .get_updates()
                .offset(offset)
                .timeout(timeout_secs)
                .send();
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
                    for u in updates {
                        offset = offset.max(u.id.0 as i32 + 1);
                        if !flood::admit(&tg.engine, &u).await {
                            continue;
                        }
                        let id = i64::from(u.id.0);
                        let Some(incoming) = tg.translate(&u).await else {
                            dedup::first_sight(&tg.engine, id).await;
                            continue;
                        };
                        // Stored before the next poll's offset acknowledges it.
                        match inbox::take(&tg, id, &incoming).await {
                            Taken::Stored(lease) => tg.dispatch(incoming, Some(lease)),
                            Taken::Unstored => tg.dispatch(incoming, None),
                            Taken::Duplicate => {}
                        }
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
