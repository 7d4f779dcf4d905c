//! The window states this replica holds: what its last exchange of each key read or wrote,
//! with the version Redis wrote that state at. An exchange sends the version; Redis sends
//! the state back only when the key has moved on (another replica wrote it, a repair, an
//! expiry), so a key this replica alone feeds costs its new entries, not its whole state.
//!
//! Bounded: two generations of at most half the capacity each; when the newer fills, the
//! older is dropped (a key dropped is read whole on its next exchange, as without this).

use super::{Entries, Previous};
use std::collections::HashMap;

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
    pub state: Previous,
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
            let mut all: Vec<i64> = times.iter().chain(added).copied().collect();
            all.sort_unstable_by(|x, y| y.cmp(x));
            all.truncate(cap);
            Some(Previous::Events(all))
        }
        (Previous::Accounts(pairs), Entries::Accounts(added)) => {
            let mut latest: HashMap<&str, i64> = HashMap::with_capacity(pairs.len() + added.len());
            let all = pairs.iter().map(|(a, t)| (a.as_str(), *t));
            for (account, t) in all.chain(added.iter().map(|(t, a)| (a.as_str(), *t))) {
                let seen = latest.entry(account).or_insert(t);
                *seen = (*seen).max(t);
            }
            let mut all: Vec<(i64, &str)> = latest.into_iter().map(|(a, t)| (t, a)).collect();
            all.sort_unstable_by(|x, y| y.cmp(x));
            all.truncate(cap);
            let all = all.into_iter().map(|(t, a)| (a.to_string(), t));
            Some(Previous::Accounts(all.collect()))
        }
        _ => None,
    }
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
        let state = |t| Previous::Events(vec![t]);
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
        let state = Previous::Events(vec![1]);
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
            let state = Previous::Events(vec![i]);
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
