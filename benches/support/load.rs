//! Open-loop load: POST updates at a fixed rate, then match each chat's replies to its
//! requests (k-th request ↔ k-th reply) to get end-to-end latencies.

use super::fake_api::Arrivals;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const SECRET: &str = "bench-webhook-secret-0123456789abcdef";

pub struct Phase {
    pub sent: usize,
    pub delivered: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Phase {
    /// Sustained: every reply arrived and the tail stayed under 250 ms.
    pub fn sustained(&self) -> bool {
        self.delivered == self.sent && self.p99_ms <= 250.0
    }
}

pub fn update(id: i64, user: i64, text: &str) -> String {
    json!({
        "update_id": id,
        "message": {
            "message_id": id, "date": 1_700_000_000,
            "from": { "id": user, "is_bot": false, "first_name": "Bench" },
            "chat": { "id": user, "type": "private", "first_name": "Bench" },
            "text": text
        }
    })
    .to_string()
}

pub async fn run(
    url: &str,
    arrivals: &Arrivals,
    users: &[i64],
    first_id: i64,
    rate: f64,
    secs: f64,
) -> Phase {
    arrivals.lock().unwrap().clear();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let sent_at: Arc<Mutex<HashMap<i64, Vec<Instant>>>> = Arc::default();
    let total = (rate * secs) as usize;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let endpoint = format!("{url}/telegram/webhook");
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        ticker.tick().await;
        let user = users[i % users.len()];
        let body = update(first_id + i as i64, user, "/whoami");
        sent_at
            .lock()
            .unwrap()
            .entry(user)
            .or_default()
            .push(Instant::now());
        let (client, endpoint) = (client.clone(), endpoint.clone());
        tasks.push(tokio::spawn(async move {
            let _ = client
                .post(endpoint)
                .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
                .body(body)
                .send()
                .await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got: usize = arrivals.lock().unwrap().values().map(Vec::len).sum();
        if got >= total || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = sent_at.lock().unwrap();
    let arrived = arrivals.lock().unwrap();
    let mut latencies: Vec<f64> = Vec::with_capacity(total);
    for (user, starts) in sent.iter() {
        if let Some(ends) = arrived.get(user) {
            latencies.extend(
                starts
                    .iter()
                    .zip(ends)
                    .map(|(s, e)| e.saturating_duration_since(*s).as_secs_f64() * 1e3),
            );
        }
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    Phase {
        sent: total,
        delivered: latencies.len(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
}
