//! What `/secrets` and `opsguard secret list|status` show of each managed secret: kind,
//! current fingerprint and age, the next scheduled rotation, and the last rotation with its
//! result (and the failed step and error). Only fingerprints, never values.

use super::catalog::ManagedSecret;
use super::retirement::{self, RetireState};
use super::rotation_rows::{self as rows, RotationRow};
use super::store;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

#[derive(Debug, Clone)]
pub struct SecretStatus {
    pub name: String,
    pub kind: &'static str,
    /// (version, fingerprint, promoted at) of the current version.
    pub current: Option<(i32, String, DateTime<Utc>)>,
    /// (version, fingerprint, revoked after) of the previous version still in its grace.
    pub previous: Option<(i32, String, Option<DateTime<Utc>>)>,
    /// When `/rotate_due` will rotate it (`None`: not scheduled).
    pub next_rotation: Option<DateTime<Utc>>,
    pub last: Option<RotationRow>,
    pub approval: bool,
    pub totp: bool,
    /// Previous versions and retired ones (newest first): where their retirement stands.
    pub retirements: Vec<RetireState>,
    /// A rotation waits for the previous version's grace to end (`postgres_role`).
    pub waits_for_grace: bool,
    /// The kind ends sessions opened with a retired credential.
    pub ends_sessions: bool,
}

pub async fn of(pool: &PgPool, secret: &ManagedSecret) -> sqlx::Result<SecretStatus> {
    let name = secret.name.as_str();
    let versions = store::versions(pool, name, &["current", "previous"]).await?;
    let current = versions.iter().find(|v| v.state == "current").map(|v| {
        (
            v.version,
            v.fingerprint.clone(),
            v.promoted_at.unwrap_or(v.created_at),
        )
    });
    let previous = versions
        .iter()
        .find(|v| v.state == "previous")
        .map(|v| (v.version, v.fingerprint.clone(), v.retire_after));
    let next_rotation = secret.policy.rotate_every.map(|every| match &current {
        Some((_, _, at)) => *at + every,
        None => Utc::now(),
    });
    Ok(SecretStatus {
        name: name.to_string(),
        kind: secret.kind.kind(),
        current,
        previous,
        next_rotation,
        last: rows::latest(pool, name).await?,
        approval: secret.policy.approval,
        totp: secret.policy.totp,
        retirements: retirement::states(pool, name).await?,
        waits_for_grace: secret.kind.waits_for_grace(),
        ends_sessions: secret.kind.ends_sessions(),
    })
}

fn at(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

impl SecretStatus {
    /// The versions worth showing: every previous one, the last retired one, and any whose
    /// sessions are still to be ended.
    pub fn shown_retirements(&self) -> impl Iterator<Item = &RetireState> {
        let last_revoked = self.retirements.iter().find(|r| r.state == "revoked");
        self.retirements.iter().filter(move |r| {
            r.state == "previous"
                || (r.sessions_before.is_some() && r.sessions_ended_at.is_none())
                || last_revoked.is_some_and(|l| l.version == r.version)
        })
    }

    /// Where a previous or retired version stands, in words: `works until …`, `revoked …,
    /// sessions ended …`, or the failing retirement with its error and next try.
    pub fn retirement_note(&self, r: &RetireState) -> String {
        let failing = |what: &str| match (&r.retire_error, r.retire_next_at) {
            (Some(e), Some(next)) => format!(
                "; {what} is failing (attempt {}, next try {}): {e}",
                r.retire_attempts,
                at(next)
            ),
            _ => String::new(),
        };
        if r.state == "previous" {
            let until = r.retire_after.map(at).unwrap_or_default();
            let mut note = format!("works until {until}{}", failing("retiring it"));
            if self.waits_for_grace
                && let Some(t) = r.retire_after.filter(|t| *t > Utc::now())
            {
                note.push_str(&format!(
                    "; a new rotation would cut this short and is possible from {}",
                    at(t)
                ));
            }
            return note;
        }
        let revoked = r.revoked_at.map(at).unwrap_or_default();
        match (self.ends_sessions, r.sessions_ended_at) {
            (false, _) => format!("revoked {revoked}"),
            (true, Some(ended)) => format!("revoked {revoked}, sessions ended {}", at(ended)),
            (true, None) => format!(
                "revoked {revoked}, its sessions are still open{}",
                failing("ending them")
            ),
        }
    }

    /// `previous v1 sha256:…: works until …` lines, as the shell shows them.
    pub fn retirements(&self) -> Vec<String> {
        self.shown_retirements()
            .map(|r| {
                let label = if r.state == "previous" {
                    "previous"
                } else {
                    "retired"
                };
                let note = self.retirement_note(r);
                format!("{label} v{} sha256:{}: {note}", r.version, r.fingerprint)
            })
            .collect()
    }

    /// Whether a scheduled rotation is due now.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.next_rotation.is_some_and(|at| at <= now)
    }

    /// The last rotation in a few words: `succeeded 2026-11-22 03:01 by 42`, or the failed
    /// step and its error.
    pub fn last_summary(&self) -> String {
        let Some(r) = &self.last else {
            return "never rotated".into();
        };
        let by = match (r.via.as_str(), r.requested_by) {
            ("schedule", _) => "the scheduler".to_string(),
            (_, Some(user)) if user > 0 => format!("user {user}"),
            _ => "the shell".to_string(),
        };
        let at = r
            .finished_at
            .unwrap_or(r.updated_at)
            .format("%Y-%m-%d %H:%M UTC");
        match r.status() {
            s if s.is_active() => format!(
                "#{} {} at step {} (attempt {}), started by {by}{}",
                r.id,
                // A retry without an error is a planned wait (a key published as "next").
                match (s.as_str(), &r.error) {
                    ("retrying", None) => "waiting",
                    (label, _) => label,
                },
                r.step,
                r.attempts + 1,
                r.error
                    .as_ref()
                    .map(|e| format!("; last error: {e}"))
                    .unwrap_or_default()
            ),
            s => format!(
                "#{} {} {at} by {by}{}",
                r.id,
                s.as_str(),
                match (&r.error, s.as_str()) {
                    (Some(e), "failed" | "rolled_back") => format!(" at step {}: {e}", r.step),
                    _ => String::new(),
                }
            ),
        }
    }
}
