//! One call of the exchange script (`exchange.lua`): the batch's keys sent grouped by rule,
//! each with the version of the state held here; the answer read back into each key's
//! previous state, and the states the call wrote held for the next one.

use super::held::{self, Held, HeldStates, Version};
use super::{
    Answer, EXCHANGE, Entries, ExchangeError, Exchanged, FIELDS_PER_CALL, FOLD, Mode, Previous,
    WindowUpdate, Windows, distinct, nothing,
};
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Windows {
    /// The version of each key's state held here (none for a union: it reads nothing).
    pub(super) fn held_of(&self, updates: &[WindowUpdate]) -> Vec<Option<Held>> {
        let held = self.held.lock().expect("windows lock");
        if held.is_empty() {
            return vec![None; updates.len()];
        }
        let mut id = String::new();
        let mut held_of = |u: &WindowUpdate| {
            HeldStates::id_into(&u.rule, &u.key, &mut id);
            held.get(&id).cloned()
        };
        updates.iter().map(&mut held_of).collect()
    }

    /// One call of the script; `held`: what `held_of` found (all `None` for a union).
    pub(super) async fn in_redis(
        &self,
        conn: &mut redis::aio::ConnectionManager,
        updates: &[WindowUpdate],
        held: Vec<Option<Held>>,
        mode: Mode,
        span_ms: i64,
    ) -> Result<Exchanged, ExchangeError> {
        // Sent grouped by rule; answers name their position in that order.
        let mut order: Vec<usize> = (0..updates.len()).collect();
        order.sort_by_key(|&i| group_of(&updates[i]));
        let mut call = EXCHANGE.prepare_invoke();
        call.arg(self.redis.key("logins:win:"));
        let clean = *self.clean.lock().expect("windows lock");
        let (flag, epoch) = match mode {
            Mode::Exchange => ("x", clean),
            Mode::NewEpoch => ("r", clean),
            Mode::Union(epoch) => ("u", epoch),
        };
        call.arg(flag)
            .arg(span_ms)
            .arg(epoch.map(|e| e.to_string()).unwrap_or_default());
        // Where the state held here is Redis's and its delta is due to fold: the folded base,
        // sorted and trimmed here, so Redis only stores it.
        let bases: Vec<Option<Previous>> = updates
            .iter()
            .zip(&held)
            .map(|(u, held)| {
                let held = held.as_ref()?;
                let added = entries_in(&u.entries);
                (added > 0 && held.since_fold + added > FOLD)
                    .then(|| held::merged(&held.state, &u.entries, u.cap))
                    .flatten()
            })
            .collect();
        let mut encoded = String::new();
        let mut version = String::new();
        let groups = order.chunk_by(|&x, &y| group_of(&updates[x]) == group_of(&updates[y]));
        for group in groups.flat_map(|g| g.chunks(FIELDS_PER_CALL)) {
            let first = &updates[group[0]];
            let holding = group.iter().filter(|&&i| held[i].is_some()).count();
            call.arg(&first.rule)
                .arg(u8::from(distinct(first)))
                .arg(first.cap)
                .arg(first.window_ms)
                .arg(group.len())
                .arg(holding);
            for &i in group {
                encoded.clear();
                encode(&updates[i].entries, &mut encoded);
                call.arg(&updates[i].key).arg(encoded.as_str());
            }
            for (position, &i) in group.iter().enumerate() {
                let Some(h) = &held[i] else { continue };
                version.clear();
                let _ = write!(version, "{}", h.version);
                if let Some(state) = &bases[i] {
                    version.push('|');
                    encode_state(state, &mut version);
                }
                call.arg(position + 1).arg(version.as_str());
            }
        }
        let mut previous: Vec<Arc<Previous>> = updates.iter().map(nothing).collect();
        if let Mode::Union(_) = mode {
            // A union answers nothing.
            let _: redis::Value = call.invoke_async(conn).await?;
            return Ok(Exchanged {
                previous,
                answer: Answer::Unsure,
            });
        }
        let (epoch, young, found, marks, written): Answered = call.invoke_async(conn).await?;
        let position = |p: usize| {
            p.checked_sub(1)
                .and_then(|p| order.get(p).copied())
                .ok_or(ExchangeError::Position(p))
        };
        let mut sent = vec![false; updates.len()];
        for (p, state) in found {
            let i = position(p)?;
            previous[i] = Arc::new(decode(&state, &updates[i]).ok_or(ExchangeError::State)?);
            sent[i] = true;
        }
        // Entries in each key's delta after this call, as far as known here: none once a base
        // sent was taken; unknown (so due to fold) for a state sent back.
        let since_fold: Vec<u32> = (0..updates.len())
            .map(|i| match (&held[i], sent[i], &bases[i]) {
                (_, true, _) => FOLD,
                (Some(_), false, Some(_)) => 0,
                (Some(h), false, None) => h.since_fold + entries_in(&updates[i].entries),
                (None, false, _) => entries_in(&updates[i].entries),
            })
            .collect();
        // A key not sent back is still at the version held here.
        let mut used = 0;
        for (i, held) in held.into_iter().enumerate() {
            if let Some(held) = held.filter(|_| !sent[i]) {
                previous[i] = held.state;
                used += 1;
            }
        }
        self.held_used.fetch_add(used, Ordering::Relaxed);
        metrics::counter!("opsguard_login_window_states_held_used_total").increment(used);
        crate::logins::cpu_bound(|| self.hold(updates, &previous, &since_fold, &written))?;
        let mut marked = vec![false; updates.len()];
        for p in marks {
            marked[position(p)?] = true;
        }
        let epoch = epoch.parse().map_err(|_| ExchangeError::State)?;
        Ok(Exchanged {
            previous,
            answer: Answer::Redis {
                epoch,
                young: young == 1,
                marked,
            },
        })
    }
}

/// The script's answer: epoch, young (0/1), (position, state) sent back, positions already
/// rebuilt, the version written.
type Answered = (String, i64, Vec<(usize, String)>, Vec<usize>, String);

impl Windows {
    /// Hold each written key's state as the exchange left it in Redis, at `written`.
    fn hold(
        &self,
        updates: &[WindowUpdate],
        previous: &[Arc<Previous>],
        since_fold: &[u32],
        written: &str,
    ) -> Result<(), ExchangeError> {
        let version = Version::parse(written).ok_or(ExchangeError::State)?;
        let mut held = self.held.lock().expect("windows lock");
        // Redis hands out versions in order; one at or below the last seen in the same epoch
        // means it rolled back (a failover, a restore) and may hand the same one out again:
        // nothing held can be trusted to match any more.
        held.written(version);
        for ((u, previous), &since_fold) in updates.iter().zip(previous).zip(since_fold) {
            let added = entries_in(&u.entries) as usize;
            // Too few to hold however they merge (most keys of a spread-out attack): no
            // merge, no allocation.
            if added == 0 || held::len(previous) + added < HOLD_FROM {
                continue;
            }
            // A state of a few entries costs Redis little to send back: not held (most
            // keys of a spread-out attack), so no map grows with them.
            let state = held::merged(previous, &u.entries, u.cap);
            if let Some(state) = state.filter(|s| held::len(s) >= HOLD_FROM) {
                let id = HeldStates::id(&u.rule, &u.key);
                held.put(
                    id,
                    Held {
                        version,
                        state: Arc::new(state),
                        since_fold,
                    },
                );
            }
        }
        Ok(())
    }
}

/// States of fewer entries are not held.
const HOLD_FROM: usize = 4;

/// How many entries a batch adds.
fn entries_in(entries: &Entries) -> u32 {
    let n = match entries {
        Entries::Events(times) => times.len(),
        Entries::Accounts(pairs) => pairs.len(),
    };
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A whole state (a base) in the stored format.
fn encode_state(state: &Previous, out: &mut String) {
    match state {
        Previous::Events(times) => {
            for (i, t) in times.iter().enumerate() {
                let _ = write!(out, "{}{t}", if i > 0 { "," } else { "" });
            }
        }
        Previous::Accounts(pairs) => {
            for (i, (account, t)) in pairs.iter().enumerate() {
                let _ = write!(out, "{}{t}:{account}", if i > 0 { "\n" } else { "" });
            }
        }
    }
}

/// What one call's group shares: the rule and its window's shape.
fn group_of(u: &WindowUpdate) -> (&str, bool, u32, i64) {
    (&u.rule, distinct(u), u.cap, u.window_ms)
}

/// New entries (newest first, as `newest_only` leaves them) in the stored format.
fn encode(entries: &Entries, out: &mut String) {
    match entries {
        Entries::Events(times) => {
            for (i, t) in times.iter().enumerate() {
                let _ = write!(out, "{}{t}", if i > 0 { "," } else { "" });
            }
        }
        Entries::Accounts(pairs) => {
            for (i, (t, account)) in pairs.iter().enumerate() {
                let _ = write!(out, "{}{t}:{account}", if i > 0 { "\n" } else { "" });
            }
        }
    }
}

/// A stored state string as the update's newest `cap` entries, newest first (accounts once
/// each, with their latest time; equal times by account, descending, as the script trims);
/// `None` if it is not in the stored format. The script prepends without sorting or
/// trimming until a state grows long, so both happen here.
fn decode(state: &str, update: &WindowUpdate) -> Option<Previous> {
    let cap = update.cap as usize;
    if distinct(update) {
        let mut latest: foldhash::HashMap<&str, i64> = foldhash::HashMap::default();
        for line in state.split('\n').filter(|line| !line.is_empty()) {
            let (t, account) = line.split_once(':')?;
            let t: i64 = t.parse().ok()?;
            let seen = latest.entry(account).or_insert(t);
            *seen = (*seen).max(t);
        }
        let mut pairs: Vec<(i64, &str)> = latest.into_iter().map(|(a, t)| (t, a)).collect();
        pairs.sort_unstable_by(|x, y| y.cmp(x));
        pairs.truncate(cap);
        let pairs = pairs.into_iter().map(|(t, a)| (Arc::from(a), t));
        Some(Previous::Accounts(pairs.collect()))
    } else {
        let times = state
            .split(',')
            .filter(|t| !t.is_empty())
            .map(|t| t.parse());
        let mut times: Vec<i64> = times.collect::<Result<_, _>>().ok()?;
        times.sort_unstable_by(|x, y| y.cmp(x));
        times.truncate(cap);
        Some(Previous::Events(times))
    }
}
