//! Group commit for the audit log. Appends from concurrent requests queue to one writer
//! task, which takes whatever is waiting (up to 256 entries), appends them in one
//! transaction — one head lock, one WAL flush — and only then answers each caller with its
//! sequence number. A caller never proceeds before its row is durable.
//!
//! With a chain key, the transaction locks the head (`audit_lock_head`), chains the batch
//! with HMAC here, and appends it (`audit_append_keyed`); without one, PostgreSQL chains it
//! with SHA-256 (`audit_append_batch`), which it refuses once the chain is keyed.

use crate::domain::audit::{AuditEntry, ChainKey};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

const MAX_BATCH: usize = 256;

#[derive(Debug, Clone, thiserror::Error)]
#[error("audit log write failed: {0}")]
pub struct AuditWriteError(String);

type Job = (AuditEntry, oneshot::Sender<Result<i64, AuditWriteError>>);

#[derive(Clone)]
pub struct AuditWriter {
    queue: mpsc::Sender<Job>,
}

impl AuditWriter {
    /// Start the writer task; it ends when the last `AuditWriter` clone is dropped.
    pub fn spawn(pool: PgPool, key: Option<ChainKey>) -> Self {
        let (queue, mut jobs) = mpsc::channel::<Job>(4096);
        tokio::spawn(async move {
            let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
            while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let entries: Vec<&AuditEntry> = batch.iter().map(|(e, _)| e).collect();
                let result = append_batch(&pool, key.as_ref(), &entries).await;
                for (i, (_, done)) in batch.drain(..).enumerate() {
                    let _ = done.send(match &result {
                        Ok(first) => Ok(first + i as i64),
                        Err(e) => Err(AuditWriteError(e.to_string())),
                    });
                }
            }
        });
        AuditWriter { queue }
    }

    /// Append one entry; returns its sequence number once it is committed.
    pub async fn append(&self, entry: AuditEntry) -> Result<i64, AuditWriteError> {
        let (done, answer) = oneshot::channel();
        self.queue
            .send((entry, done))
            .await
            .map_err(|_| AuditWriteError("writer stopped".into()))?;
        answer
            .await
            .map_err(|_| AuditWriteError("writer stopped".into()))?
    }
}

/// The entries' columns as arrays, in the functions' parameter order.
struct Columns {
    request_id: Vec<String>,
    at: Vec<DateTime<Utc>>,
    phase: Vec<String>,
    actor_kind: Vec<String>,
    actor_id: Vec<Option<i64>>,
    chat_id: Vec<Option<i64>>,
    command: Vec<String>,
    args: Vec<String>,
    decision: Vec<String>,
    reason: Vec<Option<String>>,
    outcome: Vec<Option<String>>,
    error: Vec<Option<String>>,
    duration_ms: Vec<Option<i64>>,
    content_hash: Vec<Vec<u8>>,
}

impl Columns {
    fn of(entries: &[&AuditEntry]) -> Self {
        let col = |f: fn(&AuditEntry) -> String| entries.iter().map(|e| f(e)).collect();
        let opt = |f: fn(&AuditEntry) -> Option<String>| entries.iter().map(|e| f(e)).collect();
        let num = |f: fn(&AuditEntry) -> Option<i64>| entries.iter().map(|e| f(e)).collect();
        Columns {
            request_id: col(|e| e.request_id.clone()),
            at: entries
                .iter()
                .map(|e| DateTime::from_timestamp_micros(e.at_micros).unwrap_or_default())
                .collect(),
            phase: col(|e| e.phase.clone()),
            actor_kind: col(|e| e.actor_kind.clone()),
            actor_id: num(|e| e.actor_id),
            chat_id: num(|e| e.chat_id),
            command: col(|e| e.command.clone()),
            args: col(|e| e.args.clone()),
            decision: col(|e| e.decision.clone()),
            reason: opt(|e| e.reason.clone()),
            outcome: opt(|e| e.outcome.clone()),
            error: opt(|e| e.error.clone()),
            duration_ms: num(|e| e.duration_ms),
            content_hash: entries.iter().map(|e| e.content_hash().to_vec()).collect(),
        }
    }
}

/// Append `entries` in one transaction; returns the first one's sequence number.
pub async fn append_batch(
    pool: &PgPool,
    key: Option<&ChainKey>,
    entries: &[&AuditEntry],
) -> Result<i64, sqlx::Error> {
    let c = Columns::of(entries);
    let Some(key) = key else {
        return sqlx::query_scalar(
            "SELECT audit_append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(c.request_id)
        .bind(c.at)
        .bind(c.phase)
        .bind(c.actor_kind)
        .bind(c.actor_id)
        .bind(c.chat_id)
        .bind(c.command)
        .bind(c.args)
        .bind(c.decision)
        .bind(c.reason)
        .bind(c.outcome)
        .bind(c.error)
        .bind(c.duration_ms)
        .bind(c.content_hash)
        .fetch_one(pool)
        .await;
    };
    let mut tx = pool.begin().await?;
    let (head_seq, head_hash): (i64, Vec<u8>) =
        sqlx::query_as("SELECT seq, row_hash FROM audit_lock_head()")
            .fetch_one(&mut *tx)
            .await?;
    let mut prev = head_hash;
    let row_hashes: Vec<Vec<u8>> = c
        .content_hash
        .iter()
        .enumerate()
        .map(|(i, content)| {
            prev = key
                .row_hash(&prev, head_seq + 1 + i as i64, content)
                .to_vec();
            prev.clone()
        })
        .collect();
    let first: i64 = sqlx::query_scalar(
        "SELECT audit_append_keyed($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(head_seq)
    .bind(key.id())
    .bind(c.request_id)
    .bind(c.at)
    .bind(c.phase)
    .bind(c.actor_kind)
    .bind(c.actor_id)
    .bind(c.chat_id)
    .bind(c.command)
    .bind(c.args)
    .bind(c.decision)
    .bind(c.reason)
    .bind(c.outcome)
    .bind(c.error)
    .bind(c.duration_ms)
    .bind(c.content_hash)
    .bind(row_hashes)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(first)
}
