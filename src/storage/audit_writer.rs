//! Group commit for the audit log. Appends from concurrent requests queue to one writer
//! task, which takes whatever is waiting (up to 256 entries), appends them in one
//! transaction — one head lock, one WAL flush — and only then answers each caller with its
//! sequence number. A caller never proceeds before its row is durable.
//!
//! With a chain key, the batch is chained here with HMAC after the head this writer last left
//! and appended in one statement (`audit_append_keyed`, which refuses a head that moved);
//! after a refusal, or with no head known, one transaction locks the head
//! (`audit_lock_head`), chains after it and appends. Without a key, PostgreSQL chains the
//! batch with SHA-256 (`audit_append_batch`), which it refuses once the chain is keyed.
//!
//! The writer remembers the last row it appended: a head that moved back behind it (rows
//! cut off, or an append function that swallowed rows) stops every append, loudly.

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
            let mut last = LastAppended::default();
            while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let entries: Vec<&AuditEntry> = batch.iter().map(|(e, _)| e).collect();
                let result = append(&pool, key.as_ref(), &entries, &mut last).await;
                if let Err(e) = &result {
                    tracing::error!(error = %e, "audit.append_failed");
                }
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

/// The last row this writer appended (seq and hash; the hash only on the keyed path).
#[derive(Debug, Default)]
struct LastAppended {
    seq: i64,
    hash: Option<Vec<u8>>,
    /// Set once the head was seen behind us: nothing is appended after that.
    moved_back: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
enum AppendError {
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    #[error(
        "the audit head moved back to row {head} behind row {ours}, which this process appended: the log was cut or rewritten; nothing more is appended (run `opsguard audit verify`)"
    )]
    HeadMovedBack { head: i64, ours: i64 },
}

async fn append(
    pool: &PgPool,
    key: Option<&ChainKey>,
    entries: &[&AuditEntry],
    last: &mut LastAppended,
) -> Result<i64, AppendError> {
    if let Some(head) = last.moved_back {
        return Err(AppendError::HeadMovedBack {
            head,
            ours: last.seq,
        });
    }
    match append_tracked(pool, key, entries, Some(&*last)).await {
        Ok((first, hash)) => {
            last.seq = first + entries.len() as i64 - 1;
            last.hash = hash;
            Ok(first)
        }
        Err(AppendError::HeadMovedBack { head, ours }) => {
            last.moved_back = Some(head);
            Err(AppendError::HeadMovedBack { head, ours })
        }
        Err(e) => Err(e),
    }
}

/// Append `entries` in one transaction; returns the first one's sequence number.
pub async fn append_batch(
    pool: &PgPool,
    key: Option<&ChainKey>,
    entries: &[&AuditEntry],
) -> Result<i64, sqlx::Error> {
    match append_tracked(pool, key, entries, None).await {
        Ok((first, _)) => Ok(first),
        Err(AppendError::Store(e)) => Err(e),
        Err(moved) => Err(sqlx::Error::Protocol(moved.to_string())),
    }
}

/// The append, checked against the writer's last row; returns the first seq and (keyed)
/// the last row's hash.
async fn append_tracked(
    pool: &PgPool,
    key: Option<&ChainKey>,
    entries: &[&AuditEntry],
    last: Option<&LastAppended>,
) -> Result<(i64, Option<Vec<u8>>), AppendError> {
    let c = Columns::of(entries);
    let Some(key) = key else {
        let first: i64 = sqlx::query_scalar(
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
        .await?;
        if let Some(last) = last.filter(|l| first <= l.seq) {
            return Err(AppendError::HeadMovedBack {
                head: first - 1,
                ours: last.seq,
            });
        }
        return Ok((first, None));
    };
    // Fast road: chain after the head this writer left last time and append in one statement.
    if let Some((seq, hash)) = last.and_then(|l| Some((l.seq, l.hash.clone()?))) {
        let after = (seq, hash);
        let (row_hashes, tail) = chain(key, &c, &after);
        match append_keyed(key, &c, &after, &row_hashes, pool).await {
            Ok(first) => return Ok((first, Some(tail))),
            // Another replica appended meanwhile (or the head moved back: checked below).
            Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("40001") => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Slow road: lock the head for the transaction, chain after it, append.
    let mut tx = pool.begin().await?;
    let after: (i64, Vec<u8>) = sqlx::query_as("SELECT seq, row_hash FROM audit_lock_head()")
        .fetch_one(&mut *tx)
        .await?;
    if let Some(last) = last {
        let rewritten = after.0 == last.seq && last.hash.as_ref().is_some_and(|h| *h != after.1);
        if after.0 < last.seq || rewritten {
            return Err(AppendError::HeadMovedBack {
                head: after.0,
                ours: last.seq,
            });
        }
    }
    let (row_hashes, tail) = chain(key, &c, &after);
    let first = append_keyed(key, &c, &after, &row_hashes, &mut *tx).await?;
    tx.commit().await?;
    Ok((first, Some(tail)))
}

/// Each entry's keyed row hash, chained after `after`; and the last one.
fn chain(key: &ChainKey, c: &Columns, after: &(i64, Vec<u8>)) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut prev = after.1.clone();
    let hashes = c
        .content_hash
        .iter()
        .enumerate()
        .map(|(i, content)| {
            prev = key
                .row_hash(&prev, after.0 + 1 + i as i64, content)
                .to_vec();
            prev.clone()
        })
        .collect();
    (hashes, prev)
}

async fn append_keyed<'e>(
    key: &ChainKey,
    c: &Columns,
    after: &(i64, Vec<u8>),
    row_hashes: &[Vec<u8>],
    db: impl sqlx::PgExecutor<'e>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT audit_append_keyed($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(after.0)
    .bind(&after.1)
    .bind(key.id())
    .bind(&c.request_id)
    .bind(&c.at)
    .bind(&c.phase)
    .bind(&c.actor_kind)
    .bind(&c.actor_id)
    .bind(&c.chat_id)
    .bind(&c.command)
    .bind(&c.args)
    .bind(&c.decision)
    .bind(&c.reason)
    .bind(&c.outcome)
    .bind(&c.error)
    .bind(&c.duration_ms)
    .bind(&c.content_hash)
    .bind(row_hashes)
    .fetch_one(db)
    .await
}
