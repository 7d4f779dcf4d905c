//! Audit log throughput: chained appends vs. plain inserts, and chain verification vs. a
//! bare read of the same rows. The chain is keyed (HMAC under `key()`), as it is in every
//! deployment with a master key.

use chrono::Utc;
use futures::TryStreamExt;
use opsguard::domain::audit::{AuditEntry, ChainKey};
use opsguard::storage;
use opsguard::storage::audit_writer::AuditWriter;
use sqlx::PgPool;
use std::time::Instant;

/// The master key the pipeline bench's app runs with (its chain is keyed, as in production).
pub const MASTER_KEY: &str = "YmVuY2gtbWFzdGVyLWtleS0zMi1ieXRlcy1sb25nISE=";

/// The chain key of `MASTER_KEY`, so bench appends extend the app's chain.
pub fn key() -> ChainKey {
    let master = opsguard::domain::secret::Secret::new(MASTER_KEY);
    opsguard::audit::AuditKeys::from_master(Some(&master))
        .unwrap()
        .unwrap()
        .chain()
        .clone()
}

/// Entry `i`, with the engine's time-ordered request id, or (`historic`) a random one as a
/// log written before those had.
pub fn entry(i: usize, historic: bool) -> AuditEntry {
    let request_id = if historic {
        uuid::Uuid::new_v4()
    } else {
        uuid::Uuid::now_v7()
    };
    AuditEntry {
        request_id: request_id.to_string(),
        at_micros: Utc::now().timestamp_micros(),
        phase: if i.is_multiple_of(2) {
            "attempt"
        } else {
            "outcome"
        }
        .into(),
        actor_kind: "telegram".into(),
        actor_id: Some(1000 + (i % 50) as i64),
        chat_id: Some(1000 + (i % 50) as i64),
        command: "whoami".into(),
        args: String::new(),
        decision: "allowed".into(),
        reason: None,
        outcome: (i % 2 == 1).then(|| "ok".into()),
        error: None,
        duration_ms: (i % 2 == 1).then_some(3),
    }
}

/// Rows per second for `total` appends from `writers` concurrent tasks, through the
/// engine's group-commit writer, through one `audit_append` statement per row, and as
/// plain INSERTs with no chain: (group commit, per-row chained, plain).
pub async fn appends(pool: &PgPool, writers: usize, total: usize) -> (f64, f64, f64) {
    sqlx::query("CREATE TABLE IF NOT EXISTS audit_plain (LIKE audit_log)")
        .execute(pool)
        .await
        .unwrap();
    let per = total / writers;
    let writer = AuditWriter::spawn(pool.clone(), Some(key()));
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let writer = writer.clone();
            tokio::spawn(async move {
                for i in 0..per {
                    writer.append(entry(w * per + i, false)).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let grouped = (per * writers) as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for i in 0..per {
                    storage::audit::append(&pool, Some(&key()), &entry(w * per + i, false))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let chained = (per * writers) as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for i in 0..per {
                    let e = entry(w * per + i, false);
                    let seq = (w * per + i) as i64;
                    sqlx::query(
                        "INSERT INTO audit_plain (seq, request_id, at, phase, actor_kind, actor_id, chat_id, command, args,
                         decision, reason, outcome, error, duration_ms, content_hash, prev_hash, row_hash)
                         VALUES ($1, $2, now(), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $14)",
                    )
                    .bind(seq)
                    .bind(&e.request_id)
                    .bind(&e.phase)
                    .bind(&e.actor_kind)
                    .bind(e.actor_id)
                    .bind(e.chat_id)
                    .bind(&e.command)
                    .bind(&e.args)
                    .bind(&e.decision)
                    .bind(&e.reason)
                    .bind(&e.outcome)
                    .bind(&e.error)
                    .bind(e.duration_ms)
                    .bind(e.content_hash().as_slice())
                    .execute(&pool)
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let plain = (per * writers) as f64 / started.elapsed().as_secs_f64();
    (grouped, chained, plain)
}

/// One UNNEST batch, column by column.
#[derive(Default)]
struct Columns {
    seq: Vec<i64>,
    request: Vec<String>,
    at: Vec<chrono::DateTime<Utc>>,
    phase: Vec<String>,
    actor: Vec<Option<i64>>,
    outcome: Vec<Option<String>>,
    duration: Vec<Option<i64>>,
    content: Vec<Vec<u8>>,
    prev: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
}

/// Extend the chain by `rows` valid keyed rows in bulk (UNNEST batches), as a fixture for
/// verify; `historic`: with random request ids, as rows written before time-ordered ones.
pub async fn extend_chain(pool: &PgPool, rows: usize, historic: bool) {
    let key = key();
    let head = storage::audit::head(pool).await.unwrap();
    let (mut seq, mut prev) = (head.seq, head.row_hash);
    let keyed_from = head.keyed_from.unwrap_or(seq + 1);
    for chunk in 0..rows.div_ceil(5000) {
        let n = 5000.min(rows - chunk * 5000);
        let mut cols = Columns::default();
        for i in 0..n {
            seq += 1;
            let e = entry(i, historic);
            let c = e.content_hash();
            let h = key.row_hash(&prev, seq, &c);
            cols.seq.push(seq);
            cols.request.push(e.request_id.clone());
            cols.at
                .push(chrono::DateTime::from_timestamp_micros(e.at_micros).unwrap());
            cols.phase.push(e.phase.clone());
            cols.actor.push(e.actor_id);
            cols.outcome.push(e.outcome.clone());
            cols.duration.push(e.duration_ms);
            cols.content.push(c.to_vec());
            cols.prev.push(prev.clone());
            cols.hash.push(h.to_vec());
            prev = h.to_vec();
        }
        sqlx::query(
            "INSERT INTO audit_log (seq, request_id, at, phase, actor_kind, actor_id, chat_id, command, args, decision,
               reason, outcome, error, duration_ms, content_hash, prev_hash, row_hash)
             SELECT s, r, a, p, 'telegram', u, u, 'whoami', '', 'allowed', NULL, o, NULL, d, c, pv, h
             FROM UNNEST($1::int8[], $2::text[], $3::timestamptz[], $4::text[], $5::int8[], $6::text[], $7::int8[],
                         $8::bytea[], $9::bytea[], $10::bytea[]) AS t (s, r, a, p, u, o, d, c, pv, h)",
        )
        .bind(&cols.seq)
        .bind(&cols.request)
        .bind(&cols.at)
        .bind(&cols.phase)
        .bind(&cols.actor)
        .bind(&cols.outcome)
        .bind(&cols.duration)
        .bind(&cols.content)
        .bind(&cols.prev)
        .bind(&cols.hash)
        .execute(pool)
        .await
        .unwrap();
    }
    sqlx::query("UPDATE audit_head SET seq = $1, row_hash = $2, keyed_from = $3, key_id = $4")
        .bind(seq)
        .bind(&prev)
        .bind(keyed_from)
        .bind(key.id())
        .execute(pool)
        .await
        .unwrap();
}

/// Rows per second: (verify, bare read of the same rows).
pub async fn verify(pool: &PgPool) -> (u64, f64, f64) {
    let started = Instant::now();
    let report = storage::audit::verify(pool, Some(&key())).await.unwrap();
    assert!(
        report.broken.is_none(),
        "fixture chain must verify: {:?}",
        report.broken
    );
    let verify_rate = report.rows as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut rows = sqlx::query("SELECT * FROM audit_log ORDER BY seq").fetch(pool);
    let mut n = 0u64;
    while rows.try_next().await.unwrap().is_some() {
        n += 1;
    }
    let read_rate = n as f64 / started.elapsed().as_secs_f64();
    (report.rows, verify_rate, read_rate)
}
