//! An approver's Approve / Deny buttons. A press counts only from the admin the copy was
//! pushed to, in their private chat, while the request is open; it then runs `/approve` or
//! `/deny` through the whole pipeline as if that admin had typed it (permission, rate
//! limit, audit, and the rule that nobody decides their own request). Any other press is
//! refused as a notice for the presser alone, audited, and changes nothing.

use super::{APPROVE_PREFIX, DENY_PREFIX, sweep_expired};
use crate::domain::{ActionId, Reply};
use crate::engine::pipeline::Handled;
use crate::engine::trail::Trail;
use crate::engine::{Engine, Request};
use crate::storage::approvals::{self, RequestState};

/// Whether callback data belongs to an approver's button: (approve?, notice id).
pub(in crate::engine) fn parse(data: &str) -> Option<(bool, &str)> {
    if let Some(raw) = data.strip_prefix(APPROVE_PREFIX) {
        return Some((true, raw));
    }
    data.strip_prefix(DENY_PREFIX).map(|raw| (false, raw))
}

impl Engine {
    pub(in crate::engine) async fn on_approval_button(
        &self,
        req: &Request,
        approve: bool,
        raw: &str,
    ) -> Handled {
        let label = "callback";
        let args = if approve { "approve" } else { "deny" };
        let trail = Trail::new(req, label, args);
        let principal = match self.admit(req, &trail, label).await {
            Ok(p) => p,
            Err(done) => return done,
        };
        let notice = match ActionId::parse(raw) {
            Ok(id) => approvals::notice(self.pool(), &id).await,
            Err(_) => Ok(None),
        };
        let refusal = |decision: &'static str, reason: &'static str, text: &'static str| {
            (decision, reason, Reply::html(text).as_notice())
        };
        let (decision, reason, reply) = match notice {
            Err(e) => return self.db_down(label, &e),
            Ok(None) => refusal(
                "denied",
                "unknown or forged action",
                "This button is not valid.",
            ),
            Ok(Some(n)) if n.approver != principal.user.id.0 => refusal(
                "denied",
                "action belongs to another user",
                "This button is not yours.",
            ),
            Ok(Some(n)) if n.chat_id != req.chat.id.0 => refusal(
                "denied",
                "action used from another chat",
                "This button works only in your private chat with the bot.",
            ),
            Ok(Some(n)) => match approvals::state(self.pool(), &n.approval_id).await {
                Err(e) => return self.db_down(label, &e),
                Ok(Some(RequestState::Open)) => {
                    let text = format!("/{args} {}", n.approval_id);
                    let mut done = self.on_text(req, &text).await;
                    if done.decision != "allowed" {
                        done.reply = done.reply.map(Reply::as_notice);
                    }
                    return done;
                }
                Ok(Some(RequestState::Decided)) => refusal(
                    "denied",
                    "action already used",
                    "This request was already decided.",
                ),
                Ok(_) => {
                    // Tell its requester and edit the copies now rather than at the next sweep.
                    if let Err(e) = sweep_expired(self.pool(), self.audit()).await {
                        tracing::warn!(error = %e, "approval.sweep_failed");
                    }
                    refusal(
                        "denied",
                        "action expired",
                        "⌛ This request has expired. Nothing was run.",
                    )
                }
            },
        };
        self.refuse(&trail, label, decision, reason, reply).await
    }
}
