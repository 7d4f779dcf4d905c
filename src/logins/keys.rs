//! The ingest key ring: the current HS256 key (`OPSGUARD_INGEST_JWT_SECRET`) and the one
//! before it (`OPSGUARD_INGEST_JWT_PREVIOUS_SECRET`), so the key can be rotated without
//! dropping events. Each key is named by its `kid`, its fingerprint (first 8 hex of its
//! SHA-256, all that may be shown of it). A token or stream entry names the key that signed
//! it; one without a `kid` (signed before keys had one) is tried under the current key, then
//! the previous. Stream entries are signed with HMAC-SHA256 over the event's bytes.

use crate::config::IngestSettings;
use crate::domain::secret::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The keys that verify; the current one alone signs.
#[derive(Clone, Copy)]
pub struct Keys<'a> {
    current: &'a Secret,
    previous: Option<&'a Secret>,
}

/// Why a signed stream entry is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no key has the kid '{0}'")]
    UnknownKid(String),
    #[error("the hmac is not 64 hex digits")]
    Malformed,
    #[error("bad hmac")]
    BadSignature,
}

impl<'a> Keys<'a> {
    /// The ring from the settings; `None` without a current key.
    pub fn of(settings: &'a IngestSettings) -> Option<Self> {
        Some(Keys {
            current: settings.current_key()?,
            previous: settings.previous_key(),
        })
    }

    pub fn new(current: &'a Secret, previous: Option<&'a Secret>) -> Self {
        Keys { current, previous }
    }

    pub fn current(&self) -> &'a Secret {
        self.current
    }

    /// A key's public name.
    pub fn kid(key: &Secret) -> String {
        key.fingerprint()
    }

    /// The keys to try for a presented `kid`, in order; `None` when no key has it. A kid
    /// is public, so comparing it in plain time gives nothing away.
    pub fn candidates(&self, kid: Option<&str>) -> Option<Vec<&'a Secret>> {
        let mut all = std::iter::once(self.current).chain(self.previous);
        match kid {
            None => Some(all.collect()),
            Some(kid) => all.find(|k| Keys::kid(k) == kid).map(|k| vec![k]),
        }
    }

    /// The hex HMAC-SHA256 of `bytes` under `key` (what a service puts in an entry).
    pub fn sign(key: &Secret, bytes: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(key.expose().as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(bytes);
        hex::encode(mac.finalize().into_bytes())
    }

    /// Check a presented hex HMAC of `bytes` (compared in constant time).
    pub fn verify_hmac(
        &self,
        bytes: &[u8],
        presented: &[u8],
        kid: Option<&str>,
    ) -> Result<(), SignatureError> {
        let keys = self.candidates(kid).ok_or_else(|| {
            SignatureError::UnknownKid(kid.unwrap_or_default().chars().take(16).collect())
        })?;
        let presented = std::str::from_utf8(presented)
            .ok()
            .map(str::trim)
            .and_then(|h| hex::decode(h).ok())
            .filter(|b| b.len() == 32)
            .ok_or(SignatureError::Malformed)?;
        for key in keys {
            let mut mac = HmacSha256::new_from_slice(key.expose().as_bytes())
                .expect("HMAC takes a key of any length");
            mac.update(bytes);
            if mac.verify_slice(&presented).is_ok() {
                return Ok(());
            }
        }
        Err(SignatureError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kids_choose_the_key_and_unknown_kids_are_refused() {
        let (now, old) = (Secret::new("n".repeat(32)), Secret::new("o".repeat(32)));
        let keys = Keys::new(&now, Some(&old));
        let event = br#"{"account":"bob"}"#;
        let by_old = Keys::sign(&old, event);
        assert_eq!(keys.verify_hmac(event, by_old.as_bytes(), None), Ok(()));
        let old_kid = Keys::kid(&old);
        assert_eq!(
            keys.verify_hmac(event, by_old.as_bytes(), Some(&old_kid)),
            Ok(())
        );
        let now_kid = Keys::kid(&now);
        assert_eq!(
            keys.verify_hmac(event, by_old.as_bytes(), Some(&now_kid)),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            keys.verify_hmac(event, by_old.as_bytes(), Some("deadbeef")),
            Err(SignatureError::UnknownKid("deadbeef".into()))
        );
        assert_eq!(
            keys.verify_hmac(b"{}", by_old.as_bytes(), None),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            keys.verify_hmac(event, b"zz", None),
            Err(SignatureError::Malformed)
        );
        // Without a previous key, what it signed is refused.
        let alone = Keys::new(&now, None);
        assert_eq!(
            alone.verify_hmac(event, by_old.as_bytes(), None),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn a_known_vector() {
        // RFC 4231 test case 2.
        let key = Secret::new("Jefe");
        assert_eq!(
            Keys::sign(&key, b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
