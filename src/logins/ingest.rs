//! One validated batch → duplicates dropped → stored in one statement → the newly stored
//! events (and only those) handed to the evaluator. Shared by the HTTP API and the stream.

use super::Evaluate;
use super::store;
use crate::config::IngestSettings;
use crate::domain::auth_batch::Limits;
use crate::domain::auth_event::AuthEvent;
use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::Arc;

/// What became of a batch: `accepted + duplicates` is the batch size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct IngestOutcome {
    /// Events stored now.
    pub accepted: usize,
    /// Events whose id was stored before, or seen earlier in the same batch.
    pub duplicates: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot store the events: {0}")]
    Store(#[from] sqlx::Error),
}

pub struct Ingestor {
    pool: PgPool,
    settings: IngestSettings,
    evaluator: Arc<dyn Evaluate>,
}

impl Ingestor {
    pub fn new(pool: PgPool, settings: IngestSettings, evaluator: Arc<dyn Evaluate>) -> Self {
        Ingestor {
            pool,
            settings,
            evaluator,
        }
    }

    pub fn settings(&self) -> &IngestSettings {
        &self.settings
    }

    /// The batch limits from the settings.
    pub fn limits(&self) -> Limits {
        Limits {
            max_events: self.settings.max_events,
            max_future_secs: self.settings.max_future_secs,
        }
    }

    /// Store `events` from `sender` (a token's `sub`, or `stream`), then evaluate the
    /// events stored for the first time. An evaluation error is logged and counted, not
    /// returned: the events are committed either way.
    pub async fn ingest(
        &self,
        events: Vec<AuthEvent>,
        sender: &str,
    ) -> Result<IngestOutcome, IngestError> {
        let total = events.len();
        let unique = first_of_each_id(events);
        let inserted = store::insert_batch(&self.pool, &unique, sender).await?;
        let fresh: Vec<AuthEvent> = match inserted {
            store::Inserted::All => unique,
            some => unique.into_iter().filter(|e| some.stored(e)).collect(),
        };
        let outcome = IngestOutcome {
            accepted: fresh.len(),
            duplicates: total - fresh.len(),
        };
        metrics::counter!("opsguard_auth_events_stored_total").increment(outcome.accepted as u64);
        metrics::counter!("opsguard_auth_events_duplicates_total")
            .increment(outcome.duplicates as u64);
        if !fresh.is_empty()
            && let Err(e) = self.evaluator.evaluate(&fresh).await
        {
            metrics::counter!("opsguard_auth_evaluation_failures_total").increment(1);
            tracing::warn!(error = %format!("{e:#}"), events = fresh.len(), "ingest.evaluation_failed");
        }
        Ok(outcome)
    }
}

/// Drop events whose id appeared earlier in the batch (keeping the order otherwise).
fn first_of_each_id(events: Vec<AuthEvent>) -> Vec<AuthEvent> {
    if events.iter().all(|e| e.id.is_none()) {
        return events;
    }
    let mut seen: HashSet<&str> = HashSet::with_capacity(events.len());
    let keep: Vec<bool> = events
        .iter()
        .map(|e| e.id.as_deref().is_none_or(|id| seen.insert(id)))
        .collect();
    drop(seen);
    events
        .into_iter()
        .zip(keep)
        .filter_map(|(event, keep)| keep.then_some(event))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::auth_event::Outcome;

    fn event(id: Option<&str>) -> AuthEvent {
        AuthEvent {
            id: id.map(String::from),
            at: chrono::Utc::now(),
            source: crate::domain::auth_event::Source::Ip("192.0.2.1".parse().unwrap()),
            account: Some("a".into()),
            service: "s".into(),
            outcome: Outcome::Failure,
            reason: None,
            user_agent: None,
        }
    }

    #[test]
    fn later_events_with_a_seen_id_are_dropped() {
        let kept = first_of_each_id(vec![
            event(Some("x")),
            event(None),
            event(Some("x")),
            event(None),
            event(Some("y")),
        ]);
        let ids: Vec<_> = kept.iter().map(|e| e.id.as_deref()).collect();
        assert_eq!(ids, [Some("x"), None, None, Some("y")]);
    }
}
