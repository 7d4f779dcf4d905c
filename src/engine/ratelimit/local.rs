//! The rate limiter's in-memory sliding windows, pure (time passed in): the fallback while
//! Redis is unreachable, the outage hits that still count once it is back, and the
//! clean-up that keeps many subjects from growing memory without bound.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Above this many subjects, a local check first drops those with no hit in the window.
pub const CLEANUP_ABOVE: usize = 10_000;

/// The shortest wait a limited subject is told: never "retry now".
pub const MIN_RETRY_AFTER: Duration = Duration::from_millis(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over the limit; retry after this long.
    Limited(Duration),
}

impl Verdict {
    /// What the Redis script answered: 0 admits, anything else is the wait in milliseconds.
    pub fn of_redis_wait(wait_ms: i64) -> Verdict {
        match u64::try_from(wait_ms) {
            Ok(0) => Verdict::Allowed,
            Ok(ms) => Verdict::Limited(Duration::from_millis(ms)),
            // The script never answers below zero; a broken answer limits briefly.
            Err(_) => Verdict::Limited(MIN_RETRY_AFTER),
        }
    }
}

/// When the oldest hit of a full window leaves it, seen from `now` (at least 1 ms).
pub fn retry_after(oldest: Instant, window: Duration, now: Instant) -> Duration {
    (oldest + window)
        .saturating_duration_since(now)
        .max(MIN_RETRY_AFTER)
}

/// Whether a hit at `at` is still in the window ending at `now`.
pub fn in_window(at: Instant, window: Duration, now: Instant) -> bool {
    now.saturating_duration_since(at) < window
}

/// Hits per subject key, oldest first.
#[derive(Debug, Default)]
pub struct LocalWindows {
    hits: HashMap<String, VecDeque<Instant>>,
}

fn drop_expired(hits: &mut VecDeque<Instant>, window: Duration, now: Instant) {
    while hits.front().is_some_and(|t| !in_window(*t, window, now)) {
        hits.pop_front();
    }
}

impl LocalWindows {
    /// While hits from an outage are still in the window: `Some(wait)` when they alone
    /// reach the limit. Creates no entry for a subject that has none.
    pub fn outage_hits_full(
        &mut self,
        key: &str,
        limit: u32,
        window: Duration,
        now: Instant,
    ) -> Option<Duration> {
        let hits = self.hits.get_mut(key)?;
        drop_expired(hits, window, now);
        let Some(&oldest) = hits.front() else {
            self.hits.remove(key);
            return None;
        };
        (hits.len() >= limit as usize).then(|| retry_after(oldest, window, now))
    }

    /// What Redis decided, passed on; a hit it allowed also counts in memory while outage
    /// hits are in the window.
    pub fn after_redis(
        &mut self,
        key: &str,
        verdict: Verdict,
        window: Duration,
        now: Instant,
    ) -> Verdict {
        if verdict == Verdict::Allowed {
            self.count_beside_outage_hits(key, window, now);
        }
        verdict
    }

    /// A hit Redis allowed also counts in memory while outage hits are in the window.
    pub fn count_beside_outage_hits(&mut self, key: &str, window: Duration, now: Instant) {
        if let Some(hits) = self.hits.get_mut(key)
            && hits.back().is_some_and(|t| in_window(*t, window, now))
        {
            hits.push_back(now);
        }
    }

    /// The per-process fallback: the same sliding window as Redis, in memory.
    pub fn check(&mut self, key: &str, limit: u32, window: Duration, now: Instant) -> Verdict {
        if self.hits.len() > CLEANUP_ABOVE {
            self.hits
                .retain(|_, hits| hits.back().is_some_and(|t| in_window(*t, window, now)));
        }
        let hits = self.hits.entry(key.to_string()).or_default();
        drop_expired(hits, window, now);
        if hits.len() < limit as usize {
            hits.push_back(now);
            Verdict::Allowed
        } else {
            // A limit of 0 admits nothing: the wait is then a whole window.
            let oldest = hits.front().copied().unwrap_or(now);
            Verdict::Limited(retry_after(oldest, window, now))
        }
    }

    /// How many subjects have hits in memory.
    pub fn subjects(&self) -> usize {
        self.hits.len()
    }

    /// The hits counted for `key`.
    pub fn hits_of(&self, key: &str) -> usize {
        self.hits.get(key).map_or(0, VecDeque::len)
    }
}

#[cfg(test)]
#[path = "local_tests.rs"]
mod tests;
