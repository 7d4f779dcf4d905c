//! TOTP step-up: enrolment secrets and code checks (RFC 6238, 30 s steps, a window of one
//! step either side, each step accepted once, lockout after repeated failures).

use crate::config::GateSettings;
use crate::domain::UserId;
use crate::domain::command::TotpCode;
use crate::storage::{self, StoreResult};
use sqlx::PgPool;
use totp_rs::{Builder, Secret, Totp};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCheck {
    Accepted,
    NotEnrolled,
    Locked {
        minutes: i64,
    },
    Wrong {
        remaining: i32,
    },
    /// This was the last allowed failure: step-up is now locked.
    LockedNow {
        minutes: i64,
    },
}

fn totp(secret_b32: &str, account: &str) -> Option<Totp> {
    let secret = Secret::try_from_base32(secret_b32).ok()?;
    Builder::new()
        .with_secret(secret)
        .with_skew(1)
        .with_issuer(Some("opsguard"))
        .with_account_name(account.replace(':', ""))
        .build()
        .ok()
}

/// Start an enrolment; returns the `otpauth://` URI to load into an authenticator app.
pub async fn enroll(pool: &PgPool, user: UserId) -> StoreResult<String> {
    let secret = Secret::generate();
    let b32 = secret.to_base32();
    storage::totp::start(pool, user, &b32).await?;
    let uri = totp(&b32, &format!("telegram-{user}"))
        .and_then(|t| t.to_url().ok())
        .unwrap_or_default();
    Ok(uri)
}

/// Check a code for a user. `require_confirmed` is false only when confirming enrolment.
pub async fn check(
    pool: &PgPool,
    gates: &GateSettings,
    user: UserId,
    code: &TotpCode,
    require_confirmed: bool,
) -> StoreResult<CodeCheck> {
    let Some(enrolment) = storage::totp::get(pool, user).await? else {
        return Ok(CodeCheck::NotEnrolled);
    };
    if require_confirmed && !enrolment.confirmed {
        return Ok(CodeCheck::NotEnrolled);
    }
    if let Some(until) = enrolment.locked_until {
        let left = until - chrono::Utc::now();
        if left > chrono::Duration::zero() {
            return Ok(CodeCheck::Locked {
                minutes: left.num_minutes() + 1,
            });
        }
    }
    let step = totp(&enrolment.secret_b32, &user.to_string())
        .and_then(|t| t.check_current(&code.0))
        .filter(|step| *step as i64 > enrolment.last_step);
    if let Some(step) = step
        && storage::totp::accept(pool, user, step as i64).await?
    {
        return Ok(CodeCheck::Accepted);
    }
    let after =
        storage::totp::reject(pool, user, gates.totp_max_failures, gates.totp_lockout_secs).await?;
    Ok(
        if after.locked_until.is_some_and(|t| t > chrono::Utc::now()) {
            CodeCheck::LockedNow {
                minutes: gates.totp_lockout_secs / 60,
            }
        } else {
            CodeCheck::Wrong {
                remaining: gates.totp_max_failures - after.failures,
            }
        },
    )
}

/// The current code for a base32 secret (tests and the CLI use it).
pub fn current_code(secret_b32: &str) -> Option<String> {
    totp(secret_b32, "x").map(|t| t.generate_current().to_string())
}
