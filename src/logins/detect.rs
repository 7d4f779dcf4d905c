//! The detector: a stored batch's failures grouped per rule and key → ONE window exchange
//! (Redis, or in process) → exact window counts per key (`domain::detection`) → the keys
//! that reached their threshold recorded as alerts in ONE transaction (`alerts`).

use super::Evaluate;
use super::alerts::{self, Exceeding, NewAlert};
use super::windows::{Entries, Previous, WindowUpdate, Windows};
use crate::config::{LoginSettings, RuleKind};
use crate::domain::auth_event::AuthEvent;
use crate::domain::detection::{Counting, EventKey, Window, evaluate_accounts, evaluate_events};
use crate::redis_link::RedisLink;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::collections::HashMap;
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
            })
            .collect();
        Detector {
            pool,
            settings,
            rules,
            windows: Windows::new(redis),
        }
    }

    /// Count a batch's failures in every rule's windows and record the keys that reached
    /// their threshold; returns the alerts it opened.
    pub async fn detect(&self, events: &[AuthEvent]) -> Result<Vec<NewAlert>, DetectError> {
        let times: Vec<i64> = events.iter().map(|e| e.at.timestamp_millis()).collect();
        let mut by_key: HashMap<(usize, EventKey<'_>), Vec<usize>> = HashMap::new();
        for (i, event) in events.iter().enumerate() {
            for (r, rule) in self.rules.iter().enumerate() {
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
                    cap: rule.window.fire_at,
                    window_ms: rule.window.length_ms,
                    entries: if rule.counting.counts_accounts() {
                        Entries::Accounts(
                            members
                                .iter()
                                .map(|&i| (times[i], events[i].account.clone()))
                                .collect(),
                        )
                    } else {
                        Entries::Events(members.iter().map(|&i| times[i]).collect())
                    },
                }
            })
            .collect();
        let previous = self.windows.exchange(updates).await;
        let found: Vec<Exceeding> = groups
            .iter()
            .zip(previous)
            .filter_map(|(group, previous)| self.exceeding(group, previous, events, &times))
            .collect();
        Ok(alerts::raise(&self.pool, &self.settings, found).await?)
    }

    /// What one key's new events amount to, if they reached the rule's threshold.
    fn exceeding(
        &self,
        ((r, key), members): &Group<'_>,
        previous: Previous,
        events: &[AuthEvent],
        times: &[i64],
    ) -> Option<Exceeding> {
        let rule = &self.rules[*r];
        let verdict = match previous {
            Previous::Events(stored) => {
                let batch: Vec<i64> = members.iter().map(|&i| times[i]).collect();
                evaluate_events(rule.window, &stored, &batch)
            }
            Previous::Accounts(stored) => {
                let batch: Vec<(i64, &str)> = members
                    .iter()
                    .map(|&i| (times[i], events[i].account.as_str()))
                    .collect();
                evaluate_accounts(rule.window, &stored, &batch)
            }
        };
        if verdict.exceeding == 0 {
            return None;
        }
        let latest = &events[*members.iter().max_by_key(|&&i| times[i])?];
        let (ip, account) = match rule.kind {
            RuleKind::Ip => (key.ip(), Some(latest.account.clone())),
            RuleKind::Account => (Some(latest.ip), key.account().map(str::to_string)),
            RuleKind::Spray => (key.ip(), None),
            RuleKind::Surge => (None, None),
        };
        Some(Exceeding {
            rule: rule.name.clone(),
            kind: rule.kind,
            key: key.to_string(),
            ip,
            account,
            added: i64::try_from(verdict.increment).unwrap_or(i64::MAX),
            peak: verdict.peak,
            fire_at: rule.window.fire_at,
            window_secs: rule.window_secs,
            since: at(verdict.since_ms?),
            first_exceeding: at(verdict.first_exceeding_ms?),
            last_exceeding: at(verdict.last_exceeding_ms?),
        })
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
