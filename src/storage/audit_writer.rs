//! Group commit for the audit log. Appends from concurrent requests queue to one writer
//! task, which takes whatever is waiting (up to 256 entries), appends them in one
//! statement — one head lock, one transaction, one WAL flush — and only then answers each
//! caller with its sequence number. A caller never proceeds before its row is durable.

use crate::domain::audit::AuditEntry;
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
    pub fn spawn(pool: PgPool) -> Self {
        let (queue, mut jobs) = mpsc::channel::<Job>(4096);
        tokio::spawn(async move {
            let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
            while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let entries: Vec<&AuditEntry> = batch.iter().map(|(e, _)| e).collect();
                let result = append_batch(&pool, &entries).await;
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

async fn append_batch(pool: &PgPool, entries: &[&AuditEntry]) -> Result<i64, sqlx::Error> {
    let col = |f: fn(&AuditEntry) -> String| entries.iter().map(|e| f(e)).collect::<Vec<_>>();
    let opt =
        |f: fn(&AuditEntry) -> Option<String>| entries.iter().map(|e| f(e)).collect::<Vec<_>>();
    let num = |f: fn(&AuditEntry) -> Option<i64>| entries.iter().map(|e| f(e)).collect::<Vec<_>>();
    let at: Vec<DateTime<Utc>> = entries
        .iter()
        .map(|e| DateTime::from_timestamp_micros(e.at_micros).unwrap_or_default())
        .collect();
    let hashes: Vec<Vec<u8>> = entries.iter().map(|e| e.content_hash().to_vec()).collect();
    sqlx::query_scalar(
        "SELECT audit_append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(col(|e| e.request_id.clone()))
    .bind(at)
    .bind(col(|e| e.phase.clone()))
    .bind(col(|e| e.actor_kind.clone()))
    .bind(num(|e| e.actor_id))
    .bind(num(|e| e.chat_id))
    .bind(col(|e| e.command.clone()))
    .bind(col(|e| e.args.clone()))
    .bind(col(|e| e.decision.clone()))
    .bind(opt(|e| e.reason.clone()))
    .bind(opt(|e| e.outcome.clone()))
    .bind(opt(|e| e.error.clone()))
    .bind(num(|e| e.duration_ms))
    .bind(hashes)
    .fetch_one(pool)
    .await
}
