//! Which accounts this process knows an alert has stored (`login_alert_accounts`), so a
//! batch does not send them again: a spray episode reports every account of its window
//! (up to the rule's `keep`, 256 by default) with each batch, and a source trying many
//! names would otherwise resend them all to its alert and its host on every batch.
//!
//! What is remembered is only what a committed transaction stored, found stored, or left
//! out because the alert was full (its count of accounts never goes down, so it never
//! takes it); alert accounts are never deleted: so "known" is never wrong but for a
//! collision of the 64-bit keyed hash it is kept as (a random key per process: not one an
//! attacker can aim at). Not knowing costs only a conflicting insert. Bounded: past `LIMIT`
//! entries it starts again from empty.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

/// About 16 bytes an entry: at most ~16 MiB.
const LIMIT: usize = 1_000_000;

#[derive(Debug, Default)]
pub struct KnownAccounts {
    hasher: RandomState,
    seen: Mutex<HashSet<u64>>,
}

/// One (alert, account) pair, as remembered.
pub type Known = u64;

impl KnownAccounts {
    /// The pair as remembered.
    pub fn key(&self, alert: i64, account: &str) -> Known {
        self.hasher.hash_one((alert, account))
    }

    /// Whether the pair is known to be stored.
    pub fn holds(&self, key: Known) -> bool {
        self.seen.lock().expect("known accounts").contains(&key)
    }

    /// Keep the items whose pair is not known to be stored.
    pub fn retain_unknown<T>(&self, items: &mut Vec<T>, key: impl Fn(&T) -> Known) {
        let seen = self.seen.lock().expect("known accounts");
        items.retain(|item| !seen.contains(&key(item)));
    }

    /// Remember pairs a committed transaction stored (or found stored).
    pub fn remember(&self, keys: &[Known]) {
        let mut seen = self.seen.lock().expect("known accounts");
        if seen.len() + keys.len() > LIMIT {
            seen.clear();
        }
        seen.extend(keys.iter().copied());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_was_remembered_is_held_and_the_alert_is_part_of_the_pair() {
        let known = KnownAccounts::default();
        let alice = known.key(1, "alice");
        assert!(!known.holds(alice));
        known.remember(&[alice]);
        assert!(known.holds(alice));
        assert!(!known.holds(known.key(2, "alice")));
        assert!(!known.holds(known.key(1, "bob")));
    }

    #[test]
    fn past_the_limit_it_starts_again() {
        let known = KnownAccounts::default();
        let first = known.key(1, "first");
        known.remember(&[first]);
        let many: Vec<Known> = (0..LIMIT as i64).map(|i| known.key(i + 2, "x")).collect();
        known.remember(&many);
        assert!(!known.holds(first));
        assert!(known.holds(many[0]));
    }
}
