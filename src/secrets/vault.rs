//! The vault's encryption: AES-256-GCM under `OPSGUARD_MASTER_KEY`, a fresh 96-bit nonce
//! per value and `"<secret>/<version>"` as associated data, so a sealed value opens only in
//! its own row. A key check sealed at creation proves a later start-up holds the same key.

use crate::domain::rotation::SecretName;
use crate::domain::secret::Secret;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use sqlx::PgPool;

mod totp;

const KEYCHECK_AAD: &[u8] = b"opsguard-vault-keycheck";
const KEYCHECK_PLAINTEXT: &[u8] = b"opsguard vault v1";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "OPSGUARD_MASTER_KEY is not set; it must be base64 of 32 bytes (e.g. `openssl rand -base64 32`)"
    )]
    MissingKey,
    #[error("OPSGUARD_MASTER_KEY is not base64 of 32 bytes")]
    MalformedKey,
    #[error(
        "OPSGUARD_MASTER_KEY does not open this vault (it was sealed with another key); nothing was changed"
    )]
    WrongKey,
    #[error("a vault value did not decrypt: {0} (wrong key, or the row was altered or moved)")]
    Corrupt(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// The master key. Debug shows nothing of it.
#[derive(Clone)]
pub struct MasterKey(Aes256Gcm);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// A sealed value: the nonce and the ciphertext with its tag.
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub sealed: Vec<u8>,
}

impl MasterKey {
    pub fn parse(raw: Option<&Secret>) -> Result<Self, VaultError> {
        let raw = raw
            .filter(|s| !s.is_empty())
            .ok_or(VaultError::MissingKey)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw.expose().trim())
            .map_err(|_| VaultError::MalformedKey)?;
        let key = Aes256Gcm::new_from_slice(&bytes).map_err(|_| VaultError::MalformedKey)?;
        Ok(MasterKey(key))
    }

    fn seal_with(&self, plaintext: &[u8], aad: &[u8]) -> Sealed {
        let nonce: [u8; 12] = rand::random();
        let sealed = self
            .0
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("AES-GCM encryption of an in-memory value cannot fail");
        Sealed {
            nonce: nonce.to_vec(),
            sealed,
        }
    }

    fn open_with(&self, nonce: &[u8], sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        self.0
            .decrypt(&Nonce::from(nonce), Payload { msg: sealed, aad })
            .ok()
    }

    /// Seal a secret's value for one row.
    pub fn seal(&self, secret: &SecretName, version: i32, value: &Secret) -> Sealed {
        self.seal_with(value.expose().as_bytes(), aad(secret, version).as_bytes())
    }

    /// Open a row's value; fails if the key, the row's place or its bytes differ.
    pub fn open(
        &self,
        secret: &SecretName,
        version: i32,
        nonce: &[u8],
        sealed: &[u8],
    ) -> Result<Secret, VaultError> {
        let corrupt = || VaultError::Corrupt(format!("{secret} version {version}"));
        let plain = self
            .open_with(nonce, sealed, aad(secret, version).as_bytes())
            .ok_or_else(corrupt)?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| corrupt())
    }

    /// At start-up: create the key check with this key, or prove this key opens it.
    pub async fn check(&self, pool: &PgPool) -> Result<(), VaultError> {
        let sealed = self.seal_with(KEYCHECK_PLAINTEXT, KEYCHECK_AAD);
        sqlx::query(
            "INSERT INTO vault_keycheck (id, nonce, sealed) VALUES (1, $1, $2)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&sealed.nonce)
        .bind(&sealed.sealed)
        .execute(pool)
        .await?;
        let (nonce, stored): (Vec<u8>, Vec<u8>) =
            sqlx::query_as("SELECT nonce, sealed FROM vault_keycheck WHERE id = 1")
                .fetch_one(pool)
                .await?;
        match self.open_with(&nonce, &stored, KEYCHECK_AAD) {
            Some(plain) if plain == KEYCHECK_PLAINTEXT => Ok(()),
            _ => Err(VaultError::WrongKey),
        }
    }
}

fn aad(secret: &SecretName, version: i32) -> String {
    format!("{secret}/{version}")
}

/// Whether the vault holds anything sealed (then a key is required to start).
pub async fn in_use(pool: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM vault_keycheck) OR EXISTS (SELECT 1 FROM secret_versions)",
    )
    .fetch_one(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        let raw = base64::engine::general_purpose::STANDARD.encode([byte; 32]);
        MasterKey::parse(Some(&Secret::new(raw))).unwrap()
    }

    #[test]
    fn a_value_opens_only_with_its_key_in_its_own_row() {
        let name = SecretName::parse("app-db").unwrap();
        let other = SecretName::parse("app-cache").unwrap();
        let value = Secret::new("canary-vault-value");
        let sealed = key(1).seal(&name, 3, &value);
        assert!(!String::from_utf8_lossy(&sealed.sealed).contains("canary"));
        let opened = key(1)
            .open(&name, 3, &sealed.nonce, &sealed.sealed)
            .unwrap();
        assert_eq!(opened.expose(), "canary-vault-value");
        assert!(
            key(2)
                .open(&name, 3, &sealed.nonce, &sealed.sealed)
                .is_err()
        );
        assert!(
            key(1)
                .open(&name, 4, &sealed.nonce, &sealed.sealed)
                .is_err()
        );
        assert!(
            key(1)
                .open(&other, 3, &sealed.nonce, &sealed.sealed)
                .is_err()
        );
        let again = key(1).seal(&name, 3, &value);
        assert_ne!(again.nonce, sealed.nonce, "a fresh nonce per value");
    }

    #[test]
    fn missing_or_malformed_keys_are_refused() {
        assert!(matches!(
            MasterKey::parse(None),
            Err(VaultError::MissingKey)
        ));
        let short = Secret::new(base64::engine::general_purpose::STANDARD.encode([1u8; 16]));
        assert!(matches!(
            MasterKey::parse(Some(&short)),
            Err(VaultError::MalformedKey)
        ));
        let junk = Secret::new("not base64!");
        assert!(matches!(
            MasterKey::parse(Some(&junk)),
            Err(VaultError::MalformedKey)
        ));
    }
}
