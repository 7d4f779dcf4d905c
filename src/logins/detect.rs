//! The detector: a stored batch's failures grouped per rule and key → ONE window exchange
//! (Redis, or in process; rules counting the same events share a key's state, see
//! `window_states`) → the episodes the batch changed, in event time
//! (`domain::detection::episodes`, `spray`) → recorded as alerts in ONE transaction
//! (`alerts`). What a key's events amount to does not depend on how they were batched.
//!
//! Where Redis's windows cannot be trusted (it was unreachable, lost its data, or did not
//! answer in time: see `windows`), the keys' previous states come from the stored events
//! instead (`rebuild`), so no crossing is missed because Redis failed, restarted or stalled.

mod untrusted;

use super::Evaluate;
use super::alert_groups::AlertGroups;
use super::alerts::{Exceeding, NewAlert};
use super::batch_keys::{BatchKeys, Group};
use super::counts_behind::CountsBehind;
use super::known_accounts::KnownAccounts;
use super::rule::{Rule, account_of};
use super::window_states::WindowStates;
use super::windows::{Previous, Windows};
use crate::config::{LoginSettings, RuleKind};
use crate::domain::auth_event::AuthEvent;
use crate::domain::detection::EventKey;
use crate::domain::detection::episodes::episodes;
use crate::domain::detection::spray::spray_episodes;
use crate::redis_link::RedisLink;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("recording alerts: {0}")]
    Alerts(#[from] sqlx::Error),
}

pub struct Detector {
    pool: PgPool,
    settings: LoginSettings,
    rules: Vec<Rule>,
    /// Which window state each rule reads.
    states: WindowStates,
    windows: Windows,
    /// How long after a new epoch keys are rebuilt: two of the longest windows (ms).
    span_ms: i64,
    /// The last epoch seen, and whether its windows need rebuilding.
    epoch: Mutex<Option<(i64, bool)>>,
    /// Accounts known stored on alerts: not sent again.
    known: Arc<KnownAccounts>,
    /// Concurrent batches' episodes, recorded one group at a time.
    groups: AlertGroups,
    /// Where counts on open alerts wait for the flusher (`with_counts_behind`).
    behind: Option<Arc<CountsBehind>>,
}

impl Detector {
    pub fn new(pool: PgPool, settings: LoginSettings, redis: Arc<RedisLink>) -> Self {
        let rules = Rule::all_of(&settings);
        let states = WindowStates::of(&rules);
        let longest = rules.iter().map(|r| r.window.length_ms).max().unwrap_or(0);
        Detector {
            pool,
            settings,
            rules,
            states,
            windows: Windows::new(redis),
            span_ms: longest.saturating_mul(2),
            epoch: Mutex::new(None),
            known: Arc::default(),
            groups: AlertGroups::default(),
            behind: None,
        }
    }

    /// Episodes that only count on open alerts are recorded once per `every` by the
    /// flusher (`spawn_flusher`), not with their batch (`counts_behind`). Zero: never.
    pub fn with_counts_behind(mut self, every: Duration) -> Self {
        if !every.is_zero() {
            let behind = Arc::new(CountsBehind::new(every));
            self.groups = AlertGroups::behind(behind.clone());
            self.behind = Some(behind);
        }
        self
    }

    /// Record what waits behind now (what fails waits for the next run).
    pub async fn flush_counts(&self) {
        self.groups
            .flush(&self.pool, &self.settings, &self.known)
            .await;
    }

    /// Record what waits behind once per interval until `shutdown`; then nothing is held
    /// any more and the last run takes the rest (tracked: shutdown waits for it).
    pub fn spawn_flusher(self: &Arc<Self>, shutdown: CancellationToken, tracker: &TaskTracker) {
        let Some(behind) = self.behind.clone() else {
            return;
        };
        let detector = self.clone();
        tracker.spawn(async move {
            let d = &detector;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(behind.every()) => {}
                    _ = shutdown.cancelled() => break,
                }
                d.flush_counts().await;
            }
            // The last run: what fails is retried a few times within the grace period,
            // then reported lost (no run follows).
            behind.stop();
            for attempt in 0..4 {
                d.flush_counts().await;
                if behind.is_empty() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
            }
            let lost = behind.take().len();
            tracing::error!(logins.episodes = lost, "logins.counts_behind_lost");
        });
    }

    /// Window exchanges given up after Redis's bulk timeout since start (their keys were
    /// rebuilt from the stored events).
    pub fn exchanges_timed_out(&self) -> u64 {
        self.windows.timed_out()
    }

    /// Count a batch's failures in every rule's windows and record the episodes they
    /// changed; returns the alerts it opened.
    pub async fn detect(&self, events: &[AuthEvent]) -> Result<Vec<NewAlert>, DetectError> {
        let times: Vec<i64> = events.iter().map(|e| e.at.timestamp_millis()).collect();
        let keys = BatchKeys::of(&self.rules, &self.states, &self.settings.ignore, events);
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let updates = keys.updates(&self.rules, &self.states, events, &times);
        let exchanged = self.windows.exchange_checked(updates, self.span_ms).await;
        let mut previous = exchanged.previous;
        let untrusted = self.untrusted(&exchanged.answer, previous.len()).await;
        if !untrusted.is_empty() {
            self.rebuild(
                &keys,
                events,
                &times,
                &untrusted,
                &exchanged.answer,
                &mut previous,
            )
            .await;
        }
        let mut found: Vec<Exceeding> = Vec::new();
        super::cpu_bound(|| {
            for (group, &slot) in keys.groups.iter().zip(&keys.slot_of) {
                self.exceeding(group, &previous[slot], events, &times, &mut found);
            }
        });
        Ok(self
            .groups
            .raise(&self.pool, &self.settings, &self.known, found)
            .await?)
    }

    /// A spray episode's accounts, as sent on (sorted): all of them, or, for an episode held
    /// for an open alert (`counts_behind`), those not known stored on it. A spray reports
    /// every account of its window (~`cap`) with each batch, and nearly all are known.
    fn unknown_accounts(
        &self,
        rule: &Rule,
        key: &EventKey<'_>,
        (_, first, last): (i64, i64, i64),
        accounts: &[&str],
    ) -> Vec<String> {
        let on = self.behind.as_ref().and_then(|behind| {
            let span = (at(first), at(last));
            behind.counting_on(&rule.name, &key.to_string(), span, rule.gap_ms / 1000)
        });
        let mut sent: Vec<&str> = match on {
            Some(alert) => {
                let mut unknown = Vec::new();
                self.known
                    .each_unknown(alert, accounts.iter(), |a| unknown.push(*a));
                unknown
            }
            None => accounts.to_vec(),
        };
        sent.sort_unstable();
        sent.into_iter().map(str::to_string).collect()
    }

    /// The episodes one key's new events changed, as alert updates.
    fn exceeding(
        &self,
        ((r, key), members): &Group<'_>,
        previous: &Previous,
        events: &[AuthEvent],
        times: &[i64],
        found: &mut Vec<Exceeding>,
    ) {
        let rule = &self.rules[*r];
        let window = rule.window_of(key);
        // (since, first exceeding, last exceeding, added, peak, accounts) per episode.
        let changed: Vec<(i64, i64, i64, u64, u32, Vec<String>)> = match previous {
            Previous::Events(stored) => {
                let batch: Vec<i64> = members.iter().map(|&i| times[i]).collect();
                let truncated = stored.len() >= self.states.of_rule(*r).keep as usize;
                episodes(window, rule.gap_ms, stored, &batch, truncated)
                    .into_iter()
                    .map(|e| {
                        let (from, to) = (e.since_ms, e.last_exceeding_ms);
                        // A surge is about no source: the accounts of every failure
                        // everywhere are not shown, and a surge alert would carry (and
                        // rewrite with every batch) up to `MAX_ACCOUNTS` of them.
                        let accounts: BTreeSet<&str> = members
                            .iter()
                            .filter(|_| rule.kind != RuleKind::Surge)
                            .filter(|&&i| times[i] >= from && times[i] <= to)
                            .filter_map(|&i| events[i].account.as_deref())
                            .collect();
                        let accounts = accounts.into_iter().map(str::to_string).collect();
                        let span = (e.since_ms, e.first_exceeding_ms, e.last_exceeding_ms);
                        (span.0, span.1, span.2, e.added, e.peak, accounts)
                    })
                    .collect()
            }
            Previous::Accounts(stored) => {
                let batch: Vec<(i64, &str)> = members
                    .iter()
                    .map(|&i| (times[i], account_of(&events[i])))
                    .collect();
                spray_episodes(window, rule.gap_ms, stored, &batch)
                    .into_iter()
                    .map(|e| {
                        let span = (e.since_ms, e.first_exceeding_ms, e.last_exceeding_ms);
                        let accounts = self.unknown_accounts(rule, key, span, &e.accounts);
                        (span.0, span.1, span.2, 0, e.peak, accounts)
                    })
                    .collect()
            }
        };
        for (since, first, last, added, peak, accounts) in changed {
            // Who: the event that crossed (the batch's first at or after the first exceeding
            // time, the first sent of equal times), else the batch's latest.
            let by_time = |&&i: &&usize| (times[i], i);
            let crossing = members
                .iter()
                .filter(|&&i| times[i] >= first)
                .min_by_key(by_time);
            let Some(&latest) = crossing.or_else(|| members.iter().max_by_key(by_time)) else {
                continue;
            };
            let latest = &events[latest];
            let (source, account) = match rule.kind {
                RuleKind::Ip => (key.source().cloned(), latest.account.clone()),
                RuleKind::Account => (
                    Some(latest.source.clone()),
                    key.account().map(str::to_string),
                ),
                RuleKind::Spray => (key.source().cloned(), None),
                RuleKind::Surge => (None, None),
            };
            found.push(Exceeding {
                rule: rule.name.clone(),
                kind: rule.kind,
                key: key.to_string(),
                source,
                account,
                added: i64::try_from(added).unwrap_or(i64::MAX),
                account_count: accounts.len() as i64,
                accounts,
                also: Vec::new(),
                peak,
                fire_at: window.fire_at,
                window_secs: rule.window_secs,
                gap_secs: rule.gap_ms / 1000,
                since: at(since),
                first_exceeding: at(first),
                last_exceeding: at(last),
            });
        }
    }
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[async_trait::async_trait]
impl Evaluate for Detector {
    async fn evaluate(&self, events: &[AuthEvent]) -> anyhow::Result<()> {
        self.detect(events).await?;
        Ok(())
    }
}
