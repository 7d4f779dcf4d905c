//! An authentication event as an auth source reports it: from which source (an address, or
//! a host name as sshd's `rhost` often is), on which account if known, and how it ended
//! (with why, when the source says: an unknown user or a bad password). Parsing and
//! validation of a posted batch live in `auth_batch`; detection counts failures and
//! lockouts, never successes.

use chrono::{DateTime, Utc};
use std::fmt;
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

/// Where a login attempt came from: an IP address, or a host name (lower case, never an
/// address written as a name: that is an `Ip`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Ip(IpAddr),
    Host(String),
}

impl Source {
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Source::Ip(ip) => Some(*ip),
            Source::Host(_) => None,
        }
    }

    pub fn host(&self) -> Option<&str> {
        match self {
            Source::Ip(_) => None,
            Source::Host(host) => Some(host),
        }
    }

    /// `ip:<addr>` or `host:<name>`: the source as a window or alert key.
    pub fn key(&self) -> String {
        match self {
            Source::Ip(ip) => format!("ip:{ip}"),
            Source::Host(host) => format!("host:{host}"),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Ip(ip) => write!(f, "{ip}"),
            Source::Host(host) => f.write_str(host),
        }
    }
}

/// Why a login failed, when the source says so in a form rules can use (`reason` is
/// `unknown_user` or `bad_password`); any other reason is kept as text only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    UnknownUser,
    BadPassword,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::UnknownUser => "unknown_user",
            Cause::BadPassword => "bad_password",
        }
    }

    pub fn parse(s: &str) -> Option<Cause> {
        match s {
            "unknown_user" => Some(Cause::UnknownUser),
            "bad_password" => Some(Cause::BadPassword),
            _ => None,
        }
    }
}

/// One validated event. Every field has passed the checks in `auth_batch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthEvent {
    /// The sender's id for idempotency: an event with an id already stored is a duplicate.
    pub id: Option<String>,
    pub at: DateTime<Utc>,
    pub source: Source,
    /// The account tried, when the source names it (a pre-auth disconnect does not).
    pub account: Option<String>,
    pub service: String,
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub user_agent: Option<String>,
}

impl AuthEvent {
    /// The failure's cause, when `reason` is one rules understand.
    pub fn cause(&self) -> Option<Cause> {
        self.reason.as_deref().and_then(Cause::parse)
    }
}
