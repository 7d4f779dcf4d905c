//! The audit series of `cargo bench --bench growth -- audit`: at each size, WAL per appended
//! row, the append rate beside plain INSERTs, the full verify beside `COPY … TO STDOUT`, and
//! the chat's verify from the last verified checkpoint. The history is filled with random
//! (v4) request ids, as a log written before the time-ordered ids; new rows get the engine's.

use super::audit_bench;
use super::scratch;
use futures::TryStreamExt;
use opsguard::config::Settings;
use opsguard::domain::audit::AuditEntry;
use opsguard::startup::Application;
use sqlx::PgPool;
use std::time::Instant;

/// Rows appended to measure WAL, in statements of `WAL_BATCH` (the group commit's size).
const WAL_ROWS: usize = 20_000;
const WAL_BATCH: usize = 50;

pub async fn run(url: &str, name: &str) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("{name}-checkpoints"));
    std::fs::create_dir_all(&dir)?;
    let env = scratch::app_env(
        url,
        name,
        &[
            ("OPSGUARD_TELEGRAM_TOKEN", "1:BENCH".to_string()),
            (
                "OPSGUARD_WEBHOOK_SECRET",
                "bench-webhook-secret-0123456789abcdef".to_string(),
            ),
            ("OPSGUARD_MASTER_KEY", audit_bench::MASTER_KEY.to_string()),
            (
                "OPSGUARD__AUDIT__CHECKPOINT_STORAGE",
                dir.display().to_string(),
            ),
        ],
    );
    let settings = Settings::load_with(&env)?;
    let app = Application::build(settings.clone()).await?;
    let pool = app.engine().pool().clone();
    let keys = app.engine().audit_keys().expect("master key set").clone();
    println!("## Audit log size\n");
    println!(
        "| rows | WAL per row | FPI per row | chained append | plain INSERT | append / plain | full verify | COPY out | verify / COPY | chat `/audit verify` |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let sizes: Vec<usize> = std::env::var("BENCH_AUDIT_ROWS")
        .unwrap_or_else(|_| "0,1000000,5000000".into())
        .split(',')
        .map(|s| s.trim().replace('_', "").parse())
        .collect::<Result<_, _>>()?;
    for size in sizes {
        let head = opsguard::storage::audit::head(&pool).await?.seq as usize;
        if size > head {
            audit_bench::extend_chain(&pool, size - head, true).await;
        }
        let at = opsguard::storage::audit::head(&pool).await?.seq;
        let (wal, fpi) = wal_per_row(&pool).await?;
        let (grouped, _chained, plain) = audit_bench::appends(&pool, 16, 20_000).await;
        opsguard::audit::checkpoint::write(&pool, &settings, Some(&keys)).await?;
        let started = Instant::now();
        let full = opsguard::audit::verify_all(&pool, &settings, Some(&keys), &[]).await?;
        anyhow::ensure!(full.intact(), "{:?}", full.lines());
        let verify_rate = full.chain.rows as f64 / started.elapsed().as_secs_f64();
        let copy_rate = copy_out(&pool).await?;
        // The chat's verify after more traffic: from the checkpoint the full walk verified.
        audit_bench::appends(&pool, 16, 10_000).await;
        let started = Instant::now();
        let recent = opsguard::audit::verify_recent(&pool, &settings, Some(&keys)).await?;
        let chat = started.elapsed();
        anyhow::ensure!(recent.intact(), "{:?}", recent.lines());
        println!(
            "| {at} | {wal:.0} B | {fpi:.2} | {grouped:.0}/s | {plain:.0}/s | {:.2} | {verify_rate:.0} rows/s | {copy_rate:.0} rows/s | {:.2} | {:.0} ms ({} rows) |",
            grouped / plain,
            verify_rate / copy_rate,
            chat.as_secs_f64() * 1e3,
            recent.chain.rows,
        );
    }
    drop(app);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// WAL bytes and full-page images per row for `WAL_ROWS` keyed appends after a
/// `CHECKPOINT`, as `EXPLAIN (ANALYZE, WAL)` counts them for the append statements alone.
async fn wal_per_row(pool: &PgPool) -> anyhow::Result<(f64, f64)> {
    sqlx::query("CHECKPOINT").execute(pool).await?;
    let key = audit_bench::key();
    let (mut bytes, mut fpi) = (0f64, 0f64);
    for b in 0..WAL_ROWS / WAL_BATCH {
        let entries: Vec<AuditEntry> = (0..WAL_BATCH)
            .map(|i| audit_bench::entry(b * WAL_BATCH + i, false))
            .collect();
        let mut tx = pool.begin().await?;
        let (seq, head): (i64, Vec<u8>) =
            sqlx::query_as("SELECT seq, row_hash FROM audit_lock_head()")
                .fetch_one(&mut *tx)
                .await?;
        let contents: Vec<Vec<u8>> = entries.iter().map(|e| e.content_hash().to_vec()).collect();
        let mut prev = head.clone();
        let hashes: Vec<Vec<u8>> = contents
            .iter()
            .enumerate()
            .map(|(i, c)| {
                prev = key.row_hash(&prev, seq + 1 + i as i64, c).to_vec();
                prev.clone()
            })
            .collect();
        let text = |f: fn(&AuditEntry) -> String| entries.iter().map(f).collect::<Vec<_>>();
        let maybe =
            |f: fn(&AuditEntry) -> Option<String>| entries.iter().map(f).collect::<Vec<_>>();
        let plan: serde_json::Value = sqlx::query_scalar(
            "EXPLAIN (ANALYZE, WAL, FORMAT JSON) SELECT audit_append_keyed($1, $2, $3, $4, $5,
               $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        )
        .bind(seq)
        .bind(&head)
        .bind(key.id())
        .bind(text(|e| e.request_id.clone()))
        .bind(
            entries
                .iter()
                .map(|e| chrono::DateTime::from_timestamp_micros(e.at_micros).unwrap_or_default())
                .collect::<Vec<_>>(),
        )
        .bind(text(|e| e.phase.clone()))
        .bind(text(|e| e.actor_kind.clone()))
        .bind(entries.iter().map(|e| e.actor_id).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.chat_id).collect::<Vec<_>>())
        .bind(text(|e| e.command.clone()))
        .bind(text(|e| e.args.clone()))
        .bind(text(|e| e.decision.clone()))
        .bind(maybe(|e| e.reason.clone()))
        .bind(maybe(|e| e.outcome.clone()))
        .bind(maybe(|e| e.error.clone()))
        .bind(entries.iter().map(|e| e.duration_ms).collect::<Vec<_>>())
        .bind(&contents)
        .bind(&hashes)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        let top = &plan[0]["Plan"];
        bytes += top["WAL Bytes"].as_f64().unwrap_or_default();
        fpi += top["WAL FPI"].as_f64().unwrap_or_default();
    }
    Ok((bytes / WAL_ROWS as f64, fpi / WAL_ROWS as f64))
}

/// Rows per second read by `COPY audit_log TO STDOUT`.
async fn copy_out(pool: &PgPool) -> anyhow::Result<f64> {
    let mut conn = pool.acquire().await?;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(&mut *conn)
        .await?;
    let started = Instant::now();
    let mut out = conn.copy_out_raw("COPY audit_log TO STDOUT").await?;
    let mut bytes = 0usize;
    while let Some(chunk) = out.try_next().await? {
        bytes += chunk.len();
    }
    anyhow::ensure!(bytes > 0 || rows == 0, "COPY read nothing");
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}
