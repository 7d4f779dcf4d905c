//! The engine's flood steps: an update is counted against its limits before anything is
//! written for it; a user's refusals are counted before they are audited; a stranger is
//! sent the neutral line at most once per period.

use super::Outcome;
use crate::domain::{ActorKind, Chat, ChatKind, Reply, UserId};
use crate::engine::trail::Trail;
use crate::engine::{Engine, NEUTRAL_LINE, Request};

impl Engine {
    /// Whether a Telegram update from `sender` in `chat` may go on. Called by the transport
    /// before de-duplication, audit or reply: a dropped update writes and sends nothing.
    pub async fn admit_update(&self, sender: Option<UserId>, chat: Chat) -> bool {
        let known = match sender {
            Some(user) => self.is_known(user).await,
            None => false,
        };
        let flood = &self.inner.flood;
        let limits = flood.update_limits(
            sender.map(|u| u.0),
            chat.id.0,
            chat.kind == ChatKind::Group,
            known,
        );
        match flood.hit(&limits).await {
            Outcome::Allowed => true,
            Outcome::Dropped { by } => {
                let subject = limits[by].key.split(':').next().unwrap_or("strangers");
                metrics::counter!("opsguard_flood_dropped_total", "limit" => subject.to_string())
                    .increment(1);
                false
            }
        }
    }

    /// An active user (cached); when the database cannot say, whoever this replica last
    /// saw as one.
    async fn is_known(&self, user: UserId) -> bool {
        if self.db_latch().is_down() {
            // Known down (`storage::latch`): not waited for again.
            return self.authz().was_known(user);
        }
        match self.authz().principal(user).await {
            Ok(principal) => principal.is_some_and(|p| p.user.active),
            Err(e) => {
                self.db_latch().observe(&e);
                self.authz().was_known(user)
            }
        }
    }

    /// Whether a refusal of this Telegram user's request may be audited and answered; past
    /// the `refused` limit it is only counted. Other transports are not limited.
    pub(in crate::engine) async fn refusal_allowed(&self, trail: &Trail) -> bool {
        let ("telegram", Some(user), chat) = trail.actor() else {
            return true;
        };
        let limit = self.inner.flood.refusal_limit(user, chat.unwrap_or(user));
        match self.inner.flood.hit(std::slice::from_ref(&limit)).await {
            Outcome::Allowed => true,
            Outcome::Dropped { .. } => {
                metrics::counter!("opsguard_flood_dropped_total", "limit" => "refused")
                    .increment(1);
                false
            }
        }
    }

    /// What a stranger is told: the neutral line in a private chat, at most once per period
    /// on Telegram (the console always answers); silence elsewhere.
    pub(in crate::engine) async fn neutral_line(&self, req: &Request) -> Option<Reply> {
        if req.chat.kind != ChatKind::Private {
            return None;
        }
        let due = match (req.actor.kind, req.actor.user) {
            (ActorKind::Telegram, Some(user)) => self.inner.flood.neutral_line_due(user.0).await,
            _ => true,
        };
        due.then(|| Reply::html(NEUTRAL_LINE))
    }
}
