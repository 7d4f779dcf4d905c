//! Who can open a backup: opsguard's own age identity, derived from OPSGUARD_MASTER_KEY (so
//! restore tests can decrypt), plus the recipients the configuration names (so an operator
//! can decrypt with the standard `age` tool and a key opsguard never held).

use crate::domain::secret::Secret;
use age::x25519::{Identity, Recipient};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The label the identity is derived under: a new label gives an unrelated key.
const LABEL: &[u8] = b"opsguard/backups/age-identity/v1";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "backups need OPSGUARD_MASTER_KEY (base64 of 32 bytes): opsguard's own age key, which restore tests decrypt with, is derived from it"
    )]
    MissingMasterKey,
    #[error("OPSGUARD_MASTER_KEY is not base64 of 32 bytes")]
    MalformedMasterKey,
    #[error("recipient '{0}' is not an age X25519 recipient (age1…)")]
    BadRecipient(String),
}

/// opsguard's identity and every recipient a backup is encrypted to.
#[derive(Clone)]
pub struct BackupKeys {
    identity: Identity,
    recipients: Vec<Recipient>,
}

impl std::fmt::Debug for BackupKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BackupKeys({} recipients)", self.recipients.len())
    }
}

impl BackupKeys {
    pub fn new(master_key: Option<&Secret>, extra: &[String]) -> Result<Self, KeyError> {
        let raw = master_key
            .filter(|k| !k.is_empty())
            .ok_or(KeyError::MissingMasterKey)?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(raw.expose().trim())
            .ok()
            .filter(|k| k.len() == 32)
            .ok_or(KeyError::MalformedMasterKey)?;
        let identity = derive(&key);
        let mut recipients = vec![identity.to_public()];
        for r in extra {
            recipients.push(r.parse().map_err(|_| KeyError::BadRecipient(r.clone()))?);
        }
        Ok(BackupKeys {
            identity,
            recipients,
        })
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn recipients(&self) -> &[Recipient] {
        &self.recipients
    }

    /// opsguard's own public key (`age1…`), for `opsguard backup key`.
    pub fn own_recipient(&self) -> String {
        self.identity.to_public().to_string()
    }

    /// The encryptor for one backup (a fresh file key each time).
    pub fn encryptor(&self) -> age::Encryptor {
        age::Encryptor::with_recipients(self.recipients.iter().map(|r| r as &dyn age::Recipient))
            .expect("X25519 recipients are always compatible and there is at least one")
    }
}

/// HMAC-SHA256(master key, label) as an X25519 secret key, in age's encoding.
fn derive(master: &[u8]) -> Identity {
    let mut mac = Hmac::<Sha256>::new_from_slice(master).expect("HMAC takes any key length");
    mac.update(LABEL);
    let bytes = mac.finalize().into_bytes();
    let hrp = bech32::Hrp::parse("AGE-SECRET-KEY-").expect("a valid human-readable part");
    let encoded = bech32::encode::<bech32::Bech32>(hrp, &bytes)
        .expect("32 bytes fit a bech32 string")
        .to_uppercase();
    encoded
        .parse()
        .expect("a bech32 X25519 secret key is an age identity")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn key(byte: u8) -> Secret {
        Secret::new(base64::engine::general_purpose::STANDARD.encode([byte; 32]))
    }

    #[test]
    fn the_identity_is_derived_from_the_master_key_alone() {
        let a = BackupKeys::new(Some(&key(1)), &[]).unwrap();
        let b = BackupKeys::new(Some(&key(1)), &[]).unwrap();
        let c = BackupKeys::new(Some(&key(2)), &[]).unwrap();
        assert_eq!(a.own_recipient(), b.own_recipient());
        assert_ne!(a.own_recipient(), c.own_recipient());
        assert!(a.own_recipient().starts_with("age1"));
    }

    #[test]
    fn every_recipient_can_open_a_backup_and_no_one_else() {
        let offline = Identity::generate();
        let keys = BackupKeys::new(Some(&key(7)), &[offline.to_public().to_string()]).unwrap();
        let mut sealed = Vec::new();
        let mut w = keys.encryptor().wrap_output(&mut sealed).unwrap();
        w.write_all(b"dump bytes").unwrap();
        w.finish().unwrap();
        for identity in [keys.identity().clone(), offline] {
            let d = age::Decryptor::new(&sealed[..]).unwrap();
            let mut out = Vec::new();
            d.decrypt(std::iter::once(&identity as &dyn age::Identity))
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, b"dump bytes");
        }
        let stranger = Identity::generate();
        let d = age::Decryptor::new(&sealed[..]).unwrap();
        assert!(
            d.decrypt(std::iter::once(&stranger as &dyn age::Identity))
                .is_err()
        );
    }

    #[test]
    fn a_missing_or_bad_key_or_recipient_is_a_clear_error() {
        assert!(matches!(
            BackupKeys::new(None, &[]),
            Err(KeyError::MissingMasterKey)
        ));
        let short = Secret::new("c2hvcnQ=");
        assert!(matches!(
            BackupKeys::new(Some(&short), &[]),
            Err(KeyError::MalformedMasterKey)
        ));
        assert!(matches!(
            BackupKeys::new(Some(&key(1)), &["age1nope".into()]),
            Err(KeyError::BadRecipient(_))
        ));
    }
}
