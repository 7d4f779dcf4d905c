//! Benchmark of the flood limits (issue 13 §3): 10,000 updates from one stranger through
//! the webhook of a real `opsguard serve` process (default `[flood]` settings), while 20
//! admins each send a command every 2 s. Measured: the stranger's audit rows (its own and the
//! aggregate rows, once their window has ended), the replies it got, the server's RSS before
//! and after, and the admins' end-to-end latency beside the same admin load with no flood.
//! Needs PostgreSQL and Redis on 127.0.0.1.
//!
//! `cargo bench --bench floods` (`BENCH_QUICK=1`: one flood instead of three).

#[allow(dead_code)]
#[path = "support/fake_api.rs"]
mod fake_api;
#[allow(dead_code)]
#[path = "support/load.rs"]
mod load;
#[allow(dead_code)]
#[path = "support/scratch.rs"]
mod scratch;

use fake_api::Arrivals;
use opsguard::domain::{RoleName, UserId};
use opsguard::storage;
use sqlx::PgPool;
use std::time::{Duration, Instant};

const ADMINS: i64 = 20;
const FLOOD: usize = 10_000;
/// Updates per second the stranger sends (open loop, 64 in flight at most).
const FLOOD_RATE: f64 = 1_000.0;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let quick = std::env::var("BENCH_QUICK").is_ok();
    scratch::with_scratch(|url, name| async move { run(&url, &name, quick).await }).await
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN)
}

fn median(mut v: Vec<f64>) -> f64 {
    pct(&mut v, 0.5)
}

async fn run(url: &str, name: &str, quick: bool) -> anyhow::Result<()> {
    let pool = storage::pool(url, 4, Duration::from_secs(5))?;
    storage::migrate(url, &pool).await?;
    let admins: Vec<i64> = (1..=ADMINS).map(|a| 50_000 + a).collect();
    for a in &admins {
        storage::users::upsert(&pool, UserId(*a), "bench").await?;
        let admin = RoleName::parse("admin").unwrap();
        storage::users::grant(&pool, UserId(*a), &admin, "bench").await?;
    }
    let (api_url, arrivals) = fake_api::start().await;
    let server = Server::start(url, &api_url, name).await?;
    // Warm-up: every admin once (permission cache, connections).
    admin_load(&server.url, &arrivals, &admins, 1, 1.0).await;

    let reps = if quick { 1 } else { 3 };
    let secs = FLOOD as f64 / FLOOD_RATE;
    let mut quiet = Vec::new();
    let mut flooded = Vec::new();
    let mut results = Vec::new();
    let rss_start = server.rss_kib()?;
    for rep in 0..reps {
        let (p50, p99) = admin_load(&server.url, &arrivals, &admins, 10 + rep * 10, secs).await;
        quiet.push((p50, p99));
        let stranger = 900_000 + rep as i64;
        let rss_before = server.rss_kib()?;
        let first_id = 10_000_000 * (rep as i64 + 1);
        let ((sent_in, dropped_status), (p50, p99)) = tokio::join!(
            flood(&server.url, stranger, first_id),
            admin_load(&server.url, &arrivals, &admins, 1_000 + rep * 10, secs),
        );
        flooded.push((p50, p99));
        let rss_after = server.rss_kib()?;
        results.push((stranger, sent_in, dropped_status, rss_before, rss_after));
    }
    // The aggregate rows come once each stranger's window (60 s from its first drop) ends.
    let mut rows_of = Vec::new();
    for (stranger, ..) in &results {
        rows_of.push(wait_aggregate(&pool, *stranger).await?);
    }
    let rss_end = server.rss_kib()?;
    let hwm = server.hwm_kib()?;

    println!(
        "## Flood: {FLOOD} updates from one stranger at {FLOOD_RATE}/s, 20 admins at 0.5/s each\n"
    );
    println!(
        "| run | flood sent in | answered \"dropped\" | stranger's audit rows (own + aggregate) | replies to the stranger | RSS before → after |"
    );
    println!("|---|---|---|---|---|---|");
    for (i, ((stranger, sent_in, dropped, before, after), (own, agg, counted))) in
        results.iter().zip(&rows_of).enumerate()
    {
        let replies = arrivals.lock().unwrap().get(stranger).map_or(0, Vec::len);
        println!(
            "| {} | {:.1} s | {dropped} | {} ({own} + {agg}; aggregate counts {counted} dropped) | {replies} | {:.1} → {:.1} MiB |",
            i + 1,
            sent_in.as_secs_f64(),
            own + agg,
            *before as f64 / 1024.0,
            *after as f64 / 1024.0
        );
    }
    println!(
        "\nRSS: {:.1} MiB at the start, {:.1} MiB at the end, peak (VmHWM) {:.1} MiB: {:+.1} MiB over the run\n",
        rss_start as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        hwm as f64 / 1024.0,
        (hwm as f64 - rss_start as f64) / 1024.0
    );
    println!("## Admins' commands (/whoami, post → reply at the fake Bot API)\n");
    println!(
        "| | p50 ms (median of runs) | p99 ms (median of runs) | p99 runs |\n|---|---|---|---|"
    );
    for (label, runs) in [("quiet (baseline)", &quiet), ("during the flood", &flooded)] {
        println!(
            "| {label} | {:.2} | {:.2} | {} |",
            median(runs.iter().map(|r| r.0).collect()),
            median(runs.iter().map(|r| r.1).collect()),
            runs.iter()
                .map(|r| format!("{:.1}", r.1))
                .collect::<Vec<_>>()
                .join(" / ")
        );
    }
    drop(server);
    Ok(())
}

/// POST `FLOOD` updates from `stranger` at `FLOOD_RATE` (open loop); how long it took and
/// how many the webhook answered as dropped.
async fn flood(base: &str, stranger: i64, first_id: i64) -> (Duration, usize) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let endpoint = format!("{base}/telegram/webhook");
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / FLOOD_RATE));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(FLOOD);
    for i in 0..FLOOD {
        ticker.tick().await;
        let body = load::update(first_id + i as i64, stranger, "/help");
        let (client, endpoint) = (client.clone(), endpoint.clone());
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(endpoint)
                .header("X-Telegram-Bot-Api-Secret-Token", load::SECRET)
                .body(body)
                .send()
                .await;
            match response {
                Ok(r) => r.text().await.unwrap_or_default() == "dropped",
                Err(_) => false,
            }
        }));
    }
    let mut dropped = 0;
    for t in tasks {
        dropped += usize::from(t.await.unwrap_or(false));
    }
    (started.elapsed(), dropped)
}

/// Each admin sends `/whoami` every 2 s for `secs`; (p50, p99) of post → reply in ms.
async fn admin_load(
    base: &str,
    arrivals: &Arrivals,
    admins: &[i64],
    first: usize,
    secs: f64,
) -> (f64, f64) {
    let client = reqwest::Client::new();
    let endpoint = format!("{base}/telegram/webhook");
    let rounds = (secs / 2.0).ceil().max(1.0) as usize;
    let spacing = Duration::from_secs(2) / admins.len() as u32;
    let mut latencies = Vec::new();
    let mut tick = tokio::time::interval(spacing);
    let mut waiting = Vec::new();
    for round in 0..rounds {
        for (k, admin) in admins.iter().enumerate() {
            tick.tick().await;
            let before = arrivals.lock().unwrap().get(admin).map_or(0, Vec::len);
            let id = 1_000_000_000 + (first + round) as i64 * 1_000 + k as i64;
            let (client, endpoint, arrivals, admin) =
                (client.clone(), endpoint.clone(), arrivals.clone(), *admin);
            waiting.push(tokio::spawn(async move {
                let sent = Instant::now();
                let _ = client
                    .post(endpoint)
                    .header("X-Telegram-Bot-Api-Secret-Token", load::SECRET)
                    .body(load::update(id, admin, "/whoami"))
                    .send()
                    .await;
                let deadline = sent + Duration::from_secs(5);
                loop {
                    if let Some(at) = arrivals
                        .lock()
                        .unwrap()
                        .get(&admin)
                        .and_then(|v| v.get(before))
                    {
                        return Some(at.saturating_duration_since(sent).as_secs_f64() * 1e3);
                    }
                    if Instant::now() > deadline {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }));
        }
    }
    let mut lost = 0;
    for w in waiting {
        match w.await.unwrap() {
            Some(ms) => latencies.push(ms),
            None => lost += 1,
        }
    }
    assert_eq!(lost, 0, "admin replies lost");
    (pct(&mut latencies, 0.5), pct(&mut latencies, 0.99))
}

/// Wait (at most 150 s) until the stranger's aggregate row exists; then (own rows,
/// aggregate rows, dropped count they report).
async fn wait_aggregate(pool: &PgPool, stranger: i64) -> anyhow::Result<(i64, i64, i64)> {
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let (own, agg, counted): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE command <> 'flood'),
                    count(*) FILTER (WHERE command = 'flood'),
                    coalesce(sum(split_part(reason, ' ', 1)::bigint) FILTER (WHERE command = 'flood'), 0)::bigint
             FROM audit_log WHERE actor_id = $1",
        )
        .bind(stranger)
        .fetch_one(pool)
        .await?;
        let attempts = own / 2;
        if agg > 0 && attempts + counted >= FLOOD as i64 || Instant::now() > deadline {
            return Ok((own, agg, counted));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `opsguard serve` in a process of its own, so its RSS is its own.
struct Server {
    child: tokio::process::Child,
    url: String,
}

impl Server {
    async fn start(db: &str, api_url: &str, name: &str) -> anyhow::Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_opsguard"))
            .arg("serve")
            .env(
                "OPSGUARD_CONFIG",
                concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml"),
            )
            .env("DATABASE_URL", db)
            .env("REDIS_URL", scratch::REDIS)
            .env("OPSGUARD_TELEGRAM_TOKEN", "1:BENCH")
            .env("OPSGUARD_TELEGRAM_API_URL", api_url)
            .env("OPSGUARD_WEBHOOK_SECRET", load::SECRET)
            .env("OPSGUARD_LISTEN", format!("127.0.0.1:{port}"))
            .env("OPSGUARD__REDIS__KEY_PREFIX", scratch::redis_prefix(name))
            // The per-risk limit is set out of the way (20 admins share no window, but each
            // sends 30 reads a minute); the [flood] limits keep their defaults.
            .env("OPSGUARD__RATE_LIMITS__READ", "1000")
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if client.get(format!("{url}/healthz")).send().await.is_ok() {
                return Ok(Server { child, url });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("opsguard serve did not start")
    }

    fn status_kib(&self, field: &str) -> anyhow::Result<u64> {
        let pid = self
            .child
            .id()
            .ok_or_else(|| anyhow::anyhow!("serve exited"))?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no {field}"))
    }

    fn rss_kib(&self) -> anyhow::Result<u64> {
        self.status_kib("VmRSS:")
    }

    fn hwm_kib(&self) -> anyhow::Result<u64> {
        self.status_kib("VmHWM:")
    }
}
