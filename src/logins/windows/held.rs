//! The window states this replica holds: what its last exchange of each key read or wrote,
//! with the version Redis wrote that state at. An exchange sends the version; Redis sends
//! the state back only when the key has moved on (another replica wrote it, a repair, an
//! expiry), so a key this replica alone feeds costs its new entries, not its whole state.
//!
//! Bounded: two generations of at most half the capacity each; when the newer fills, the
//! older is dropped (a key dropped is read whole on its next exchange, as without this).

use super::{Entries, Previous};
use std::collections::HashMap;
use std::sync::Arc;

/// The write a state is at: Redis's epoch and its per-call sequence (`exchange.lua`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Version {
    epoch: i64,
    sequence: u64,
}

impl Version {
    /// `<epoch>.<sequence>`, as the script writes it.
    pub(super) fn parse(s: &str) -> Option<Version> {
        let (epoch, sequence) = s.split_once('.')?;
        Some(Version {
            epoch: epoch.parse().ok()?,
            sequence: sequence.parse().ok()?,
        })
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.epoch, self.sequence)
    }
}

/// A state held, and the version it is at.
#[derive(Debug, Clone)]
pub(super) struct Held {
    pub version: Version,
    pub state: Arc<Previous>,
    /// Entries in the key's delta at that version (see `exchange.lua`), as far as known.
    pub since_fold: u32,
}

pub(super) struct HeldStates {
    newer: HashMap<String, Held>,
    older: HashMap<String, Held>,
    /// The newest version an exchange wrote.
    last_written: Option<Version>,
    /// Keys held at most (both generations).
    capacity: usize,
}

impl HeldStates {
    pub(super) fn new(capacity: usize) -> Self {
        HeldStates {
            newer: HashMap::new(),
            older: HashMap::new(),
            last_written: None,
            capacity: capacity.max(2),
        }
    }

    /// The name a rule's key is held under.
    pub(super) fn id(rule: &str, key: &str) -> String {
        let mut id = String::with_capacity(rule.len() + key.len() + 1);
        Self::id_into(rule, key, &mut id);
        id
    }

    /// `id` written into `out` (cleared first), so a lookup per key allocates nothing.
    pub(super) fn id_into(rule: &str, key: &str, out: &mut String) {
        out.clear();
        out.push_str(rule);
        out.push(' ');
        out.push_str(key);
    }

    /// An exchange wrote `version`: one not after the last written in the same epoch
    /// (Redis rolled back, or answers of concurrent exchanges crossed) drops every state held.
    pub(super) fn written(&mut self, version: Version) {
        if let Some(last) = self.last_written
            && last.epoch == version.epoch
            && version.sequence <= last.sequence
        {
            self.newer.clear();
            self.older.clear();
        }
        if self.last_written.is_none_or(|last| version > last) {
            self.last_written = Some(version);
        }
    }

    pub(super) fn get(&self, id: &str) -> Option<&Held> {
        self.newer.get(id).or_else(|| self.older.get(id))
    }

    /// Hold `held` for `id`, unless a later version is held already (concurrent exchanges
    /// may answer out of order).
    pub(super) fn put(&mut self, id: String, held: Held) {
        if self.get(&id).is_some_and(|h| h.version > held.version) {
            return;
        }
        self.older.remove(&id);
        self.newer.insert(id, held);
        if self.newer.len() >= self.capacity / 2 {
            self.older = std::mem::take(&mut self.newer);
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.newer.is_empty() && self.older.is_empty()
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.newer.len() + self.older.len()
    }
}

/// How many entries a state holds.
pub(super) fn len(state: &Previous) -> usize {
    match state {
        Previous::Events(times) => times.len(),
        Previous::Accounts(pairs) => pairs.len(),
    }
}

/// The newest `cap` entries of a state and a batch's new entries: what Redis then holds
/// for the key, as `decode` in mod.rs reads it (accounts once each at their latest time,
/// ties by account, descending).
pub(super) fn merged(previous: &Previous, new: &Entries, cap: u32) -> Option<Previous> {
    let cap = cap as usize;
    match (previous, new) {
        (Previous::Events(times), Entries::Events(added)) => {
            let newest_first = |v: &[i64]| v.is_sorted_by(|x, y| x >= y);
            if newest_first(times) && newest_first(added) {
                return Some(Previous::Events(merged_times(times, added, cap)));
            }
            let mut all: Vec<i64> = times.iter().chain(added).copied().collect();
            all.sort_unstable_by(|x, y| y.cmp(x));
            all.truncate(cap);
            Some(Previous::Events(all))
        }
        (Previous::Accounts(pairs), Entries::Accounts(added))
            if added.len() <= FEW && pairs.is_sorted_by(|x, y| (x.1, &x.0) >= (y.1, &y.0)) =>
        {
            Some(Previous::Accounts(merged_few(pairs, added, cap)))
        }
        (Previous::Accounts(pairs), Entries::Accounts(added)) => {
            Some(Previous::Accounts(merged_any(pairs, added, cap)))
        }
        _ => None,
    }
}

/// `merged` for any state and any number of new entries.
fn merged_any(
    pairs: &[(Arc<str>, i64)],
    added: &[(i64, String)],
    cap: usize,
) -> Vec<(Arc<str>, i64)> {
    let mut latest: foldhash::HashMap<&str, i64> =
        foldhash::HashMap::with_capacity_and_hasher(pairs.len() + added.len(), Default::default());
    let all = pairs.iter().map(|(a, t)| (&**a, *t));
    for (account, t) in all.chain(added.iter().map(|(t, a)| (a.as_str(), *t))) {
        let seen = latest.entry(account).or_insert(t);
        *seen = (*seen).max(t);
    }
    let mut all: Vec<(i64, &str)> = latest.into_iter().map(|(a, t)| (t, a)).collect();
    all.sort_unstable_by(|x, y| y.cmp(x));
    all.truncate(cap);
    all.into_iter().map(|(t, a)| (Arc::from(a), t)).collect()
}

/// Up to this many new accounts are merged into a sorted state in one pass (an attack
/// from few sources adds one or two per key and batch); more go through a map.
const FEW: usize = 8;

/// `merged` for a state sorted newest first (as `decode` leaves it) and a few new entries:
/// one pass, the state's names shared rather than copied.
fn merged_few(
    pairs: &[(Arc<str>, i64)],
    added: &[(i64, String)],
    cap: usize,
) -> Vec<(Arc<str>, i64)> {
    let mut new: Vec<(i64, &str)> = Vec::with_capacity(added.len());
    for (t, a) in added {
        match new.iter_mut().find(|(_, b)| *b == a.as_str()) {
            Some(seen) => seen.0 = seen.0.max(*t),
            None => new.push((*t, a.as_str())),
        }
    }
    // An account the state has at a later (or the same) time keeps that entry; one it has
    // at an earlier time moves (one scan of the state per new account).
    let mut moved: Vec<usize> = Vec::new();
    new.retain(|&(t, a)| match pairs.iter().position(|(b, _)| &**b == a) {
        Some(i) if pairs[i].1 >= t => false,
        Some(i) => {
            moved.push(i);
            true
        }
        None => true,
    });
    new.sort_unstable_by(|x, y| y.cmp(x));
    let mut kept = pairs
        .iter()
        .enumerate()
        .filter(|(i, _)| !moved.contains(i))
        .map(|(_, pair)| pair)
        .peekable();
    let mut new = new.into_iter().peekable();
    let mut out = Vec::with_capacity(cap.min(pairs.len() + added.len()));
    while out.len() < cap {
        let newer = match (kept.peek(), new.peek()) {
            (Some((b, u)), Some(&(t, a))) => (t, a) > (*u, &**b),
            (None, Some(_)) => true,
            (Some(_), None) => false,
            (None, None) => break,
        };
        if newer {
            out.extend(new.next().map(|(t, a)| (Arc::from(a), t)));
        } else {
            out.extend(kept.next().cloned());
        }
    }
    out
}

/// Two lists of times, newest first, merged: the newest `cap`.
fn merged_times(times: &[i64], added: &[i64], cap: usize) -> Vec<i64> {
    let mut out = Vec::with_capacity(cap.min(times.len() + added.len()));
    let (mut a, mut b) = (times.iter().peekable(), added.iter().peekable());
    while out.len() < cap {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x >= y => a.next(),
            (_, Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, None) => break,
        };
        out.extend(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(sequence: u64) -> Version {
        Version {
            epoch: 1_700_000_000_000,
            sequence,
        }
    }

    #[test]
    fn versions_read_back_as_the_script_writes_them() {
        let v = Version::parse("1700000000000.42").unwrap();
        assert_eq!(v, at(42));
        assert_eq!(v.to_string(), "1700000000000.42");
        assert!(Version::parse("1700000000000").is_none());
        assert!(Version::parse("x.1").is_none());
    }

    #[test]
    fn an_older_answer_never_replaces_a_newer_state() {
        let mut held = HeldStates::new(100);
        let state = |t| Arc::new(Previous::Events(vec![t]));
        held.put(
            "k".into(),
            Held {
                version: at(7),
                state: state(7),
                since_fold: 0,
            },
        );
        held.put(
            "k".into(),
            Held {
                version: at(5),
                state: state(5),
                since_fold: 0,
            },
        );
        assert_eq!(held.get("k").unwrap().state, state(7));
        held.put(
            "k".into(),
            Held {
                version: at(9),
                state: state(9),
                since_fold: 0,
            },
        );
        assert_eq!(held.get("k").unwrap().state, state(9));
    }

    #[test]
    fn a_version_handed_out_again_drops_everything_held() {
        let mut held = HeldStates::new(100);
        let state = Arc::new(Previous::Events(vec![1]));
        held.written(at(500));
        held.put(
            "k".into(),
            Held {
                version: at(500),
                state: state.clone(),
                since_fold: 0,
            },
        );
        held.written(at(501));
        assert!(held.get("k").is_some(), "later versions keep what is held");
        held.written(at(481));
        assert!(
            held.get("k").is_none(),
            "Redis rolled back: E.500 may be reissued"
        );
        held.put(
            "k".into(),
            Held {
                version: at(482),
                state,
                since_fold: 0,
            },
        );
        assert!(held.get("k").is_some());
    }

    #[test]
    fn at_most_the_capacity_is_held() {
        let mut held = HeldStates::new(10);
        for i in 0..1_000 {
            let state = Arc::new(Previous::Events(vec![i]));
            held.put(
                format!("k{i}"),
                Held {
                    version: at(i as u64),
                    state,
                    since_fold: 0,
                },
            );
            assert!(held.len() <= 10, "{} held", held.len());
        }
        assert!(held.get("k999").is_some(), "the newest is held");
    }

    #[test]
    fn times_merged_in_one_pass_are_the_newest_cap() {
        assert_eq!(merged_times(&[9, 5, 5, 1], &[7, 5, 0], 5), [9, 7, 5, 5, 5]);
        assert_eq!(merged_times(&[], &[3, 2], 5), [3, 2]);
        assert_eq!(merged_times(&[4], &[], 0), Vec::<i64>::new());
    }

    #[test]
    fn the_one_pass_merge_agrees_with_the_map() {
        // States of up to 12 accounts over 6 names and 5 times (ties and repeats), sorted
        // as decode leaves them; batches of up to FEW entries; caps below and above.
        let name = |i: u64| ["a", "b", "c", "d", "e", "f"][(i % 6) as usize];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for case in 0..2_000 {
            let n = next() % 12;
            let raw: Vec<(Arc<str>, i64)> = (0..n)
                .map(|_| (Arc::from(name(next())), (next() % 5) as i64))
                .collect();
            let pairs = merged_any(&raw, &[], 64);
            let added: Vec<(i64, String)> = (0..next() % (FEW as u64 + 1))
                .map(|_| ((next() % 7) as i64, name(next()).to_string()))
                .collect();
            let cap = 1 + (next() % 8) as usize;
            assert_eq!(
                merged_few(&pairs, &added, cap),
                merged_any(&pairs, &added, cap),
                "case {case}: {pairs:?} + {added:?}, cap {cap}"
            );
        }
    }

    #[test]
    fn merged_keeps_the_newest_cap_entries_and_each_account_at_its_latest() {
        let events = merged(
            &Previous::Events(vec![9, 5, 1]),
            &Entries::Events(vec![7, 5]),
            4,
        );
        assert_eq!(events, Some(Previous::Events(vec![9, 7, 5, 5])));
        let before = Previous::Accounts(vec![("bob".into(), 30), ("al".into(), 20)]);
        let added = Entries::Accounts(vec![(40, "al".into()), (30, "cy".into())]);
        assert_eq!(
            merged(&before, &added, 2),
            Some(Previous::Accounts(vec![
                ("al".into(), 40),
                ("cy".into(), 30)
            ]))
        );
    }
}
