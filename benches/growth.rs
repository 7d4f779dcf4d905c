//! How cost grows (issue 24): each series beside its baseline in the same run, one table
//! each. Needs PostgreSQL (superuser, for `CHECKPOINT`) and Redis on 127.0.0.1.
//!
//! - `cargo bench --bench growth -- outbox`: outbox backlogs of rows × chats (default
//!   1k/10k/100k rows over 1/100/10k chats; `BENCH_OUTBOX=100000x1,10000x100` picks), drained
//!   by the real worker with opsguard's pacing lifted into a fake Bot API without limits;
//!   sent rows stay in the table from one backlog to the next (the history grows). Beside
//!   it: bare concurrent sendMessage calls into the same fake.
//! - `cargo bench --bench growth -- audit`: the audit log at 0 / 1M / 5M rows
//!   (`BENCH_AUDIT_ROWS=0,1000000` picks): WAL per appended row (from `EXPLAIN (ANALYZE,
//!   WAL)`, so other databases' traffic does not count) after a `CHECKPOINT`, the append rate
//!   beside plain INSERTs, the full verify beside `COPY … TO STDOUT`, and the chat's
//!   `/audit verify` (from the last verified checkpoint) after 10k more rows.
//!
//! The addresses series is `BENCH_ADDRESSES=1000,100000,1000000 cargo bench --bench ingest`.

#[allow(dead_code)]
#[path = "support/audit_bench.rs"]
mod audit_bench;
#[allow(dead_code)]
#[path = "support/fake_api.rs"]
mod fake_api;
#[path = "support/growth_audit.rs"]
mod growth_audit;
#[path = "support/scratch.rs"]
mod scratch;

use opsguard::config::Settings;
use opsguard::startup::Application;
use std::time::{Duration, Instant};

/// The allocator the `opsguard` binary runs with (see `src/main.rs`): the in-process app is
/// measured as it is shipped.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let series: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let all = series.is_empty();
    if all || series.iter().any(|s| s == "outbox") {
        scratch::with_scratch(|url, name| async move { outbox(&url, &name).await }).await?;
    }
    if all || series.iter().any(|s| s == "audit") {
        scratch::with_scratch(|url, name| async move { growth_audit::run(&url, &name).await })
            .await?;
    }
    Ok(())
}

fn sizes(var: &str, default: &str) -> Vec<String> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().replace('_', ""))
        .collect()
}

async fn outbox(url: &str, name: &str) -> anyhow::Result<()> {
    let (api_url, arrivals) = fake_api::start().await;
    let bare = bare_sends(&api_url, 20_000).await?;
    arrivals.lock().unwrap().clear();
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
            ("OPSGUARD__OUTBOX__PER_CHAT_INTERVAL_MS", "0".to_string()),
            ("OPSGUARD__OUTBOX__BATCH_SIZE", "200".to_string()),
            ("OPSGUARD__OUTBOX__POLL_INTERVAL_MS", "10".to_string()),
        ],
    );
    let app = Application::build(Settings::load_with(&env)?).await?;
    let pool = app.engine().pool().clone();
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run());

    println!("## Outbox backlogs, pacing lifted (fake Bot API without limits)\n");
    println!("bare sendMessage calls into the same fake, 32 at a time: {bare:.0} msg/s\n");
    println!(
        "| rows | chats | history (sent rows before) | drain | first 5 s | last 5 s | last/first | drain / bare |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut history = 0i64;
    for size in sizes(
        "BENCH_OUTBOX",
        "1000x1,10000x1,100000x1,1000x100,10000x100,100000x100,10000x10000,100000x10000",
    ) {
        let (rows, chats) = size
            .split_once('x')
            .ok_or_else(|| anyhow::anyhow!("{size}: want ROWSxCHATS"))?;
        let (rows, chats): (i64, i64) = (rows.parse()?, chats.parse()?);
        let per = rows / chats;
        let total = (per * chats) as usize;
        let before: usize = arrivals.lock().unwrap().values().map(Vec::len).sum();
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
            if arrived >= before + total {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(900),
                "only {} of {total} arrived",
                arrived - before
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let took = started.elapsed();
        let mut times: Vec<Instant> = arrivals
            .lock()
            .unwrap()
            .values()
            .flatten()
            .copied()
            .filter(|t| *t >= started)
            .collect();
        times.sort();
        let (first, last) = ends(&times, started, Duration::from_secs(5));
        let rate = total as f64 / took.as_secs_f64();
        println!(
            "| {total} | {chats} | {history} | {rate:.0} msg/s ({:.1} s) | {first:.0} msg/s | {last:.0} msg/s | {:.2} | {:.3} |",
            took.as_secs_f64(),
            last / first,
            rate / bare
        );
        history += total as i64;
    }
    // A send arrives before its result is recorded: wait for the last results.
    let waited = Instant::now();
    let mut lost: i64 = 1;
    while lost > 0 && waited.elapsed() < Duration::from_secs(30) {
        lost = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status <> 'sent'")
            .fetch_one(&pool)
            .await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let arrived: usize = arrivals.lock().unwrap().values().map(Vec::len).sum();
    println!("\nrows not sent: {lost}; arrivals {arrived} for {history} rows");
    shutdown.cancel();
    let _ = server.await;
    anyhow::ensure!(
        lost == 0 && arrived as i64 == history,
        "lost or duplicated sends"
    );
    Ok(())
}

/// Send rates over the first and the last `span` of a drain (the whole drain when it is
/// shorter than two spans: then both are the overall rate).
fn ends(times: &[Instant], started: Instant, span: Duration) -> (f64, f64) {
    let (Some(&first), Some(&last)) = (times.first(), times.last()) else {
        return (0.0, 0.0);
    };
    let whole = last.duration_since(started);
    if whole < span * 2 {
        let rate = times.len() as f64 / whole.as_secs_f64().max(1e-3);
        return (rate, rate);
    }
    let head = times.iter().filter(|t| **t <= first + span).count();
    let tail = times.iter().filter(|t| **t >= last - span).count();
    (
        head as f64 / span.as_secs_f64(),
        tail as f64 / span.as_secs_f64(),
    )
}

/// The baseline: `count` sendMessage calls straight into the fake, 32 at a time.
async fn bare_sends(api_url: &str, count: usize) -> anyhow::Result<f64> {
    use futures::StreamExt;
    let client = reqwest::Client::new();
    let url = format!("{api_url}/bot1:BENCH/sendMessage");
    let started = Instant::now();
    let results: Vec<reqwest::Result<reqwest::Response>> = futures::stream::iter(0..count)
        .map(|i| {
            let body = serde_json::json!({
                "chat_id": 100_000 + (i % 100) as i64, "text": "<b>report</b>", "parse_mode": "HTML"
            });
            client.post(&url).json(&body).send()
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for r in results {
        r?.error_for_status()?;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}
