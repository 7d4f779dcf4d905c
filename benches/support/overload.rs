//! Overload: updates offered at a fixed rate for a while, posted the way Telegram posts
//! them — at most `MAX_CONNECTIONS` requests in flight (Telegram's webhook
//! `max_connections` ceiling); what cannot be posted yet waits at the sender. Counts what
//! was answered 200, what was refused, and what was still waiting at the end.

use super::load;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Telegram's highest `max_connections` for a webhook.
pub const MAX_CONNECTIONS: usize = 100;

#[derive(Debug, Default, Clone, Copy)]
pub struct Offered {
    /// Updates due by the end (rate × seconds).
    pub due: usize,
    /// Answered 200 (acknowledged: from here on they must be replied to).
    pub acknowledged: usize,
    /// Answered otherwise, or failed (Telegram would send them again).
    pub refused: usize,
}

impl Offered {
    /// Due but never posted: still waiting at the sender when the time was up.
    pub fn waiting_at_sender(&self) -> usize {
        self.due - self.acknowledged - self.refused
    }
}

/// Offer `rate` updates/s for `secs` to `url` from `users` (ids from `first_id` on).
pub async fn offer(url: &str, users: &[i64], first_id: i64, rate: f64, secs: f64) -> Offered {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(MAX_CONNECTIONS)
        .build()
        .unwrap();
    let endpoint = format!("{url}/telegram/webhook");
    let next = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let end = Duration::from_secs_f64(secs);
    let due = (rate * secs) as usize;
    let users: Arc<Vec<i64>> = Arc::new(users.to_vec());
    let workers: Vec<_> = (0..MAX_CONNECTIONS)
        .map(|_| {
            let (client, endpoint, users) = (client.clone(), endpoint.clone(), users.clone());
            let (next, ok, refused) = (next.clone(), ok.clone(), refused.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= due {
                        return;
                    }
                    // Not before it is due; not at all once the time is up.
                    let at = Duration::from_secs_f64(i as f64 / rate);
                    if let Some(wait) = at.checked_sub(start.elapsed()) {
                        tokio::time::sleep(wait).await;
                    }
                    if start.elapsed() >= end {
                        return;
                    }
                    let user = users[i % users.len()];
                    let body = load::update(first_id + i as i64, user, "/whoami");
                    let answer = client
                        .post(&endpoint)
                        .header("X-Telegram-Bot-Api-Secret-Token", load::SECRET)
                        .body(body)
                        .send()
                        .await;
                    match answer {
                        Ok(a) if a.status().is_success() => ok.fetch_add(1, Ordering::SeqCst),
                        _ => refused.fetch_add(1, Ordering::SeqCst),
                    };
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    Offered {
        due,
        acknowledged: ok.load(Ordering::SeqCst),
        refused: refused.load(Ordering::SeqCst),
    }
}
