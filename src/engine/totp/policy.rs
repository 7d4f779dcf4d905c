//! TOTP decisions, pure (time passed in): the codes of a secret (RFC 6238: SHA-1, six
//! digits, 30 s steps), which step a code is accepted for (one step either side of now,
//! each step once), when step-up is locked, and what a wrong code does to the lockout.

use chrono::{DateTime, Utc};
use totp_rs::{Builder, Secret, Totp};

/// Seconds per step.
pub const STEP_SECS: u64 = 30;
/// Steps either side of the current one a code may come from (clock drift).
pub const SKEW_STEPS: u8 = 1;

/// The authenticator of a base32 secret; `account` names it in its `otpauth://` URI.
pub fn authenticator(secret_b32: &str, account: &str) -> Option<Totp> {
    let secret = Secret::try_from_base32(secret_b32).ok()?;
    Builder::new()
        .with_secret(secret)
        .with_step_duration(STEP_SECS)
        .with_skew(u16::from(SKEW_STEPS))
        .with_issuer(Some("opsguard"))
        .with_account_name(account.replace(':', ""))
        .build()
        .ok()
}

/// The code of a base32 secret at `unix_secs`.
pub fn code_at(secret_b32: &str, unix_secs: u64) -> Option<String> {
    authenticator(secret_b32, "x").map(|t| t.generate(unix_secs).to_string())
}

/// The step `code` belongs to, if it is the code of the step of `unix_secs` or of one
/// step either side.
pub fn matching_step(secret_b32: &str, code: &str, unix_secs: u64) -> Option<u64> {
    authenticator(secret_b32, "x")?.check(code, unix_secs)
}

/// The step a step-up code is accepted for: a matching step later than the last one used
/// (a code is accepted once, and never one older than a code already used).
pub fn accepted_step(secret_b32: &str, code: &str, unix_secs: u64, last_step: i64) -> Option<u64> {
    matching_step(secret_b32, code, unix_secs)
        .filter(|step| i64::try_from(*step).is_ok_and(|s| s > last_step))
}

/// Seconds since the epoch of `t` (0 before it).
pub fn unix_secs(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp()).unwrap_or(0)
}

/// Whole minutes, rounded up, of `secs` (0 when already past).
pub fn minutes(secs: i64) -> i64 {
    (secs.max(0) + 59) / 60
}

/// Whole minutes, rounded up, from `now` until `t`.
pub fn minutes_until(t: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    minutes((t - now).num_seconds())
}

/// The end of a lockout still in force at `now`.
pub fn locked_at(locked_until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    locked_until.filter(|until| *until > now)
}

/// The lockout rule: after `max_failures` wrong codes in a row, step-up locks for
/// `base_secs`, doubled for each earlier lockout since the last good code, at most
/// `max_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    pub max_failures: i32,
    pub base_secs: i64,
    pub max_secs: i64,
}

/// A user's counters after a wrong code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterWrong {
    pub failures: i32,
    pub lockouts: i32,
    /// Locked for this long, starting now (this code was the last allowed failure).
    pub lock_secs: Option<i64>,
}

impl Lockout {
    /// How long the lockout after `lockouts` earlier ones in a row lasts.
    pub fn duration_secs(&self, lockouts: i32) -> i64 {
        let doublings = lockouts.clamp(0, 30) as u32;
        self.base_secs
            .saturating_mul(1_i64 << doublings)
            .min(self.max_secs)
    }

    /// What a wrong code does to `failures` and `lockouts` (the counters before it).
    pub fn after_wrong(&self, failures: i32, lockouts: i32) -> AfterWrong {
        let failures = failures.saturating_add(1);
        if failures < self.max_failures {
            return AfterWrong {
                failures,
                lockouts,
                lock_secs: None,
            };
        }
        AfterWrong {
            failures: 0,
            lockouts: lockouts.saturating_add(1),
            lock_secs: Some(self.duration_secs(lockouts)),
        }
    }

    /// Wrong codes still allowed before the lockout, after `failures` of them.
    pub fn remaining(&self, failures: i32) -> i32 {
        self.max_failures - failures
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
