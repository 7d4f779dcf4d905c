//! Signed checkpoints of the audit chain's head, kept where opsguard's database role cannot
//! reach: one object per checkpoint in the checkpoint storage (never overwritten) and a
//! message to `[audit] checkpoint_chats`. A checkpoint is one line of text, so the copy in a
//! chat can be handed to `opsguard audit verify --checkpoint` as it is:
//!
//! `opsguard-audit-checkpoint v1 seq=N head=HEX at=RFC3339 keyed_from=N|- key=ID|- sig=B64`
//!
//! The signature (Ed25519, key derived from the master key) covers everything before ` sig=`.

use super::keys::AuditKeys;
use crate::backups::storage::{Storage, StorageError};
use crate::config::Settings;
use crate::domain::Reply;
use crate::storage::audit::Head;
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use sqlx::PgPool;

const MAGIC: &str = "opsguard-audit-checkpoint v1";
/// Where checkpoint objects live in the checkpoint storage.
pub const DIR: &str = "audit-checkpoints";
/// A checkpoint a walk found the chain to match, from row 1 or from an earlier verified
/// checkpoint: signed apart (its own header), so a copied checkpoint line is not one.
const VERIFIED_MAGIC: &str = "opsguard-audit-verified v1";
/// Where verified marks live in the checkpoint storage (one object each, never overwritten).
pub const VERIFIED_DIR: &str = "audit-verified";
/// A checkpoint line is about 300 bytes; anything much larger is not read into memory.
const MAX_BYTES: u64 = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    pub head: Vec<u8>,
    pub at: DateTime<Utc>,
    pub keyed_from: Option<i64>,
    pub key_id: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckpointError {
    #[error("not a checkpoint line ({0})")]
    Malformed(&'static str),
    #[error(
        "its signature is not opsguard's (forged, altered, or signed under another master key)"
    )]
    BadSignature,
    #[error("{0} bytes: far larger than a checkpoint, not read")]
    Oversized(u64),
}

impl Checkpoint {
    pub fn of(head: &Head, at: DateTime<Utc>) -> Self {
        Checkpoint {
            seq: head.seq,
            head: head.row_hash.clone(),
            at,
            keyed_from: head.keyed_from,
            key_id: head.key_id.clone(),
        }
    }

    fn body_as(&self, magic: &str) -> String {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        format!(
            "{magic} seq={} head={} at={} keyed_from={} key={}",
            self.seq,
            hex::encode(&self.head),
            self.at.to_rfc3339_opts(SecondsFormat::Micros, true),
            opt(self.keyed_from.map(|s| s.to_string())),
            opt(self.key_id.clone()),
        )
    }

    pub fn signed_line(&self, keys: &AuditKeys) -> String {
        self.signed_as(MAGIC, keys)
    }

    fn signed_as(&self, magic: &str, keys: &AuditKeys) -> String {
        let body = self.body_as(magic);
        let sig = keys.sign(body.as_bytes());
        format!(
            "{body} sig={}",
            base64::engine::general_purpose::STANDARD.encode(sig.to_bytes())
        )
    }

    /// Parse a signed line and check its signature.
    pub fn parse(line: &str, key: &VerifyingKey) -> Result<Checkpoint, CheckpointError> {
        Self::parse_as(MAGIC, line, key)
    }

    fn parse_as(
        magic: &str,
        line: &str,
        key: &VerifyingKey,
    ) -> Result<Checkpoint, CheckpointError> {
        use CheckpointError::Malformed;
        let line = line.trim();
        let (body, sig) = line.rsplit_once(" sig=").ok_or(Malformed("no signature"))?;
        let sig = base64::engine::general_purpose::STANDARD
            .decode(sig)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .ok_or(Malformed("signature is not base64 of 64 bytes"))?;
        let fields = body
            .strip_prefix(magic)
            .ok_or(Malformed("unknown header"))?;
        let get = |name: &str| {
            fields
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_string)
        };
        let seq = get("seq")
            .and_then(|s| s.parse().ok())
            .ok_or(Malformed("seq"))?;
        let head = get("head")
            .and_then(|h| hex::decode(h).ok())
            .ok_or(Malformed("head"))?;
        let at = get("at")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .ok_or(Malformed("at"))?
            .with_timezone(&Utc);
        let keyed_from = match get("keyed_from").ok_or(Malformed("keyed_from"))?.as_str() {
            "-" => None,
            n => Some(n.parse().map_err(|_| Malformed("keyed_from"))?),
        };
        let key_id = get("key").filter(|k| k != "-");
        let checkpoint = Checkpoint {
            seq,
            head,
            at,
            keyed_from,
            key_id,
        };
        // The line must be exactly what was signed (no field added, dropped or reordered).
        if checkpoint.body_as(magic) != body {
            return Err(Malformed("fields out of order or extra"));
        }
        key.verify(body.as_bytes(), &sig)
            .map_err(|_| CheckpointError::BadSignature)?;
        Ok(checkpoint)
    }

    /// The object key of this checkpoint (sorts by row, then time).
    pub fn object_key(&self) -> String {
        format!(
            "{DIR}/{:020}-{}.txt",
            self.seq,
            self.at.format("%Y%m%dT%H%M%S%.6fZ")
        )
    }

    /// How a report names it.
    pub fn describe(&self) -> String {
        format!(
            "the checkpoint of row {} signed at {}",
            self.seq,
            self.at.to_rfc3339_opts(SecondsFormat::Secs, true)
        )
    }
}

/// The checkpoint storage: `[audit] checkpoint_storage`, else the backups' storage.
pub fn storage(settings: &Settings) -> Result<Storage, StorageError> {
    let location = match settings.audit.checkpoint_storage.trim() {
        "" => settings.backups.storage.as_str(),
        own => own,
    };
    Storage::open(location, &settings.backups)
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("checkpoints are signed with a key derived from OPSGUARD_MASTER_KEY, which is not set")]
    NoKey,
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    #[error("cannot write the checkpoint: {0}")]
    Storage(#[from] StorageError),
}

/// Sign the current head, write it to the checkpoint storage and queue it to every
/// checkpoint chat. Returns the checkpoint and where it was written.
pub async fn write(
    pool: &PgPool,
    settings: &Settings,
    keys: Option<&AuditKeys>,
) -> Result<(Checkpoint, String), WriteError> {
    let keys = keys.ok_or(WriteError::NoKey)?;
    let storage = storage(settings)?;
    let head = crate::storage::audit::head(pool).await?;
    let checkpoint = Checkpoint::of(&head, Utc::now());
    let line = checkpoint.signed_line(keys);
    let key = checkpoint.object_key();
    storage.put_new(&key, format!("{line}\n").into()).await?;
    let text = format!(
        "🔏 <b>Audit checkpoint</b>: row {}, head <code>{}…</code>\n<code>{}</code>\nKeep this message: <code>opsguard audit verify --checkpoint '…'</code> checks the log against it.",
        checkpoint.seq,
        &hex::encode(&checkpoint.head)[..16],
        crate::domain::html::escape(&line)
    );
    for chat in &settings.audit.checkpoint_chats {
        crate::outbox::enqueue(pool, *chat, &Reply::html(text.clone()), "audit-checkpoint").await?;
    }
    Ok((checkpoint, storage.describe(&key)))
}

/// Mark `checkpoint` as verified: a walk found the chain to match it. Marking one twice is
/// not an error.
pub async fn mark_verified(
    storage: &Storage,
    keys: &AuditKeys,
    checkpoint: &Checkpoint,
) -> Result<(), StorageError> {
    let name = checkpoint.object_key().replacen(DIR, VERIFIED_DIR, 1);
    let line = checkpoint.signed_as(VERIFIED_MAGIC, keys);
    match storage.put_new(&name, format!("{line}\n").into()).await {
        Err(StorageError::Store(object_store::Error::AlreadyExists { .. })) => Ok(()),
        done => done,
    }
}

/// The verified checkpoint of the highest row, if any: marks are tried from the highest
/// row down, and one not validly signed is passed over (and named in the second value).
pub async fn last_verified(
    storage: &Storage,
    key: &VerifyingKey,
) -> Result<(Option<Checkpoint>, Vec<String>), StorageError> {
    let mut bad = Vec::new();
    for (name, size) in storage.list(VERIFIED_DIR).await?.into_iter().rev() {
        if size > MAX_BYTES {
            bad.push(format!(
                "{}: {}",
                storage.describe(&name),
                CheckpointError::Oversized(size)
            ));
            continue;
        }
        let bytes = storage.get(&name).await?;
        match Checkpoint::parse_as(VERIFIED_MAGIC, &String::from_utf8_lossy(&bytes), key) {
            Ok(c) => return Ok((Some(c), bad)),
            Err(e) => bad.push(format!("{}: {e}", storage.describe(&name))),
        }
    }
    Ok((None, bad))
}

/// Every checkpoint object in the storage: its key, and the checkpoint or why it is not one.
pub async fn read_all(
    storage: &Storage,
    key: &VerifyingKey,
) -> Result<Vec<(String, Result<Checkpoint, CheckpointError>)>, StorageError> {
    let mut out = Vec::new();
    for (name, size) in storage.list(DIR).await? {
        if size > MAX_BYTES {
            out.push((name, Err(CheckpointError::Oversized(size))));
            continue;
        }
        let bytes = storage.get(&name).await?;
        let text = String::from_utf8_lossy(&bytes);
        out.push((name, Checkpoint::parse(&text, key)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::secret::Secret;

    fn keys(b64: &str) -> AuditKeys {
        AuditKeys::from_master(Some(&Secret::new(b64)))
            .unwrap()
            .unwrap()
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            seq: 42,
            head: vec![0xab; 32],
            at: DateTime::parse_from_rfc3339("2026-12-06T03:00:00Z")
                .unwrap()
                .into(),
            keyed_from: Some(7),
            key_id: Some("0011223344556677".into()),
        }
    }

    const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    #[test]
    fn a_signed_line_parses_back() {
        let k = keys(KEY);
        let line = checkpoint().signed_line(&k);
        assert!(line.starts_with("opsguard-audit-checkpoint v1 seq=42 head=abab"));
        assert!(
            line.contains(" at=2026-12-06T03:00:00.000000Z keyed_from=7 key=0011223344556677 sig=")
        );
        assert_eq!(
            Checkpoint::parse(&line, &k.verifying_key()),
            Ok(checkpoint())
        );
    }

    #[test]
    fn an_altered_or_foreign_checkpoint_is_refused() {
        let k = keys(KEY);
        let line = checkpoint().signed_line(&k);
        let moved = line.replace("seq=42", "seq=41");
        assert_eq!(
            Checkpoint::parse(&moved, &k.verifying_key()),
            Err(CheckpointError::BadSignature)
        );
        let other = keys("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=");
        assert_eq!(
            Checkpoint::parse(&line, &other.verifying_key()),
            Err(CheckpointError::BadSignature)
        );
        let extra = line.replace(" key=", " x=1 key=");
        assert!(matches!(
            Checkpoint::parse(&extra, &k.verifying_key()),
            Err(CheckpointError::Malformed(_))
        ));
        assert!(matches!(
            Checkpoint::parse("seq=1", &k.verifying_key()),
            Err(CheckpointError::Malformed(_))
        ));
    }

    #[test]
    fn a_verified_mark_and_a_checkpoint_line_are_not_taken_for_each_other() {
        let k = keys(KEY);
        let mark = checkpoint().signed_as(VERIFIED_MAGIC, &k);
        assert!(mark.starts_with("opsguard-audit-verified v1 seq=42 head=abab"));
        assert_eq!(
            Checkpoint::parse_as(VERIFIED_MAGIC, &mark, &k.verifying_key()),
            Ok(checkpoint())
        );
        assert!(Checkpoint::parse(&mark, &k.verifying_key()).is_err());
        let copied = checkpoint().signed_line(&k);
        let relabelled = copied.replacen(MAGIC, VERIFIED_MAGIC, 1);
        assert_eq!(
            Checkpoint::parse_as(VERIFIED_MAGIC, &relabelled, &k.verifying_key()),
            Err(CheckpointError::BadSignature)
        );
    }

    #[test]
    fn object_keys_sort_by_row() {
        let mut a = checkpoint();
        a.seq = 9;
        assert!(a.object_key() < checkpoint().object_key());
        assert!(
            checkpoint()
                .object_key()
                .starts_with("audit-checkpoints/00000000000000000042-")
        );
    }
}
