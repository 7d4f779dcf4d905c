//! Sliding-window detection, pure: the key a rule counts an event under; event counting in
//! event time (`episodes`); and distinct-account counting (`evaluate_accounts`, whose
//! episodes `spray` makes), given the key's previous state.
//!
//! A window is half-open: an event at `t` counts the events in `(t − window, t]`, so an event
//! exactly `window` after another does not count it. Successes never count.

pub mod episodes;
pub mod spray;

use super::auth_event::{AuthEvent, Source};
use std::fmt;

/// What a rule counts (the detection side of `config::logins::RuleKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counting {
    /// Failures from one source: key `ip:<addr>` or `host:<name>`.
    FailuresByIp,
    /// Failures on one account: key `account:<name>` (events without an account: none).
    FailuresByAccount,
    /// Distinct accounts one source failed on: key `spray:<addr or name>`, the account is
    /// the member (events without an account: none).
    AccountsByIp,
    /// Failures across everything: key `all`.
    AllFailures,
}

/// The key an event is counted under, borrowed from the event (formatted only once per key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKey<'a> {
    Ip(&'a Source),
    Account(&'a str),
    Spray(&'a Source),
    All,
}

impl Counting {
    /// The key `event` counts under, or `None` when it does not count (a success, or an
    /// event without the account the rule counts by).
    pub fn key_of(self, event: &AuthEvent) -> Option<EventKey<'_>> {
        if !event.outcome.is_failure() {
            return None;
        }
        Some(match self {
            Counting::FailuresByIp => EventKey::Ip(&event.source),
            Counting::FailuresByAccount => EventKey::Account(event.account.as_deref()?),
            Counting::AccountsByIp => {
                event.account.as_ref()?;
                EventKey::Spray(&event.source)
            }
            Counting::AllFailures => EventKey::All,
        })
    }

    /// Whether the window counts distinct accounts rather than events.
    pub fn counts_accounts(self) -> bool {
        self == Counting::AccountsByIp
    }
}

impl EventKey<'_> {
    /// The source the key is about, if any.
    pub fn source(&self) -> Option<&Source> {
        match self {
            EventKey::Ip(source) | EventKey::Spray(source) => Some(source),
            _ => None,
        }
    }

    /// The account the key is about, if any.
    pub fn account(&self) -> Option<&str> {
        match self {
            EventKey::Account(account) => Some(account),
            _ => None,
        }
    }
}

impl fmt::Display for EventKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventKey::Ip(Source::Ip(ip)) => write!(f, "ip:{ip}"),
            EventKey::Ip(Source::Host(host)) => write!(f, "host:{host}"),
            EventKey::Account(account) => write!(f, "account:{account}"),
            EventKey::Spray(source) => write!(f, "spray:{source}"),
            EventKey::All => f.write_str("all"),
        }
    }
}

/// A rule's threshold and window length (milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub fire_at: u32,
    pub length_ms: i64,
}

/// What one key's new events amount to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdict {
    /// The window count at each new event, in time order.
    pub counts: Vec<u32>,
    /// How many new events saw the count reach `fire_at`.
    pub exceeding: u32,
    /// Whether some new event took the key from below `fire_at` to it (the first crossing).
    pub crossed: bool,
    /// Times of the first and last exceeding events.
    pub first_exceeding_ms: Option<i64>,
    pub last_exceeding_ms: Option<i64>,
    /// The oldest entry counted in the first exceeding event's window: since when.
    pub since_ms: Option<i64>,
    /// The highest window count among the new events.
    pub peak: u32,
    /// What the new events add to an alert's count: the window count at a crossing, then
    /// one per further exceeding event (per newly seen account for distinct counting).
    pub increment: u64,
}

/// Accumulates a key's verdict along its timeline.
struct Tally {
    fire_at: u32,
    was_exceeding: bool,
    verdict: Verdict,
}

impl Tally {
    fn new(fire_at: u32, was_exceeding: bool, events: usize) -> Self {
        Tally {
            fire_at,
            was_exceeding,
            verdict: Verdict {
                counts: Vec::with_capacity(events),
                ..Verdict::default()
            },
        }
    }

    /// A new event at `t` with window count `count`, whose window starts at `oldest`;
    /// `added` is what it adds to an alert that is already exceeding.
    fn new_event(&mut self, t: i64, count: u32, oldest: i64, added: u64) {
        self.verdict.counts.push(count);
        self.step(t, count, oldest, added, false);
    }

    /// A stored entry newer than some new event: a late new event may have made it reach
    /// the threshold (`already`: it had reached it before, and was counted then).
    fn stored_entry(&mut self, t: i64, count: u32, oldest: i64, added: u64, already: bool) {
        self.step(t, count, oldest, added, already);
    }

    fn step(&mut self, t: i64, count: u32, oldest: i64, added: u64, already: bool) {
        let v = &mut self.verdict;
        v.peak = v.peak.max(count);
        let exceeding = count >= self.fire_at;
        if exceeding && !already {
            v.exceeding += 1;
            if v.first_exceeding_ms.is_none() {
                v.first_exceeding_ms = Some(t);
                v.since_ms = Some(oldest);
            }
            v.last_exceeding_ms = Some(t);
            if self.was_exceeding {
                v.increment += added;
            } else {
                v.crossed = true;
                v.increment += u64::from(count);
            }
        }
        self.was_exceeding = exceeding;
    }
}

/// Entries of sorted `times` in `(t − length, t]`: (count, index of the first).
fn window_range(times: &[i64], t: i64, length_ms: i64) -> (usize, usize) {
    let lo = times.partition_point(|&x| x <= t - length_ms);
    let hi = times.partition_point(|&x| x <= t);
    (hi.saturating_sub(lo), lo)
}

/// Whether the key stood at or above the threshold at its newest stored entry up to `t`.
fn exceeding_at(stored: &[i64], t: i64, window: Window) -> bool {
    let upto = &stored[..stored.partition_point(|&x| x <= t)];
    upto.last().is_some_and(|&newest| {
        window_range(upto, newest, window.length_ms).0 >= window.fire_at as usize
    })
}

/// Stored entries (sorted) newer than the first new event: where a late event may have
/// raised the count.
fn newer_than(stored: &[i64], first: i64) -> Vec<i64> {
    stored[stored.partition_point(|&x| x <= first)..].to_vec()
}

/// A batch of at most this many failures on a key looks its accounts up in the key's state
/// by a scan (an attack from few sources brings one or two per key and batch); a larger one
/// builds a map.
pub(crate) const SCAN: usize = 16;

/// Each account's latest failure: the key's state (each account once), then what the batch
/// moved.
struct Latest<'a, A> {
    previous: &'a [(A, i64)],
    moved: Vec<(&'a str, i64)>,
    /// For a large batch: every account's latest, by name.
    map: Option<foldhash::HashMap<&'a str, i64>>,
}

impl<'a, A: AsRef<str>> Latest<'a, A> {
    fn new(previous: &'a [(A, i64)], batch: usize, by_map: bool) -> Self {
        let map = by_map.then(|| {
            let mut map = foldhash::HashMap::with_capacity_and_hasher(
                previous.len() + batch,
                Default::default(),
            );
            for (account, t) in previous {
                map.insert(account.as_ref(), *t);
            }
            map
        });
        Latest {
            previous,
            moved: Vec::new(),
            map,
        }
    }

    fn get(&self, account: &str) -> Option<i64> {
        if let Some(map) = &self.map {
            return map.get(account).copied();
        }
        let moved = self.moved.iter().find(|(a, _)| *a == account);
        moved.map(|(_, t)| *t).or_else(|| {
            let stored = self.previous.iter().find(|(a, _)| a.as_ref() == account);
            stored.map(|(_, t)| *t)
        })
    }

    fn insert(&mut self, account: &'a str, t: i64) {
        if let Some(map) = &mut self.map {
            map.insert(account, t);
        } else if let Some(moved) = self.moved.iter_mut().find(|(a, _)| *a == account) {
            moved.1 = t;
        } else {
            self.moved.push((account, t));
        }
    }
}

/// Distinct-account counting (`spray`): `previous` are the key's stored (account, time of
/// its latest failure) pairs, each account once (as a window state holds them), `batch`
/// the new (time, account) failures in any order.
pub fn evaluate_accounts<'a, A: AsRef<str>>(
    window: Window,
    previous: &'a [(A, i64)],
    batch: &[(i64, &'a str)],
) -> Verdict {
    evaluate_accounts_by(window, previous, batch, batch.len() > SCAN)
}

/// `evaluate_accounts`, looking accounts up through a map or by a scan.
fn evaluate_accounts_by<'a, A: AsRef<str>>(
    window: Window,
    previous: &'a [(A, i64)],
    batch: &[(i64, &'a str)],
    by_map: bool,
) -> Verdict {
    debug_assert!(
        {
            let names: std::collections::HashSet<&str> =
                previous.iter().map(|(a, _)| a.as_ref()).collect();
            names.len() == previous.len()
        },
        "a window state holds each account once"
    );
    let mut latest = Latest::new(previous, batch.len(), by_map);
    let mut stored: Vec<i64> = previous.iter().map(|(_, t)| *t).collect();
    stored.sort_unstable();
    let mut batch = batch.to_vec();
    batch.sort_unstable();
    let Some(&(first, _)) = batch.first() else {
        return Verdict::default();
    };
    let mut tally = Tally::new(
        window.fire_at,
        exceeding_at(&stored, first, window),
        batch.len(),
    );
    let later = newer_than(&stored, first);
    // The accounts' latest failure times as a sorted multiset; entries at or below `cutoff`
    // have been dropped (they are out of every later window).
    let mut times = stored.clone();
    let mut cutoff = i64::MIN;
    let mut pending = later.iter().copied().peekable();
    let mut batch = batch.into_iter().peekable();
    loop {
        let take_stored = match (pending.peek(), batch.peek()) {
            (Some(s), Some((t, _))) => s <= t,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let (now, lo) = if take_stored {
            let s = pending.next().unwrap_or_default();
            let (count, lo) = window_range(&times, s, window.length_ms);
            let before = window_range(&stored, s, window.length_ms).0;
            let already = before >= window.fire_at as usize;
            let oldest = times.get(lo).copied().unwrap_or(s).min(s);
            tally.stored_entry(s, count as u32, oldest, 0, already);
            (s, lo)
        } else {
            let (t, account) = batch.next().unwrap_or_default();
            let mut late = 0;
            let newly_seen = match latest.get(account) {
                // Already failed later (an event arriving late): it counts through this event.
                Some(known) if known >= t => {
                    late = u32::from(known > t);
                    false
                }
                known => {
                    if let Some(old) = known.filter(|&old| old > cutoff)
                        && let Ok(i) = times.binary_search(&old)
                    {
                        times.remove(i);
                    }
                    times.insert(times.partition_point(|&x| x <= t), t);
                    latest.insert(account, t);
                    known.is_none_or(|old| old <= t - window.length_ms)
                }
            };
            let (count, lo) = window_range(&times, t, window.length_ms);
            let oldest = times.get(lo).copied().unwrap_or(t).min(t);
            tally.new_event(t, count as u32 + late, oldest, u64::from(newly_seen));
            (t, lo)
        };
        times.drain(..lo);
        cutoff = cutoff.max(now - window.length_ms);
    }
    tally.verdict
}

#[cfg(test)]
mod tests;
