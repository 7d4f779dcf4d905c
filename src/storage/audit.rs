//! The audit log's queries: append, the head, latest rows, the chain walk (links, hashes,
//! continuity, nothing past the head, and the row hashes that signed checkpoints vouch for)
//! and export.

use super::StoreResult;
use crate::domain::audit::{AuditEntry, ChainKey, GENESIS_HASH, row_hash};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::{PgPool, Row};
use std::io::Write;

/// Append one entry (one transaction of its own); returns its sequence number. The engine
/// appends through `AuditWriter`, which batches.
pub async fn append(pool: &PgPool, key: Option<&ChainKey>, entry: &AuditEntry) -> StoreResult<i64> {
    super::audit_writer::append_batch(pool, key, &[entry]).await
}

/// The chain head: the last row's seq and hash, and from which seq on (with which key) the
/// chain is keyed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Head {
    pub seq: i64,
    pub row_hash: Vec<u8>,
    pub keyed_from: Option<i64>,
    pub key_id: Option<String>,
}

pub async fn head(pool: &PgPool) -> StoreResult<Head> {
    sqlx::query_as("SELECT seq, row_hash, keyed_from, key_id FROM audit_head")
        .fetch_one(pool)
        .await
}

#[derive(Debug, Clone)]
pub struct AuditRow {
    pub seq: i64,
    pub entry: AuditEntry,
    pub content_hash: Vec<u8>,
    pub prev_hash: Vec<u8>,
    pub row_hash: Vec<u8>,
}

/// The columns every read selects (a macro so queries stay compile-time constants).
macro_rules! select_rows {
    ($rest:literal) => {
        concat!(
            "SELECT seq, request_id, at, phase, actor_kind, actor_id, chat_id, command, args, decision,
             reason, outcome, error, duration_ms, content_hash, prev_hash, row_hash FROM audit_log ",
            $rest
        )
    };
}

/// By position: every query reads the columns `select_rows!` names, in its order.
fn decode(row: sqlx::postgres::PgRow) -> StoreResult<AuditRow> {
    let at: DateTime<Utc> = row.try_get(2)?;
    Ok(AuditRow {
        seq: row.try_get(0)?,
        entry: AuditEntry {
            request_id: row.try_get(1)?,
            at_micros: at.timestamp_micros(),
            phase: row.try_get(3)?,
            actor_kind: row.try_get(4)?,
            actor_id: row.try_get(5)?,
            chat_id: row.try_get(6)?,
            command: row.try_get(7)?,
            args: row.try_get(8)?,
            decision: row.try_get(9)?,
            reason: row.try_get(10)?,
            outcome: row.try_get(11)?,
            error: row.try_get(12)?,
            duration_ms: row.try_get(13)?,
        },
        content_hash: row.try_get(14)?,
        prev_hash: row.try_get(15)?,
        row_hash: row.try_get(16)?,
    })
}

/// The newest `n` rows, newest first.
pub async fn latest(pool: &PgPool, n: i64) -> StoreResult<Vec<AuditRow>> {
    sqlx::query(select_rows!("ORDER BY seq DESC LIMIT $1"))
        .bind(n)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(decode)
        .collect()
}

/// All rows of one request, in order.
pub async fn for_request(pool: &PgPool, request_id: &str) -> StoreResult<Vec<AuditRow>> {
    sqlx::query(select_rows!("WHERE request_id = $1 ORDER BY seq"))
        .bind(request_id)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(decode)
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub seq: i64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Rows walked: `from_seq` through `head_seq`.
    pub rows: u64,
    /// The first row walked (1 for the whole chain).
    pub from_seq: i64,
    pub broken: Option<ChainBreak>,
    /// The head the walk stopped at.
    pub head_seq: i64,
    /// Where the keyed part of the chain starts (`None`: the chain is not keyed).
    pub keyed_from: Option<i64>,
}

/// A row hash vouched for from outside the database (a signed checkpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub seq: i64,
    pub row_hash: Vec<u8>,
    /// What vouches for it, for the report ("the checkpoint signed at …").
    pub source: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    #[error(
        "the audit chain is keyed from row {keyed_from} on: verifying it needs OPSGUARD_MASTER_KEY"
    )]
    NeedsKey { keyed_from: i64 },
}

/// Walk the whole chain in order and name the first row that breaks it. The head is read
/// first and the walk stops at it, so appends committed meanwhile are not mistaken for damage.
pub async fn verify(pool: &PgPool, key: Option<&ChainKey>) -> Result<VerifyReport, VerifyError> {
    verify_against(pool, key, &[], None).await
}

/// `verify`, also checking the rows that `anchors` vouch for; an anchor past the head means
/// rows were cut off the end. With `from`, the walk starts at that row (its own hash and
/// content are checked, and an anchor at it vouches for its hash; the rows before it are
/// not read): the cost follows the rows since `from`, not the log's size.
pub async fn verify_against(
    pool: &PgPool,
    key: Option<&ChainKey>,
    anchors: &[Anchor],
    from: Option<i64>,
) -> Result<VerifyReport, VerifyError> {
    let head = head(pool).await?;
    let mut breaks: Vec<ChainBreak> = Vec::new();
    let at =
        |breaks: &mut Vec<ChainBreak>, seq, reason: String| breaks.push(ChainBreak { seq, reason });
    let key = match (head.keyed_from, key) {
        (None, _) => None,
        (Some(keyed_from), None) => return Err(VerifyError::NeedsKey { keyed_from }),
        (Some(from), Some(k)) => {
            // Another key named in the head: the wrong master key here, or a head altered to
            // hide a re-keyed log. Either way the rows are checked with this key.
            if head.key_id.as_deref() != Some(k.id().as_str()) {
                let chain = head.key_id.clone().unwrap_or_default();
                let reason = format!(
                    "the chain head names key {chain}, not this master key's {}: the wrong OPSGUARD_MASTER_KEY, or an altered head",
                    k.id()
                );
                at(&mut breaks, from, reason);
            }
            Some((from, k))
        }
    };
    let from_seq = from.unwrap_or(1).max(1);
    let mut rows = sqlx::query(select_rows!("WHERE seq >= $2 AND seq <= $1 ORDER BY seq"))
        .bind(head.seq)
        .bind(from_seq)
        .fetch(pool);
    // From a later row, that row's own link is taken as stored: what vouches for it is the
    // anchor at it (a signed checkpoint) and its hash, which covers the link.
    let mut prev: Option<Vec<u8>> = (from_seq == 1).then(|| GENESIS_HASH.to_vec());
    let mut expected_seq = from_seq;
    let mut count = 0u64;
    let mut walk_broke = false;
    while let Some(row) = rows.try_next().await? {
        let row = decode(row)?;
        count += 1;
        let prev = prev.get_or_insert_with(|| row.prev_hash.clone());
        let expected_hash = match key {
            Some((from, k)) if row.seq >= from => k.row_hash(prev, row.seq, &row.content_hash),
            _ => row_hash(prev, row.seq, &row.content_hash),
        };
        let problem = if row.seq != expected_seq {
            Some((expected_seq, "row missing (sequence gap)".to_string()))
        } else if row.prev_hash != *prev {
            Some((
                row.seq,
                "previous-hash link does not match the row before".into(),
            ))
        } else if row.content_hash != row.entry.content_hash() {
            Some((
                row.seq,
                "content does not match its hash (row altered)".into(),
            ))
        } else if row.row_hash != expected_hash {
            Some((row.seq, "row hash does not match".into()))
        } else {
            anchors
                .iter()
                .find(|a| a.seq == row.seq && a.row_hash != row.row_hash)
                .map(|a| (row.seq, format!("row differs from {}: rewritten", a.source)))
        };
        if let Some((seq, reason)) = problem {
            at(&mut breaks, seq, reason);
            walk_broke = true;
            break;
        }
        *prev = row.row_hash;
        expected_seq += 1;
    }
    drop(rows);
    if !walk_broke {
        if head.seq != expected_seq - 1 {
            at(
                &mut breaks,
                expected_seq,
                "rows missing at the end of the log".into(),
            );
        } else if prev.as_ref().is_some_and(|p| *p != head.row_hash) {
            at(
                &mut breaks,
                head.seq,
                "chain head does not match the last row".into(),
            );
        }
    }
    // Rows past the head were not appended through the functions (which move the head in
    // the same transaction): read both in one statement, so a concurrent append is not one.
    let past: Option<i64> = sqlx::query_scalar(
        "SELECT (SELECT min(seq) FROM audit_log WHERE seq > h.seq) FROM audit_head h",
    )
    .fetch_one(pool)
    .await?;
    if let Some(seq) = past {
        at(
            &mut breaks,
            seq,
            "row past the chain head (not appended through the audit functions)".into(),
        );
    }
    if let Some(a) = anchors
        .iter()
        .filter(|a| a.seq > head.seq)
        .max_by_key(|a| a.seq)
    {
        at(
            &mut breaks,
            head.seq + 1,
            format!(
                "rows {}–{} are missing: {} covers row {}",
                head.seq + 1,
                a.seq,
                a.source,
                a.seq
            ),
        );
    }
    Ok(VerifyReport {
        rows: count,
        from_seq,
        broken: breaks.into_iter().min_by_key(|b| b.seq),
        head_seq: head.seq,
        keyed_from: key.map(|(from, _)| from),
    })
}

/// Write every row as one JSON object per line; returns the number of rows.
pub async fn export(pool: &PgPool, out: &mut (dyn Write + Send)) -> anyhow::Result<u64> {
    let mut rows = sqlx::query(select_rows!("ORDER BY seq")).fetch(pool);
    let mut count = 0;
    while let Some(row) = rows.try_next().await? {
        let row = decode(row)?;
        let at = DateTime::<Utc>::from_timestamp_micros(row.entry.at_micros).unwrap_or_default();
        let line = serde_json::json!({
            "seq": row.seq,
            "at": at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "entry": row.entry,
            "content_hash": hex::encode(&row.content_hash),
            "prev_hash": hex::encode(&row.prev_hash),
            "row_hash": hex::encode(&row.row_hash),
        });
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
        count += 1;
    }
    out.flush()?;
    Ok(count)
}
