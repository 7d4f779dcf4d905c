//! The Telegram transport: turns updates into engine requests and engine replies into
//! Bot API calls. It never runs a command itself; `Engine::handle` does.

pub mod dedup;
pub mod flood;
pub mod menu;
pub mod polling;
pub mod send;
pub mod update;

use crate::engine::Engine;
use crate::engine::health::TelegramState;
use teloxide::Bot;
use teloxide::requests::Requester;
use tokio_util::task::TaskTracker;
use update::Incoming;

/// A handle on the bot: cheap to clone, shared by the webhook route and the polling loop.
#[derive(Clone)]
pub struct Telegram {
    pub bot: Bot,
    pub engine: Engine,
    tracker: TaskTracker,
}

impl Telegram {
    pub fn new(
        token: &str,
        api_url: &str,
        engine: Engine,
        tracker: TaskTracker,
    ) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(api_url)
            .map_err(|e| anyhow::anyhow!("OPSGUARD_TELEGRAM_API_URL is not a URL: {e}"))?;
        let bot = Bot::new(token).set_api_url(url);
        Ok(Telegram {
            bot,
            engine,
            tracker,
        })
    }

    /// Check the token and reachability (getMe); the result shows in `/status`.
    pub async fn probe(&self, mode: &'static str) -> bool {
        match self.bot.get_me().await {
            Ok(_) => {
                self.engine
                    .health()
                    .set_telegram(TelegramState::Reachable { mode });
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "telegram.unreachable");
                self.engine
                    .health()
                    .set_telegram(TelegramState::Unreachable {
                        error: e.to_string(),
                    });
                false
            }
        }
    }

    /// Run a request in the background (the webhook answers 200 at once) and deliver the
    /// reply. Tracked, so shutdown can wait for commands in flight.
    pub fn dispatch(&self, incoming: Incoming) {
        let this = self.clone();
        self.tracker.spawn(async move {
            let reply = this.engine.handle(incoming.request).await;
            send::deliver(&this, &incoming.target, reply).await;
        });
    }
}
