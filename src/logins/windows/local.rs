//! The in-process stand-in for the Redis windows, used while Redis is unreachable: the same
//! exchange over a map with expiry.

use super::{Entries, Previous, WindowUpdate};
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Default)]
pub(super) struct LocalWindows {
    keys: HashMap<(String, String), LocalKey>,
    purged_at: Option<Instant>,
    /// Events at the same time are kept apart by a counter (accounts by their name).
    events_seen: u64,
}

struct LocalKey {
    /// (score, member), newest first, at most `cap`.
    entries: Vec<(i64, String)>,
    expires_at: Instant,
}

impl LocalWindows {
    pub(super) fn exchange(&mut self, updates: &[WindowUpdate]) -> Vec<Previous> {
        let now = Instant::now();
        if self
            .purged_at
            .is_none_or(|at| now.duration_since(at) > Duration::from_secs(1))
        {
            self.keys.retain(|_, k| k.expires_at > now);
            self.purged_at = Some(now);
        }
        let mut previous = Vec::with_capacity(updates.len());
        for u in updates {
            let cap = u.cap as usize;
            let id = (u.rule.clone(), u.key.clone());
            let live = self.keys.get(&id).filter(|k| k.expires_at > now);
            let stored: Vec<(i64, String)> = live
                .map(|k| k.entries.iter().take(cap).cloned().collect())
                .unwrap_or_default();
            previous.push(match u.entries {
                Entries::Events(_) => Previous::Events(stored.iter().map(|(t, _)| *t).collect()),
                Entries::Accounts(_) => Previous::Accounts(
                    stored
                        .iter()
                        .map(|(t, a)| (a.as_str().into(), *t))
                        .collect(),
                ),
            });
            let mut entries = stored;
            match &u.entries {
                Entries::Events(times) if times.is_empty() => continue,
                Entries::Accounts(pairs) if pairs.is_empty() => continue,
                Entries::Events(times) => {
                    for t in times {
                        self.events_seen += 1;
                        entries.push((*t, format!("{:x}", self.events_seen)));
                    }
                }
                Entries::Accounts(pairs) => {
                    for (t, account) in pairs {
                        match entries.iter_mut().find(|(_, a)| a == account) {
                            Some(entry) => entry.0 = entry.0.max(*t),
                            None => entries.push((*t, account.clone())),
                        }
                    }
                }
            }
            entries.sort_unstable_by(|a, b| b.cmp(a));
            entries.truncate(cap);
            let ttl = Duration::from_millis(u.window_ms.max(1) as u64);
            self.keys.insert(
                id,
                LocalKey {
                    entries,
                    expires_at: now + ttl,
                },
            );
        }
        previous
    }
}
