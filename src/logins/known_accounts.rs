//! Which accounts this process knows an alert has stored (`login_alert_accounts`), so a
//! batch does not send them again: a spray episode reports every account of its window
//! (up to the rule's `keep`, 256 by default) with each batch, and a source trying many
//! names would otherwise resend them all to its alert and its host on every batch.
//!
//! What is remembered is only what a committed transaction stored, found stored, or left
//! out because the alert was full (its count of accounts never goes down, so it never
//! takes it); alert accounts are never deleted: so "known" is never wrong but for a
//! collision of the 64-bit keyed hash it is kept as (a random key per process: not one an
//! attacker can aim at). Not knowing costs only a conflicting insert.
//!
//! Kept per alert (a batch looks up some hundreds of accounts of each alert it counts on: a
//! small set each, in cache, where one set of a million pairs missed the cache on nearly
//! every lookup) and bounded: two generations of at most `LIMIT / 2` pairs each; when the
//! newer fills it becomes the older and the older is forgotten. A pair found in the older
//! moves to the newer, so what a long attack keeps reporting stays known (emptied all at
//! once, a 1,000-source spray resent ~500,000 pairs in the next batch).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::Mutex;

/// About 16 bytes a pair, ~100 an alert's set: at most ~16 MiB.
const LIMIT: usize = 1_000_000;
/// What an alert's set counts for against `LIMIT`, in pairs.
const PER_ALERT: usize = 6;

#[derive(Debug, Default)]
pub struct KnownAccounts {
    hasher: RandomState,
    seen: Mutex<Generations>,
}

/// The keys are keyed hashes already: hashed again they would only cost time.
#[derive(Debug, Default)]
struct AsIs(u64);

impl Hasher for AsIs {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys are hashed as they are");
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Accounts = HashSet<u64, BuildHasherDefault<AsIs>>;

#[derive(Debug, Default)]
struct Generations {
    newer: HashMap<i64, Accounts>,
    older: HashMap<i64, Accounts>,
    /// Pairs in `newer`, and `PER_ALERT` for each alert.
    in_newer: usize,
}

impl Generations {
    fn contains(&self, (alert, account): Known) -> bool {
        let holds =
            |g: &HashMap<i64, Accounts>| g.get(&alert).is_some_and(|a| a.contains(&account));
        holds(&self.newer) || holds(&self.older)
    }

    /// Put the pair in the newer generation (from the older, if it is there).
    fn keep(&mut self, (alert, account): Known) {
        if let Some(older) = self.older.get_mut(&alert) {
            older.remove(&account);
        }
        let accounts = self.newer.entry(alert).or_insert_with(|| {
            // An alert's own set costs about what a few pairs do: counted so, so a million
            // alerts of one account each stay within the bound too.
            self.in_newer += PER_ALERT;
            Accounts::default()
        });
        if accounts.insert(account) {
            self.in_newer += 1;
            if self.in_newer >= LIMIT / 2 {
                self.older = std::mem::take(&mut self.newer);
                self.in_newer = 0;
            }
        }
    }
}

/// One (alert, account) pair, as remembered: the alert and the account's keyed hash.
pub type Known = (i64, u64);

impl KnownAccounts {
    /// The pair as remembered.
    pub fn key(&self, alert: i64, account: &str) -> Known {
        (alert, self.hasher.hash_one(account))
    }

    /// Whether the pair is known to be stored.
    pub fn holds(&self, key: Known) -> bool {
        self.seen.lock().expect("known accounts").contains(key)
    }

    /// Call `f` with each of `accounts` not known stored on `alert` (one lock for all); a
    /// known one found only in the older generation moves to the newer.
    pub fn each_unknown<'a, A: AsRef<str> + ?Sized + 'a>(
        &self,
        alert: i64,
        accounts: impl Iterator<Item = &'a A>,
        mut f: impl FnMut(&'a A),
    ) {
        let mut seen = self.seen.lock().expect("known accounts");
        let seen = &mut *seen;
        for account in accounts {
            let key = self.key(alert, account.as_ref());
            let newer = seen.newer.get(&alert);
            if newer.is_some_and(|a| a.contains(&key.1)) {
                continue;
            }
            if seen.older.get(&alert).is_some_and(|a| a.contains(&key.1)) {
                seen.keep(key);
                continue;
            }
            f(account);
        }
    }

    /// Keep the items whose pair is not known to be stored.
    pub fn retain_unknown<T>(&self, items: &mut Vec<T>, key: impl Fn(&T) -> Known) {
        let seen = self.seen.lock().expect("known accounts");
        items.retain(|item| !seen.contains(key(item)));
    }

    /// Remember pairs a committed transaction stored (or found stored).
    pub fn remember(&self, keys: &[Known]) {
        let mut seen = self.seen.lock().expect("known accounts");
        for &key in keys {
            seen.keep(key);
        }
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

    /// `LIMIT / 2` accounts of one alert.
    fn filler(known: &KnownAccounts, alert: i64) -> Vec<Known> {
        (0..LIMIT / 2)
            .map(|i| known.key(alert, &format!("x{i}")))
            .collect()
    }

    #[test]
    fn past_the_limit_the_oldest_half_is_forgotten() {
        let known = KnownAccounts::default();
        let first = known.key(1, "first");
        known.remember(&[first]);
        let half = filler(&known, 1_000);
        known.remember(&half);
        // The first generation filled and became the older: all still known.
        assert!(known.holds(first));
        assert!(half.iter().all(|&k| known.holds(k)));
        let more = filler(&known, 2_000);
        known.remember(&more);
        // The second filled: the first generation is forgotten, the second kept.
        assert!(!known.holds(first));
        assert!(more.iter().all(|&k| known.holds(k)));
        // Of `half`, what went into the second generation: the pairs past the first swap,
        // which came at LIMIT / 2 counted = 2 alerts' sets + `first` + the rest of `half`.
        let kept = half.iter().filter(|&&k| known.holds(k)).count();
        assert_eq!(kept, 2 * PER_ALERT + 1);
    }

    #[test]
    fn a_pair_still_reported_survives_the_swap_that_forgets_its_generation() {
        let known = KnownAccounts::default();
        let (reported, idle) = (known.key(1, "still"), known.key(1, "idle"));
        known.remember(&[reported, idle]);
        // Both move to the older generation.
        known.remember(&filler(&known, 1_000));
        // One is reported again (found known, in the older generation: moved to the newer).
        let names = ["still".to_string()];
        let mut unknown = Vec::new();
        known.each_unknown(1, names.iter(), |a| unknown.push(a.clone()));
        assert!(unknown.is_empty());
        // The next swap forgets the older generation: the idle pair, not the reported one.
        known.remember(&filler(&known, 2_000));
        assert!(known.holds(reported));
        assert!(!known.holds(idle));
    }

    #[test]
    fn many_alerts_of_one_account_each_stay_within_the_bound() {
        let known = KnownAccounts::default();
        let alerts: Vec<Known> = (0..LIMIT as i64).map(|a| known.key(a, "root")).collect();
        known.remember(&alerts);
        let seen = known.seen.lock().unwrap();
        let sets = seen.newer.len() + seen.older.len();
        assert!(
            sets <= LIMIT / (PER_ALERT + 1) + 1,
            "{sets} alerts' sets kept"
        );
    }

    #[test]
    fn retain_unknown_keeps_only_the_pairs_not_remembered() {
        let known = KnownAccounts::default();
        known.remember(&[known.key(1, "alice")]);
        let mut pairs = vec![(1, "alice"), (1, "bob"), (2, "alice")];
        known.retain_unknown(&mut pairs, |&(alert, account)| known.key(alert, account));
        assert_eq!(pairs, [(1, "bob"), (2, "alice")]);
    }

    #[test]
    fn each_unknown_passes_only_the_accounts_not_remembered_on_that_alert() {
        let known = KnownAccounts::default();
        known.remember(&[known.key(1, "alice")]);
        let names = ["alice".to_string(), "bob".to_string()];
        let mut unknown = Vec::new();
        known.each_unknown(1, names.iter(), |a| unknown.push(a.clone()));
        assert_eq!(unknown, ["bob"]);
        unknown.clear();
        known.each_unknown(2, names.iter(), |a| unknown.push(a.clone()));
        assert_eq!(unknown, ["alice", "bob"]);
    }
}
