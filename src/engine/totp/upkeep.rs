//! TOTP upkeep outside a command: start-up sealing of plaintext secrets, the periodic sweep
//! of expired enrolments, the shell's reset, and the engine's hook for the message that
//! showed an enrolment URI (so it can be deleted).

use super::{SOURCE, secret_of};
use crate::domain::secret::Secret as Plain;
use crate::domain::{Tracked, UserId};
use crate::outbox;
use crate::secrets::vault::MasterKey;
use crate::storage::StoreResult;
use crate::storage::totp::{self as store, StoredSecret};
use sqlx::PgPool;

/// Remove expired enrolments and queue the deletion of the messages that showed them;
/// returns how many were removed. Run periodically (any replica; idempotent).
pub async fn sweep_expired(pool: &PgPool) -> StoreResult<usize> {
    let mut tx = pool.begin().await?;
    let shown = store::take_expired(&mut *tx).await?;
    for (chat, message) in &shown {
        outbox::enqueue_delete(&mut *tx, *chat, *message, SOURCE).await?;
    }
    tx.commit().await?;
    Ok(shown.len())
}

/// Remove a user's authenticator and enrolment in progress (the shell's `user reset-totp`);
/// true when there was an authenticator.
pub async fn reset(pool: &PgPool, user: UserId) -> StoreResult<bool> {
    let mut tx = pool.begin().await?;
    let (had, shown) = store::reset(&mut tx, user).await?;
    if let Some((chat, message)) = shown {
        outbox::enqueue_delete(&mut *tx, chat, message, SOURCE).await?;
    }
    tx.commit().await?;
    Ok(had)
}

/// Install a confirmed authenticator for a known base32 secret (tests, migrations of
/// existing factors). Sealed like any other.
pub async fn install(
    pool: &PgPool,
    key: &MasterKey,
    user: UserId,
    secret_b32: &str,
) -> StoreResult<()> {
    let sealed = key.seal_totp(user, &Plain::new(secret_b32));
    store::set_confirmed(pool, user, &sealed.nonce, &sealed.sealed, 0).await
}

/// At start-up: with a master key, seal every secret an older version left in plaintext;
/// without one, warn that step-up refuses them until a key is set.
pub async fn on_start(pool: &PgPool, key: Option<&MasterKey>) -> StoreResult<()> {
    let legacy = store::legacy_users(pool).await?;
    let Some(key) = key else {
        if !legacy.is_empty() {
            tracing::warn!(
                totp.unsealed = legacy.len(),
                "totp.unsealed_secrets: set OPSGUARD_MASTER_KEY to seal them; step-up refuses them until then"
            );
        }
        return Ok(());
    };
    for id in legacy {
        let _ = secret_of(pool, Some(key), UserId(id), StoredSecret::Legacy).await?;
    }
    Ok(())
}

impl crate::engine::Engine {
    /// The master key, when the vault is open (TOTP needs it).
    pub fn master_key(&self) -> Option<MasterKey> {
        self.inner.secrets.as_ref().map(|r| r.key().clone())
    }

    /// A tracked reply went out as `message_id` in `chat_id` (the transport says so).
    pub async fn reply_sent(&self, tracked: Tracked, chat_id: i64, message_id: i64) {
        let Tracked::TotpEnrolment(user) = tracked;
        let pool = self.pool();
        let result = match store::record_message(pool, user, chat_id, message_id).await {
            Ok(true) => Ok(()),
            // Confirmed, replaced or expired meanwhile: delete it now.
            Ok(false) => outbox::enqueue_delete(pool, chat_id, message_id, SOURCE)
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, user = %user, "totp.enrolment_message_untracked");
        }
    }
}
