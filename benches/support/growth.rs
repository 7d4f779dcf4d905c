//! "How cost grows" (issue 24), on the release binary's `serve`: an overload series (4×
//! the sustained rate, RSS sampled before, at its peak and after) and a users series
//! (menu calls at a first start and a restart, latency and RSS with 10 / 1k / 10k users),
//! each beside the bare route in the same run.

use super::fake_api::{Arrivals, MENU_CALLS};
use super::{load, overload, scratch, served};
use sqlx::PgPool;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn delivered(arrivals: &Arrivals) -> usize {
    arrivals.lock().unwrap().values().map(Vec::len).sum()
}

async fn open_inbox(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM update_inbox WHERE done_at IS NULL")
        .fetch_one(pool)
        .await
        .unwrap_or(-1)
}

/// The overload series: `served` gets 4 × `sustained` updates/s for `secs`.
#[allow(clippy::too_many_arguments)]
pub async fn overload(
    served: &served::Served,
    pool: &PgPool,
    arrivals: &Arrivals,
    baseline_url: &str,
    users: &[i64],
    sustained: f64,
    secs: f64,
    first_id: i64,
) {
    let rate = 4.0 * sustained.max(250.0);
    load::run(&served.url, arrivals, users, first_id, 200.0, 2.0).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = served.rss_kib();
    arrivals.lock().unwrap().clear();
    let peak = served::RssPeak::sample(served.pid);
    let started = Instant::now();
    let offered = overload::offer(&served.url, users, first_id + 1_000_000, rate, secs).await;
    let load_ended = started.elapsed();
    // Every acknowledged update must be replied to: wait for the backlog to drain.
    let deadline = Instant::now() + Duration::from_secs(600);
    while (delivered(arrivals) < offered.acknowledged || open_inbox(pool).await != 0)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let drained = started.elapsed();
    let peak_kib = peak.peak_kib();
    drop(peak);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = served.rss_kib();
    let replies = delivered(arrivals);
    let bare = overload::offer(
        baseline_url,
        users,
        first_id + 5_000_000,
        rate,
        secs.min(20.0),
    );
    let bare = bare.await;
    println!(
        "\n## Overload: {rate:.0} updates/s offered (4 × sustained) for {secs} s, at most {} in flight (Telegram's max_connections)\n",
        overload::MAX_CONNECTIONS
    );
    println!(
        "| path | acknowledged/s | refused | waiting at sender | replies / acknowledged | drained after | RSS idle / peak / 10 s after |\n|---|---|---|---|---|---|---|"
    );
    println!(
        "| opsguard (release `serve`) | {:.0} | {} | {} | {} / {} | {:.1} s (load {:.1} s) | {:.1} / {:.1} / {:.1} MiB |",
        offered.acknowledged as f64 / secs,
        offered.refused,
        offered.waiting_at_sender(),
        replies,
        offered.acknowledged,
        drained.as_secs_f64(),
        load_ended.as_secs_f64(),
        mib(idle),
        mib(peak_kib),
        mib(after)
    );
    println!(
        "| bare route (baseline, {:.0} s) | {:.0} | {} | {} | — | — | — |",
        secs.min(20.0),
        bare.acknowledged as f64 / secs.min(20.0),
        bare.refused,
        bare.waiting_at_sender()
    );
}

/// Insert users `first..first+n` as viewers (those missing).
async fn seed(pool: &PgPool, first: i64, n: i64) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO users (telegram_id, display_name)
         SELECT g, 'bench' FROM generate_series($1::bigint, $1 + $2 - 1) g ON CONFLICT DO NOTHING",
    )
    .bind(first)
    .bind(n)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO user_roles (telegram_id, role, granted_by)
         SELECT g, 'viewer', 'bench' FROM generate_series($1::bigint, $1 + $2 - 1) g
         ON CONFLICT DO NOTHING",
    )
    .bind(first)
    .bind(n)
    .execute(pool)
    .await?;
    Ok(())
}

/// Wait until at least `n` menu calls were made (at most `limit`); the time it took.
async fn menus_reach(n: usize, since: Instant, limit: Duration) -> Duration {
    while MENU_CALLS.load(Ordering::SeqCst) < n && since.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    since.elapsed()
}

/// The users series, on a scratch database of its own.
pub async fn users(
    api_url: &str,
    arrivals: &Arrivals,
    baseline_url: &str,
    env: &[(&str, String)],
    sizes: &[i64],
    secs: f64,
) -> anyhow::Result<()> {
    let (api_url, arrivals, baseline_url) = (api_url.to_string(), arrivals.clone(), baseline_url);
    let env: Vec<(&str, String)> = env.to_vec();
    scratch::with_scratch(|url, name| async move {
        let pool = PgPool::connect(&url).await?;
        opsguard::storage::migrate(&url, &pool).await?;
        println!("\n## Users: menus at start and restart, latency at 200 updates/s, RSS\n");
        println!(
            "| users | menu calls, first start | its pass | menu calls, restart (1 user changed) | its pass | p50 / p99 ms | baseline p50 / p99 ms | RSS after load |\n|---|---|---|---|---|---|---|---|"
        );
        let first = 20_001i64;
        let mut next_id = 900_000_000i64;
        let mut had = 0i64;
        for &n in sizes {
            seed(&pool, first, n).await?;
            let limit = Duration::from_secs(600);
            // First start: the new users' menus (and, the very first time, the default).
            MENU_CALLS.store(0, Ordering::SeqCst);
            let expected = (n - had) as usize + usize::from(had == 0);
            let since = Instant::now();
            let s = served::start(&url, &name, &api_url, &env).await?;
            let pass = menus_reach(expected, since, limit).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let first_calls = MENU_CALLS.load(Ordering::SeqCst);
            s.stop().await;
            // Restart after one grant: the last user (in id order, the pass's last) only.
            let last = first + n - 1;
            sqlx::query("INSERT INTO user_roles (telegram_id, role, granted_by) VALUES ($1, 'operator', 'bench') ON CONFLICT DO NOTHING")
                .bind(last)
                .execute(&pool)
                .await?;
            MENU_CALLS.store(0, Ordering::SeqCst);
            let since = Instant::now();
            let s = served::start(&url, &name, &api_url, &env).await?;
            let repass = menus_reach(1, since, limit).await;
            let users: Vec<i64> = (first..first + n).collect();
            let p = load::run(&s.url, &arrivals, &users, next_id, 200.0, secs).await;
            let b = load::run(baseline_url, &arrivals, &users, next_id + 100_000, 200.0, secs).await;
            next_id += 1_000_000;
            let restart_calls = MENU_CALLS.load(Ordering::SeqCst);
            println!(
                "| {n} | {first_calls} | {:.1} s | {restart_calls} | {:.1} s | {:.2} / {:.2} | {:.2} / {:.2} | {:.1} MiB |",
                pass.as_secs_f64(),
                repass.as_secs_f64(),
                p.p50_ms,
                p.p99_ms,
                b.p50_ms,
                b.p99_ms,
                mib(s.rss_kib())
            );
            s.stop().await;
            had = n;
        }
        pool.close().await;
        Ok(())
    })
    .await
}
