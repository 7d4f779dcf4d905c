//! The audit keys, derived from `OPSGUARD_MASTER_KEY` with HMAC-SHA256 and a label each: the
//! chain key (HMAC row hashes) and the Ed25519 key that signs checkpoints. Neither is stored.

use crate::domain::audit::ChainKey;
use crate::domain::secret::Secret;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const CHAIN_LABEL: &[u8] = b"opsguard audit chain v1";
const SIGNING_LABEL: &[u8] = b"opsguard audit checkpoint v1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuditKeyError {
    #[error("OPSGUARD_MASTER_KEY is not base64 of 32 bytes")]
    Malformed,
}

#[derive(Clone)]
pub struct AuditKeys {
    chain: ChainKey,
    signing: SigningKey,
}

impl std::fmt::Debug for AuditKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKeys({})", self.chain.id())
    }
}

impl AuditKeys {
    /// The keys of a master key; `None` when none is set.
    pub fn from_master(master: Option<&Secret>) -> Result<Option<AuditKeys>, AuditKeyError> {
        let Some(raw) = master.filter(|k| !k.is_empty()) else {
            return Ok(None);
        };
        let key = base64::engine::general_purpose::STANDARD
            .decode(raw.expose().trim())
            .ok()
            .filter(|k| k.len() == 32)
            .ok_or(AuditKeyError::Malformed)?;
        Ok(Some(AuditKeys {
            chain: ChainKey::new(derive(&key, CHAIN_LABEL)),
            signing: SigningKey::from_bytes(&derive(&key, SIGNING_LABEL)),
        }))
    }

    pub fn chain(&self) -> &ChainKey {
        &self.chain
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        self.signing.sign(message)
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }
}

fn derive(master: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(master).expect("HMAC takes any key length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(b64: &str) -> AuditKeys {
        AuditKeys::from_master(Some(&Secret::new(b64)))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn keys_follow_the_master_key_and_differ_by_purpose() {
        let a = keys("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        let b = keys("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=");
        assert_eq!(
            a.chain().id(),
            keys("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
                .chain()
                .id()
        );
        assert_ne!(a.chain().id(), b.chain().id());
        assert_ne!(a.verifying_key(), b.verifying_key());
        // HMAC-SHA256(32 zero bytes, label), from `printf LABEL | openssl dgst -sha256 -mac
        // HMAC -macopt hexkey:00…00`.
        assert_eq!(
            hex::encode(derive(&[0; 32], CHAIN_LABEL)),
            "de9684df76b63cfca0c240c7fc54c1109b5d4036aa01e40a06831a8813e2f419"
        );
        assert_eq!(
            hex::encode(derive(&[0; 32], SIGNING_LABEL)),
            "d10d123b6b5f8970079ab1cfa85b0c8cbf2cf3dbba37e2e82f6a9b46c55d6c24"
        );
    }

    #[test]
    fn no_key_is_no_keys_and_a_bad_key_is_an_error() {
        assert!(AuditKeys::from_master(None).unwrap().is_none());
        assert!(
            AuditKeys::from_master(Some(&Secret::new("")))
                .unwrap()
                .is_none()
        );
        assert_eq!(
            AuditKeys::from_master(Some(&Secret::new("c2hvcnQ="))).unwrap_err(),
            AuditKeyError::Malformed
        );
    }
}
