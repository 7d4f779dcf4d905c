//! Benchmark of the foundation (issue 2): the full webhook path beside a bare axum baseline,
//! audit append and verify throughput, idle RSS; then how cost grows (issue 24): overload
//! with RSS sampled, and 10 / 1k / 10k users, on the release binary's `serve`. Needs
//! PostgreSQL and Redis on 127.0.0.1.
//!
//! `cargo bench --bench pipeline` (set `BENCH_QUICK=1` for a short smoke run, and
//! `BENCH_OVERLOAD_SECS` for the overload's length).

mod support;

use opsguard::config::Settings;
use opsguard::domain::{RoleName, UserId};
use opsguard::startup::Application;
use opsguard::storage;
use std::collections::HashMap;
use std::time::Duration;
use support::{audit_bench, fake_api, growth, load};

/// What the benchmark changes in the defaults, for the in-process app and `serve` alike.
fn overrides() -> Vec<(&'static str, String)> {
    vec![
        // The limiter still runs on every request; the limit is set out of the way.
        ("OPSGUARD__RATE_LIMITS__READ", "100000000".to_string()),
        // So are the flood limits (each of the 100 users sends up to 80 updates/s).
        ("OPSGUARD__FLOOD__USER", "100000000".to_string()),
        // And the reply pacing (Telegram's 30/s overall, 1/s per chat): at 200/s from
        // 100 users it would queue replies for seconds. Each reply still reserves its slot
        // (a 1 ms interval: with 0 a private chat's reply reserves nothing at all).
        ("OPSGUARD__OUTBOX__GLOBAL_PER_SECOND", "0".to_string()),
        ("OPSGUARD__OUTBOX__PER_CHAT_INTERVAL_MS", "1".to_string()),
        ("OPSGUARD__DATABASE__MAX_CONNECTIONS", "16".to_string()),
        // A keyed audit chain (HMAC, two-step append), as every deployment with a key.
        ("OPSGUARD_MASTER_KEY", audit_bench::MASTER_KEY.to_string()),
        ("OPSGUARD__AUDIT__CHECKPOINT_CRON", String::new()),
    ]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The webhook paths measured side by side: opsguard, the bare route, the durable route.
const TARGETS: [&str; 3] = ["opsguard", "baseline", "durable"];

/// The allocator the `opsguard` binary runs with (see `src/main.rs`): the in-process app is
/// measured as it is shipped.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let quick = std::env::var("BENCH_QUICK").is_ok();
    support::scratch::with_scratch(|url, name| async move { run(&url, &name, quick).await }).await
}

async fn run(url: &str, name: &str, quick: bool) -> anyhow::Result<()> {
    let (api_url, arrivals) = fake_api::start().await;
    let mut extra = vec![
        ("OPSGUARD_TELEGRAM_TOKEN", "1:BENCH".to_string()),
        ("OPSGUARD_TELEGRAM_API_URL", api_url.clone()),
        ("OPSGUARD_WEBHOOK_SECRET", load::SECRET.to_string()),
    ];
    extra.extend(overrides());
    let env = support::scratch::app_env(url, name, &extra);
    let settings = Settings::load_with(&env)?;
    let app = Application::build(settings).await?;
    let opsguard_url = format!("http://{}", app.local_addr());
    let pool = app.engine().pool().clone();
    let stop_app = app.shutdown_token();
    let in_process = tokio::spawn(app.run());
    let users: Vec<i64> = (1..=100).map(|u| 10_000 + u).collect();
    for u in &users {
        storage::users::upsert(&pool, UserId(*u), "bench").await?;
        storage::users::grant(
            &pool,
            UserId(*u),
            &RoleName::parse("viewer").unwrap(),
            "bench",
        )
        .await?;
    }
    let baseline_url = fake_api::start_baseline(api_url.clone()).await;
    // The durable baseline stores each update on a pool of its own (the app's stays the app's).
    let durable_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .connect(url)
        .await?;
    let durable_url = fake_api::start_durable_baseline(api_url.clone(), durable_pool).await;
    let mut next_id = 1i64;
    let mut phase = |target: &'static str| {
        let url = match target {
            "opsguard" => opsguard_url.clone(),
            "durable" => durable_url.clone(),
            _ => baseline_url.clone(),
        };
        let id = next_id;
        next_id += 1_000_000;
        (url, id)
    };

    // Warm-up (connections, caches), then latency at 200 updates/s, interleaved runs.
    let secs = if quick { 2.0 } else { 10.0 };
    for target in TARGETS {
        let (u, id) = phase(target);
        load::run(&u, &arrivals, &users, id, 200.0, 1.0).await;
    }
    let mut lat: HashMap<&str, (Vec<f64>, Vec<f64>)> = HashMap::new();
    for _ in 0..if quick { 1 } else { 3 } {
        for target in TARGETS {
            let (u, id) = phase(target);
            let p = load::run(&u, &arrivals, &users, id, 200.0, secs).await;
            assert_eq!(p.delivered, p.sent, "{target}: replies lost at 200/s");
            let e = lat.entry(target).or_default();
            e.0.push(p.p50_ms);
            e.1.push(p.p99_ms);
        }
    }
    println!("## Webhook path at 200 updates/s ({secs} s per run, median of runs)\n");
    println!("| path | p50 ms | p99 ms |\n|---|---|---|");
    for target in TARGETS {
        let (p50, p99) = lat.remove(target).unwrap();
        println!("| {target} | {:.2} | {:.2} |", median(p50), median(p99));
    }
    println!(
        "\n(baseline: bare axum, nothing stored; durable: the same route storing each update \
         with one synchronously committed INSERT before the 200 — the floor of any durable-200 \
         design on this machine)"
    );

    // Highest sustained rate: step up until replies are lost or p99 passes 250 ms.
    println!("\n## Ramp (4 s per step): sustained = all replies delivered and p99 ≤ 250 ms\n");
    println!(
        "| rate/s | opsguard p50 / p99 ms | opsguard ok | baseline p50 / p99 ms | baseline ok | durable p50 / p99 ms | durable ok |\n|---|---|---|---|---|---|---|"
    );
    let mut best = HashMap::from([("opsguard", 0.0), ("baseline", 0.0), ("durable", 0.0)]);
    for rate in [
        500.0, 1000.0, 1500.0, 2000.0, 3000.0, 4000.0, 6000.0, 8000.0,
    ] {
        let mut row = format!("| {rate} |");
        for target in TARGETS {
            let (u, id) = phase(target);
            let p = load::run(
                &u,
                &arrivals,
                &users,
                id,
                rate,
                if quick { 1.0 } else { 4.0 },
            )
            .await;
            if p.sustained() {
                best.insert(target, rate);
            }
            row.push_str(&format!(
                " {:.1} / {:.1} | {} |",
                p.p50_ms,
                p.p99_ms,
                if p.sustained() { "yes" } else { "no" }
            ));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        println!("{row}");
    }
    println!(
        "\nHighest sustained: opsguard {} /s, baseline {} /s, durable baseline {} /s",
        best["opsguard"], best["baseline"], best["durable"]
    );

    // The ramp's overloaded steps leave updates in work: let them finish first, so the
    // audit figures measure the database, not a pool shared with a backlog.
    for _ in 0..600 {
        let open: i64 =
            sqlx::query_scalar("SELECT count(*) FROM update_inbox WHERE done_at IS NULL")
                .fetch_one(&pool)
                .await
                .unwrap_or(i64::MAX);
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let total = if quick { 4_000 } else { 20_000 };
    let (grouped, chained, plain) = audit_bench::appends(&pool, 16, total).await;
    println!("\n## Audit appends ({total} rows per variant, 16 concurrent writers)\n");
    println!("| variant | rows/s | vs plain INSERT |\n|---|---|---|");
    println!(
        "| group commit (AuditWriter, the engine's path) | {grouped:.0} | {:.2} |",
        grouped / plain
    );
    println!(
        "| one audit_append statement per row | {chained:.0} | {:.2} |",
        chained / plain
    );
    println!("| plain INSERT, no chain (baseline) | {plain:.0} | 1.00 |");

    audit_bench::extend_chain(&pool, if quick { 50_000 } else { 500_000 }, false).await;
    let (rows, verify, read) = audit_bench::verify(&pool).await;
    println!("\n## audit verify ({rows} rows)\n");
    println!("| verify | bare read of the rows (baseline) | ratio |\n|---|---|---|");
    println!(
        "| {verify:.0} rows/s | {read:.0} rows/s | {:.2} |",
        verify / read
    );

    // How cost grows (issue 24): the release binary's `serve`, the in-process app stopped
    // first (it would take up the served replica's waiting updates).
    stop_app.cancel();
    let _ = in_process.await;
    let served = support::served::start(url, name, &api_url, &overrides()).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = served.rss_kib();
    println!("\n## Idle RSS of `opsguard serve` (webhook mode, 3 s after start)\n");
    println!("{:.1} MiB", idle as f64 / 1024.0);
    // BENCH_OVERLOAD_SECS: the overload's length (60 s; 10 s in a quick run).
    let secs = std::env::var("BENCH_OVERLOAD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 10.0 } else { 60.0 });
    let sustained = best["opsguard"];
    let (_, id) = phase("opsguard");
    // Its own pool: the in-process app may have closed the one it made.
    let pool = sqlx::PgPool::connect(url).await?;
    growth::overload(
        &served,
        &pool,
        &arrivals,
        &baseline_url,
        &users,
        sustained,
        secs,
        id,
    )
    .await;
    served.stop().await;
    let sizes: &[i64] = &[10, 1_000, 10_000];
    let secs = if quick { 2.0 } else { 5.0 };
    growth::users(
        &api_url,
        &arrivals,
        &baseline_url,
        &overrides(),
        sizes,
        secs,
    )
    .await?;
    Ok(())
}
