//! Audit entries and the hash chain that makes tampering detectable.
//!
//! `content_hash = SHA-256(canonical JSON of the entry)`;
//! `row_hash = SHA-256(prev_row_hash ‖ seq as 8 big-endian bytes ‖ content_hash)`.
//! The first row's `prev_row_hash` is 32 zero bytes. Storage computes `row_hash` inside
//! PostgreSQL under a lock; `verify` recomputes both hashes here.

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

    #[test]
    fn clean_strips_nul_and_bounds_length() {
        assert_eq!(clean("a\0b", 10), "ab");
        assert_eq!(clean("abcdef", 3), "abc…");
    }
}
