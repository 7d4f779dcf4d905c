//! Benchmark of failed-login ingest (issue 4): batches of 1,000 auth events posted over HTTP
//! to the real app, stored and evaluated by the detector (alerts into the outbox) before
//! the 202; beside it, in the same run, the baseline: the same events put into the same
//! table with `COPY` and nothing else. Needs PostgreSQL and Redis on 127.0.0.1.
//!
//! The mix: failures spread over 1,000,000 accounts from 2,000,000 addresses (background
//! noise that stays under the per-IP and per-account thresholds), 10% successes, and a
//! brute-force source (40 failures, 40 accounts) every 50th batch, so alerts are raised
//! all through the run; the overall surge rule fires once and counts on. An
//! alert is in the outbox before the 202 for its batch, so a batch's request latency
//! bounds "event arrival → alert in the outbox".
//!
//! `cargo bench --bench ingest` (`BENCH_QUICK=1` for a smaller run, `BENCH_LOG=warn` to see
//! the app's log lines).
//!
//! How the cost grows with the attack's spread (issue 24): `BENCH_ADDRESSES=1000,100000,1000000
//! cargo bench --bench ingest` runs once per spread, the failures coming from that many
//! addresses instead, each run in its own scratch database beside its own COPY baseline, and
//! prints one table.

#[path = "support/scratch.rs"]
mod scratch;

use chrono::{SecondsFormat, Utc};
use opsguard::config::Settings;
use opsguard::startup::Application;
use sqlx::PgPool;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The allocator the `opsguard` binary runs with (see `src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 1_000;
const CLIENTS: usize = 4;

/// Concurrent clients: `CLIENTS`, or `BENCH_CLIENTS` (to tell a pipeline that waits from
/// one that is busy).
fn clients() -> usize {
    std::env::var("BENCH_CLIENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CLIENTS)
}
const SECRET: &str = "bench-ingest-secret-0123456789abcdef";

/// Where the background failures come from, unless `BENCH_ADDRESSES` says otherwise.
const ADDRESSES: usize = 2_000_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let quick = std::env::var("BENCH_QUICK").is_ok();
    // `BENCH_LOG=warn` (any level): the app's own log lines on stderr, e.g. `redis.degraded`
    // with its error when an exchange gives up.
    if let Ok(level) = std::env::var("BENCH_LOG") {
        opsguard::telemetry::init(&level);
    }
    let Ok(spreads) = std::env::var("BENCH_ADDRESSES") else {
        return scratch::with_scratch(|url, name| async move {
            let row = run(&url, &name, quick, ADDRESSES).await?;
            print_table(&[row]);
            Ok(())
        })
        .await;
    };
    let mut rows = Vec::new();
    for spread in spreads.split(',') {
        let spread: usize = spread.trim().replace('_', "").parse()?;
        let mut row = None;
        scratch::with_scratch(|url, name| {
            let row = &mut row;
            async move {
                *row = Some(run(&url, &name, quick, spread).await?);
                Ok(())
            }
        })
        .await?;
        rows.extend(row);
    }
    print_table(&rows);
    Ok(())
}

/// One run's figures.
struct Row {
    addresses: usize,
    ingest_rate: f64,
    copy_rate: f64,
    p50: Duration,
    p99: Duration,
    alerts: i64,
    pushed: i64,
}

fn print_table(rows: &[Row]) {
    println!(
        "| addresses | HTTP ingest + detection | COPY baseline | ratio | batch p50 | batch p99 | alerts raised | pushes queued |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {:.0} events/s | {:.0} events/s | {:.2} | {:.1} ms | {:.1} ms | {} | {} |",
            r.addresses,
            r.ingest_rate,
            r.copy_rate,
            r.ingest_rate / r.copy_rate,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.alerts,
            r.pushed,
        );
    }
}

/// Batch `n` as (JSON body, CSV rows for COPY), its events stamped now; the background
/// failures come from `addresses` addresses.
fn batch(n: usize, addresses: usize) -> (String, String) {
    let at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let (mut json, mut csv) = (
        String::with_capacity(200 * BATCH),
        String::with_capacity(150 * BATCH),
    );
    json.push('[');
    for i in 0..BATCH {
        let k = n * BATCH + i;
        let attack = n.is_multiple_of(50) && i < 40;
        let ip = if attack {
            format!("198.51.{}.{}", (n / 250) % 250, n % 250)
        } else {
            let h = k.wrapping_mul(2_654_435_761) % addresses;
            format!("10.{}.{}.{}", h / 65_536, (h / 256) % 256, h % 256)
        };
        let account = format!("user{}", k.wrapping_mul(40_503) % 1_000_000);
        let outcome = if !attack && k.is_multiple_of(10) {
            "success"
        } else {
            "failure"
        };
        let id = format!("bench-{k}");
        if i > 0 {
            json.push(',');
        }
        let _ = write!(
            json,
            r#"{{"id":"{id}","at":"{at}","ip":"{ip}","account":"{account}","service":"sso","outcome":"{outcome}","user_agent":"bench/1.0"}}"#
        );
        let _ = writeln!(
            csv,
            "{id},{at},{ip},{account},sso,{outcome},,bench/1.0,bench"
        );
    }
    json.push(']');
    (json, csv)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

async fn run(url: &str, name: &str, quick: bool, addresses: usize) -> anyhow::Result<Row> {
    let env = scratch::app_env(
        url,
        name,
        &[
            ("OPSGUARD_INGEST_JWT_SECRET", SECRET.to_string()),
            ("OPSGUARD__LOGINS__STREAM__ENABLED", "false".to_string()),
        ],
    );
    let mut settings = Settings::load_with(&env)?;
    settings.logins.alert_chats = vec![-100_200_300];
    if std::env::var("BENCH_NO_RULES").is_ok() {
        settings.logins.rules.clear();
    }
    let ingest = &settings.logins.ingest;
    let secret = ingest.jwt_secret.clone().expect("set above");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let token = opsguard::logins::jwt::issue(
        "bench",
        Duration::from_secs(3600),
        &secret,
        &ingest.issuer,
        now.as_secs(),
    )?;
    let app = Application::build(settings).await?;
    let addr = app.local_addr();
    let pool = app.engine().pool().clone();
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run());

    let batches = if quick { 100 } else { 600 };
    let warmup = 20;
    println!(
        "## Failed-login ingest: {batches} batches of {BATCH} over HTTP, {} clients, failures from {addresses} addresses\n",
        clients()
    );
    // Warm-up on its own ids, then the measured run.
    post_all(addr, &token, 1_000_000, warmup, addresses).await?;
    let (ingest_rate, mut latencies) = post_all(addr, &token, 0, batches, addresses).await?;
    latencies.sort();
    let alerts: i64 = sqlx::query_scalar("SELECT count(*) FROM login_alerts")
        .fetch_one(&pool)
        .await?;
    let pushed: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&pool)
        .await?;
    shutdown.cancel();
    let _ = server.await;
    let copy_rate = copy_baseline(&pool, batches, addresses).await?;
    anyhow::ensure!(alerts > 0, "the attacks raised no alert");
    Ok(Row {
        addresses,
        ingest_rate,
        copy_rate,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        alerts,
        pushed,
    })
}

/// Post `count` batches (numbered from `first`) with `clients()` concurrent clients; returns
/// events/s and each batch's latency.
async fn post_all(
    addr: std::net::SocketAddr,
    token: &str,
    first: usize,
    count: usize,
    addresses: usize,
) -> anyhow::Result<(f64, Vec<Duration>)> {
    let http = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let url = format!("http://{addr}/api/v1/auth-events");
    // Bodies are made before the clock starts, as the COPY baseline's are.
    let bodies: Arc<Vec<String>> = Arc::new(
        (first..first + count)
            .map(|n| batch(n, addresses).0)
            .collect(),
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients() {
        let (http, next, url, token) = (http.clone(), next.clone(), url.clone(), token.to_string());
        let bodies = bodies.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let body = bodies[n].clone();
                let sent = Instant::now();
                let response = http
                    .post(&url)
                    .bearer_auth(&token)
                    .body(body)
                    .send()
                    .await?;
                let status = response.status();
                anyhow::ensure!(
                    status == 202,
                    "batch {n}: {status} {}",
                    response.text().await?
                );
                latencies.push(sent.elapsed());
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let rate = (count * BATCH) as f64 / started.elapsed().as_secs_f64();
    Ok((rate, all))
}

/// The same events into the same (emptied) table with COPY, same batch size and clients.
async fn copy_baseline(pool: &PgPool, count: usize, addresses: usize) -> anyhow::Result<f64> {
    sqlx::query("TRUNCATE auth_events").execute(pool).await?;
    let bodies: Vec<String> = (0..count).map(|n| batch(n, addresses).1).collect();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients() {
        let (pool, next, bodies) = (pool.clone(), next.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(n) else {
                    return Ok::<_, anyhow::Error>(());
                };
                let mut copy = conn
                    .copy_in_raw(
                        "COPY auth_events (event_id, at, ip, account, service, outcome, reason, user_agent, sender) FROM STDIN WITH (FORMAT csv)",
                    )
                    .await?;
                copy.send(body.as_bytes()).await?;
                copy.finish().await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok((count * BATCH) as f64 / started.elapsed().as_secs_f64())
}
