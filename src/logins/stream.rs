//! The Redis Streams consumer (off unless `[logins.stream] enabled`): replicas share one
//! consumer group on `[logins.stream] key`; each entry's `event` field holds one event as
//! JSON, and the entry must prove it comes from a service (`entry_proof.rs`: an `hmac` of
//! the event under the ingest key, or a service `token`); one that does not is
//! dead-lettered as unauthenticated and counted. Entries are acknowledged only after
//! their events are committed; entries another consumer has held longer than
//! `claim_idle_ms` are taken over (XAUTOCLAIM), so nothing is lost when a replica dies
//! mid-batch; consumers of dead replicas are then removed from the group (`groom.rs`). An
//! entry that is not a valid event is moved to `dead_letter_key` with the reason,
//! acknowledged and counted, and the rest of its batch goes on; a batch PostgreSQL keeps
//! refusing is dead-lettered after `max_attempts` deliveries (`batch.rs`).
//!
//! An event without an `id` gets `stream:<key>:<entry id>`, so an entry delivered twice
//! (committed, then the consumer died before its ack) is stored and evaluated once.

use super::ingest::{IngestError, Ingestor};
use crate::config::StreamSettings;
use redis::Value;
use redis::aio::MultiplexedConnection;
use replies::{autoclaim_reply, read_reply};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

mod batch;
mod groom;
mod replies;

/// What a stored HMAC-signed stream event names as its sender.
pub const SENDER: &str = super::entry_proof::HMAC_SENDER;

/// Start the consumer on `tracker`; it stops on `shutdown` once the batch in hand is done.
pub fn spawn(
    ingestor: Arc<Ingestor>,
    redis_url: &str,
    settings: StreamSettings,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) {
    let client = match redis::Client::open(redis_url) {
        Ok(client) => client,
        // The parse error may quote the URL, password included: say only what is wrong.
        Err(_) => {
            tracing::error!("stream.not_started: REDIS_URL is not a valid redis:// URL");
            return;
        }
    };
    let consumer = Consumer {
        ingestor,
        name: consumer_name(),
        settings,
        group_ready: false,
        claim_cursor: "0-0".into(),
        last_claim: None,
        last_groom: None,
    };
    tracker.spawn(consumer.run(client, shutdown));
}

/// Unique per process: a restarted replica is a new consumer, and what the old one held
/// is claimed once it has been idle long enough.
fn consumer_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "opsguard".into());
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &id[..8])
}

struct Consumer {
    ingestor: Arc<Ingestor>,
    name: String,
    settings: StreamSettings,
    group_ready: bool,
    claim_cursor: String,
    last_claim: Option<Instant>,
    last_groom: Option<Instant>,
}

#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("cannot connect to redis")]
    NotConnected,
    #[error("{0}")]
    Store(#[from] IngestError),
}

impl Consumer {
    async fn run(mut self, client: redis::Client, shutdown: CancellationToken) {
        tracing::info!(stream.consumer = %self.name, "stream.started");
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(
                Duration::from_millis(self.settings.block_ms) + Duration::from_secs(5),
            ));
        let mut conn: Option<MultiplexedConnection> = None;
        let mut failing = false;
        while !shutdown.is_cancelled() {
            if conn.is_none() {
                conn = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .ok();
            }
            let result = match conn.as_mut() {
                Some(c) => self.step(c, &shutdown).await,
                None => Err(StepError::NotConnected),
            };
            match result {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("stream.recovered");
                }
                Ok(()) => {}
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "stream.failing");
                    }
                    failing = true;
                    match &e {
                        // The stream or group was deleted: create them again.
                        StepError::Redis(r) if r.code() == Some("NOGROUP") => {
                            self.group_ready = false
                        }
                        StepError::Redis(_) | StepError::NotConnected => conn = None,
                        // PostgreSQL is down: the entries stay pending and are claimed again.
                        StepError::Store(_) => {}
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
        if let Some(conn) = conn.as_mut() {
            self.leave(conn).await;
        }
        tracing::info!("stream.stopped");
    }

    /// On a clean stop, leave the group when nothing is pending for this consumer, so
    /// restarts do not pile up consumers (anything pending stays, to be claimed).
    async fn leave(&self, conn: &mut MultiplexedConnection) {
        let s = &self.settings;
        let mine: redis::RedisResult<Vec<Value>> = redis::cmd("XPENDING")
            .arg((&s.key, &s.group, "-", "+", 1, &self.name))
            .query_async(conn)
            .await;
        if mine.is_ok_and(|m| m.is_empty()) {
            let _: redis::RedisResult<i64> = redis::cmd("XGROUP")
                .arg(("DELCONSUMER", &s.key, &s.group, &self.name))
                .query_async(conn)
                .await;
        }
    }

    /// Claim what dead consumers hold (every so often), then read new entries.
    async fn step(
        &mut self,
        conn: &mut MultiplexedConnection,
        shutdown: &CancellationToken,
    ) -> Result<(), StepError> {
        let s = &self.settings;
        if !self.group_ready {
            // From "0": entries XADDed before any replica started are read too.
            let created: redis::RedisResult<()> = redis::cmd("XGROUP")
                .arg(("CREATE", &s.key, &s.group, "0", "MKSTREAM"))
                .query_async(conn)
                .await;
            match created {
                Err(e) if e.code() != Some("BUSYGROUP") => return Err(e.into()),
                _ => self.group_ready = true,
            }
        }
        let every = Duration::from_millis((s.claim_idle_ms / 2).clamp(10, 5000));
        if self.claim_cursor != "0-0" || self.last_claim.is_none_or(|t| t.elapsed() >= every) {
            let (idle, cursor) = (s.claim_idle_ms, &self.claim_cursor);
            let reply: Value = redis::cmd("XAUTOCLAIM")
                .arg((&s.key, &s.group, &self.name, idle, cursor, "COUNT", s.batch))
                .query_async(conn)
                .await?;
            let (next, claimed) = autoclaim_reply(reply);
            self.claim_cursor = next;
            self.last_claim = Some(Instant::now());
            if !claimed.is_empty() {
                metrics::counter!("opsguard_auth_stream_claimed_total")
                    .increment(claimed.len() as u64);
                self.handle(conn, claimed).await?;
            }
            if self.claim_cursor == "0-0" {
                self.groom(conn).await?;
            }
        }
        let s = &self.settings;
        let mut read = redis::cmd("XREADGROUP");
        read.arg(("GROUP", &s.group, &self.name, "COUNT", s.batch))
            .arg(("BLOCK", s.block_ms, "STREAMS", &s.key, ">"));
        let reply = tokio::select! {
            // Entries delivered to a read dropped here stay pending and are claimed later.
            _ = shutdown.cancelled() => return Ok(()),
            reply = read.query_async::<Value>(conn) => reply?,
        };
        let entries = read_reply(reply);
        if entries.is_empty() {
            return Ok(());
        }
        self.handle(conn, entries).await
    }
}
