//! Sliding-window state shared across replicas: ONE Lua call per batch returns every key's
//! previous state (its newest `cap` entries) and stores the batch's entries merged into it,
//! trimmed to `cap` and expiring after the window. Atomic per call, so replicas see each
//! other's events and exactly one sees a crossing. While Redis is unreachable the same state
//! is kept in process.
//!
//! A key's state is one short string (one `SET … PX … GET` per new key, a second `SET` to
//! store the merge when it had state): event times, newest
//! first, as `t,t,…`; or, for distinct-account windows, `t:account` lines (accounts hold no
//! control characters), newest first, one per account with its latest time.

use crate::redis_link::RedisLink;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

/// ARGV: runs of keys sharing `distinct cap window_ms` — `run distinct cap window_ms`, then
/// per key its new entries in the stored format, newest first. Returns per key its previous
/// state string ('' when it had none).
const EXCHANGE_LUA: &str = r#"
local function events(s, into)
  for t in string.gmatch(s, '[^,]+') do into[#into + 1] = {tonumber(t), t} end
  return into
end
local function accounts(s, into)
  for line in string.gmatch(s, '[^\n]+') do
    local t, account = string.match(line, '^(%-?%d+):(.*)$')
    local n = tonumber(t)
    local seen = into[account]
    if not seen then
      into[account] = {n, line}
      into[#into + 1] = account
    elseif n > seen[1] then
      seen[1] = n
      seen[2] = line
    end
  end
  return into
end
local function newest(entries, cap, sep)
  table.sort(entries, function(x, y)
    if x[1] ~= y[1] then return x[1] > y[1] end
    return x[2] > y[2]
  end)
  local kept = {}
  for i = 1, math.min(cap, #entries) do kept[i] = entries[i][2] end
  return table.concat(kept, sep)
end
local out = {}
local a = 1
local k = 1
while k <= #KEYS do
  local run = tonumber(ARGV[a])
  local distinct = ARGV[a + 1] == '1'
  local cap = tonumber(ARGV[a + 2])
  local window = ARGV[a + 3]
  a = a + 4
  for _ = 1, run do
    local key = KEYS[k]
    local new = ARGV[a]
    a = a + 1
    local previous
    if new == '' then
      previous = redis.call('GET', key)
    else
      -- Most keys are new: store the batch's entries and read the old state in one call;
      -- only a key that had state is merged and stored again (still inside this script).
      previous = redis.call('SET', key, new, 'PX', window, 'GET')
      if previous then
        local value
        if distinct then
          local by = accounts(new, accounts(previous, {}))
          local entries = {}
          for i = 1, #by do entries[i] = by[by[i]] end
          value = newest(entries, cap, '\n')
        else
          value = newest(events(new, events(previous, {})), cap, ',')
        end
        redis.call('SET', key, value, 'PX', window)
      end
    end
    out[k] = previous or ''
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
    #[error("redis returned a window state not in the stored format")]
    State,
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
        let mut encoded = String::new();
        for run in updates
            .chunk_by(|x, y| (distinct(x), x.cap, x.window_ms) == (distinct(y), y.cap, y.window_ms))
        {
            let first = &run[0];
            call.arg(run.len())
                .arg(u8::from(distinct(first)))
                .arg(first.cap)
                .arg(first.window_ms);
            for u in run {
                call.key(self.redis.key(&format!("logins:win:{}", u.key)));
                encoded.clear();
                encode(&u.entries, &mut encoded);
                call.arg(encoded.as_str());
            }
        }
        let raw: Vec<String> = call.invoke_async(conn).await?;
        if raw.len() != updates.len() {
            return Err(ExchangeError::Shape(raw.len(), updates.len()));
        }
        raw.iter()
            .zip(updates)
            .map(|(state, u)| decode(state, distinct(u)).ok_or(ExchangeError::State))
            .collect()
    }
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

/// A stored state string; `None` if it is not in the stored format.
fn decode(state: &str, distinct: bool) -> Option<Previous> {
    if distinct {
        let pairs = state
            .split('\n')
            .filter(|line| !line.is_empty())
            .map(|line| {
                let (t, account) = line.split_once(':')?;
                Some((account.to_string(), t.parse().ok()?))
            });
        Some(Previous::Accounts(pairs.collect::<Option<_>>()?))
    } else {
        let times = state
            .split(',')
            .filter(|t| !t.is_empty())
            .map(|t| t.parse().ok());
        Some(Previous::Events(times.collect::<Option<_>>()?))
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
