//! An authentication event as the platform's auth service reports it: who tried to log in
//! where, from which address, and how it ended. Parsing and validation of a posted batch
//! live in `auth_batch`; detection counts failures and lockouts, never successes.

use chrono::{DateTime, Utc};
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Failure,
    Success,
    Locked,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Failure => "failure",
            Outcome::Success => "success",
            Outcome::Locked => "locked",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        match s {
            "failure" => Some(Outcome::Failure),
            "success" => Some(Outcome::Success),
            "locked" => Some(Outcome::Locked),
            _ => None,
        }
    }

    /// Whether detection counts this event (a lockout is a failed login too).
    pub fn is_failure(self) -> bool {
        !matches!(self, Outcome::Success)
    }
}

/// One validated event. Every field has passed the checks in `auth_batch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthEvent {
    /// The sender's id for idempotency: an event with an id already stored is a duplicate.
    pub id: Option<String>,
    pub at: DateTime<Utc>,
    pub ip: IpAddr,
    pub account: String,
    pub service: String,
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub user_agent: Option<String>,
}
