//! TOTP secrets in the vault: sealed like secret values (AES-256-GCM under the master key,
//! a fresh nonce each time), with `totp/<user id>` as associated data, so a sealed secret
//! opens only in its own user's row (a row copied to another user does not open).

use super::{MasterKey, Sealed, VaultError};
use crate::domain::UserId;
use crate::domain::secret::Secret;

fn aad(user: UserId) -> String {
    format!("totp/{user}")
}

impl MasterKey {
    /// Seal a user's base32 TOTP secret.
    pub fn seal_totp(&self, user: UserId, secret_b32: &Secret) -> Sealed {
        self.seal_with(secret_b32.expose().as_bytes(), aad(user).as_bytes())
    }

    /// Open a user's sealed TOTP secret; fails if the key, the user or the bytes differ.
    pub fn open_totp(
        &self,
        user: UserId,
        nonce: &[u8],
        sealed: &[u8],
    ) -> Result<Secret, VaultError> {
        let corrupt = || VaultError::Corrupt(format!("the TOTP secret of user {user}"));
        let plain = self
            .open_with(nonce, sealed, aad(user).as_bytes())
            .ok_or_else(corrupt)?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| corrupt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn key(byte: u8) -> MasterKey {
        let raw = base64::engine::general_purpose::STANDARD.encode([byte; 32]);
        MasterKey::parse(Some(&Secret::new(raw))).unwrap()
    }

    #[test]
    fn a_totp_secret_opens_only_for_its_user_under_its_key() {
        let secret = Secret::new("JBSWY3DPEHPK3PXP");
        let sealed = key(1).seal_totp(UserId(42), &secret);
        assert!(!String::from_utf8_lossy(&sealed.sealed).contains("JBSWY3DP"));
        let opened = key(1)
            .open_totp(UserId(42), &sealed.nonce, &sealed.sealed)
            .unwrap();
        assert_eq!(opened.expose(), "JBSWY3DPEHPK3PXP");
        assert!(
            key(1)
                .open_totp(UserId(43), &sealed.nonce, &sealed.sealed)
                .is_err()
        );
        assert!(
            key(2)
                .open_totp(UserId(42), &sealed.nonce, &sealed.sealed)
                .is_err()
        );
    }
}
