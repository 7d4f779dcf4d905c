//! The audit trail of one request: the attempt row (written before anything runs; if it
//! cannot be written, nothing runs) and the outcome row.

use super::Request;
use crate::domain::audit::{AuditEntry, Phase, clean};
use crate::storage::audit_writer::{AuditWriteError, AuditWriter};
use std::time::Instant;

pub struct Trail {
    request_id: String,
    actor_kind: &'static str,
    actor_id: Option<i64>,
    chat_id: Option<i64>,
    pub command: String,
    pub args: String,
    started: Instant,
}

/// What the audit row says happened.
pub struct Verdict<'a> {
    pub decision: &'static str,
    pub reason: Option<&'a str>,
}

impl Trail {
    pub fn new(req: &Request, command: impl Into<String>, args: impl Into<String>) -> Self {
        Trail {
            request_id: req.id.to_string(),
            actor_kind: req.actor.kind.as_str(),
            actor_id: req.actor.user.map(|u| u.0),
            chat_id: (req.chat.id.0 != 0).then_some(req.chat.id.0),
            command: clean(&command.into(), 64),
            args: clean(&args.into(), 512),
            started: Instant::now(),
        }
    }

    /// Who the rows are attributed to: the actor's kind and id, and the chat.
    pub fn actor(&self) -> (&'static str, Option<i64>, Option<i64>) {
        (self.actor_kind, self.actor_id, self.chat_id)
    }

    /// The same request, attributed to another user (an approved request runs as its requester).
    pub fn on_behalf_of(&self, user: i64, command: &str, args: &str) -> Self {
        Trail {
            request_id: self.request_id.clone(),
            actor_kind: self.actor_kind,
            actor_id: Some(user),
            chat_id: self.chat_id,
            command: clean(command, 64),
            args: clean(args, 512),
            started: Instant::now(),
        }
    }

    fn entry(
        &self,
        phase: Phase,
        verdict: &Verdict<'_>,
        outcome: Option<&str>,
        error: Option<&str>,
    ) -> AuditEntry {
        let at = chrono::Utc::now().timestamp_micros();
        AuditEntry {
            request_id: self.request_id.clone(),
            at_micros: at,
            phase: phase.as_str().into(),
            actor_kind: self.actor_kind.into(),
            actor_id: self.actor_id,
            chat_id: self.chat_id,
            command: self.command.clone(),
            args: self.args.clone(),
            decision: verdict.decision.into(),
            reason: verdict.reason.map(|r| clean(r, 512)),
            outcome: outcome.map(str::to_string),
            error: error.map(|e| clean(e, 1024)),
            duration_ms: (phase == Phase::Outcome)
                .then(|| self.started.elapsed().as_millis() as i64),
        }
    }

    pub async fn attempt(
        &self,
        audit: &AuditWriter,
        verdict: &Verdict<'_>,
    ) -> Result<(), AuditWriteError> {
        let result = audit
            .append(self.entry(Phase::Attempt, verdict, None, None))
            .await;
        if result.is_err() {
            // Logged by the caller, which refuses the command (fail closed).
            metrics::counter!("opsguard_audit_write_failures_total", "phase" => "attempt")
                .increment(1);
        }
        result.map(|_| ())
    }

    pub async fn outcome(
        &self,
        audit: &AuditWriter,
        verdict: &Verdict<'_>,
        outcome: &str,
        error: Option<&str>,
    ) -> Result<(), AuditWriteError> {
        let result = audit
            .append(self.entry(Phase::Outcome, verdict, Some(outcome), error))
            .await;
        if let Err(e) = &result {
            metrics::counter!("opsguard_audit_write_failures_total", "phase" => "outcome")
                .increment(1);
            tracing::error!(audit.request_id = %self.request_id, audit.command = %self.command, error = %e, "audit.outcome_write_failed");
        }
        result.map(|_| ())
    }

    /// Both rows for a request that is refused before anything runs.
    pub async fn refused(
        &self,
        audit: &AuditWriter,
        verdict: &Verdict<'_>,
        outcome: &str,
    ) -> Result<(), AuditWriteError> {
        self.attempt(audit, verdict).await?;
        self.outcome(audit, verdict, outcome, None).await
    }
}
