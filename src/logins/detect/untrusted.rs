//! Where Redis's windows cannot be trusted (it was unreachable, lost its data, or did not
//! answer in time), the detector's keys' previous states rebuilt from the stored events.

use super::{Detector, at};
use crate::domain::auth_event::AuthEvent;
use crate::logins::batch_keys::BatchKeys;
use crate::logins::rebuild::{self, Wanted};
use crate::logins::rule;
use crate::logins::windows::{Answer, Previous, WindowUpdate};
use std::collections::HashMap;
use std::sync::Arc;

impl Detector {
    /// The positions whose previous state Redis may lack: all when it did not answer (in
    /// time); while an epoch that needs rebuilding is young, the keys not yet rebuilt in it.
    pub(super) async fn untrusted(&self, answer: &Answer, keys: usize) -> Vec<usize> {
        match answer {
            Answer::Local | Answer::Unsure => (0..keys).collect(),
            Answer::Redis { young: false, .. } => Vec::new(),
            Answer::Redis { epoch, marked, .. } => {
                if !self.needs_rebuild(*epoch).await {
                    return Vec::new();
                }
                (0..marked.len()).filter(|&i| !marked[i]).collect()
            }
        }
    }

    /// Whether `epoch` needs its windows rebuilt (asked once per epoch; a store that does
    /// not answer is asked again next time, and meanwhile Redis is trusted).
    async fn needs_rebuild(&self, epoch: i64) -> bool {
        if let Some((known, needs)) = *self.epoch.lock().expect("epoch lock")
            && known == epoch
        {
            return needs;
        }
        match rebuild::needs_rebuild(&self.pool, epoch).await {
            Ok(needs) => {
                *self.epoch.lock().expect("epoch lock") = Some((epoch, needs));
                if needs {
                    tracing::warn!(logins.epoch = epoch, "logins.windows_rebuilding");
                } else {
                    self.windows.known_clean(epoch);
                }
                needs
            }
            Err(e) => {
                tracing::warn!(error = %e, "logins.epoch_unknown");
                false
            }
        }
    }

    /// Replace the `untrusted` slots' previous states with ones rebuilt from the stored
    /// events, and hand the rebuilt states to Redis (when it answered). A store that does
    /// not answer leaves the states as they were (logged).
    pub(super) async fn rebuild(
        &self,
        keys: &BatchKeys<'_>,
        events: &[AuthEvent],
        times: &[i64],
        untrusted: &[usize],
        answer: &Answer,
        previous: &mut [Arc<Previous>],
    ) {
        let mut wanted = Wanted::default();
        let mut since = i64::MAX;
        for &p in untrusted {
            let ((r, key), members) = keys.slot(p);
            wanted.add(key);
            let length = self.states.of_rule(*r).window_ms;
            for &i in members {
                since = since.min(times[i].saturating_sub(length));
            }
        }
        let stored = match rebuild::stored_failures(&self.pool, at(since), &wanted).await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(error = %e, keys = untrusted.len(), "logins.rebuild_failed");
                if *answer == Answer::Unsure {
                    // Nothing to repair with: Redis may lack this batch.
                    self.windows.lost();
                }
                return;
            }
        };
        let stored_times: Vec<i64> = stored.iter().map(|e| e.at.timestamp_millis()).collect();
        let stored_by_key: HashMap<(usize, String), Vec<usize>> =
            rule::by_key(&self.rules, &self.settings.ignore, &stored)
                .into_iter()
                .map(|((r, key), members)| ((r, key.to_string()), members))
                .collect();
        let mut repairs = Vec::with_capacity(untrusted.len());
        for &p in untrusted {
            let ((r, key), members) = keys.slot(p);
            let rule = &self.rules[*r];
            let state = self.states.of_rule(*r);
            let name = key.to_string();
            let stored_entries: Vec<(i64, &str)> = stored_by_key
                .get(&(*r, name.clone()))
                .into_iter()
                .flatten()
                .map(|&i| rule.entry(&stored[i], stored_times[i]))
                .collect();
            let batch: Vec<(i64, &str)> = members
                .iter()
                .map(|&i| rule.entry(&events[i], times[i]))
                .collect();
            let distinct = rule.counting.counts_accounts();
            let (before, whole) = rebuild::rebuilt(&stored_entries, &batch, distinct, state.keep);
            previous[p] = Arc::new(before);
            repairs.push(WindowUpdate {
                rule: state.name.clone(),
                key: name,
                cap: state.keep,
                window_ms: state.window_ms,
                entries: whole,
            });
        }
        metrics::counter!("opsguard_login_windows_rebuilt_total").increment(repairs.len() as u64);
        match answer {
            Answer::Redis { epoch, .. } => {
                let epoch = Some(*epoch);
                self.windows.repair(epoch, self.span_ms, repairs).await;
            }
            Answer::Unsure => self.windows.repair(None, self.span_ms, repairs).await,
            Answer::Local => {}
        }
    }
}
