//! The Telegram transport: turns updates into engine requests and engine replies into
//! Bot API calls. It never runs a command itself; `Engine::handle` does.

pub mod api;
pub mod clients;
pub mod dedup;
pub mod flood;
pub mod inbound;
pub mod inbox;
pub mod menu;
pub mod menu_pending;
pub mod paced;
pub mod polling;
pub mod receive;
pub mod retake;
pub mod send;
pub mod update;
pub mod work;

use crate::engine::Engine;
use crate::engine::health::TelegramState;
use crate::storage::inbox_writer::InboxWriter;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use teloxide::Bot;
use teloxide::requests::Requester;
use tokio_util::task::TaskTracker;
use update::Incoming;

/// A handle on the bot: cheap to clone, shared by the webhook route and the polling loop.
#[derive(Clone)]
pub struct Telegram {
    /// Sends and other short calls.
    pub bot: Bot,
    /// `getUpdates` only: its timeout outlasts the poll's hold (see `clients`).
    pub poll_bot: Bot,
    pub engine: Engine,
    tracker: TaskTracker,
    /// The bot's own username (from getMe), to tell `/cmd@us` from `/cmd@otherbot`.
    username: Arc<OnceLock<String>>,
    /// Group commit of inbox writes (stores before the 200, done marks after the reply).
    inbox: InboxWriter,
    /// How many updates run at once here (`work`).
    work: Arc<work::WorkSlots>,
    /// Who waits for a command menu (`menu_pending`).
    menus_pending: Arc<menu_pending::PendingMenus>,
}

impl Telegram {
    /// Also starts the inbox writer: call inside the runtime.
    pub fn new(clients: clients::BotClients, engine: Engine, tracker: TaskTracker) -> Self {
        let settings = &engine.settings().telegram;
        let lease = Duration::from_secs(settings.inbox_lease_secs.max(1));
        let inbox = InboxWriter::spawn(engine.pool().clone(), lease);
        let work = work::WorkSlots::new(settings.max_updates_in_work);
        Telegram {
            inbox,
            work,
            menus_pending: Arc::default(),
            bot: clients.send,
            poll_bot: clients.poll,
            engine,
            tracker,
            username: Arc::new(OnceLock::new()),
        }
    }

    /// Check the token and reachability (getMe); the result shows in `/status`.
    pub async fn probe(&self, mode: &'static str) -> bool {
        match self.bot.get_me().await {
            Ok(me) => {
                if let Some(name) = me.user.username {
                    let _ = self.username.set(name);
                }
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

    /// The bot's username; asks getMe when it is not known yet (Telegram was unreachable
    /// at start). `None` when it cannot be learned.
    pub async fn username(&self) -> Option<&str> {
        if self.username.get().is_none() {
            let asked = tokio::time::timeout(Duration::from_secs(5), self.bot.get_me()).await;
            match asked {
                Ok(Ok(me)) => {
                    if let Some(name) = me.user.username {
                        let _ = self.username.set(name);
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "telegram.get_me_failed"),
                Err(_) => tracing::warn!("telegram.get_me_timed_out"),
            }
        }
        self.username.get().map(String::as_str)
    }

    /// An update as a request, or `None` when it carries nothing for us to run: besides
    /// what `update::translate` drops, a command addressed to another bot
    /// (`/cmd@otherbot`), which is neither run nor answered (nor is one addressed to any
    /// bot while our own name cannot be learned).
    pub async fn translate(&self, update: &inbound::Update) -> Option<Incoming> {
        let incoming = update::translate(update)?;
        if let Some(to) = update::addressee(&incoming.request) {
            let ours = self.username().await;
            if !ours.is_some_and(|me| me.eq_ignore_ascii_case(to)) {
                metrics::counter!("opsguard_updates_ignored_total", "reason" => "other_bot")
                    .increment(1);
                tracing::info!(update.id = update.id, "update.for_another_bot");
                return None;
            }
        }
        Some(incoming)
    }

    /// The inbox's group-commit writer.
    pub fn inbox(&self) -> &InboxWriter {
        &self.inbox
    }

    /// The slots updates run in.
    pub fn work(&self) -> &Arc<work::WorkSlots> {
        &self.work
    }

    pub fn menus_pending(&self) -> &menu_pending::PendingMenus {
        &self.menus_pending
    }

    /// Run a stored request in the background (the webhook answers 200 at once) in its
    /// work slot, and deliver the reply, holding its inbox lease until then (`None`: it
    /// could not be stored). Tracked, so shutdown can wait for commands in flight.
    pub fn dispatch(&self, incoming: Incoming, lease: Option<inbox::Lease>, slot: work::Slot) {
        let this = self.clone();
        let in_flight = self.engine.health().update_started();
        self.tracker.spawn(async move {
            let _in_flight = in_flight;
            let _slot = slot;
            let private = incoming.request.chat.kind == crate::domain::ChatKind::Private;
            let user = incoming.request.actor.user;
            let work = async {
                let reply = this.engine.handle(incoming.request).await;
                send::deliver(&this, &incoming.target, reply).await;
            };
            match lease {
                Some(lease) => inbox::hold(&this, lease, work).await,
                None => work.await,
            }
            if let (true, Some(user)) = (private, user) {
                menu::on_private_message(&this, user).await;
            }
        });
    }

    /// Spawn on the tracker shutdown waits for.
    pub fn track<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }
}
