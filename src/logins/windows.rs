//! Sliding-window state shared across replicas: ONE Lua call per batch returns every key's
//! previous state (its newest `cap` entries) and stores the batch's entries, trimmed to `cap`
//! and expiring after the window. Atomic per call, so replicas see each other's events and
//! exactly one sees a crossing. While Redis is unreachable the same state is kept in process.

use crate::redis_link::RedisLink;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

/// ARGV: a member prefix unique to the call, then runs of keys sharing `distinct cap
/// window_ms`: `run distinct cap window_ms`, then per key `n` and its `n` entries — a score
/// (the member is `prefix:key:i`) or, for distinct keys, a (score, account) pair. Returns per
/// key its previous newest `cap` entries: scores only, or (account, score) pairs.
const EXCHANGE_LUA: &str = r#"
local prefix = ARGV[1]
local out = {}
local a = 2
local k = 1
while k <= #KEYS do
  local run = tonumber(ARGV[a])
  local distinct = ARGV[a + 1] == '1'
  local cap = tonumber(ARGV[a + 2])
  local window = ARGV[a + 3]
  a = a + 4
  for _ = 1, run do
    local key = KEYS[k]
    local n = tonumber(ARGV[a])
    a = a + 1
    local previous = redis.call('ZREVRANGE', key, 0, cap - 1, 'WITHSCORES')
    if distinct then
      out[k] = previous
    else
      local scores = {}
      for i = 2, #previous, 2 do scores[#scores + 1] = previous[i] end
      out[k] = scores
    end
    local i = 0
    while i < n do
      local args = {}
      local j = 0
      while j < 500 and i < n do
        if distinct then
          args[#args + 1] = ARGV[a + 2 * i]
          args[#args + 1] = ARGV[a + 2 * i + 1]
        else
          args[#args + 1] = ARGV[a + i]
          args[#args + 1] = prefix .. k .. ':' .. i
        end
        i = i + 1
        j = j + 1
      end
      if distinct then
        redis.call('ZADD', key, 'GT', unpack(args))
      else
        redis.call('ZADD', key, unpack(args))
      end
    end
    if distinct then a = a + 2 * n else a = a + n end
    if n > 0 then
      if #previous / 2 + n > cap then
        redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1))
      end
      redis.call('PEXPIRE', key, window)
    end
    k = k + 1
  end
end
return out
"#;

static EXCHANGE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(EXCHANGE_LUA));

/// A batch's new entries for one window key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entries {
    /// Event times (ms); each is stored as a unique member.
    Events(Vec<i64>),
    /// (time ms, account): each account is stored once, with its latest time.
    Accounts(Vec<(i64, String)>),
}

/// One key's part of an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowUpdate {
    /// The key, unprefixed and unique across rules (e.g. `ip-failures:ip:203.0.113.7`).
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
    #[error("redis returned {0} window states for {1} keys")]
    Shape(usize, usize),
    #[error("redis returned a score that is not a number")]
    Score,
}

/// The sliding-window store: Redis when reachable, else in process.
pub struct Windows {
    redis: Arc<RedisLink>,
    local: Mutex<LocalWindows>,
    /// Members of event entries are `<per-process random>:<counter>`, unique across replicas.
    member_prefix: String,
    next_member: AtomicU64,
}

impl Windows {
    pub fn new(redis: Arc<RedisLink>) -> Self {
        Windows {
            redis,
            local: Mutex::new(LocalWindows::default()),
            member_prefix: format!("{:016x}", rand::random::<u64>()),
            next_member: AtomicU64::new(0),
        }
    }

    /// Store every update's entries and return each key's previous state, in order. Updates
    /// of one rule should be adjacent: each run of equal (kind, cap, window) is sent once.
    pub async fn exchange(&self, updates: Vec<WindowUpdate>) -> Vec<Previous> {
        let updates: Vec<WindowUpdate> = updates.into_iter().map(newest_only).collect();
        if let Some(mut conn) = self.redis.conn() {
            match self.exchange_in_redis(&mut conn, &updates).await {
                Ok(previous) => {
                    self.redis.record_ok();
                    return previous;
                }
                Err(e) => self.redis.record_error(&e.to_string()),
            }
        }
        self.local
            .lock()
            .expect("windows lock")
            .exchange(&updates, || self.member())
    }

    fn member(&self) -> String {
        let n = self.next_member.fetch_add(1, Ordering::Relaxed);
        format!("{}:{n:x}", self.member_prefix)
    }

    async fn exchange_in_redis(
        &self,
        conn: &mut redis::aio::ConnectionManager,
        updates: &[WindowUpdate],
    ) -> Result<Vec<Previous>, ExchangeError> {
        let mut call = EXCHANGE.prepare_invoke();
        call.arg(format!("{}:", self.member()));
        for run in updates
            .chunk_by(|x, y| (distinct(x), x.cap, x.window_ms) == (distinct(y), y.cap, y.window_ms))
        {
            let first = &run[0];
            call.arg(run.len())
                .arg(u8::from(distinct(first)))
                .arg(first.cap)
                .arg(first.window_ms);
            for u in run {
                call.key(self.redis.key(&format!("logins:window:{}", u.key)));
                match &u.entries {
                    Entries::Events(times) => {
                        call.arg(times.len());
                        for t in times {
                            call.arg(*t);
                        }
                    }
                    Entries::Accounts(pairs) => {
                        call.arg(pairs.len());
                        for (t, account) in pairs {
                            call.arg(*t).arg(account);
                        }
                    }
                }
            }
        }
        let raw: Vec<Vec<String>> = call.invoke_async(conn).await?;
        if raw.len() != updates.len() {
            return Err(ExchangeError::Shape(raw.len(), updates.len()));
        }
        let score = |s: &str| {
            s.parse::<f64>()
                .map(|f| f as i64)
                .map_err(|_| ExchangeError::Score)
        };
        raw.into_iter()
            .zip(updates)
            .map(|(values, u)| match u.entries {
                Entries::Events(_) => Ok(Previous::Events(
                    values
                        .iter()
                        .map(|s| score(s))
                        .collect::<Result<_, ExchangeError>>()?,
                )),
                Entries::Accounts(_) => Ok(Previous::Accounts(
                    values
                        .chunks_exact(2)
                        .map(|pair| Ok((pair[0].clone(), score(&pair[1])?)))
                        .collect::<Result<_, ExchangeError>>()?,
                )),
            })
            .collect()
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

/// The in-process stand-in: the same exchange over a map with expiry.
#[derive(Default)]
struct LocalWindows {
    keys: HashMap<String, LocalKey>,
    purged_at: Option<Instant>,
}

struct LocalKey {
    /// (score, member), newest first, at most `cap`.
    entries: Vec<(i64, String)>,
    expires_at: Instant,
}

impl LocalWindows {
    fn exchange(
        &mut self,
        updates: &[WindowUpdate],
        mut member: impl FnMut() -> String,
    ) -> Vec<Previous> {
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
            let live = self.keys.get(&u.key).filter(|k| k.expires_at > now);
            let stored: Vec<(i64, String)> = live
                .map(|k| k.entries.iter().take(cap).cloned().collect())
                .unwrap_or_default();
            previous.push(match u.entries {
                Entries::Events(_) => Previous::Events(stored.iter().map(|(t, _)| *t).collect()),
                Entries::Accounts(_) => {
                    Previous::Accounts(stored.iter().map(|(t, a)| (a.clone(), *t)).collect())
                }
            });
            let mut entries = stored;
            match &u.entries {
                Entries::Events(times) if times.is_empty() => continue,
                Entries::Accounts(pairs) if pairs.is_empty() => continue,
                Entries::Events(times) => entries.extend(times.iter().map(|t| (*t, member()))),
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
                u.key.clone(),
                LocalKey {
                    entries,
                    expires_at: now + ttl,
                },
            );
        }
        previous
    }
}
