//! Distinct-account episodes (`spray`): the window counts the distinct accounts one source
//! failed on; an episode is a run of exceeding events with no gap of `gap_ms` or more, and
//! what it reports is the set of accounts in its exceeding windows. An alert's count is the
//! size of the union of those sets, so an account is counted once per alert however often
//! it leaves and re-enters the window.

use super::{SCAN, Window, evaluate_accounts};

/// One episode of a spray key, as far as a batch shows it (its accounts borrowed from the
/// state and the batch: most are known already, and a caller copies only the others).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SprayEpisode<'a> {
    /// The first exceeding event (see `spray_episodes`).
    pub since_ms: i64,
    pub first_exceeding_ms: i64,
    pub last_exceeding_ms: i64,
    pub peak: u32,
    /// The distinct accounts in the episode's exceeding windows, in no order (a caller
    /// that keeps few of them sorts those).
    pub accounts: Vec<&'a str>,
}

/// The episodes a batch of (time, account) failures makes on a key with `previous` state
/// ((account, latest time) pairs, each account once), in time order.
pub fn spray_episodes<'a, A: AsRef<str>>(
    window: Window,
    gap_ms: i64,
    previous: &'a [(A, i64)],
    batch: &[(i64, &'a str)],
) -> Vec<SprayEpisode<'a>> {
    let verdict = evaluate_accounts(window, previous, batch);
    if verdict.exceeding == 0 {
        return Vec::new();
    }
    let mut sorted = batch.to_vec();
    sorted.sort_unstable();
    // (first, last, peak) of each run of exceeding events, new or stored.
    let mut runs: Vec<(i64, i64, u32)> = Vec::new();
    let exceeding = sorted
        .iter()
        .zip(&verdict.counts)
        .filter(|&(_, &count)| count >= window.fire_at)
        .map(|(&(t, _), &count)| (t, count));
    let stored_crossing = verdict
        .first_exceeding_ms
        .filter(|first| !sorted.iter().any(|(t, _)| t == first))
        .map(|t| (t, window.fire_at));
    let mut points: Vec<(i64, u32)> = exceeding.chain(stored_crossing).collect();
    points.sort_unstable();
    for (t, count) in points {
        match runs.last_mut() {
            Some(run) if t - run.1 < gap_ms => {
                run.1 = t;
                run.2 = run.2.max(count);
            }
            _ => runs.push((t, t, count)),
        }
    }
    runs.into_iter()
        .map(|(first, last, peak)| {
            let inside = |t: i64| t > first - window.length_ms && t <= last;
            // The state's accounts once each; the batch's may repeat them or each other.
            let mut accounts: Vec<&'a str> = previous
                .iter()
                .filter(|(_, t)| inside(*t))
                .map(|(a, _)| a.as_ref())
                .collect();
            let stored = accounts.len();
            let mut new: Vec<&'a str> = sorted
                .iter()
                .filter(|(t, _)| inside(*t))
                .map(|(_, a)| *a)
                .collect();
            new.sort_unstable();
            new.dedup();
            if new.len() <= SCAN {
                new.retain(|a| !accounts[..stored].contains(a));
                accounts.extend(new);
            } else {
                accounts.extend(new);
                accounts.sort_unstable();
                accounts.dedup();
            }
            SprayEpisode {
                // Only each account's latest failure is kept: an older start would depend
                // on the batching, the first exceeding event does not.
                since_ms: first,
                first_exceeding_ms: first,
                last_exceeding_ms: last,
                peak,
                accounts,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1000;

    #[test]
    fn thirty_four_accounts_tried_twice_count_thirty_four() {
        // Each account tried, then again after it left the 60 s window: still 34 accounts.
        let names: Vec<String> = (0..34).map(|i| format!("user{i}")).collect();
        let mut batch: Vec<(i64, &str)> = Vec::new();
        for (i, n) in names.iter().enumerate() {
            batch.push((i as i64 * SEC, n));
            batch.push((100 * SEC + i as i64 * SEC, n));
        }
        let window = Window {
            fire_at: 20,
            length_ms: 60 * SEC,
        };
        let found = spray_episodes(window, 600 * SEC, &[] as &[(String, i64)], &batch);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].accounts.len(), 34);
        assert_eq!(found[0].peak, 34);
    }

    #[test]
    fn a_quiet_gap_makes_two_episodes() {
        let window = Window {
            fire_at: 2,
            length_ms: 60 * SEC,
        };
        let batch = [(0, "a"), (SEC, "b"), (900 * SEC, "c"), (901 * SEC, "d")];
        let found = spray_episodes(window, 600 * SEC, &[] as &[(String, i64)], &batch);
        let accounts: Vec<_> = found.iter().map(|e| e.accounts.join(",")).collect();
        assert_eq!(accounts, ["a,b", "c,d"]);
    }
}
