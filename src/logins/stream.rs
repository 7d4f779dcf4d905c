//! The Redis Streams consumer (off unless `[logins.stream] enabled`): replicas share one
//! consumer group on `[logins.stream] key`; each entry's `event` field holds one event as
//! JSON, and the entry must prove it comes from a service (`entry_proof.rs`: an `hmac` of
//! the event under the ingest key, or a service `token`); one that does not is
//! dead-lettered as unauthenticated and counted. Entries are acknowledged only after
//! their events are committed; entries another consumer has held longer than
//! `claim_idle_ms` are taken over (XAUTOCLAIM), so nothing is lost when a replica dies
//! mid-batch. An entry that is not a valid event is moved to `dead_letter_key` with the
//! reason, acknowledged and counted, and the rest of its batch goes on.
//!
//! An event without an `id` gets `stream:<key>:<entry id>`, so an entry delivered twice
//! (committed, then the consumer died before its ack) is stored and evaluated once.

use super::entry_proof::Checker;
use super::ingest::{IngestError, Ingestor};
use super::keys::Keys;
use crate::config::StreamSettings;
use crate::domain::auth_batch::{self, MAX_ID_CHARS};
use crate::domain::auth_event::AuthEvent;
use redis::Value;
use redis::aio::MultiplexedConnection;
use replies::{Entry, autoclaim_reply, read_reply};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
        }
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

    /// Check each entry's proof, store the valid events (per sender), then in one
    /// transaction dead-letter the bad entries and acknowledge them with every entry whose
    /// events were committed; entries whose storing failed stay pending, to be claimed.
    async fn handle(
        &self,
        conn: &mut MultiplexedConnection,
        entries: Vec<Entry>,
    ) -> Result<(), StepError> {
        let s = &self.settings;
        let now = chrono::Utc::now();
        let ingest = self.ingestor.settings();
        let max_future = ingest.max_future_secs;
        let mut checker = Checker::new(Keys::of(ingest), &ingest.issuer);
        // Events and their entry ids per sender (an HMAC-signed entry's or a token's `sub`).
        let mut senders: Vec<(String, Vec<AuthEvent>, Vec<&str>)> = Vec::new();
        let mut dead: Vec<(&Entry, String)> = Vec::new();
        let mut unauthenticated = 0u64;
        for entry in &entries {
            let Some(json) = &entry.event else {
                dead.push((entry, "the entry has no string field 'event'".to_string()));
                continue;
            };
            let sender = match checker.check(json, &entry.proof) {
                Ok(sender) => sender,
                Err(reason) => {
                    unauthenticated += 1;
                    dead.push((entry, reason));
                    continue;
                }
            };
            match auth_batch::parse_event(json, now, max_future) {
                Ok(mut event) => {
                    if event.id.is_none() {
                        let id = format!("stream:{}:{}", s.key, entry.id);
                        event.id = (id.chars().count() <= MAX_ID_CHARS).then_some(id);
                    }
                    let at = match senders.iter().position(|(s, _, _)| *s == sender) {
                        Some(at) => at,
                        None => {
                            senders.push((sender, Vec::new(), Vec::new()));
                            senders.len() - 1
                        }
                    };
                    senders[at].1.push(event);
                    senders[at].2.push(&entry.id);
                }
                Err(reason) => dead.push((entry, reason)),
            }
        }
        let mut stored = Ok(());
        let mut good: Vec<&str> = Vec::with_capacity(entries.len());
        for (sender, events, ids) in senders {
            match self.ingestor.ingest(events, &sender).await {
                Ok(_) => good.extend(ids),
                Err(e) => stored = Err(e),
            }
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (entry, reason) in &dead {
            let payload = entry.event.as_deref().unwrap_or_default();
            pipe.cmd("XADD")
                .arg((&s.dead_letter_key, "*", "event", payload))
                .arg(("reason", reason, "entry", &entry.id))
                .ignore();
        }
        // Entries of a sender whose events were committed are acknowledged even when
        // another sender's failed (their events are stored; a redelivery is a duplicate).
        let mut acked: Vec<&str> = dead.iter().map(|(e, _)| e.id.as_str()).collect();
        acked.extend(good);
        if !acked.is_empty() {
            pipe.cmd("XACK").arg((&s.key, &s.group, &acked)).ignore();
            pipe.query_async::<()>(conn).await?;
        }
        if !dead.is_empty() {
            metrics::counter!("opsguard_auth_stream_dead_letters_total")
                .increment(dead.len() as u64);
            metrics::counter!("opsguard_auth_stream_unauthenticated_total")
                .increment(unauthenticated);
            tracing::warn!(count = dead.len(), unauthenticated, "stream.dead_lettered");
        }
        Ok(stored?)
    }
}
