//! Counts on open alerts written behind. An attack from a few sources makes every batch
//! count on the same open alerts; recorded in the batch's own transaction, each batch read,
//! locked and rewrote all of them (thousands of rows) and the batches took turns doing it.
//! Now an episode that, as this replica last saw its alerts, only counts on an alert
//! already open (or folded) waits here, merged with the other episodes of its rule and
//! key, and the flusher records what waits once per `logins.counts_every_ms` through the
//! same path as any batch (`alert_groups`): the same joins, folds, edits and pages.
//!
//! An episode that may open an alert is never held: a page is in the outbox before its
//! batch is answered. What a reader of an open alert sees lags by at most one interval;
//! a replica that dies loses at most one interval of counts on open alerts (as it loses
//! the evaluation of a batch it stored and had not yet evaluated). After shutdown began
//! nothing is held: the flusher's last run takes what waits.

use super::alert_view::AlertView;
use super::alerts::Exceeding;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

/// At most this many alerts are remembered (past it, the memory starts again: episodes
/// are recorded with their batch until their alerts are seen again).
const MAX_REMEMBERED: usize = 100_000;

/// An alert waiting episodes stop taking accounts past this many (`alert_record` takes no
/// more than it either).
const MAX_ACCOUNTS: usize = 10_000;

/// Where an open (or folded) alert's exceeding events lie, as last seen (and as the
/// episodes held for it will make it).
#[derive(Debug, Clone, Copy)]
struct Reach {
    id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// Its last event as stored (what the clock closes it by).
    stored_to: DateTime<Utc>,
}

impl Reach {
    /// Whether an episode exceeding from `first` to `last` (its rule's gap `gap_secs`)
    /// counts on this alert and may wait `every`: it reaches the alert, and the alert as
    /// stored is not about to be closed by the clock (quiet for the gap) meanwhile.
    fn holds(
        &self,
        (first, last): (DateTime<Utc>, DateTime<Utc>),
        gap_secs: i64,
        every: std::time::Duration,
    ) -> bool {
        let gap = Duration::seconds(gap_secs);
        let margin = Duration::from_std(every * 2).map_or(gap / 2, |m| m.min(gap / 2));
        self.to > first - gap
            && self.from < last + gap
            && self.stored_to > Utc::now() - gap + margin
    }
}

#[derive(Default)]
struct Held {
    /// By rule, then key: the alert an episode of that key would count on.
    open: HashMap<String, HashMap<String, Reach>>,
    remembered: usize,
    /// By rule, then key: the key's held episodes, merged into one.
    waiting: HashMap<String, HashMap<String, Exceeding>>,
    stopped: bool,
}

/// Episodes held for the flusher, and the alerts they count on.
pub struct CountsBehind {
    every: std::time::Duration,
    held: Mutex<Held>,
}

impl CountsBehind {
    pub fn new(every: std::time::Duration) -> Self {
        CountsBehind {
            every,
            held: Mutex::default(),
        }
    }

    /// How often the flusher records what waits.
    pub fn every(&self) -> std::time::Duration {
        self.every
    }

    /// Hold the episodes of `found` that only count on an alert known open; returns the
    /// others, to be recorded now.
    pub fn hold(&self, found: Vec<Exceeding>) -> Vec<Exceeding> {
        let mut held = self.held.lock().expect("counts behind");
        if held.stopped {
            return found;
        }
        let Held { open, waiting, .. } = &mut *held;
        let mut now = Vec::new();
        for e in found {
            let Some(reach) = open.get_mut(&e.rule).and_then(|keys| keys.get_mut(&e.key)) else {
                now.push(e);
                continue;
            };
            if !reach.holds(
                (e.first_exceeding, e.last_exceeding),
                e.gap_secs,
                self.every,
            ) {
                now.push(e);
                continue;
            }
            reach.from = reach.from.min(e.first_exceeding);
            reach.to = reach.to.max(e.last_exceeding);
            wait(waiting, e);
        }
        now
    }

    /// The alert an episode of `rule` and `key` exceeding from `first` to `last` would be
    /// held for (an open or folded alert it reaches), if any.
    pub fn counting_on(
        &self,
        rule: &str,
        key: &str,
        (first, last): (DateTime<Utc>, DateTime<Utc>),
        gap_secs: i64,
    ) -> Option<i64> {
        let held = self.held.lock().expect("counts behind");
        let reach = held.open.get(rule)?.get(key)?;
        (!held.stopped && reach.holds((first, last), gap_secs, self.every)).then_some(reach.id)
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.lock().expect("counts behind").waiting.is_empty()
    }

    /// Everything held, to be recorded now.
    pub fn take(&self) -> Vec<Exceeding> {
        let waiting = std::mem::take(&mut self.held.lock().expect("counts behind").waiting);
        waiting
            .into_values()
            .flat_map(|keys| keys.into_values())
            .collect()
    }

    /// Held episodes whose recording failed: held again, for the next run.
    pub fn put_back(&self, found: Vec<Exceeding>) {
        let mut held = self.held.lock().expect("counts behind");
        for e in found {
            wait(&mut held.waiting, e);
        }
    }

    /// From now on nothing is held (shutdown began): the flusher's last run takes the rest.
    pub fn stop(&self) {
        self.held.lock().expect("counts behind").stopped = true;
    }

    /// Remember the alerts of a committed transaction: the open and folded ones are what
    /// later episodes of their keys count on; others are forgotten.
    pub(super) fn learn(&self, view: &AlertView) {
        let mut held = self.held.lock().expect("counts behind");
        if held.remembered > MAX_REMEMBERED {
            held.open.clear();
            held.remembered = 0;
        }
        let Held {
            open, remembered, ..
        } = &mut *held;
        for row in view.rows() {
            let live = row.state == "open" || row.state == "folded";
            let keys = match open.get_mut(&row.rule) {
                Some(keys) => keys,
                None if live => open.entry(row.rule.clone()).or_default(),
                None => continue,
            };
            let reach = Reach {
                id: row.id,
                from: row.exceeding_from.unwrap_or(row.first_at),
                to: row.last_at,
                stored_to: row.last_at,
            };
            match keys.get_mut(&row.key) {
                // Of a key's live alerts (several folded ones), the latest.
                Some(known) if live && (known.id == row.id || row.last_at >= known.stored_to) => {
                    *known = reach
                }
                Some(_) if live => {}
                Some(known) if known.id == row.id => {
                    keys.remove(&row.key);
                    *remembered -= 1;
                }
                Some(_) => {}
                None if live => {
                    keys.insert(row.key.clone(), reach);
                    *remembered += 1;
                }
                None => {}
            }
        }
    }
}

/// `e` held: merged into its key's held episode, or the first.
fn wait(waiting: &mut HashMap<String, HashMap<String, Exceeding>>, e: Exceeding) {
    let keys = match waiting.get_mut(&e.rule) {
        Some(keys) => keys,
        None => waiting.entry(e.rule.clone()).or_default(),
    };
    match keys.get_mut(&e.key) {
        Some(into) => merge(into, e),
        None => {
            keys.insert(e.key.clone(), e);
        }
    }
}

/// `e` counted into `into` (the same rule and key): events added up, accounts united (both
/// sorted), the span and peak widened; who is named is the later episode's.
fn merge(into: &mut Exceeding, e: Exceeding) {
    into.added = into.added.saturating_add(e.added);
    if e.last_exceeding >= into.last_exceeding {
        into.source = e.source;
        into.account = e.account;
    }
    into.accounts = union(std::mem::take(&mut into.accounts), e.accounts);
    into.accounts.truncate(MAX_ACCOUNTS);
    into.account_count = into.accounts.len() as i64;
    into.peak = into.peak.max(e.peak);
    into.since = into.since.min(e.since);
    into.first_exceeding = into.first_exceeding.min(e.first_exceeding);
    into.last_exceeding = into.last_exceeding.max(e.last_exceeding);
}

/// The union of two sorted lists, sorted, each name once.
fn union(a: Vec<String>, b: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x < y => a.next(),
            (Some(x), Some(y)) if x > y => b.next(),
            (Some(_), Some(_)) => {
                b.next();
                a.next()
            }
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => break,
        };
        out.extend(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_union_keeps_each_name_once_in_order() {
        assert_eq!(
            union(names(&["a", "c", "d"]), names(&["b", "c", "e"])),
            names(&["a", "b", "c", "d", "e"])
        );
        assert_eq!(union(names(&[]), names(&["x"])), names(&["x"]));
        assert_eq!(union(names(&["x", "y"]), names(&[])), names(&["x", "y"]));
    }
}
