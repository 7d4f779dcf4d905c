//! Sliding-window detection, pure: the key a rule counts an event under, and the exact window
//! count at each new event of a key, given the key's previous state capped at `fire_at`
//! entries (enough to decide "count ≥ fire_at" exactly for events arriving in time order).
//!
//! A window is half-open: an event at `t` counts the events in `(t − window, t]`, so an event
//! exactly `window` after another does not count it. Successes never count.

use super::auth_event::AuthEvent;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

/// What a rule counts (the detection side of `config::logins::RuleKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counting {
    /// Failures from one IP: key `ip:<addr>`.
    FailuresByIp,
    /// Failures on one account: key `account:<name>`.
    FailuresByAccount,
    /// Distinct accounts one IP failed on: key `spray:<addr>`, the account is the member.
    AccountsByIp,
    /// Failures across everything: key `all`.
    AllFailures,
}

/// The key an event is counted under, borrowed from the event (formatted only once per key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKey<'a> {
    Ip(IpAddr),
    Account(&'a str),
    Spray(IpAddr),
    All,
}

impl Counting {
    /// The key `event` counts under, or `None` when it does not count (a success).
    pub fn key_of(self, event: &AuthEvent) -> Option<EventKey<'_>> {
        if !event.outcome.is_failure() {
            return None;
        }
        Some(match self {
            Counting::FailuresByIp => EventKey::Ip(event.ip),
            Counting::FailuresByAccount => EventKey::Account(&event.account),
            Counting::AccountsByIp => EventKey::Spray(event.ip),
            Counting::AllFailures => EventKey::All,
        })
    }

    /// Whether the window counts distinct accounts rather than events.
    pub fn counts_accounts(self) -> bool {
        self == Counting::AccountsByIp
    }
}

impl EventKey<'_> {
    /// The IP the key is about, if any.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            EventKey::Ip(ip) | EventKey::Spray(ip) => Some(*ip),
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
            EventKey::Ip(ip) => write!(f, "ip:{ip}"),
            EventKey::Account(account) => write!(f, "account:{account}"),
            EventKey::Spray(ip) => write!(f, "spray:{ip}"),
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

/// Accumulates a key's verdict event by event.
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

    /// One new event at `t` with window count `count`, whose window starts at `oldest`;
    /// `added` is what it adds to an alert that is already exceeding.
    fn record(&mut self, t: i64, count: u32, oldest: i64, added: u64) {
        let v = &mut self.verdict;
        v.counts.push(count);
        v.peak = v.peak.max(count);
        let exceeding = count >= self.fire_at;
        if exceeding {
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

/// Whether the newest of sorted `times` saw a count of at least `fire_at`.
fn newest_exceeding(times: &[i64], window: Window) -> bool {
    times.last().is_some_and(|&newest| {
        window_range(times, newest, window.length_ms).0 >= window.fire_at as usize
    })
}

/// Event counting (`ip`, `account`, `all`): `previous` are the key's stored event times
/// (its newest `fire_at`), `batch` the new events' times in any order.
pub fn evaluate_events(window: Window, previous: &[i64], batch: &[i64]) -> Verdict {
    let mut times = previous.to_vec();
    times.sort_unstable();
    let mut batch = batch.to_vec();
    batch.sort_unstable();
    let mut tally = Tally::new(
        window.fire_at,
        newest_exceeding(&times, window),
        batch.len(),
    );
    for t in batch {
        let at = times.partition_point(|&x| x <= t);
        times.insert(at, t);
        let (count, lo) = window_range(&times, t, window.length_ms);
        tally.record(t, count as u32, times[lo], 1);
        // Later new events are no older than `t`: what fell out of its window stays out.
        times.drain(..lo);
    }
    tally.verdict
}

/// Distinct-account counting (`spray`): `previous` are the key's stored (account, time of
/// its latest failure) pairs, `batch` the new (time, account) failures in any order.
pub fn evaluate_accounts(
    window: Window,
    previous: &[(String, i64)],
    batch: &[(i64, &str)],
) -> Verdict {
    let mut latest: HashMap<&str, i64> = HashMap::with_capacity(previous.len() + batch.len());
    for (account, t) in previous {
        let entry = latest.entry(account.as_str()).or_insert(*t);
        *entry = (*entry).max(*t);
    }
    // The latest failure times of the accounts, as a sorted multiset; entries at or below
    // `cutoff` have been dropped (they are out of every later window).
    let mut times: Vec<i64> = latest.values().copied().collect();
    times.sort_unstable();
    let mut cutoff = i64::MIN;
    let mut batch = batch.to_vec();
    batch.sort_unstable();
    let mut tally = Tally::new(
        window.fire_at,
        newest_exceeding(&times, window),
        batch.len(),
    );
    for (t, account) in batch {
        let mut late = 0;
        let newly_seen = match latest.get(account).copied() {
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
        tally.record(t, count as u32 + late, oldest, u64::from(newly_seen));
        times.drain(..lo);
        cutoff = cutoff.max(t - window.length_ms);
    }
    tally.verdict
}

#[cfg(test)]
mod tests;
