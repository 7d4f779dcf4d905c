//! Unit tests of event-time episodes: thresholds, gaps, late events, and the same episodes
//! and counts whatever the batching and arrival order (within the lateness).

use super::*;

const SEC: i64 = 1000;

fn w(fire_at: u32, secs: i64) -> Window {
    Window {
        fire_at,
        length_ms: secs * SEC,
    }
}

/// (first exceeding, last exceeding, since, count) of each episode, folding what each
/// batch returns the way alerts do: an episode within `gap` of an alert's exceeding events
/// continues it (joining every alert it touches), else it opens one.
fn replay(window: Window, gap: i64, batches: &[Vec<i64>]) -> Vec<(i64, i64, i64, u64)> {
    let mut stored: Vec<i64> = Vec::new();
    let mut alerts: Vec<(i64, i64, i64, u64)> = Vec::new();
    for batch in batches {
        for ep in episodes(window, gap, &stored, batch, false) {
            let touching: Vec<usize> = (0..alerts.len())
                .filter(|&i| {
                    alerts[i].1 > ep.first_exceeding_ms - gap
                        && alerts[i].0 < ep.last_exceeding_ms + gap
                })
                .collect();
            let mut merged = (
                ep.first_exceeding_ms,
                ep.last_exceeding_ms,
                ep.since_ms,
                ep.added,
            );
            for &i in touching.iter().rev() {
                let a = alerts.remove(i);
                merged = (
                    merged.0.min(a.0),
                    merged.1.max(a.1),
                    merged.2.min(a.2),
                    merged.3 + a.3,
                );
            }
            alerts.push(merged);
        }
        stored.extend(batch);
    }
    alerts.sort_unstable();
    alerts
}

#[test]
fn the_fifth_fires_and_counts_the_five() {
    let four = episodes(
        w(5, 900),
        900 * SEC,
        &[],
        &[0, SEC, 2 * SEC, 3 * SEC],
        false,
    );
    assert_eq!(four, []);
    let fifth = episodes(
        w(5, 900),
        900 * SEC,
        &[0, SEC, 2 * SEC, 3 * SEC],
        &[4 * SEC],
        false,
    );
    let want = Episode {
        since_ms: 0,
        first_exceeding_ms: 4 * SEC,
        last_exceeding_ms: 4 * SEC,
        added: 5,
        newly_exceeding: 1,
        peak: 5,
    };
    assert_eq!(fifth, [want]);
}

#[test]
fn an_event_exactly_a_window_later_does_not_count_the_first() {
    assert_eq!(episodes(w(2, 60), 60 * SEC, &[0], &[60 * SEC], false), []);
    let v = episodes(w(2, 60), 60 * SEC, &[0], &[60 * SEC - 1], false);
    assert_eq!(v[0].added, 2);
}

#[test]
fn a_gap_splits_one_batch_into_two_episodes() {
    let times = [0, SEC, 2 * SEC, 200 * SEC, 201 * SEC, 202 * SEC];
    let v = episodes(w(3, 60), 100 * SEC, &[], &times, false);
    assert_eq!(v.len(), 2, "{v:?}");
    assert_eq!((v[0].first_exceeding_ms, v[0].added), (2 * SEC, 3));
    assert_eq!((v[1].since_ms, v[1].added), (200 * SEC, 3));
    // With a longer gap the two bursts are one episode of six.
    let v = episodes(w(3, 60), 300 * SEC, &[], &times, false);
    assert_eq!((v.len(), v[0].added), (1, 6));
}

#[test]
fn twelve_events_count_twelve_in_any_arrival_order() {
    // Issue 20: neighbours swapped, one per request, must not say 22.
    let mut order: Vec<i64> = (0..12).map(|i| i * SEC).collect();
    for pair in order.chunks_mut(2) {
        pair.swap(0, 1);
    }
    let batches: Vec<Vec<i64>> = order.iter().map(|&t| vec![t]).collect();
    assert_eq!(
        replay(w(11, 60), 900 * SEC, &batches),
        [(10 * SEC, 11 * SEC, 0, 12)]
    );
}

#[test]
fn a_late_event_inside_an_episode_adds_one_and_crosses_nothing_again() {
    let stored: Vec<i64> = (0..5).map(|i| 2 * i * SEC).collect();
    let v = episodes(w(5, 60), 900 * SEC, &stored, &[3 * SEC], false);
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].added, v[0].newly_exceeding), (1, 1));
}

#[test]
fn a_truncated_state_never_counts_an_event_twice() {
    // The newest 4 of a dense burst: what came before is unknown, taken as exceeding.
    let stored = [10 * SEC, 11 * SEC, 12 * SEC, 13 * SEC];
    let v = episodes(w(5, 60), 900 * SEC, &stored, &[14 * SEC], true);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].added, 1);
}

/// A small deterministic generator (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn batchings_and_orders_within_the_lateness_give_the_same_episodes() {
    let (window, gap, lateness) = (w(5, 60), 120 * SEC, 20 * SEC);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for round in 0..200 {
        // Bursts and trickles over an hour, some times equal.
        let mut times: Vec<i64> = Vec::new();
        let mut t = 0;
        for _ in 0..40 + rng.below(40) {
            t += match rng.below(4) {
                0 => rng.below(200) as i64 * SEC,
                1 => 0,
                _ => rng.below(15) as i64 * SEC + rng.below(1000) as i64,
            };
            times.push(t);
        }
        let one_by_one: Vec<Vec<i64>> = times.iter().map(|&t| vec![t]).collect();
        let want = replay(window, gap, &one_by_one);
        assert_eq!(replay(window, gap, &[times.clone()]), want, "round {round}");
        let chunks: Vec<Vec<i64>> = times.chunks(7).map(<[i64]>::to_vec).collect();
        assert_eq!(replay(window, gap, &chunks), want, "round {round}");
        // Shuffled: each event delayed by up to the lateness, in batches of up to 5.
        let mut arrival: Vec<(i64, i64)> = times
            .iter()
            .map(|&t| (t + rng.below(lateness as u64) as i64, t))
            .collect();
        arrival.sort_unstable();
        let mut shuffled = Vec::new();
        let mut rest = &arrival[..];
        while !rest.is_empty() {
            let n = (1 + rng.below(5) as usize).min(rest.len());
            shuffled.push(rest[..n].iter().map(|&(_, t)| t).collect());
            rest = &rest[n..];
        }
        assert_eq!(replay(window, gap, &shuffled), want, "round {round}");
    }
}
