//! The ordered steps every request takes (the gated steps are in `gated.rs`). Each early
//! exit writes its audit rows first.

use super::gates;
use super::ratelimit::Verdict as Limit;
use super::trail::{Trail, Verdict};
use super::{Engine, Input, Request, exec};
use crate::domain::command::{Command, ParseError, redact_unparsed};
use crate::domain::html::escape;
use crate::domain::{ChatKind, Reply, UserId};
use crate::storage::{self, users::Principal};
use std::sync::Arc;
use std::time::Instant;

/// How much of an unknown command's name the refusal echoes.
const ECHO_CHARS: usize = 64;

/// All a stranger ever learns.
pub const NEUTRAL_LINE: &str = "This is a private bot.";
const DB_DOWN: &str =
    "⚠️ opsguard cannot reach its database, so nothing was run. Try again shortly.";
pub(super) const AUDIT_DOWN: &str = "⚠️ The audit log cannot be written, so nothing was run (opsguard fails closed). Try again shortly.";

/// The result of a request, with its labels for metrics.
pub(super) struct Handled {
    pub reply: Option<Reply>,
    pub command: &'static str,
    pub decision: &'static str,
}

pub(super) fn handled(
    reply: Option<Reply>,
    command: &'static str,
    decision: &'static str,
) -> Handled {
    Handled {
        reply,
        command,
        decision,
    }
}

impl Engine {
    /// Refuse because the database failed (closing the known-down latch if it could not be
    /// reached).
    pub(super) fn db_down(&self, command: &'static str, error: &sqlx::Error) -> Handled {
        self.db_latch().observe(error);
        tracing::error!(error = %error, command, "engine.database_unavailable");
        handled(Some(Reply::html(DB_DOWN)), command, "refused")
    }

    /// Run one request through the pipeline; `None` means: answer nothing.
    pub async fn handle(&self, req: Request) -> Option<Reply> {
        let started = Instant::now();
        let done = match &req.input {
            Input::Text(text) => self.on_text(&req, text).await,
            Input::Callback(data) => self.on_callback(&req, data).await,
            Input::Forwarded(text) => self.on_forwarded(&req, text).await,
        };
        metrics::counter!("opsguard_commands_total", "command" => done.command, "decision" => done.decision)
            .increment(1);
        metrics::histogram!("opsguard_pipeline_seconds").record(started.elapsed().as_secs_f64());
        done.reply
    }

    pub(super) async fn on_text(&self, req: &Request, text: &str) -> Handled {
        let parsed = Command::parse(text);
        let (label, trail) = match &parsed {
            Ok(c) => (
                c.spec().name,
                Trail::new(req, c.spec().name, c.audit_args()),
            ),
            Err(e) => {
                let (name, args) = redact_unparsed(text);
                let label = match e {
                    ParseError::Usage { spec, .. } => spec.name,
                    ParseError::Unknown { .. } => "unknown",
                    ParseError::NotACommand => "text",
                };
                (label, Trail::new(req, name, args))
            }
        };
        let principal = match self.admit(req, &trail, label).await {
            Ok(p) => p,
            Err(done) => return done,
        };
        let command = match parsed {
            Ok(command) => command,
            Err(ParseError::NotACommand) => {
                let reply = Reply::html("I only understand commands. Send /help to see yours.");
                return self
                    .refuse(&trail, label, "invalid", "not a command", reply)
                    .await;
            }
            Err(ParseError::Unknown { name }) => {
                // A name of any length is refused; only its start is echoed.
                let mut shown: String = name.chars().take(ECHO_CHARS).collect();
                if shown.len() < name.len() {
                    shown.push('…');
                }
                let reply = Reply::html(format!(
                    "Unknown command <code>/{}</code>. Send /help to see yours.",
                    escape(&shown)
                ));
                return self
                    .refuse(&trail, label, "unknown", "unknown command", reply)
                    .await;
            }
            Err(ParseError::Usage { spec, problem }) => {
                if !principal.permissions.contains(spec.permission.as_str()) {
                    return self.deny_permission(&trail, label, spec).await;
                }
                let reply = Reply::html(format!(
                    "Wrong arguments: {}.\nUsage: <code>{}</code>",
                    escape(&problem),
                    escape(spec.usage)
                ));
                return self.refuse(&trail, label, "invalid", &problem, reply).await;
            }
        };
        let spec = command.spec();
        if !principal.permissions.contains(spec.permission.as_str()) {
            return self.deny_permission(&trail, label, spec).await;
        }
        let subject = format!("user:{}", principal.user.id);
        if let Limit::Limited(wait) = self.inner.limiter.check(&subject, spec.risk).await {
            let secs = wait.as_secs_f64().ceil() as u64;
            let reply = Reply::html(format!(
                "⏳ Too many {} commands. Retry in {secs} s.",
                spec.risk.as_str()
            ));
            let reason = format!("{} limit reached; retry in {secs} s", spec.risk.as_str());
            return self
                .refuse(&trail, label, "rate_limited", &reason, reply)
                .await;
        }
        let facts = match self.role_facts(&trail, label, &principal, &command).await {
            Ok(facts) => facts,
            Err(done) => return done,
        };
        let plan = gates::plan(self.settings(), &command, &facts);
        self.gate_or_run(req, trail, principal, command, plan, None)
            .await
    }

    /// Identify the actor and check the chat. `Err` carries the finished answer.
    pub(super) async fn admit(
        &self,
        req: &Request,
        trail: &Trail,
        label: &'static str,
    ) -> Result<Arc<Principal>, Handled> {
        if self.db_latch().is_down() {
            // Known down: refused at once, nothing waits for the pool (`storage::latch`).
            // Without the database a stranger cannot be told from a user: only users this
            // replica has seen learn that the database is down.
            tracing::warn!(command = label, "engine.database_known_down");
            return Err(match req.actor.user {
                Some(user) if !self.authz().was_known(user) => {
                    handled(self.neutral_line(req).await, "stranger", "refused")
                }
                _ => handled(Some(Reply::html(DB_DOWN)), label, "refused"),
            });
        }
        let principal = match req.actor.user {
            Some(user) => match self.authz().principal(user).await {
                // Without the database a stranger cannot be told from a user: only users
                // this replica has seen learn that the database is down.
                Err(e) if self.authz().was_known(user) => return Err(self.db_down(label, &e)),
                Err(e) => {
                    self.db_latch().observe(&e);
                    tracing::error!(error = %e, "engine.database_unavailable");
                    let reply = self.neutral_line(req).await;
                    return Err(handled(reply, "stranger", "refused"));
                }
                Ok(p) => p.filter(|p| p.user.active),
            },
            None => match storage::users::role_permissions(self.pool(), "scheduler").await {
                Err(e) => return Err(self.db_down(label, &e)),
                Ok(perms) if !perms.is_empty() => Some(Arc::new(Principal {
                    user: storage::users::UserRecord {
                        id: UserId(0),
                        display_name: "scheduler".into(),
                        active: true,
                        roles: vec!["scheduler".into()],
                    },
                    permissions: perms,
                })),
                Ok(_) => None,
            },
        };
        let Some(principal) = principal else {
            // Strangers learn nothing: one neutral line in a private chat, silence elsewhere.
            let verdict = Verdict {
                decision: "denied",
                reason: Some("unknown user"),
            };
            if let Err(e) = trail.refused(self.audit(), &verdict, "rejected").await {
                tracing::error!(error = %e, "audit.write_failed");
            }
            let reply = self.neutral_line(req).await;
            return Err(handled(reply, "stranger", "denied"));
        };
        if req.chat.kind == ChatKind::Group {
            match storage::chats::is_allowed(self.pool(), req.chat.id).await {
                // Say nothing in a group that may not be allowed.
                Err(e) => {
                    tracing::error!(error = %e, "engine.database_unavailable");
                    return Err(handled(None, label, "refused"));
                }
                Ok(true) => {}
                Ok(false) if !self.refusal_allowed(trail).await => {
                    return Err(handled(None, label, "dropped"));
                }
                Ok(false) => {
                    let verdict = Verdict {
                        decision: "denied",
                        reason: Some("chat not allow-listed"),
                    };
                    if let Err(e) = trail.refused(self.audit(), &verdict, "rejected").await {
                        tracing::error!(error = %e, "audit.write_failed");
                    }
                    return Err(handled(None, label, "denied"));
                }
            }
        }
        Ok(principal)
    }

    /// Audit a refusal (both rows) and answer; if the audit cannot be written, say so.
    /// Past the user's `[flood] refused` limit, neither.
    pub(super) async fn refuse(
        &self,
        trail: &Trail,
        label: &'static str,
        decision: &'static str,
        reason: &str,
        reply: Reply,
    ) -> Handled {
        // Past the user's refusal limit: counted, neither audited nor answered.
        if !self.refusal_allowed(trail).await {
            return handled(None, label, "dropped");
        }
        let verdict = Verdict {
            decision,
            reason: Some(reason),
        };
        match trail.refused(self.audit(), &verdict, "rejected").await {
            Ok(()) => handled(Some(reply), label, decision),
            Err(e) => {
                tracing::error!(error = %e, "audit.write_failed");
                handled(Some(Reply::html(AUDIT_DOWN)), label, "refused")
            }
        }
    }

    pub(super) async fn deny_permission(
        &self,
        trail: &Trail,
        label: &'static str,
        spec: &crate::domain::CommandSpec,
    ) -> Handled {
        let reply = Reply::html(format!("⛔ You may not run /{}.", spec.name));
        self.refuse(
            trail,
            label,
            "denied",
            &format!("missing permission {}", spec.permission),
            reply,
        )
        .await
    }

    /// Audit the attempt (fail closed), execute, audit the outcome.
    pub(super) async fn run(
        &self,
        req: &Request,
        trail: &Trail,
        principal: &Arc<Principal>,
        command: &Command,
        reason: Option<&str>,
    ) -> Handled {
        let label = command.spec().name;
        let verdict = Verdict {
            decision: "allowed",
            reason,
        };
        if let Err(e) = trail.attempt(self.audit(), &verdict).await {
            tracing::error!(error = %e, command = label, "audit.write_failed");
            return handled(Some(Reply::html(AUDIT_DOWN)), label, "refused");
        }
        let ctx = exec::Ctx {
            engine: self,
            req,
            principal,
        };
        // A lost outcome row (below) is logged at ERROR and counted by `Trail::outcome`.
        match exec::execute(&ctx, command).await {
            Ok(reply) => {
                let _ = trail.outcome(self.audit(), &verdict, "ok", None).await;
                // A command with nothing to say (a scheduled check with no change) answers nothing.
                handled((!reply.is_empty()).then_some(reply), label, "allowed")
            }
            Err(error) => {
                let _ = trail
                    .outcome(self.audit(), &verdict, "failed", Some(&error.to_string()))
                    .await;
                if let exec::ExecError::Store(e) = &error {
                    tracing::error!(error = %e, command = label, request.id = %req.id, "command.failed");
                }
                handled(
                    Some(Reply::html(format!("❌ {}", error.user_message()))),
                    label,
                    "failed",
                )
            }
        }
    }
}
