//! The audit log's queries: append (one round trip; the chain is extended inside
//! PostgreSQL under the head row's lock), latest rows, chain verification and export.

use super::StoreResult;
use crate::domain::audit::{AuditEntry, GENESIS_HASH, row_hash};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::{PgPool, Row};
use std::io::Write;

/// Append one entry; returns its sequence number.
pub async fn append(pool: &PgPool, entry: &AuditEntry) -> StoreResult<i64> {
    let at = DateTime::<Utc>::from_timestamp_micros(entry.at_micros).unwrap_or_default();
    sqlx::query_scalar(
        "SELECT audit_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&entry.request_id)
    .bind(at)
    .bind(&entry.phase)
    .bind(&entry.actor_kind)
    .bind(entry.actor_id)
    .bind(entry.chat_id)
    .bind(&entry.command)
    .bind(&entry.args)
    .bind(&entry.decision)
    .bind(&entry.reason)
    .bind(&entry.outcome)
    .bind(&entry.error)
    .bind(entry.duration_ms)
    .bind(entry.content_hash().as_slice())
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

fn decode(row: sqlx::postgres::PgRow) -> StoreResult<AuditRow> {
    let at: DateTime<Utc> = row.try_get("at")?;
    Ok(AuditRow {
        seq: row.try_get("seq")?,
        entry: AuditEntry {
            request_id: row.try_get("request_id")?,
            at_micros: at.timestamp_micros(),
            phase: row.try_get("phase")?,
            actor_kind: row.try_get("actor_kind")?,
            actor_id: row.try_get("actor_id")?,
            chat_id: row.try_get("chat_id")?,
            command: row.try_get("command")?,
            args: row.try_get("args")?,
            decision: row.try_get("decision")?,
            reason: row.try_get("reason")?,
            outcome: row.try_get("outcome")?,
            error: row.try_get("error")?,
            duration_ms: row.try_get("duration_ms")?,
        },
        content_hash: row.try_get("content_hash")?,
        prev_hash: row.try_get("prev_hash")?,
        row_hash: row.try_get("row_hash")?,
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
    pub rows: u64,
    pub broken: Option<ChainBreak>,
}

/// Walk the whole chain in order and name the first row that breaks it. The head is read
/// first and the walk stops at it, so appends committed meanwhile are not mistaken for damage.
pub async fn verify(pool: &PgPool) -> StoreResult<VerifyReport> {
    let (head_seq, head_hash): (i64, Vec<u8>) =
        sqlx::query_as("SELECT seq, row_hash FROM audit_head")
            .fetch_one(pool)
            .await?;
    let mut rows = sqlx::query(select_rows!("WHERE seq <= $1 ORDER BY seq"))
        .bind(head_seq)
        .fetch(pool);
    let mut prev: Vec<u8> = GENESIS_HASH.to_vec();
    let mut expected_seq = 1i64;
    let mut count = 0u64;
    let broken = |seq, reason: &str| {
        Some(ChainBreak {
            seq,
            reason: reason.to_string(),
        })
    };
    while let Some(row) = rows.try_next().await? {
        let row = decode(row)?;
        count += 1;
        let problem = if row.seq != expected_seq {
            broken(expected_seq, "row missing (sequence gap)")
        } else if row.prev_hash != prev {
            broken(row.seq, "previous-hash link does not match the row before")
        } else if row.content_hash != row.entry.content_hash() {
            broken(row.seq, "content does not match its hash (row altered)")
        } else if row.row_hash != row_hash(&prev, row.seq, &row.content_hash) {
            broken(row.seq, "row hash does not match")
        } else {
            None
        };
        if problem.is_some() {
            return Ok(VerifyReport {
                rows: count,
                broken: problem,
            });
        }
        prev = row.row_hash;
        expected_seq += 1;
    }
    let tail = if head_seq != expected_seq - 1 {
        broken(expected_seq, "rows missing at the end of the log")
    } else if head_hash != prev {
        broken(head_seq, "chain head does not match the last row")
    } else {
        None
    };
    Ok(VerifyReport {
        rows: count,
        broken: tail,
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
