//! Where a worker's claim starts looking in each chat: per-chat lower bounds kept in memory.
//!
//! # Why
//! Sending a row turns its entry in the pending-only index `outbox_chat (chat_id, id)` dead,
//! and nothing removes dead entries until a VACUUM. They pile up at the front of a chat's
//! range, so a probe from the chat's beginning steps over every row the chat had sent since:
//! a long drain of one chat slowed as it went (issue 24). A probe from a bound just below
//! the chat's first pending row steps over only what was sent since the last pass.
//!
//! # Bounds are hints; a full pass is the safety net
//! Every pass finds the chats with pending rows by a skip scan of `outbox_chat` that runs
//! backwards (each descent lands on a chat's newest entries, which are pending while the
//! chat has a backlog, not on its oldest, which are the dead ones). After each pass the
//! worker keeps, per chat, an id below the chat's first pending row (edits still waiting
//! for their time included, so a bound never passes one) as that pass saw it, and the next
//! pass probes each chat's head from there. A row can become pending below a bound without
//! this worker seeing it: a dead row put back (`outbox retry`), an insert whose transaction
//! commits after a higher id of its chat was claimed, rows moved to a chat's new id (a group
//! upgraded). So a pass ignores the bounds and probes every chat from its beginning at
//! least every `FULL_EVERY`, after a pass that claimed nothing (an idle worker always
//! probes fully) or failed, and when the worker was told to (`rescan`, after a chat moved).
//! Such a row waits at most `FULL_EVERY` while the worker is busy, and then, being the
//! oldest, is its chat's head again. Bounds never decide what is claimable, only where a
//! probe starts, so the claim's rules (order per chat, one row of a chat in flight, edits
//! after their message) are those of the full pass whenever the bounds are right; other
//! replicas' sends never make a bound wrong (a sent row is no longer pending).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A pass ignores the bounds at least this often.
pub const FULL_EVERY: Duration = Duration::from_secs(2);

/// One worker's bounds.
#[derive(Debug, Default)]
pub struct Heads {
    /// Chat → an id below its first pending row, as the last pass to probe it saw.
    low: HashMap<i64, i64>,
    full_at: Option<Instant>,
    /// The next pass ignores the bounds.
    rescan: bool,
}

/// Where one pass starts each chat's probe: at its beginning (`full`), or at the bounds of
/// `chats` (`lows`, in the same order; other chats from their beginning).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    pub full: bool,
    pub chats: Vec<i64>,
    pub lows: Vec<i64>,
}

/// What a pass saw: each chat with pending rows and its first pending row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    pub firsts: Vec<(i64, i64)>,
}

impl Heads {
    /// The probe for the next pass at `now`.
    pub fn probe(&mut self, now: Instant) -> Probe {
        let full = self.rescan || self.full_at.is_none_or(|at| now - at >= FULL_EVERY);
        if full {
            self.full_at = Some(now);
            self.rescan = false;
            return Probe {
                full,
                ..Probe::default()
            };
        }
        let (chats, lows) = self.low.iter().map(|(c, l)| (*c, *l)).unzip();
        Probe { full, chats, lows }
    }

    /// Learn from a pass (`None`: it claimed nothing or failed, so the next pass probes
    /// fully).
    pub fn learn(&mut self, probe: &Probe, seen: Option<Seen>) {
        let Some(seen) = seen else {
            self.rescan = true;
            return;
        };
        if probe.full {
            // Chats with nothing pending are forgotten here, so the map stays small (a
            // bound kept for such a chat stays right: its new rows get higher ids).
            self.low.clear();
        }
        for (chat, first) in seen.firsts {
            self.low.insert(chat, first - 1);
        }
    }

    /// The next pass ignores the bounds (rows may have become pending below one).
    pub fn rescan(&mut self) {
        self.rescan = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(firsts: &[(i64, i64)]) -> Option<Seen> {
        Some(Seen {
            firsts: firsts.to_vec(),
        })
    }

    fn bounds(p: &Probe) -> Vec<(i64, i64)> {
        let mut pairs: Vec<(i64, i64)> = p.chats.iter().copied().zip(p.lows.clone()).collect();
        pairs.sort_unstable();
        pairs
    }

    #[test]
    fn the_first_pass_is_full_then_bounds_until_full_every_has_passed() {
        let mut heads = Heads::default();
        let t = Instant::now();
        let first = heads.probe(t);
        assert!(first.full);
        heads.learn(&first, seen(&[(7, 10), (8, 3)]));
        let next = heads.probe(t + Duration::from_millis(10));
        assert!(!next.full);
        assert_eq!(bounds(&next), [(7, 9), (8, 2)]);
        heads.learn(&next, seen(&[(7, 12)]));
        let next = heads.probe(t + Duration::from_millis(20));
        assert_eq!(bounds(&next), [(7, 11), (8, 2)]);
        assert!(
            heads.probe(t + FULL_EVERY).full,
            "full again after FULL_EVERY"
        );
    }

    #[test]
    fn a_pass_that_claimed_nothing_or_a_rescan_makes_the_next_full() {
        let mut heads = Heads::default();
        let t = Instant::now();
        let p = heads.probe(t);
        heads.learn(&p, seen(&[(7, 10)]));
        let p = heads.probe(t);
        heads.learn(&p, None);
        assert!(heads.probe(t).full, "after an empty pass");
        let p = heads.probe(t);
        heads.learn(&p, seen(&[(7, 10)]));
        heads.rescan();
        assert!(heads.probe(t).full, "after a rescan");
    }

    #[test]
    fn a_full_pass_forgets_the_chats_with_nothing_pending() {
        let mut heads = Heads::default();
        let t = Instant::now();
        let p = heads.probe(t);
        heads.learn(&p, seen(&[(7, 10), (9, 45)]));
        let p = heads.probe(t + FULL_EVERY);
        assert!(p.full);
        heads.learn(&p, seen(&[(9, 46)]));
        let p = heads.probe(t + FULL_EVERY);
        assert_eq!(bounds(&p), [(9, 45)]);
    }
}
