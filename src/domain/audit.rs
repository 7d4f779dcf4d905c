//! Audit entries and the hash chain that makes tampering detectable.
//!
//! `content_hash = SHA-256(canonical JSON of the entry)`;
//! `row_hash = SHA-256(prev_row_hash ‖ seq as 8 big-endian bytes ‖ content_hash)` for rows
//! written without a chain key, and `HMAC-SHA256(chain key, the same bytes)` from the chain's
//! switch point on (`keyed_from`). The first row's `prev_row_hash` is 32 zero bytes. Unkeyed
//! hashes are computed inside PostgreSQL under the head's lock; keyed ones by opsguard, which
//! alone holds the key (derived from the master key), so the database cannot recompute them.

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The two rows every request leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Attempt,
    Outcome,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Attempt => "attempt",
            Phase::Outcome => "outcome",
        }
    }
}

/// One audit row's content. Field order is the canonical order: never reorder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub request_id: String,
    /// Microseconds since the Unix epoch (PostgreSQL's precision).
    pub at_micros: i64,
    pub phase: String,
    pub actor_kind: String,
    pub actor_id: Option<i64>,
    pub chat_id: Option<i64>,
    pub command: String,
    /// Arguments with secrets redacted.
    pub args: String,
    /// allowed · denied · rate_limited · invalid · unknown · pending · refused
    pub decision: String,
    pub reason: Option<String>,
    /// ok · failed · rejected · awaiting_confirmation · awaiting_approval · …
    pub outcome: Option<String>,
    pub error: Option<String>,
    pub duration_ms: Option<i64>,
}

impl AuditEntry {
    pub fn content_hash(&self) -> [u8; 32] {
        let canonical = serde_json::to_vec(self).expect("audit entry serializes");
        Sha256::digest(&canonical).into()
    }
}

pub const GENESIS_HASH: [u8; 32] = [0; 32];

pub fn row_hash(prev: &[u8], seq: i64, content_hash: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(content_hash);
    h.finalize().into()
}

/// The key that chains audit rows from the switch point on. Never printed, never stored.
#[derive(Clone)]
pub struct ChainKey {
    key: [u8; 32],
    /// HMAC keyed once: each row hash clones it (the key's two blocks are not re-hashed
    /// per row, which a full `audit verify` walk would do millions of times).
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChainKey({})", self.id())
    }
}

impl ChainKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        let mac = Hmac::<Sha256>::new_from_slice(&bytes).expect("HMAC takes any key length");
        ChainKey { key: bytes, mac }
    }

    /// A public fingerprint of the key (16 hex digits), stored with the chain so that a
    /// process holding another key refuses to extend it.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"opsguard audit chain key id\0");
        h.update(self.key);
        hex::encode(&h.finalize()[..8])
    }

    /// The keyed row hash: HMAC-SHA256 over `prev ‖ seq ‖ content_hash`.
    pub fn row_hash(&self, prev: &[u8], seq: i64, content_hash: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(prev);
        mac.update(&seq.to_be_bytes());
        mac.update(content_hash);
        mac.finalize().into_bytes().into()
    }
}

/// Text stored in audit rows must not contain NUL (PostgreSQL text cannot hold it) and is
/// bounded so a flood of input cannot bloat the log.
pub fn clean(text: &str, max_chars: usize) -> String {
    let mut s: String = text
        .chars()
        .filter(|c| *c != '\0')
        .take(max_chars)
        .collect();
    if text.chars().count() > max_chars {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> AuditEntry {
        AuditEntry {
            request_id: "r".into(),
            at_micros: 1,
            phase: "attempt".into(),
            actor_kind: "telegram".into(),
            actor_id: Some(1),
            chat_id: Some(1),
            command: "whoami".into(),
            args: String::new(),
            decision: "allowed".into(),
            reason: None,
            outcome: None,
            error: None,
            duration_ms: None,
        }
    }

    #[test]
    fn any_field_change_changes_the_content_hash() {
        let a = entry();
        let mut b = entry();
        b.decision = "denied".into();
        assert_ne!(a.content_hash(), b.content_hash());
        assert_ne!(
            row_hash(&GENESIS_HASH, 1, &a.content_hash()),
            row_hash(&GENESIS_HASH, 2, &a.content_hash())
        );
    }

    /// RFC 4231 test case 2 ("Jefe"): the keyed hash is plain HMAC-SHA256 over the three
    /// parts in order, so `prev ‖ seq ‖ content` split anywhere gives the RFC's MAC.
    #[test]
    fn keyed_row_hash_is_hmac_sha256() {
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        // HMAC pads short keys with zeros to the block size: "Jefe" and "Jefe\0…" agree.
        let k = ChainKey::new(key);
        let msg = b"what do ya want for nothing?";
        let seq = i64::from_be_bytes(msg[4..12].try_into().unwrap());
        assert_eq!(
            hex::encode(k.row_hash(&msg[..4], seq, &msg[12..])),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_ne!(
            k.row_hash(&GENESIS_HASH, 1, &[1; 32]),
            row_hash(&GENESIS_HASH, 1, &[1; 32])
        );
    }

    #[test]
    fn the_key_id_reveals_and_prints_no_key() {
        let k = ChainKey::new([7; 32]);
        assert_eq!(k.id().len(), 16);
        assert_ne!(k.id(), ChainKey::new([8; 32]).id());
        assert!(!format!("{k:?}").contains("0707"));
    }

    #[test]
    fn clean_strips_nul_and_bounds_length() {
        assert_eq!(clean("a\0b", 10), "ab");
        assert_eq!(clean("abcdef", 3), "abc…");
    }
}
