//! The release binary's `opsguard serve` as a child process of the benchmark (webhook
//! mode, aimed at the fake Bot API), and its resident memory read from `/proc/<pid>/status`.

use super::{load, scratch};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::process::{Child, Command};

/// A running `serve`; killed when dropped.
pub struct Served {
    child: Child,
    pub url: String,
    pub pid: u32,
}

/// Start `serve` on the scratch database `url` (Redis prefix of `name`) with `extra`
/// environment, and wait until it answers `/healthz`.
pub async fn start(
    url: &str,
    name: &str,
    api_url: &str,
    extra: &[(&str, String)],
) -> anyhow::Result<Served> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_opsguard"));
    cmd.arg("serve")
        .env(
            "OPSGUARD_CONFIG",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml"),
        )
        .env("DATABASE_URL", url)
        .env("REDIS_URL", scratch::REDIS)
        .env("OPSGUARD_TELEGRAM_TOKEN", "1:BENCH")
        .env("OPSGUARD_TELEGRAM_API_URL", api_url)
        .env("OPSGUARD_WEBHOOK_SECRET", load::SECRET)
        .env("OPSGUARD_LISTEN", &listen)
        .env("OPSGUARD__REDIS__KEY_PREFIX", scratch::redis_prefix(name))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let child = cmd.spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| anyhow::anyhow!("serve exited at once"))?;
    let url = format!("http://{listen}");
    let client = reqwest::Client::new();
    for _ in 0..3000 {
        if client.get(format!("{url}/healthz")).send().await.is_ok() {
            return Ok(Served { child, url, pid });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("serve did not come up")
}

impl Served {
    /// Resident memory now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// VmRSS of a process in KiB (0 when it cannot be read).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Samples a process's RSS every 100 ms until stopped; keeps the peak.
pub struct RssPeak {
    peak: Arc<AtomicU64>,
    running: Arc<AtomicBool>,
}

impl RssPeak {
    pub fn sample(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(rss_kib(pid)));
        let running = Arc::new(AtomicBool::new(true));
        let (p, r) = (peak.clone(), running.clone());
        tokio::spawn(async move {
            while r.load(Ordering::SeqCst) {
                p.fetch_max(rss_kib(pid), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        RssPeak { peak, running }
    }

    /// The highest RSS seen so far, in KiB.
    pub fn peak_kib(&self) -> u64 {
        self.peak.load(Ordering::SeqCst)
    }
}

impl Drop for RssPeak {
    fn drop(&mut self) {
        self.running.store(false, Ordering::SeqCst);
    }
}
