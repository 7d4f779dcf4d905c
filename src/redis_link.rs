//! The shared Redis connections, and the knowledge of whether they are working.
//! Callers get `None` (or an error) quickly when Redis is down and fall back; every
//! result is recorded so `/status` can say which modes are degraded.
//!
//! Two connections: one for the short calls of the reply path (rate limits, floods), which
//! give up after `timeout`; and a *bulk* one for calls that move thousands of keys at once
//! (a failed-login batch's window exchange), which give up after `bulk_timeout`. A bulk
//! call that is slow on a loaded Redis is not taken for a lost one, and the short calls never
//! queue behind a bulk reply on the same socket.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct RedisLink {
    manager: RwLock<Option<ConnectionManager>>,
    bulk: RwLock<Option<ConnectionManager>>,
    prefix: String,
    degraded: AtomicBool,
    last_error: RwLock<Option<String>>,
}

impl RedisLink {
    /// Connect once; when that fails keep trying in the background until `shutdown`. Bulk
    /// calls give up after `timeout` too.
    pub async fn connect(
        url: &str,
        prefix: &str,
        timeout: Duration,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        Self::connect_with_bulk(url, prefix, timeout, timeout, shutdown).await
    }

    /// As `connect`, bulk calls giving up after `bulk_timeout`.
    pub async fn connect_with_bulk(
        url: &str,
        prefix: &str,
        timeout: Duration,
        bulk_timeout: Duration,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let link = Arc::new(RedisLink {
            manager: RwLock::new(None),
            bulk: RwLock::new(None),
            prefix: prefix.to_string(),
            degraded: AtomicBool::new(true),
            last_error: RwLock::new(Some("not connected yet".into())),
        });
        let client = match redis::Client::open(url) {
            Ok(client) => client,
            // The parse error may quote the URL, password included: say only what is wrong.
            Err(_) => {
                link.record_error("REDIS_URL is not a valid redis:// URL");
                return link;
            }
        };
        let config = |response: Duration| {
            ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(response))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_secs(2))
        };
        let config = [config(timeout), config(bulk_timeout)];
        if link.try_connect(&client, config.clone()).await {
            return link;
        }
        let retry = link.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(3)) => {}
                }
                if retry.try_connect(&client, config.clone()).await {
                    tracing::info!("redis.connected");
                    return;
                }
            }
        });
        link
    }

    /// Open the short-call and the bulk connection (configured as `config`, in that order).
    async fn try_connect(
        &self,
        client: &redis::Client,
        [short, bulk]: [ConnectionManagerConfig; 2],
    ) -> bool {
        let both = async {
            let short = ConnectionManager::new_with_config(client.clone(), short).await?;
            let bulk = ConnectionManager::new_with_config(client.clone(), bulk).await?;
            Ok::<_, redis::RedisError>((short, bulk))
        };
        match tokio::time::timeout(Duration::from_secs(2), both).await {
            Ok(Ok((short, bulk))) => {
                *self.bulk.write().expect("lock") = Some(bulk);
                *self.manager.write().expect("lock") = Some(short);
                self.record_ok();
                true
            }
            Ok(Err(e)) => {
                self.record_error(&e.to_string());
                false
            }
            Err(_) => {
                self.record_error("connection timed out");
                false
            }
        }
    }

    /// A connection handle, or `None` while Redis has never been reached.
    pub fn conn(&self) -> Option<ConnectionManager> {
        self.manager.read().expect("lock").clone()
    }

    /// The bulk connection's handle (calls give up after the bulk timeout), or `None` while
    /// Redis has never been reached.
    pub fn bulk_conn(&self) -> Option<ConnectionManager> {
        self.bulk.read().expect("lock").clone()
    }

    /// `prefix` + `suffix`: every key opsguard writes.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}{}", self.prefix, suffix)
    }

    pub fn record_ok(&self) {
        if self.degraded.swap(false, Ordering::Relaxed) {
            let was = self.last_error.write().expect("lock").take();
            tracing::warn!(
                redis.error_before = was.as_deref().unwrap_or(""),
                "redis.recovered"
            );
        }
    }

    pub fn record_error(&self, error: &str) {
        if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(redis.error = %error, "redis.degraded");
        }
        *self.last_error.write().expect("lock") = Some(error.to_string());
    }

    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.read().expect("lock").clone()
    }

    /// Round-trip time of a PING, or the error.
    pub async fn ping(&self) -> Result<Duration, String> {
        let mut conn = self
            .conn()
            .ok_or_else(|| self.last_error().unwrap_or_else(|| "not connected".into()))?;
        let started = std::time::Instant::now();
        match redis::cmd("PING").query_async::<String>(&mut conn).await {
            Ok(_) => {
                self.record_ok();
                Ok(started.elapsed())
            }
            Err(e) => {
                self.record_error(&e.to_string());
                Err(e.to_string())
            }
        }
    }
}
