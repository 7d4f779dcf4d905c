//! Concurrent batches' episodes recorded together: one alert transaction at a time per
//! replica, taking every batch that arrived while the one before it ran (a group commit).
//! An attack from a few sources makes every batch count on the same alerts; recorded
//! apart, each batch locked and rewrote them all in turn while the others waited on its
//! locks, so the cost grew with the batches, not with the alerts.
//!
//! Each batch still waits until its episodes are committed (an alert is in the outbox
//! before its batch is answered), and gets back the alerts it opened. The group's work runs
//! in its own task: a caller that goes away does not abandon the batches it carried.
//! Episodes held behind (`counts_behind`: they only count on open alerts) go with the next
//! group that runs, a batch's or the flusher's.

use super::alerts::{self, Exceeding, NewAlert};
use super::counts_behind::CountsBehind;
use super::known_accounts::KnownAccounts;
use crate::config::LoginSettings;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type Outcome = Result<Vec<NewAlert>, String>;

struct Waiting {
    found: Vec<Exceeding>,
    /// Whom to tell; none for episodes held behind (`counts_behind`), which go back to be
    /// held again when their recording fails.
    done: Option<oneshot::Sender<Outcome>>,
}

/// At most this many batches are recorded in one transaction (the rest wait their turn).
const MAX_GROUP: usize = 16;

/// The batches waiting for the next alert transaction, and whose turn it is.
#[derive(Default)]
pub struct AlertGroups {
    waiting: Arc<Mutex<Vec<Waiting>>>,
    turn: Arc<tokio::sync::Mutex<()>>,
    /// Where episodes that only count on open alerts wait (none: every episode is recorded
    /// with its batch).
    behind: Option<Arc<CountsBehind>>,
}

impl AlertGroups {
    /// Groups whose counts on open alerts wait in `behind` (see `flush`).
    pub fn behind(behind: Arc<CountsBehind>) -> Self {
        AlertGroups {
            behind: Some(behind),
            ..AlertGroups::default()
        }
    }

    /// Record `found` (one batch's episodes) with the batches waiting beside it; returns
    /// the alerts this batch's episodes opened. Episodes that only count on open alerts
    /// are held behind, when there is a `behind`.
    pub async fn raise(
        &self,
        pool: &PgPool,
        settings: &LoginSettings,
        known: &Arc<KnownAccounts>,
        found: Vec<Exceeding>,
    ) -> Result<Vec<NewAlert>, sqlx::Error> {
        let found = match &self.behind {
            Some(behind) => behind.hold(found),
            None => found,
        };
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let (done, mut outcome) = oneshot::channel();
        self.waiting.lock().expect("alert groups").push(Waiting {
            found,
            done: Some(done),
        });
        let turn = self.turn.clone().lock_owned().await;
        let outcome = match outcome.try_recv() {
            // Not yet taken by a group before: this caller's turn takes it and the rest.
            Err(oneshot::error::TryRecvError::Empty) => {
                self.run_group(turn, pool, settings, known).await;
                outcome.await.ok()
            }
            taken => taken.ok(),
        };
        match outcome {
            Some(Ok(opened)) => Ok(opened),
            Some(Err(e)) => Err(sqlx::Error::Protocol(e)),
            None => Err(sqlx::Error::Protocol(
                "the alert transaction was abandoned".into(),
            )),
        }
    }

    /// Record what is held behind now, with any batches waiting; what fails is held again.
    pub async fn flush(&self, pool: &PgPool, settings: &LoginSettings, known: &Arc<KnownAccounts>) {
        let turn = self.turn.clone().lock_owned().await;
        self.run_group(turn, pool, settings, known).await;
    }

    /// With the turn: record the batches waiting (up to `MAX_GROUP`) and what is held
    /// behind, in one transaction. The turn goes with the work, so a caller that goes away
    /// does not end it early.
    async fn run_group(
        &self,
        turn: tokio::sync::OwnedMutexGuard<()>,
        pool: &PgPool,
        settings: &LoginSettings,
        known: &Arc<KnownAccounts>,
    ) {
        let mut group = {
            let mut waiting = self.waiting.lock().expect("alert groups");
            let take = waiting.len().min(MAX_GROUP);
            let rest = waiting.split_off(take);
            std::mem::replace(&mut *waiting, rest)
        };
        if let Some(behind) = &self.behind {
            let held = behind.take();
            if !held.is_empty() {
                group.push(Waiting {
                    found: held,
                    done: None,
                });
            }
        }
        if group.is_empty() {
            return;
        }
        let (pool, settings, known) = (pool.clone(), settings.clone(), known.clone());
        let behind = self.behind.clone();
        let work = tokio::spawn(async move {
            record(&pool, &settings, &known, behind.as_deref(), group).await;
            drop(turn);
        });
        let _ = work.await;
    }
}

/// Record a group's episodes in one transaction and tell each batch its outcome; an alert
/// opened goes to the first batch that had an episode of its rule and key. A group that
/// fails (past `alerts::raise`'s own retries) is recorded again batch by batch, so one
/// batch's failure is not every batch's.
async fn record(
    pool: &PgPool,
    settings: &LoginSettings,
    known: &KnownAccounts,
    behind: Option<&CountsBehind>,
    group: Vec<Waiting>,
) {
    let mut first_of: HashMap<(String, String), usize> = HashMap::new();
    for (i, w) in group.iter().enumerate() {
        for e in &w.found {
            first_of.entry((e.rule.clone(), e.key.clone())).or_insert(i);
        }
    }
    // Borrowed, not cloned: a spray episode carries up to a few hundred accounts.
    let found: Vec<&Exceeding> = group.iter().flat_map(|w| &w.found).collect();
    match alerts::raise(pool, settings, known, behind, found).await {
        Ok(all) => {
            let mut opened: Vec<Vec<NewAlert>> = group.iter().map(|_| Vec::new()).collect();
            for alert in all {
                let i = first_of
                    .get(&(alert.rule.clone(), alert.key.clone()))
                    .copied()
                    .unwrap_or_default();
                opened[i].push(alert);
            }
            for (w, opened) in group.into_iter().zip(opened) {
                if let Some(done) = w.done {
                    let _ = done.send(Ok(opened));
                }
            }
        }
        Err(e) if group.len() == 1 => {
            for w in group {
                failed(behind, w, e.to_string());
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, batches = group.len(), "logins.alert_group_failed");
            // What was held first: a batch's episodes may count on what it holds (and
            // were filtered by what it reaches).
            let mut group = group;
            group.sort_by_key(|w| w.done.is_some());
            for w in group {
                let found = w.found.iter().collect();
                match alerts::raise(pool, settings, known, behind, found).await {
                    Ok(opened) => {
                        if let Some(done) = w.done {
                            let _ = done.send(Ok(opened));
                        }
                    }
                    Err(e) => failed(behind, w, e.to_string()),
                }
            }
        }
    }
}

/// A batch told its episodes were not recorded; held episodes are held again (the next
/// run is their retry).
fn failed(behind: Option<&CountsBehind>, w: Waiting, error: String) {
    match (w.done, behind) {
        (Some(done), _) => {
            let _ = done.send(Err(error));
        }
        (None, Some(behind)) => {
            tracing::warn!(error = %error, episodes = w.found.len(), "logins.counts_behind_failed");
            behind.put_back(w.found);
        }
        (None, None) => {}
    }
}
