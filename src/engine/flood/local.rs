//! The per-process flood windows: used while Redis is unreachable, and the reference the
//! Redis scripts follow. Time is passed in, so the rules are tested without waiting.

use super::{Dropped, Limit, Outcome};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Past this many keys, stale entries are swept before a new one is added.
const SWEEP_AT: usize = 10_000;

struct Open {
    dropped: Dropped,
    /// When the row for this window is written.
    due: Instant,
}

pub struct Windows {
    window: Duration,
    /// Admitted hits per limit key, oldest first.
    hits: HashMap<String, VecDeque<Instant>>,
    /// Drops per subject since its first drop of the window.
    tallies: HashMap<String, Open>,
    /// When each stranger may next be sent the neutral line.
    neutral: HashMap<i64, Instant>,
}

impl Windows {
    pub fn new(window: Duration) -> Self {
        Windows {
            window,
            hits: HashMap::new(),
            tallies: HashMap::new(),
            neutral: HashMap::new(),
        }
    }

    /// Admit (counting a hit against every limit) when each limit has room in the sliding
    /// window; otherwise count a drop for the first full limit's subject, and admit nothing.
    pub fn hit(&mut self, limits: &[Limit], now: Instant) -> Outcome {
        let window = self.window;
        if self.hits.len() > SWEEP_AT {
            self.hits
                .retain(|_, hits| hits.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        for (i, limit) in limits.iter().enumerate() {
            let hits = self.hits.entry(limit.key.clone()).or_default();
            while hits
                .front()
                .is_some_and(|t| now.duration_since(*t) >= window)
            {
                hits.pop_front();
            }
            if hits.len() >= limit.max as usize {
                let tally = self
                    .tallies
                    .entry(limit.tally.subject.clone())
                    .or_insert_with(|| Open {
                        dropped: Dropped {
                            count: 0,
                            ..limit.tally.clone()
                        },
                        due: now + window,
                    });
                tally.dropped.count += 1;
                return Outcome::Dropped { by: i };
            }
        }
        for limit in limits {
            self.hits
                .get_mut(&limit.key)
                .expect("looked at above")
                .push_back(now);
        }
        Outcome::Allowed
    }

    /// The tallies whose window has ended (every tally when `all`), removed: each is one
    /// aggregate audit row. The next drop of such a subject starts a new window.
    pub fn take_due(&mut self, now: Instant, all: bool) -> Vec<Dropped> {
        let due: Vec<String> = self
            .tallies
            .iter()
            .filter(|(_, t)| all || t.due <= now)
            .map(|(subject, _)| subject.clone())
            .collect();
        due.into_iter()
            .filter_map(|subject| self.tallies.remove(&subject))
            .map(|t| t.dropped)
            .collect()
    }

    /// True at most once per `every` for one stranger.
    pub fn neutral_due(&mut self, user: i64, every: Duration, now: Instant) -> bool {
        if self.neutral.len() > SWEEP_AT {
            self.neutral.retain(|_, next| *next > now);
        }
        match self.neutral.get(&user) {
            Some(next) if *next > now => false,
            _ => {
                self.neutral.insert(user, now + every);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Tally;
    use super::*;

    const W: Duration = Duration::from_secs(60);

    fn limit(key: &str, max: u32) -> Limit {
        Limit {
            key: key.into(),
            max,
            tally: Tally::new(key, Some(7), Some(-100)),
        }
    }

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn exactly_max_hits_pass_in_a_window_and_the_next_is_dropped() {
        let (mut w, t0) = (Windows::new(W), Instant::now());
        let limits = [limit("sender:7", 3)];
        for i in 0..3 {
            assert_eq!(w.hit(&limits, at(t0, i)), Outcome::Allowed, "hit {i}");
        }
        assert_eq!(w.hit(&limits, at(t0, 3)), Outcome::Dropped { by: 0 });
        assert_eq!(w.hit(&limits, at(t0, 59_999)), Outcome::Dropped { by: 0 });
    }

    #[test]
    fn the_window_slides_from_the_oldest_admitted_hit() {
        let (mut w, t0) = (Windows::new(W), Instant::now());
        let limits = [limit("sender:7", 2)];
        assert_eq!(w.hit(&limits, at(t0, 0)), Outcome::Allowed);
        assert_eq!(w.hit(&limits, at(t0, 30_000)), Outcome::Allowed);
        // One ms before the first hit leaves the window: still full.
        assert_eq!(w.hit(&limits, at(t0, 59_999)), Outcome::Dropped { by: 0 });
        // The first hit is exactly one window old: it no longer counts.
        assert_eq!(w.hit(&limits, at(t0, 60_000)), Outcome::Allowed);
        assert_eq!(w.hit(&limits, at(t0, 60_001)), Outcome::Dropped { by: 0 });
        // Drops are not hits: they never push the window on.
        assert_eq!(w.hit(&limits, at(t0, 90_000)), Outcome::Allowed);
    }

    #[test]
    fn a_drop_counts_nothing_against_the_other_limits() {
        let (mut w, t0) = (Windows::new(W), Instant::now());
        let sender = limit("sender:7", 1);
        let chat = limit("chat:-100", 2);
        assert_eq!(w.hit(&[sender.clone(), chat.clone()], t0), Outcome::Allowed);
        // The sender is full: dropped by it, and the chat keeps its room.
        assert_eq!(
            w.hit(&[sender.clone(), chat.clone()], at(t0, 1)),
            Outcome::Dropped { by: 0 }
        );
        let other = limit("sender:8", 5);
        assert_eq!(
            w.hit(&[other.clone(), chat.clone()], at(t0, 2)),
            Outcome::Allowed
        );
        // Now the chat is full (two admitted): another sender is dropped by the chat.
        assert_eq!(w.hit(&[other, chat], at(t0, 3)), Outcome::Dropped { by: 1 });
    }

    #[test]
    fn drops_are_tallied_per_subject_and_reported_once_when_the_window_ends() {
        let (mut w, t0) = (Windows::new(W), Instant::now());
        let limits = [limit("sender:7", 1)];
        w.hit(&limits, t0);
        for i in 1..=5 {
            assert_eq!(w.hit(&limits, at(t0, i)), Outcome::Dropped { by: 0 });
        }
        // The window of the first drop (at 1 ms) ends at 60,001 ms.
        assert!(w.take_due(at(t0, 60_000), false).is_empty());
        let due = w.take_due(at(t0, 60_001), false);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].count, 5);
        assert_eq!(
            (due[0].subject.as_str(), due[0].actor_id, due[0].chat_id),
            ("sender:7", Some(7), Some(-100))
        );
        // Reported once; the next drop opens a new window of its own.
        assert!(w.take_due(at(t0, 120_000), false).is_empty());
        w.hit(&limits, at(t0, 60_002));
        assert_eq!(w.hit(&limits, at(t0, 60_003)), Outcome::Dropped { by: 0 });
        assert!(w.take_due(at(t0, 120_002), false).is_empty());
        let next = w.take_due(at(t0, 120_003), false);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].count, 1);
    }

    #[test]
    fn taking_all_reports_open_windows_too() {
        let (mut w, t0) = (Windows::new(W), Instant::now());
        let limits = [limit("sender:7", 1)];
        w.hit(&limits, t0);
        w.hit(&limits, t0);
        assert!(w.take_due(t0, false).is_empty());
        assert_eq!(w.take_due(t0, true).len(), 1);
        assert!(w.take_due(t0, true).is_empty());
    }

    #[test]
    fn the_neutral_line_is_due_once_per_period_per_stranger() {
        let (mut w, t0) = (Windows::new(W), Instant::now());
        let hour = Duration::from_secs(3600);
        assert!(w.neutral_due(7, hour, t0));
        assert!(!w.neutral_due(7, hour, at(t0, 3_599_999)));
        assert!(w.neutral_due(8, hour, at(t0, 1)), "per stranger");
        assert!(w.neutral_due(7, hour, at(t0, 3_600_000)));
        assert!(!w.neutral_due(7, hour, at(t0, 3_600_001)));
    }

    #[test]
    fn stale_keys_are_swept_once_there_are_many() {
        let (mut w, t0) = (Windows::new(W), Instant::now());
        for i in 0..=SWEEP_AT as i64 + 1 {
            w.hit(&[limit(&format!("sender:{i}"), 1)], t0);
        }
        assert!(w.hits.len() > SWEEP_AT);
        w.hit(&[limit("sender:new", 1)], at(t0, 60_000));
        assert_eq!(w.hits.len(), 1, "only the fresh key is left");
        for i in 0..=SWEEP_AT as i64 + 1 {
            w.neutral_due(i, W, t0);
        }
        w.neutral_due(-1, W, at(t0, 60_000));
        assert_eq!(w.neutral.len(), 1);
    }
}
