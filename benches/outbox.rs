//! Benchmark of the outbox drain rate (issue 3): rows queued in PostgreSQL, delivered by the
//! real worker to a fake Bot API that imposes no limits, with the per-chat pacing (1 message
//! per second per chat) still kept, so the rows are spread over many chats. The overall
//! 30/s limit is lifted (`global_per_second = 0`): it is Telegram's, not the fake's.
//! Needs PostgreSQL and Redis on 127.0.0.1.
//!
//! `cargo bench --bench outbox` (`BENCH_QUICK=1` for a smaller run).

#[allow(dead_code)]
#[path = "support/fake_api.rs"]
mod fake_api;
#[path = "support/scratch.rs"]
mod scratch;

use opsguard::config::Settings;
use opsguard::startup::Application;
use std::time::{Duration, Instant};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let quick = std::env::var("BENCH_QUICK").is_ok();
    scratch::with_scratch(|url, name| async move { run(&url, &name, quick).await }).await
}

async fn run(url: &str, name: &str, quick: bool) -> anyhow::Result<()> {
    let (api_url, arrivals) = fake_api::start().await;
    let env = scratch::app_env(
        url,
        name,
        &[
            ("OPSGUARD_TELEGRAM_TOKEN", "1:BENCH".to_string()),
            ("OPSGUARD_TELEGRAM_API_URL", api_url),
            (
                "OPSGUARD_WEBHOOK_SECRET",
                "bench-webhook-secret-0123456789abcdef".to_string(),
            ),
            ("OPSGUARD__OUTBOX__GLOBAL_PER_SECOND", "0".to_string()),
            ("OPSGUARD__OUTBOX__BATCH_SIZE", "200".to_string()),
            ("OPSGUARD__OUTBOX__POLL_INTERVAL_MS", "10".to_string()),
        ],
    );
    let settings = Settings::load_with(&env)?;
    let per_chat = Duration::from_millis(settings.outbox.per_chat_interval_ms);
    let app = Application::build(settings).await?;
    let pool = app.engine().pool().clone();
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run());

    let (chats, per) = if quick { (1_000i64, 2i64) } else { (2_500, 4) };
    let total = (chats * per) as usize;
    // Queued in one statement, so the clock starts with everything due.
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO outbox (chat_id, html, source)
         SELECT 100000 + c, '<b>report</b> ' || n || ' for ' || c, 'bench'
         FROM generate_series(1, $2::int8) AS n, generate_series(1, $1::int8) AS c
         ORDER BY n, c",
    )
    .bind(chats)
    .bind(per)
    .execute(&pool)
    .await?;
    loop {
        let arrived: usize = arrivals.lock().unwrap().values().map(Vec::len).sum();
        if arrived >= total {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "only {arrived} of {total} arrived"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    shutdown.cancel();
    let _ = server.await;

    let arrivals = arrivals.lock().unwrap().clone();
    let arrived: usize = arrivals.values().map(Vec::len).sum();
    let min_gap = arrivals
        .values()
        .flat_map(|t| t.windows(2).map(|w| w[1] - w[0]))
        .min()
        .unwrap_or_default();
    let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status = 'sent'")
        .fetch_one(&pool)
        .await?;
    println!("## Outbox drain (fake Bot API without limits; per-chat pacing kept)\n");
    println!("| messages | chats | per chat | wall | drain rate | min gap in a chat | dup/lost |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {total} | {chats} | {per} | {:.2} s | {:.0} msg/s | {} ms (limit {} ms) | {} |",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64(),
        min_gap.as_millis(),
        per_chat.as_millis(),
        arrived as i64 - sent,
    );
    anyhow::ensure!(arrived == total, "{arrived} arrivals for {total} rows");
    anyhow::ensure!(min_gap >= per_chat, "per-chat pacing broken: {min_gap:?}");
    Ok(())
}
