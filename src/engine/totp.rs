//! TOTP step-up (RFC 6238, 30 s steps, a window of one step either side, each step accepted
//! once). Secrets are sealed in the vault under the master key (never stored in plaintext:
//! without a key, enrolment and step-up are refused). An enrolment expires, and the message
//! that showed its URI is deleted through the outbox when it is confirmed or expires. Wrong
//! codes lock step-up, each lockout twice as long as the one before, and every admin is told.

use crate::config::GateSettings;
use crate::domain::command::TotpCode;
use crate::domain::secret::Secret as Plain;
use crate::domain::{Reply, UserId};
use crate::outbox;
use crate::secrets::vault::MasterKey;
use crate::storage::StoreResult;
use crate::storage::totp::{self as store, StoredSecret};
use sqlx::PgPool;
use totp_rs::Secret;

pub mod policy;
mod upkeep;
use policy::{Lockout, accepted_step, authenticator, locked_at, matching_step, minutes, unix_secs};
pub use upkeep::{install, on_start, reset, sweep_expired};

/// The outbox `source` of the rows this module queues.
const SOURCE: &str = "totp";

/// Why TOTP is unavailable without a master key.
pub const NO_KEY: &str = "TOTP is unavailable: OPSGUARD_MASTER_KEY is not set, and opsguard never stores a TOTP secret unsealed. Ask whoever runs opsguard to set it.";
/// Why an authenticator enrolled by an older version no longer passes.
pub fn exposed(user: UserId) -> String {
    format!(
        "Your authenticator was enrolled by an older opsguard that left its secret in this chat, where anyone holding your Telegram account can read it, so it no longer passes step-up. Ask an admin to reset it from a shell (opsguard user reset-totp {user}), then enrol again."
    )
}

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
    /// The secret cannot be opened (no master key, or it does not open): why.
    Unavailable(String),
}

/// What became of `/totp confirm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    Done,
    NoEnrolment,
    Wrong,
    Unavailable(String),
}

/// The current code for a base32 secret (tests and the CLI use it).
pub fn current_code(secret_b32: &str) -> Option<String> {
    policy::code_at(secret_b32, unix_secs(chrono::Utc::now()))
}

/// Start an enrolment (a fresh secret, sealed, expiring after `ttl_secs`); returns the
/// `otpauth://` URI. A confirmed authenticator stays in force until this one is confirmed.
pub async fn enroll(
    pool: &PgPool,
    key: &MasterKey,
    user: UserId,
    ttl_secs: i64,
) -> StoreResult<String> {
    let b32 = Plain::new(Secret::generate().to_base32());
    let sealed = key.seal_totp(user, &b32);
    let mut tx = pool.begin().await?;
    let replaced =
        store::start_pending(&mut *tx, user, &sealed.nonce, &sealed.sealed, ttl_secs).await?;
    if let Some((chat, message)) = replaced {
        outbox::enqueue_delete(&mut *tx, chat, message, SOURCE).await?;
    }
    tx.commit().await?;
    let uri = authenticator(b32.expose(), &format!("telegram-{user}"))
        .and_then(|t| t.to_url().ok())
        .unwrap_or_default();
    Ok(uri)
}

/// Confirm the enrolment in progress with a code from it: it becomes the user's
/// authenticator, and the message that showed it is deleted.
pub async fn confirm(
    pool: &PgPool,
    key: Option<&MasterKey>,
    user: UserId,
    code: &TotpCode,
) -> StoreResult<Confirmed> {
    let Some(key) = key else {
        return Ok(Confirmed::Unavailable(NO_KEY.into()));
    };
    let Some(pending) = store::pending(pool, user).await? else {
        return Ok(Confirmed::NoEnrolment);
    };
    let secret = match key.open_totp(user, &pending.secret_nonce, &pending.secret_sealed) {
        Ok(s) => s,
        Err(e) => return Ok(Confirmed::Unavailable(e.to_string())),
    };
    let now = unix_secs(chrono::Utc::now());
    let Some(step) = matching_step(secret.expose(), &code.0, now) else {
        return Ok(Confirmed::Wrong);
    };
    let mut tx = pool.begin().await?;
    let Some(taken) = store::take_pending(&mut *tx, user, &pending.secret_nonce).await? else {
        return Ok(Confirmed::NoEnrolment);
    };
    store::set_confirmed(
        &mut *tx,
        user,
        &taken.secret_nonce,
        &taken.secret_sealed,
        step as i64,
    )
    .await?;
    if let (Some(chat), Some(message)) = (taken.chat_id, taken.message_id) {
        outbox::enqueue_delete(&mut *tx, chat, message, SOURCE).await?;
    }
    tx.commit().await?;
    tracing::info!(user = %user, "totp.enrolled");
    Ok(Confirmed::Done)
}

/// The user's secret, opened. A row left in plaintext by an older version is sealed (with
/// a key) and refused all the same: it was shown in the chat.
async fn secret_of(
    pool: &PgPool,
    key: Option<&MasterKey>,
    user: UserId,
    stored: StoredSecret,
) -> StoreResult<Result<Plain, String>> {
    match (stored, key) {
        (StoredSecret::Sealed { nonce, sealed }, Some(key)) => Ok(key
            .open_totp(user, &nonce, &sealed)
            .map_err(|e| e.to_string())),
        (StoredSecret::Sealed { .. }, None) => Ok(Err(NO_KEY.into())),
        (StoredSecret::Legacy, None) => Ok(Err(exposed(user))),
        (StoredSecret::Legacy, Some(key)) => {
            if let Some(plain) = store::legacy_secret(pool, user).await? {
                let sealed = key.seal_totp(user, &Plain::new(plain.clone()));
                store::seal_legacy(pool, user, &plain, &sealed.nonce, &sealed.sealed).await?;
                tracing::info!(user = %user, "totp.legacy_secret_sealed");
            }
            Ok(Err(exposed(user)))
        }
    }
}

/// Check a step-up code (or the current code before re-enrolling).
pub async fn check(
    pool: &PgPool,
    key: Option<&MasterKey>,
    gates: &GateSettings,
    user: UserId,
    code: &TotpCode,
) -> StoreResult<CodeCheck> {
    let Some(enrolment) = store::get(pool, user).await?.filter(|e| e.confirmed) else {
        return Ok(CodeCheck::NotEnrolled);
    };
    let now = chrono::Utc::now();
    if let Some(until) = locked_at(enrolment.locked_until, now) {
        return Ok(CodeCheck::Locked {
            minutes: policy::minutes_until(until, now),
        });
    }
    if enrolment.exposed {
        return Ok(CodeCheck::Unavailable(exposed(user)));
    }
    let secret = match secret_of(pool, key, user, enrolment.secret()).await? {
        Ok(secret) => secret,
        Err(why) => return Ok(CodeCheck::Unavailable(why)),
    };
    let step = accepted_step(
        secret.expose(),
        &code.0,
        unix_secs(now),
        enrolment.last_step,
    );
    if let Some(step) = step
        && store::accept(pool, user, step as i64).await?
    {
        return Ok(CodeCheck::Accepted);
    }
    let lockout = Lockout {
        max_failures: gates.totp_max_failures,
        base_secs: gates.totp_lockout_secs,
        max_secs: gates.totp_lockout_max_secs,
    };
    let mut tx = pool.begin().await?;
    let Some((failures, lockouts)) = store::counters_for_update(&mut tx, user).await? else {
        return Ok(CodeCheck::NotEnrolled);
    };
    let wrong = lockout.after_wrong(failures, lockouts);
    let after = store::record_wrong(
        &mut tx,
        user,
        wrong.failures,
        wrong.lockouts,
        wrong.lock_secs,
    )
    .await?;
    if let Some(secs) = wrong.lock_secs {
        let minutes = minutes(secs);
        let text = format!(
            "🔒 TOTP step-up of user <code>{user}</code> is locked for {minutes} min after {} wrong codes (lockout {} in a row).\nIf they did not type those codes, someone else may hold their Telegram account: disable them from a shell with <code>opsguard user disable {user}</code>.",
            gates.totp_max_failures, after.lockouts
        );
        for admin in store::admins(pool).await? {
            outbox::enqueue(&mut *tx, admin, &Reply::html(text.clone()), SOURCE).await?;
        }
        tx.commit().await?;
        tracing::warn!(user = %user, totp.lockouts = after.lockouts, totp.minutes = minutes, "totp.locked");
        return Ok(CodeCheck::LockedNow { minutes });
    }
    tx.commit().await?;
    Ok(CodeCheck::Wrong {
        remaining: lockout.remaining(after.failures),
    })
}

#[cfg(test)]
mod tests;
