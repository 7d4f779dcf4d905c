//! The detector: a stored batch's failures grouped per rule and key → ONE window exchange
//! (Redis, or in process) → the episodes the batch changed, in event time
//! (`domain::detection::episodes`, `spray`) → recorded as alerts in ONE transaction
//! (`alerts`). What a key's events amount to does not depend on how they were batched.

use super::Evaluate;
use super::alerts::{self, Exceeding, NewAlert};
use super::windows::{Entries, Previous, WindowUpdate, Windows};
use crate::config::{LoginSettings, RuleKind};
use crate::domain::auth_event::{AuthEvent, Cause};
use crate::domain::detection::episodes::episodes;
use crate::domain::detection::spray::spray_episodes;
use crate::domain::detection::{Counting, EventKey, Window};
use crate::redis_link::RedisLink;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("recording alerts: {0}")]
    Alerts(#[from] sqlx::Error),
}

struct Rule {
    name: String,
    kind: RuleKind,
    counting: Counting,
    window: Window,
    window_secs: u64,
    /// Only failures with this cause count.
    cause: Option<Cause>,
    /// Exceeding events this far apart are separate episodes (ms).
    gap_ms: i64,
    /// How many of a key's newest events its window state keeps.
    keep: u32,
    /// Thresholds of named accounts (an `account` rule's overrides).
    accounts: HashMap<String, u32>,
}

impl Rule {
    /// The window of `key`: the rule's, or an account's own threshold.
    fn window_of(&self, key: &EventKey<'_>) -> Window {
        match key.account().and_then(|a| self.accounts.get(a)) {
            Some(&fire_at) => Window {
                fire_at,
                ..self.window
            },
            None => self.window,
        }
    }
}

/// Entries a key's window state keeps: enough for the events of two windows and the
/// lateness at any rate below this, and never fewer than the threshold needs.
fn keep_for(fire_at: u32) -> u32 {
    fire_at.saturating_mul(4).max(256)
}

pub struct Detector {
    pool: PgPool,
    settings: LoginSettings,
    rules: Vec<Rule>,
    windows: Windows,
}

/// A batch's failures of one rule and key: (rule index, key) and the events' indexes.
type Group<'a> = ((usize, EventKey<'a>), Vec<usize>);

impl Detector {
    pub fn new(pool: PgPool, settings: LoginSettings, redis: Arc<RedisLink>) -> Self {
        let rules = settings
            .rules
            .iter()
            .map(|r| Rule {
                name: r.name.clone(),
                kind: r.kind,
                counting: match r.kind {
                    RuleKind::Ip => Counting::FailuresByIp,
                    RuleKind::Account => Counting::FailuresByAccount,
                    RuleKind::Spray => Counting::AccountsByIp,
                    RuleKind::Surge => Counting::AllFailures,
                },
                window: Window {
                    fire_at: r.fire_at,
                    length_ms: (r.window_secs as i64).saturating_mul(1000),
                },
                window_secs: r.window_secs,
                cause: r.reason,
                gap_ms: (r.gap_secs(settings.cooldown_secs) as i64).saturating_mul(1000),
                keep: keep_for(r.accounts.values().fold(r.fire_at, |a, &b| a.max(b))),
                accounts: r.accounts.clone().into_iter().collect(),
            })
            .collect();
        Detector {
            pool,
            settings,
            rules,
            windows: Windows::new(redis),
        }
    }

    /// Count a batch's failures in every rule's windows and record the episodes they
    /// changed; returns the alerts it opened.
    pub async fn detect(&self, events: &[AuthEvent]) -> Result<Vec<NewAlert>, DetectError> {
        let times: Vec<i64> = events.iter().map(|e| e.at.timestamp_millis()).collect();
        let mut by_key: HashMap<(usize, EventKey<'_>), Vec<usize>> = HashMap::new();
        let ignore = &self.settings.ignore;
        for (i, event) in events.iter().enumerate() {
            let ip = event.source.ip();
            if ip.is_some_and(|ip| ignore.iter().any(|net| net.contains(&ip))) {
                continue;
            }
            for (r, rule) in self.rules.iter().enumerate() {
                if rule.cause.is_some_and(|c| event.cause() != Some(c)) {
                    continue;
                }
                if let Some(key) = rule.counting.key_of(event) {
                    by_key.entry((r, key)).or_default().push(i);
                }
            }
        }
        if by_key.is_empty() {
            return Ok(Vec::new());
        }
        let mut groups: Vec<Group<'_>> = by_key.into_iter().collect();
        // A rule's keys adjacent: the exchange sends their shared parameters once.
        groups.sort_unstable_by_key(|((r, _), _)| *r);
        let updates = groups
            .iter()
            .map(|((r, key), members)| {
                let rule = &self.rules[*r];
                WindowUpdate {
                    rule: rule.name.clone(),
                    key: key.to_string(),
                    cap: rule.keep,
                    window_ms: rule.window.length_ms,
                    entries: if rule.counting.counts_accounts() {
                        Entries::Accounts(
                            members
                                .iter()
                                .map(|&i| (times[i], account_of(&events[i]).to_string()))
                                .collect(),
                        )
                    } else {
                        Entries::Events(members.iter().map(|&i| times[i]).collect())
                    },
                }
            })
            .collect();
        let previous = self.windows.exchange(updates).await;
        let mut found: Vec<Exceeding> = Vec::new();
        for (group, previous) in groups.iter().zip(previous) {
            self.exceeding(group, previous, events, &times, &mut found);
        }
        Ok(alerts::raise(&self.pool, &self.settings, found).await?)
    }

    /// The episodes one key's new events changed, as alert updates.
    fn exceeding(
        &self,
        ((r, key), members): &Group<'_>,
        previous: Previous,
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
                let truncated = stored.len() >= rule.keep as usize;
                episodes(window, rule.gap_ms, &stored, &batch, truncated)
                    .into_iter()
                    .map(|e| {
                        let (from, to) = (e.since_ms, e.last_exceeding_ms);
                        let accounts: BTreeSet<&str> = members
                            .iter()
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
                spray_episodes(window, rule.gap_ms, &stored, &batch)
                    .into_iter()
                    .map(|e| {
                        let span = (e.since_ms, e.first_exceeding_ms, e.last_exceeding_ms);
                        (span.0, span.1, span.2, 0, e.peak, e.accounts)
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

/// The account a distinct-account window counts (`key_of` keys only events with one).
fn account_of(event: &AuthEvent) -> &str {
    event.account.as_deref().unwrap_or_default()
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
