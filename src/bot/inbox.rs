//! The durable inbox on the Telegram side: an update that will run is stored (with its
//! de-dup row, in one synchronous write shared with concurrent updates) before it is
//! acknowledged, as `Stored` — the translated request, its request id and where the reply
//! goes — and processed under a lease renewed while the command runs, or stored waiting
//! when this replica has no room to run it; the row is marked done once the reply was
//! handed to Telegram. `retake.rs` takes up waiting rows and the rows whose replica died.

use super::Telegram;
use super::update::{Incoming, Target};
use crate::domain::{Actor, Chat, ChatId, ChatKind, UserId};
use crate::engine::{Input, Request};
use crate::storage::inbox::{self, NewUpdate};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What the inbox keeps of an update: enough to run it again on any replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    pub user: Option<i64>,
    pub display: String,
    pub chat_id: i64,
    pub chat_kind: ChatKind,
    pub input: StoredInput,
    pub callback_id: Option<String>,
    pub origin_message: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "text")]
pub enum StoredInput {
    Text(String),
    Callback(String),
    Forwarded(String),
}

impl Stored {
    pub fn of(incoming: &Incoming) -> Stored {
        let req = &incoming.request;
        let input = match &req.input {
            Input::Text(t) => StoredInput::Text(t.clone()),
            Input::Callback(t) => StoredInput::Callback(t.clone()),
            Input::Forwarded(t) => StoredInput::Forwarded(t.clone()),
        };
        Stored {
            user: req.actor.user.map(|u| u.0),
            display: req.actor.display.clone(),
            chat_id: req.chat.id.0,
            chat_kind: req.chat.kind,
            input,
            callback_id: incoming.target.callback_id.clone(),
            origin_message: incoming.target.origin_message,
        }
    }

    /// The request again, under the request id it was stored with.
    pub fn incoming(self, request_id: uuid::Uuid) -> Incoming {
        let actor = match self.user {
            Some(user) => Actor::telegram(UserId(user), self.display),
            None => Actor {
                kind: crate::domain::ActorKind::Telegram,
                user: None,
                display: self.display,
            },
        };
        let chat = Chat {
            id: ChatId(self.chat_id),
            kind: self.chat_kind,
        };
        let input = match self.input {
            StoredInput::Text(t) => Input::Text(t),
            StoredInput::Callback(t) => Input::Callback(t),
            StoredInput::Forwarded(t) => Input::Forwarded(t),
        };
        let mut request = Request::new(actor, chat, input);
        request.id = request_id;
        Incoming {
            request,
            target: Target {
                chat_id: self.chat_id,
                callback_id: self.callback_id,
                origin_message: self.origin_message,
            },
        }
    }
}

/// The hold a replica has on a stored update: renewed while it runs, ended by `finish`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub update_id: i64,
    pub takes: i32,
}

/// What storing an update came to.
#[derive(Debug)]
pub enum Taken {
    /// First sight, stored: this replica holds the lease and runs it.
    Stored(Lease),
    /// First sight, stored waiting (no room to run it here now): the inbox taker runs it.
    Waiting,
    /// Seen before (a retry or a replay): acknowledge and drop.
    Duplicate,
    /// The store is down: it runs unstored (the engine refuses it, since it cannot audit,
    /// and says so), as when de-duplication was unavailable.
    Unstored,
    /// The store answered but refused the write (a permission, a constraint, a trigger):
    /// not stored, and not run either, since the engine could audit and run it with no
    /// durable copy. It is not acknowledged, so Telegram sends it again.
    Refused,
}

/// The configured lease (`[telegram] inbox_lease_secs`).
pub fn lease_of(tg: &Telegram) -> Duration {
    Duration::from_secs(tg.engine.settings().telegram.inbox_lease_secs.max(1))
}

/// Store the update, with its de-dup row, before it is acknowledged: leased to this
/// replica, or `waiting` for room to run it. Concurrent calls share one commit.
pub async fn take(tg: &Telegram, update_id: i64, incoming: &Incoming, waiting: bool) -> Taken {
    let stored = serde_json::to_value(Stored::of(incoming)).expect("a stored update serializes");
    if tg.engine.db_latch().is_down() {
        // Known down (`storage::latch`): not waited for again.
        metrics::counter!("opsguard_inbox_store_failures_total").increment(1);
        return Taken::Unstored;
    }
    let update = NewUpdate {
        update_id,
        request_id: incoming.request.id,
        incoming: stored,
        waiting,
    };
    match tg.inbox().take(update).await {
        Ok(true) if waiting => Taken::Waiting,
        Ok(true) => Taken::Stored(Lease {
            update_id,
            takes: 1,
        }),
        Ok(false) => Taken::Duplicate,
        Err(e) => {
            metrics::counter!("opsguard_inbox_store_failures_total").increment(1);
            tracing::error!(error = %e, update.id = update_id, "inbox.unavailable");
            if e.unreachable {
                tg.engine.db_latch().trip(&e);
                return Taken::Unstored;
            }
            Taken::Refused
        }
    }
}

/// Keep the lease while `work` runs (renewed every third of it), then mark the update done.
pub async fn hold<F: std::future::Future<Output = ()>>(tg: &Telegram, lease: Lease, work: F) {
    let every = lease_of(tg) / 3;
    let pool = tg.engine.pool();
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tokio::pin!(work);
    loop {
        tokio::select! {
            _ = &mut work => break,
            _ = renew.tick() => {
                match inbox::renew(pool, lease.update_id, lease.takes, lease_of(tg)).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(update.id = lease.update_id, "inbox.lease_lost"),
                    Err(e) => tracing::warn!(error = %e, update.id = lease.update_id, "inbox.renew_failed"),
                }
            }
        }
    }
    // Batched with other done marks, without a WAL flush of its own (`finish_batch`).
    if let Err(e) = tg.inbox().finish(lease.update_id, lease.takes).await {
        // The row stays: after its lease another replica finds it finished (audited).
        tracing::warn!(error = %e, update.id = lease.update_id, "inbox.finish_failed");
    }
}
