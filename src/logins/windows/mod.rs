//! Sliding-window state shared across replicas: ONE Lua call per batch returns every key's
//! previous state (its newest `cap` entries) and stores the batch's entries merged into it,
//! trimmed to `cap`. Atomic per call, so replicas see each other's events and exactly one
//! sees a crossing. While Redis is unreachable the same state is kept in process (`local`).
//!
//! A key's state is one short string: event times, newest first, as `t,t,…`; or, for
//! distinct-account windows, `t:account` lines (accounts hold no control characters), newest
//! first, one per account with its latest time. It is a field of the rule's hash for the
//! current generation (`exchange.lua`): a batch costs a few Redis calls per rule, not one or
//! two per key, and state is dropped a whole hash at a time instead of a key at a time.
//!
//! What Redis holds is not always the whole truth: after an outage (its events were counted
//! here, in process) or once Redis lost its data (a restart: the epoch marker is gone), an
//! answer says so ([`Answer`]), and the caller rebuilds those keys from the stored events and
//! hands the rebuilt states back ([`Windows::repair`]), once per key and epoch.

mod local;

use crate::redis_link::RedisLink;
use local::LocalWindows;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

static EXCHANGE: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("exchange.lua")));

/// At most this many fields per call inside the script (Lua's `unpack` has a stack limit).
const FIELDS_PER_CALL: usize = 1_000;

/// A batch's new entries for one window key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entries {
    /// Event times (ms); equal times are separate events.
    Events(Vec<i64>),
    /// (time ms, account): each account is stored once, with its latest time.
    Accounts(Vec<(i64, String)>),
}

/// One key's part of an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowUpdate {
    /// The rule whose window this is (`[A-Za-z0-9_-]+`, as rule names are).
    pub rule: String,
    /// The key within the rule (e.g. `ip:203.0.113.7`).
    pub key: String,
    /// How many of the newest entries are kept and returned (the rule's `fire_at`).
    pub cap: u32,
    pub window_ms: i64,
    pub entries: Entries,
}

/// A key's state before the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Previous {
    Events(Vec<i64>),
    Accounts(Vec<(String, i64)>),
}

#[derive(Debug, thiserror::Error)]
enum ExchangeError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis returned a window state for position {0}, which no key has")]
    Position(usize),
    #[error("redis returned a window state not in the stored format")]
    State,
}

/// Where an exchange's answer came from, and how far it can be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// From Redis, which holds the windows since `epoch` (Redis's clock, ms). `young`: the
    /// epoch is younger than the span asked about, and `marked[i]` says whether key `i` was
    /// rebuilt in it (all `false` when the epoch was the one known to need no rebuild).
    Redis {
        epoch: i64,
        young: bool,
        marked: Vec<bool>,
    },
    /// Redis did not answer: from the in-process windows, which hold only what this process
    /// counted while it was unreachable.
    Local,
}

/// The previous states of an exchange's keys, in order, and where they came from.
#[derive(Debug)]
pub struct Exchanged {
    pub previous: Vec<Previous>,
    pub answer: Answer,
}

/// The sliding-window store: Redis when reachable, else in process.
pub struct Windows {
    redis: Arc<RedisLink>,
    local: Mutex<LocalWindows>,
    /// Redis failed since the last exchange it answered: the next one starts a new epoch.
    outage: AtomicBool,
    /// An epoch the caller found needs no rebuild (its first): Redis skips the marks.
    clean: Mutex<Option<i64>>,
}

/// How the script is asked.
#[derive(Clone, Copy)]
enum Mode {
    Exchange,
    NewEpoch,
    Union(i64),
}

impl Windows {
    pub fn new(redis: Arc<RedisLink>) -> Self {
        Windows {
            redis,
            local: Mutex::new(LocalWindows::default()),
            outage: AtomicBool::new(false),
            clean: Mutex::new(None),
        }
    }

    /// Store every update's entries and return each key's previous state, in order.
    pub async fn exchange(&self, updates: Vec<WindowUpdate>) -> Vec<Previous> {
        self.exchange_checked(updates, 0).await.previous
    }

    /// As `exchange`, saying where the answer came from; `span_ms`: how long after a new
    /// epoch the caller rebuilds keys (the marks are looked up while it is younger).
    pub async fn exchange_checked(&self, updates: Vec<WindowUpdate>, span_ms: i64) -> Exchanged {
        let updates: Vec<WindowUpdate> = updates.into_iter().map(newest_only).collect();
        if let Some(mut conn) = self.redis.conn() {
            let mode = if self.outage.load(Ordering::Relaxed) {
                Mode::NewEpoch
            } else {
                Mode::Exchange
            };
            match self.in_redis(&mut conn, &updates, mode, span_ms).await {
                Ok(exchanged) => {
                    self.outage.store(false, Ordering::Relaxed);
                    self.redis.record_ok();
                    return exchanged;
                }
                Err(e) => self.redis.record_error(&e.to_string()),
            }
        }
        self.outage.store(true, Ordering::Relaxed);
        let previous = self.local.lock().expect("windows lock").exchange(&updates);
        Exchanged {
            previous,
            answer: Answer::Local,
        }
    }

    /// Union rebuilt states (each update's entries: the key's whole state from the stored
    /// events) into Redis and mark the keys rebuilt in `epoch`. A failure is recorded and
    /// left: the keys stay unmarked and are rebuilt again.
    pub async fn repair(&self, epoch: i64, span_ms: i64, states: Vec<WindowUpdate>) {
        let states: Vec<WindowUpdate> = states.into_iter().map(newest_only).collect();
        let Some(mut conn) = self.redis.conn() else {
            return;
        };
        match self
            .in_redis(&mut conn, &states, Mode::Union(epoch), span_ms)
            .await
        {
            Ok(_) => self.redis.record_ok(),
            Err(e) => self.redis.record_error(&e.to_string()),
        }
    }

    /// Remember that `epoch` needs no rebuild (Redis then skips looking up the marks).
    pub fn known_clean(&self, epoch: i64) {
        *self.clean.lock().expect("windows lock") = Some(epoch);
    }

    async fn in_redis(
        &self,
        conn: &mut redis::aio::ConnectionManager,
        updates: &[WindowUpdate],
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
            Mode::Union(epoch) => ("u", Some(epoch)),
        };
        call.arg(flag)
            .arg(span_ms)
            .arg(epoch.map(|e| e.to_string()).unwrap_or_default());
        let mut encoded = String::new();
        let groups = order.chunk_by(|&x, &y| group_of(&updates[x]) == group_of(&updates[y]));
        for group in groups.flat_map(|g| g.chunks(FIELDS_PER_CALL)) {
            let first = &updates[group[0]];
            call.arg(&first.rule)
                .arg(u8::from(distinct(first)))
                .arg(first.cap)
                .arg(first.window_ms)
                .arg(group.len());
            for &i in group {
                encoded.clear();
                encode(&updates[i].entries, &mut encoded);
                call.arg(&updates[i].key).arg(encoded.as_str());
            }
        }
        let mut previous: Vec<Previous> = updates.iter().map(nothing).collect();
        if let Mode::Union(epoch) = mode {
            // A union answers nothing: its keys are now rebuilt (marked) in `epoch`.
            let _: redis::Value = call.invoke_async(conn).await?;
            return Ok(Exchanged {
                previous,
                answer: Answer::Redis {
                    epoch,
                    young: true,
                    marked: vec![true; updates.len()],
                },
            });
        }
        let (epoch, young, found, marks): (String, i64, Vec<(usize, String)>, Vec<usize>) =
            call.invoke_async(conn).await?;
        let position = |p: usize| {
            p.checked_sub(1)
                .and_then(|p| order.get(p).copied())
                .ok_or(ExchangeError::Position(p))
        };
        for (p, state) in found {
            let i = position(p)?;
            previous[i] = decode(&state, &updates[i]).ok_or(ExchangeError::State)?;
        }
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
        let mut latest: HashMap<&str, i64> = HashMap::new();
        for line in state.split('\n').filter(|line| !line.is_empty()) {
            let (t, account) = line.split_once(':')?;
            let t: i64 = t.parse().ok()?;
            let seen = latest.entry(account).or_insert(t);
            *seen = (*seen).max(t);
        }
        let mut pairs: Vec<(i64, &str)> = latest.into_iter().map(|(a, t)| (t, a)).collect();
        pairs.sort_unstable_by(|x, y| y.cmp(x));
        pairs.truncate(cap);
        let pairs = pairs.into_iter().map(|(t, a)| (a.to_string(), t));
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

/// The state of a key with none stored.
fn nothing(update: &WindowUpdate) -> Previous {
    if distinct(update) {
        Previous::Accounts(Vec::new())
    } else {
        Previous::Events(Vec::new())
    }
}

fn distinct(update: &WindowUpdate) -> bool {
    matches!(update.entries, Entries::Accounts(_))
}

/// Only the newest `cap` entries of a batch can survive the trim: send no others.
fn newest_only(mut update: WindowUpdate) -> WindowUpdate {
    let cap = update.cap as usize;
    match &mut update.entries {
        Entries::Events(times) => {
            times.sort_unstable_by(|a, b| b.cmp(a));
            times.truncate(cap);
        }
        Entries::Accounts(pairs) => {
            let mut latest: HashMap<String, i64> = HashMap::with_capacity(pairs.len());
            for (t, account) in pairs.drain(..) {
                let entry = latest.entry(account).or_insert(t);
                *entry = (*entry).max(t);
            }
            pairs.extend(latest.into_iter().map(|(account, t)| (t, account)));
            pairs.sort_unstable_by(|a, b| b.cmp(a));
            pairs.truncate(cap);
        }
    }
    update
}
