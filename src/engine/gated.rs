//! The gated part of the pipeline: asking for the gates a sensitive command needs
//! (confirm button, TOTP step-up, second admin), and resuming a command when a pending
//! action is claimed (button press, `/stepup`, `/approve`; approvers' buttons: `approval`).

use super::gates::{self, GatePlan};
use super::pipeline::{AUDIT_DOWN, Handled, handled};
use super::trail::{Trail, Verdict};
use super::{Engine, Request};
use crate::domain::command::Command;
use crate::domain::{ActionId, Reply};
use crate::storage::{pending, users::Principal};
use futures::future::BoxFuture;
use std::sync::Arc;

impl Engine {
    pub(super) async fn on_callback(&self, req: &Request, data: &str) -> Handled {
        if let Some(raw) = data.strip_prefix(gates::CHAT_ACTION_PREFIX) {
            return self.on_chat_button(req, raw).await;
        }
        if let Some((approve, raw)) = super::approval::buttons::parse(data) {
            return self.on_approval_button(req, approve, raw).await;
        }
        let label = "callback";
        let mut trail = Trail::new(req, label, "");
        let principal = match self.admit(req, &trail, label).await {
            Ok(p) => p,
            Err(done) => return done,
        };
        let Some((confirm, id)) = gates::parse_callback(data) else {
            let reply = Reply::html("This button is not valid.").as_notice();
            return self
                .refuse(&trail, label, "invalid", "malformed callback data", reply)
                .await;
        };
        trail.args = if confirm {
            "confirm".into()
        } else {
            "cancel".into()
        };
        let status = if confirm { "confirmed" } else { "cancelled" };
        let action = match pending::claim(
            self.pool(),
            &id,
            pending::Kind::Confirm,
            principal.user.id,
            Some(req.chat.id.0),
            status,
        )
        .await
        {
            Err(e) => return self.db_down(label, &e),
            Ok(Err(refusal)) => {
                let text = match refusal {
                    pending::Refusal::Expired => {
                        "⌛ This button has expired. Run the command again."
                    }
                    pending::Refusal::Used => "This button was already used.",
                    pending::Refusal::NotYours => "This button is not yours.",
                    pending::Refusal::WrongChat => {
                        "This button belongs to another chat: press it there."
                    }
                    _ => "This button is not valid.",
                };
                return self
                    .refuse(
                        &trail,
                        label,
                        "denied",
                        refusal.reason(),
                        Reply::html(text).as_notice(),
                    )
                    .await;
            }
            Ok(Ok(action)) => action,
        };
        self.resume(req, &principal, &action, confirm, "confirmed with button")
            .await
    }

    /// A chat-bound button (on a pushed alert): the command it holds runs as if the presser
    /// had typed it — identity, permission, rate limit and audit as for any command. Only
    /// a success is shown to the chat; a refusal is a notice for the presser alone.
    async fn on_chat_button(&self, req: &Request, raw: &str) -> Handled {
        let label = "callback";
        let trail = Trail::new(req, label, "chat button");
        if let Err(done) = self.admit(req, &trail, label).await {
            return done;
        }
        let command = match ActionId::parse(raw) {
            Ok(id) => pending::chat_command(self.pool(), &id, req.chat.id.0).await,
            Err(_) => Ok(None),
        };
        let text = match command {
            Err(e) => return self.db_down(label, &e),
            Ok(Some(text)) => text,
            Ok(None) => {
                let reply = Reply::html("⌛ This button has expired or does not belong here.");
                return self
                    .refuse(
                        &trail,
                        label,
                        "denied",
                        "unknown, expired or foreign chat button",
                        reply.as_notice(),
                    )
                    .await;
            }
        };
        let mut done = self.on_text(req, &text).await;
        if done.decision != "allowed" {
            done.reply = done.reply.map(Reply::as_notice);
        }
        done
    }

    /// Continue a claimed pending action: re-check it, then pass the gates it still needs.
    pub(super) async fn resume(
        &self,
        req: &Request,
        principal: &Arc<Principal>,
        action: &pending::PendingAction,
        proceed: bool,
        reason: &str,
    ) -> Handled {
        let Ok(command) = Command::parse(&action.command) else {
            let trail = Trail::new(req, "callback", "");
            return self
                .refuse(
                    &trail,
                    "callback",
                    "invalid",
                    "stored command no longer parses",
                    Reply::html("This action is no longer valid."),
                )
                .await;
        };
        let label = command.spec().name;
        let mut trail = Trail::new(req, label, command.audit_args());
        if req.actor.user.map(|u| u.0) != Some(action.user_id) {
            // An approved request runs as its requester.
            trail = trail.on_behalf_of(action.user_id, label, &command.audit_args());
        }
        if !proceed {
            return self
                .refuse(
                    &trail,
                    label,
                    "denied",
                    "cancelled by the user",
                    Reply::html("✖ Cancelled."),
                )
                .await;
        }
        if action.chat_id != req.chat.id.0 {
            let reply = Reply::html("This action belongs to another chat.").as_notice();
            return self
                .refuse(
                    &trail,
                    label,
                    "denied",
                    "action used from another chat",
                    reply,
                )
                .await;
        }
        if !principal
            .permissions
            .contains(command.spec().permission.as_str())
        {
            return self.deny_permission(&trail, label, command.spec()).await;
        }
        let remaining = GatePlan {
            confirm: false,
            stepup: action.need_stepup,
            approval: action.need_approval,
        };
        self.gate_or_run(
            req,
            trail,
            principal.clone(),
            command,
            remaining,
            Some(reason),
        )
        .await
    }

    /// Boxed for the commands that resume other commands (`/stepup`, `/approve`).
    pub(super) fn resume_boxed<'a>(
        &'a self,
        req: &'a Request,
        principal: &'a Arc<Principal>,
        action: &'a pending::PendingAction,
        reason: &'a str,
    ) -> BoxFuture<'a, Handled> {
        Box::pin(self.resume(req, principal, action, true, reason))
    }

    /// Ask for the first gate still needed, or run the command.
    pub(super) async fn gate_or_run(
        &self,
        req: &Request,
        trail: Trail,
        principal: Arc<Principal>,
        command: Command,
        plan: GatePlan,
        reason: Option<&str>,
    ) -> Handled {
        let label = command.spec().name;
        let gates = &self.settings().gates;
        let user = principal.user.id;
        let (kind, ttl, decision_reason, outcome) = if plan.confirm {
            (
                pending::Kind::Confirm,
                gates.confirm_ttl_secs,
                "confirmation required",
                "awaiting_confirmation",
            )
        } else if plan.stepup {
            match crate::storage::totp::get(self.pool(), user).await {
                Err(e) => return self.db_down(label, &e),
                Ok(Some(e)) if e.confirmed => {}
                Ok(_) => {
                    let reply = Reply::html(
                        "🔐 This command needs a TOTP code, and you have no authenticator enrolled. Send /totp enroll in a private chat first.",
                    );
                    return self
                        .refuse(
                            &trail,
                            label,
                            "denied",
                            "step-up required, not enrolled",
                            reply,
                        )
                        .await;
                }
            }
            (
                pending::Kind::StepUp,
                gates.stepup_ttl_secs,
                "TOTP step-up required",
                "awaiting_step_up",
            )
        } else if plan.approval {
            (
                pending::Kind::Approval,
                gates.approval_ttl_secs,
                "second admin's approval required",
                "awaiting_approval",
            )
        } else {
            return self.run(req, &trail, &principal, &command, reason).await;
        };
        let verdict = Verdict {
            decision: "pending",
            reason: Some(decision_reason),
        };
        if let Err(e) = trail.attempt(self.audit(), &verdict).await {
            tracing::error!(error = %e, "audit.write_failed");
            return handled(Some(Reply::html(AUDIT_DOWN)), label, "refused");
        }
        let canonical = command.canonical();
        let created = pending::create(
            self.pool(),
            pending::NewPending {
                kind,
                user,
                chat_id: req.chat.id.0,
                command: &canonical,
                need_stepup: plan.stepup && kind == pending::Kind::Confirm,
                need_approval: plan.approval && kind != pending::Kind::Approval,
                request_id: &req.id.to_string(),
                ttl: chrono::Duration::seconds(ttl),
            },
        )
        .await;
        let id = match created {
            Ok(id) => id,
            Err(e) => {
                let _ = trail
                    .outcome(
                        self.audit(),
                        &verdict,
                        "failed",
                        Some("could not store the pending action"),
                    )
                    .await;
                return self.db_down(label, &e);
            }
        };
        // A lost outcome row is logged at ERROR and counted by `Trail::outcome`.
        let _ = trail.outcome(self.audit(), &verdict, outcome, None).await;
        let reply = match kind {
            pending::Kind::Confirm => gates::confirm_prompt(&command, &id, ttl, &plan),
            pending::Kind::StepUp => gates::stepup_prompt(&command, ttl),
            pending::Kind::Approval => self.ask_approvers(&principal, &command, &id, ttl).await,
            pending::Kind::Chat => unreachable!("gates never ask through a chat-bound button"),
        };
        handled(Some(reply), label, "pending")
    }
}
