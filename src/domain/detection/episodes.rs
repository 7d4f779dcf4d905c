//! Event counting as a function of the events in event-time order, whatever batches they
//! came in: an event *exceeds* when its window `(t − window, t]` holds `fire_at` events or
//! more; an event is *covered* when some exceeding event's window holds it; an *episode* is
//! a run of exceeding events with no gap of `gap_ms` or more, and its count is the number of
//! events it covers. Given a key's stored events (all of them within the horizon, see
//! `horizon_ms`) and new ones, `episodes` returns what the new events change: per episode,
//! how many events became covered and which events became exceeding. Summing those over any
//! batching of the same events gives the same episodes and counts (tested by
//! `tests/api/detection/batchings.rs`).
//!
//! A state truncated to its newest entries (a flood) cannot tell how the events near its
//! oldest entry stood: those are taken as exceeding and covered, before and after, so a
//! truncated key never counts an event twice.

use super::Window;

/// What new events changed in one episode of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Episode {
    /// The oldest event that became covered (or the first exceeding event if none did).
    pub since_ms: i64,
    /// The episode's first and last exceeding events among those in view.
    pub first_exceeding_ms: i64,
    pub last_exceeding_ms: i64,
    /// Events that became covered: what the episode's count grows by.
    pub added: u64,
    /// Events that became exceeding.
    pub newly_exceeding: u32,
    /// The highest window count among the episode's exceeding events in view.
    pub peak: u32,
}

/// How far back a key's stored events must reach, before its newest, for `episodes` to be
/// exact for events up to `lateness_ms` older than the newest.
pub fn horizon_ms(window: Window, lateness_ms: i64) -> i64 {
    lateness_ms.saturating_add(window.length_ms.saturating_mul(2))
}

/// One entry of the merged timeline.
struct Entry {
    t: i64,
    new: bool,
    /// Window count and whether covered, with and without the new events (stored only).
    count: u32,
    count_before: u32,
}

/// What `new` events change, given the key's `stored` events (any order; `truncated` when
/// older stored events were dropped). Episodes are split at gaps of `gap_ms` or more
/// between exceeding events; returned in time order, only those that changed.
pub fn episodes(
    window: Window,
    gap_ms: i64,
    stored: &[i64],
    new: &[i64],
    truncated: bool,
) -> Vec<Episode> {
    let mut stored = stored.to_vec();
    stored.sort_unstable();
    let mut new = new.to_vec();
    new.sort_unstable();
    let Some(&first_new) = new.first() else {
        return Vec::new();
    };
    let mut all: Vec<i64> = stored.iter().chain(&new).copied().collect();
    all.sort_unstable();
    let w = window.length_ms;
    let in_window = |times: &[i64], t: i64| {
        let hi = times.partition_point(|&x| x <= t);
        let lo = times.partition_point(|&x| x <= t - w);
        (hi - lo) as u32
    };
    // Only entries whose window may hold a new event can change; their windows reach back
    // one more window.
    let from = first_new.saturating_sub(w.saturating_mul(2));
    let blind_until = match (truncated, stored.first()) {
        (true, Some(&oldest)) => oldest.saturating_add(w),
        _ => i64::MIN,
    };
    let fire_at = window.fire_at;
    let mut entries: Vec<Entry> = Vec::new();
    let (mut s, mut n) = (stored.iter().peekable(), new.iter().peekable());
    loop {
        let take_new = match (s.peek(), n.peek()) {
            (Some(a), Some(b)) => b < a,
            (None, Some(_)) => true,
            (Some(_), None) => false,
            (None, None) => break,
        };
        let t = *if take_new { n.next() } else { s.next() }.unwrap_or(&0);
        if t <= from {
            continue;
        }
        let blind = t < blind_until;
        let count = if blind { fire_at } else { in_window(&all, t) };
        let count_before = if blind {
            fire_at
        } else {
            in_window(&stored, t)
        };
        entries.push(Entry {
            t,
            new: take_new,
            count,
            count_before,
        });
    }
    let covered_after = coverage(&entries, w, |e| e.count >= fire_at);
    let covered_before = coverage(&entries, w, |e| !e.new && e.count_before >= fire_at);
    let mut found: Vec<Episode> = Vec::new();
    let mut open: Option<Episode> = None;
    // Events that became covered before the next exceeding event (which covers them).
    let (mut pending, mut pending_since) = (0u64, None::<i64>);
    for (i, e) in entries.iter().enumerate() {
        if e.t <= first_new - w {
            continue;
        }
        let covered_now = covered_after[i] && (e.new || !covered_before[i]);
        if covered_now {
            pending += 1;
            pending_since.get_or_insert(e.t);
        }
        if e.count < fire_at {
            continue;
        }
        let became = e.new || e.count_before < fire_at;
        if let Some(ep) = open
            .as_mut()
            .filter(|ep| e.t - ep.last_exceeding_ms < gap_ms)
        {
            ep.last_exceeding_ms = e.t;
        } else {
            found.extend(open.take());
            open = Some(Episode {
                since_ms: e.t,
                first_exceeding_ms: e.t,
                last_exceeding_ms: e.t,
                added: 0,
                newly_exceeding: 0,
                peak: 0,
            });
        }
        let ep = open.as_mut().expect("an episode is open");
        ep.peak = ep.peak.max(e.count);
        ep.newly_exceeding += u32::from(became);
        if let Some(since) = pending_since.take() {
            ep.since_ms = ep.since_ms.min(since);
        }
        ep.added += std::mem::take(&mut pending);
    }
    found.extend(open);
    found.retain(|ep| ep.added > 0 || ep.newly_exceeding > 0);
    found
}

/// Whether each entry lies in the window of an entry `exceeds` holds for (one at or after
/// it, less than a window later).
fn coverage(entries: &[Entry], w: i64, exceeds: impl Fn(&Entry) -> bool) -> Vec<bool> {
    let mut covered = vec![false; entries.len()];
    let mut nearest: Option<i64> = None;
    for (i, e) in entries.iter().enumerate().rev() {
        if exceeds(e) {
            nearest = Some(e.t);
        }
        covered[i] = nearest.is_some_and(|x| x - e.t < w);
    }
    covered
}

#[cfg(test)]
#[path = "episodes_tests.rs"]
mod tests;
