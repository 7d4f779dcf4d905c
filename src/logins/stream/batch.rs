//! One batch of entries: each entry's proof checked, the valid events stored per sender,
//! then in one transaction the bad entries dead-lettered and acknowledged with every entry
//! whose events were committed. A batch PostgreSQL refuses (the server answered with an
//! error: a constraint, a trigger, a permission) stays pending and is delivered again, until
//! its entries were delivered `max_attempts` times: then each event is tried alone, and the
//! ones still refused are dead-lettered with the reason. An outage (no answer) is not
//! counted: its entries wait, pending, for PostgreSQL to come back.

use super::replies::Entry;
use super::{Consumer, StepError};
use crate::config::StreamSettings;
use crate::domain::auth_batch::{self, MAX_ID_CHARS};
use crate::domain::auth_event::AuthEvent;
use crate::logins::entry_proof::Checker;
use crate::logins::ingest::IngestError;
use crate::logins::keys::Keys;
use redis::aio::MultiplexedConnection;

/// True when PostgreSQL answered with an error (it refused the batch) rather than being
/// unreachable, overloaded, shutting down or read-only (a failover): only refusals count.
fn refused(e: &IngestError) -> bool {
    let IngestError::Store(sqlx::Error::Database(db)) = e else {
        return false;
    };
    let code = db.code().unwrap_or_default();
    let transient = ["08", "53", "57", "40"].iter().any(|c| code.starts_with(c))
        || matches!(code.as_ref(), "25006" | "55P03" | "55006");
    !transient
}

/// How many times each entry was delivered (1 when Redis no longer knows it as pending).
async fn deliveries(
    conn: &mut MultiplexedConnection,
    s: &StreamSettings,
    entries: &[&Entry],
) -> Result<Vec<u64>, redis::RedisError> {
    let mut pipe = redis::pipe();
    for e in entries {
        pipe.cmd("XPENDING")
            .arg((&s.key, &s.group, &e.id, &e.id, 1));
    }
    let replies: Vec<Vec<(String, String, u64, u64)>> = pipe.query_async(conn).await?;
    Ok(replies
        .into_iter()
        .map(|r| r.first().map_or(1, |(_, _, _, n)| *n))
        .collect())
}

impl Consumer {
    pub(super) async fn handle(
        &self,
        conn: &mut MultiplexedConnection,
        entries: Vec<Entry>,
    ) -> Result<(), StepError> {
        let s = &self.settings;
        let now = chrono::Utc::now();
        let ingest = self.ingestor.settings();
        let max_future = ingest.max_future_secs;
        let mut checker = Checker::new(Keys::of(ingest), &ingest.issuer);
        // Events and their entries per sender (an HMAC-signed entry's or a token's `sub`).
        let mut senders: Vec<(String, Vec<AuthEvent>, Vec<&Entry>)> = Vec::new();
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
                    senders[at].2.push(entry);
                }
                Err(reason) => dead.push((entry, reason)),
            }
        }
        let mut stored = Ok(());
        let mut good: Vec<&str> = Vec::with_capacity(entries.len());
        let refused_before = dead.len();
        for (sender, events, held) in senders {
            let e = match self.ingestor.ingest(events.clone(), &sender).await {
                Ok(_) => {
                    good.extend(held.iter().map(|e| e.id.as_str()));
                    continue;
                }
                Err(e) if refused(&e) => e,
                Err(e) => {
                    stored = Err(e);
                    continue;
                }
            };
            let tries = deliveries(conn, s, &held).await?;
            let mut waiting = false;
            for ((event, entry), tried) in events.into_iter().zip(held).zip(tries) {
                if tried < u64::from(s.max_attempts) {
                    waiting = true;
                    continue;
                }
                // The last attempt: alone, so one bad event does not take the rest along.
                match self.ingestor.ingest(vec![event], &sender).await {
                    Ok(_) => good.push(&entry.id),
                    Err(alone) if refused(&alone) => dead.push((
                        entry,
                        format!("PostgreSQL refused it {tried} times (max_attempts): {alone}"),
                    )),
                    Err(alone) => stored = Err(alone),
                }
            }
            if waiting {
                tracing::warn!(stream.sender = %sender, error = %e, "stream.batch_refused");
                stored = Err(e);
            }
        }
        let refused_now = (dead.len() - refused_before) as u64;
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
            metrics::counter!("opsguard_auth_stream_refused_total").increment(refused_now);
            tracing::warn!(
                count = dead.len(),
                unauthenticated,
                refused = refused_now,
                "stream.dead_lettered"
            );
        }
        Ok(stored?)
    }
}
