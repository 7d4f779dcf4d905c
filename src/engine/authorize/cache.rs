//! The authorizer's principal cache, pure: what it holds, when an entry is fresh, what a
//! full cache drops, and the generation that keeps a lookup overlapping an eviction from
//! being cached. Time is passed in; the caller reads the clock.

use crate::domain::UserId;
use crate::storage::users::Principal;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The default bound: a full cache first drops the stale entries, then (if that is not
/// enough) the oldest eighth (strangers are cached too: many of them must not grow the
/// cache without bound).
pub const CLEANUP_ABOVE: usize = 10_000;

/// A lookup's result: the principal, or `None` for a stranger.
pub type Looked = Option<Arc<Principal>>;

/// Whether an entry cached at `cached_at` may still be served at `now`: strictly younger
/// than `ttl` (a zero TTL serves nothing).
pub fn is_fresh(cached_at: Instant, now: Instant, ttl: Duration) -> bool {
    now.saturating_duration_since(cached_at) < ttl
}

pub struct PrincipalCache {
    entries: HashMap<UserId, (Instant, Looked)>,
    /// Bumped by every eviction: a lookup that overlapped one may have read the state
    /// before the change, so it is not cached.
    generation: u64,
    /// Entries held at most.
    max: usize,
}

impl Default for PrincipalCache {
    fn default() -> Self {
        Self::with_max(CLEANUP_ABOVE)
    }
}

impl PrincipalCache {
    /// An empty cache holding at most `max` entries (at least one).
    pub fn with_max(max: usize) -> Self {
        PrincipalCache {
            entries: HashMap::new(),
            generation: 0,
            max: max.max(1),
        }
    }

    /// The cached lookup of `user` if it is still fresh at `now`.
    pub fn get(&self, user: UserId, now: Instant, ttl: Duration) -> Option<Looked> {
        self.entries
            .get(&user)
            .filter(|(at, _)| is_fresh(*at, now, ttl))
            .map(|(_, looked)| looked.clone())
    }

    /// The generation a lookup starts in; pass it back to [`PrincipalCache::insert`].
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Cache a lookup started in `generation`, unless an eviction happened since (then it
    /// may predate a change) or the TTL is zero. Returns whether it was cached.
    pub fn insert(
        &mut self,
        user: UserId,
        looked: Looked,
        generation: u64,
        now: Instant,
        ttl: Duration,
    ) -> bool {
        if ttl.is_zero() || generation != self.generation {
            return false;
        }
        if self.entries.len() >= self.max && !self.entries.contains_key(&user) {
            self.make_room(now, ttl);
        }
        self.entries.insert(user, (now, looked));
        true
    }

    /// Room for one more entry in a full cache: the stale go, then (if that is not enough)
    /// the oldest eighth, so a cache full of fresh entries is not scanned on every miss.
    fn make_room(&mut self, now: Instant, ttl: Duration) {
        self.entries.retain(|_, (at, _)| is_fresh(*at, now, ttl));
        if self.entries.len() < self.max {
            return;
        }
        let mut ages: Vec<Instant> = self.entries.values().map(|(at, _)| *at).collect();
        let cut = (ages.len() / 8).max(1) - 1;
        let (_, newest_dropped, _) = ages.select_nth_unstable(cut);
        let cutoff = *newest_dropped;
        self.entries.retain(|_, (at, _)| *at > cutoff);
    }

    pub fn evict(&mut self, user: UserId) {
        self.generation += 1;
        self.entries.remove(&user);
    }

    pub fn evict_all(&mut self) {
        self.generation += 1;
        self.entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What a change notification's payload asks for: a user id evicts that user; anything
/// else (a role's permissions changed, or no payload after a reconnect) evicts everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    One(UserId),
    All,
}

impl Change {
    pub fn of_payload(payload: Option<&str>) -> Change {
        match payload.map(str::parse::<i64>) {
            Some(Ok(id)) => Change::One(UserId(id)),
            _ => Change::All,
        }
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
