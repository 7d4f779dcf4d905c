//! Sliding-window state shared across replicas: ONE Lua call per batch returns every key's
//! previous state (its newest `cap` entries) and stores the batch's entries merged into it,
//! trimmed to `cap`. Atomic per call, so replicas see each other's events and exactly one
//! sees a crossing. While Redis is unreachable the same state is kept in process (`local`).
//!
//! A key's state is one short string: event times, newest first, as `t,t,…`; or, for
//! distinct-account windows, `t:account` lines (accounts hold no control characters), newest
//! first, one per account with its latest time. It is a field of the rule's hash for the
//! current generation (`exchange.lua`): a batch costs a few Redis calls per rule, not one or
//! two per key, and state is dropped a whole hash at a time instead of a key at a time. Each
//! write is versioned, and a replica keeps the states it last exchanged (`held`): Redis
//! sends a key's state only when it moved on since, so an exchange costs what is new.
//!
//! What Redis holds is not always the whole truth: after an outage (its events were counted
//! here, in process) or once Redis lost its data (a restart: the epoch marker is gone), an
//! answer says so ([`Answer`]), and the caller rebuilds those keys from the stored events and
//! hands the rebuilt states back ([`Windows::repair`]), once per key and epoch.
//!
//! An exchange that timed out is not an outage: Redis may yet run it, or may not. Only that
//! batch's keys are in doubt ([`Answer::Unsure`]): the caller rebuilds them and unions them
//! back on the same connection (so after the exchange, if Redis runs it at all; a union counts
//! an entry it already holds once). Only when that repair fails too does the next exchange
//! open a new epoch, which rebuilds every key: a slow exchange on a loaded Redis never does.

mod call;
mod held;
mod local;

use crate::redis_link::RedisLink;
use held::HeldStates;
use local::LocalWindows;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

static EXCHANGE: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("exchange.lua")));

/// At most this many fields per call inside the script (Lua's `unpack` has a stack limit).
const FIELDS_PER_CALL: usize = 1_000;

/// A key's delta in Redis is folded into its base by the caller once it would pass this
/// many entries (`exchange.lua`, whose own fallback fold waits for four times as many).
const FOLD: u32 = 24;

/// At most this many keys' states are held in process (see `held`): an attack's keys, a
/// few hundred bytes each.
const HELD_KEYS: usize = 100_000;

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

/// A key's state before the exchange, newest first. An account's name is shared (a state
/// held here and the next one built from it name the same accounts: no copy per batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Previous {
    Events(Vec<i64>),
    Accounts(Vec<(Arc<str>, i64)>),
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
    /// The exchange timed out: Redis may or may not have stored it, and what it held is
    /// unknown. The caller rebuilds every key and repairs them with `epoch: None`.
    Unsure,
}

/// The previous states of an exchange's keys, in order, and where they came from (shared:
/// a state this replica holds is handed out as held, not copied).
#[derive(Debug)]
pub struct Exchanged {
    pub previous: Vec<Arc<Previous>>,
    pub answer: Answer,
}

/// The sliding-window store: Redis when reachable, else in process.
pub struct Windows {
    redis: Arc<RedisLink>,
    local: Mutex<LocalWindows>,
    /// Redis failed since the last exchange it answered: the next one starts a new epoch.
    outage: AtomicBool,
    /// Held by the exchange that opens the new epoch after an outage: concurrent batches wait
    /// for it (and then exchange in that epoch) instead of each opening its own.
    reopening: tokio::sync::Mutex<()>,
    /// Held by the exchange in flight.
    exchanging: tokio::sync::Mutex<()>,
    /// An epoch the caller found needs no rebuild (its first): Redis skips the marks.
    clean: Mutex<Option<i64>>,
    /// Exchanges given up after the bulk timeout, since start.
    timed_out: AtomicU64,
    /// The states this replica last exchanged, by version: Redis does not send them again.
    held: Mutex<HeldStates>,
    /// Keys answered from a held state (not sent back by Redis), since start.
    held_used: AtomicU64,
}

/// How the script is asked.
#[derive(Clone, Copy)]
enum Mode {
    Exchange,
    NewEpoch,
    /// Union rebuilt states in; with an epoch, mark the keys rebuilt in it.
    Union(Option<i64>),
}

impl Windows {
    pub fn new(redis: Arc<RedisLink>) -> Self {
        Windows {
            redis,
            local: Mutex::new(LocalWindows::default()),
            outage: AtomicBool::new(false),
            reopening: tokio::sync::Mutex::new(()),
            exchanging: tokio::sync::Mutex::new(()),
            clean: Mutex::new(None),
            timed_out: AtomicU64::new(0),
            held: Mutex::new(HeldStates::new(HELD_KEYS)),
            held_used: AtomicU64::new(0),
        }
    }

    /// Store every update's entries and return each key's previous state, in order.
    /// A timed-out exchange is not repaired here: the next one opens a new epoch.
    pub async fn exchange(&self, updates: Vec<WindowUpdate>) -> Vec<Previous> {
        let exchanged = self.exchange_checked(updates, 0).await;
        if exchanged.answer == Answer::Unsure {
            self.lost();
        }
        exchanged
            .previous
            .into_iter()
            .map(Arc::unwrap_or_clone)
            .collect()
    }

    /// As `exchange`, saying where the answer came from; `span_ms`: how long after a new
    /// epoch the caller rebuilds keys (the marks are looked up while it is younger).
    pub async fn exchange_checked(&self, updates: Vec<WindowUpdate>, span_ms: i64) -> Exchanged {
        let updates: Vec<WindowUpdate> = updates.into_iter().map(newest_only).collect();
        if let Some(mut conn) = self.redis.bulk_conn() {
            // After an outage one exchange opens the new epoch; the others wait for it.
            let reopening = match self.outage.load(Ordering::Relaxed) {
                true => Some(self.reopening.lock().await),
                false => None,
            };
            let mode = match reopening.is_some() && self.outage.load(Ordering::Relaxed) {
                true => Mode::NewEpoch,
                false => Mode::Exchange,
            };
            // Where this replica holds most of the batch's states (an attack from few
            // sources), one such exchange in flight at a time: each is sent with the versions
            // the one before it wrote, so Redis sends back no state this replica alone feeds
            // (and runs one script at a time anyway). Batches of mostly new keys overlap.
            let mut held = self.held_of(&updates);
            let exchanging = match held.iter().flatten().count() * 4 >= updates.len() {
                true => {
                    let turn = self.exchanging.lock().await;
                    held = self.held_of(&updates);
                    Some(turn)
                }
                false => None,
            };
            let result = self
                .in_redis(&mut conn, &updates, held, mode, span_ms)
                .await;
            drop(exchanging);
            match result {
                Ok(exchanged) => {
                    // Only the exchange that opened the new epoch ends an outage: one that
                    // chose its mode before a concurrent batch failed must not clear it.
                    if let Mode::NewEpoch = mode {
                        self.outage.store(false, Ordering::Relaxed);
                    }
                    self.redis.record_ok();
                    return exchanged;
                }
                Err(ExchangeError::Redis(e)) if e.is_timeout() => {
                    self.timed_out.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("opsguard_login_window_exchanges_timed_out_total")
                        .increment(1);
                    self.redis.record_error(&e.to_string());
                    return Exchanged {
                        previous: updates.iter().map(nothing).collect(),
                        answer: Answer::Unsure,
                    };
                }
                Err(e) => self.redis.record_error(&e.to_string()),
            }
        }
        self.outage.store(true, Ordering::Relaxed);
        let previous = self.local.lock().expect("windows lock").exchange(&updates);
        Exchanged {
            previous: previous.into_iter().map(Arc::new).collect(),
            answer: Answer::Local,
        }
    }

    /// Union rebuilt states (each update's entries: the key's whole state from the stored
    /// events) into Redis; with `epoch`, mark the keys rebuilt in it. A failure is recorded:
    /// marked keys stay unmarked and are rebuilt again; after an `Unsure` answer (`epoch`
    /// `None`) Redis may lack the batch, so the next exchange opens a new epoch.
    pub async fn repair(&self, epoch: Option<i64>, span_ms: i64, states: Vec<WindowUpdate>) {
        let states: Vec<WindowUpdate> = states.into_iter().map(newest_only).collect();
        let repaired = match self.redis.bulk_conn() {
            None => false,
            Some(mut conn) => match self
                .in_redis(
                    &mut conn,
                    &states,
                    vec![None; states.len()],
                    Mode::Union(epoch),
                    span_ms,
                )
                .await
            {
                Ok(_) => {
                    self.redis.record_ok();
                    true
                }
                Err(e) => {
                    self.redis.record_error(&e.to_string());
                    false
                }
            },
        };
        if !repaired && epoch.is_none() {
            self.lost();
        }
    }

    /// Redis may lack entries counted here (an `Unsure` answer that could not be repaired):
    /// the next exchange opens a new epoch.
    pub fn lost(&self) {
        self.outage.store(true, Ordering::Relaxed);
    }

    /// Keys whose previous state came from what this replica held, not from Redis, since
    /// start.
    pub fn states_held_used(&self) -> u64 {
        self.held_used.load(Ordering::Relaxed)
    }

    /// Exchanges given up after the bulk timeout since start (each one's keys rebuilt).
    pub fn timed_out(&self) -> u64 {
        self.timed_out.load(Ordering::Relaxed)
    }

    /// Remember that `epoch` needs no rebuild (Redis then skips looking up the marks).
    pub fn known_clean(&self, epoch: i64) {
        *self.clean.lock().expect("windows lock") = Some(epoch);
    }
}

/// The state of a key with none stored.
fn nothing(update: &WindowUpdate) -> Arc<Previous> {
    Arc::new(if distinct(update) {
        Previous::Accounts(Vec::new())
    } else {
        Previous::Events(Vec::new())
    })
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
