//! Rate limits per user and risk class: an exact sliding window in Redis (shared by every
//! replica), or in process memory while Redis is unreachable. Hits counted in memory during
//! an outage still count when Redis is back (which has forgotten them, or restarted empty)
//! until they leave the window, so over an outage a subject gets at most twice its limit
//! in any window from one replica (N replicas each count their own memory: (N+1)×), never a
//! fresh budget.

use crate::config::RateLimitSettings;
use crate::domain::RiskClass;
use crate::redis_link::RedisLink;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Removes entries older than the window, then admits or returns the wait in ms.
/// Uses the server's clock so replicas with skewed clocks agree.
const SLIDING_WINDOW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now, now .. '-' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over the limit; retry after this long.
    Limited(Duration),
}

pub struct RateLimiter {
    settings: RateLimitSettings,
    redis: Arc<RedisLink>,
    script: redis::Script,
    local: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RateLimiter {
    pub fn new(settings: RateLimitSettings, redis: Arc<RedisLink>) -> Self {
        RateLimiter {
            settings,
            redis,
            script: redis::Script::new(SLIDING_WINDOW),
            local: Mutex::new(HashMap::new()),
        }
    }

    fn limit(&self, risk: RiskClass) -> u32 {
        match risk {
            RiskClass::Read => self.settings.read,
            RiskClass::Operate => self.settings.operate,
            RiskClass::Sensitive => self.settings.sensitive,
        }
    }

    /// `subject` names who is limited (e.g. `user:42`).
    pub async fn check(&self, subject: &str, risk: RiskClass) -> Verdict {
        let key = format!("rl:{subject}:{}", risk.as_str());
        let limit = self.limit(risk);
        let window = Duration::from_secs(self.settings.window_secs);
        if let Some(wait) = self.outage_hits_full(&key, limit, window) {
            return Verdict::Limited(wait);
        }
        if let Some(mut conn) = self.redis.conn() {
            let nonce: u64 = rand::random();
            let result: Result<i64, _> = self
                .script
                .key(self.redis.key(&key))
                .arg(window.as_millis() as u64)
                .arg(limit)
                .arg(nonce)
                .invoke_async(&mut conn)
                .await;
            match result {
                Ok(0) => {
                    self.redis.record_ok();
                    self.count_beside_outage_hits(&key, window);
                    return Verdict::Allowed;
                }
                Ok(wait_ms) => {
                    self.redis.record_ok();
                    return Verdict::Limited(Duration::from_millis(wait_ms as u64));
                }
                Err(e) => self.redis.record_error(&e.to_string()),
            }
        }
        self.check_locally(&key, limit, window)
    }

    /// While hits from an outage are still in the window: `Some(wait)` when they alone
    /// reach the limit. Creates no entry for a subject that has none.
    fn outage_hits_full(&self, key: &str, limit: u32, window: Duration) -> Option<Duration> {
        let now = Instant::now();
        let mut map = self.local.lock().expect("rate limiter lock");
        let hits = map.get_mut(key)?;
        while hits
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            hits.pop_front();
        }
        if hits.is_empty() {
            map.remove(key);
            return None;
        }
        (hits.len() >= limit as usize).then(|| {
            (*hits.front().expect("non-empty") + window)
                .saturating_duration_since(now)
                .max(Duration::from_millis(1))
        })
    }

    /// A hit Redis allowed also counts in memory while outage hits are in the window.
    fn count_beside_outage_hits(&self, key: &str, window: Duration) {
        let now = Instant::now();
        let mut map = self.local.lock().expect("rate limiter lock");
        if let Some(hits) = map.get_mut(key)
            && hits.back().is_some_and(|t| now.duration_since(*t) < window)
        {
            hits.push_back(now);
        }
    }

    /// The per-process fallback: the same sliding window, in memory.
    fn check_locally(&self, key: &str, limit: u32, window: Duration) -> Verdict {
        let now = Instant::now();
        let mut map = self.local.lock().expect("rate limiter lock");
        if map.len() > 10_000 {
            map.retain(|_, hits| hits.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let hits = map.entry(key.to_string()).or_default();
        while hits
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            hits.pop_front();
        }
        if hits.len() < limit as usize {
            hits.push_back(now);
            Verdict::Allowed
        } else {
            let oldest = *hits.front().expect("non-empty when over limit");
            Verdict::Limited(
                (oldest + window)
                    .saturating_duration_since(now)
                    .max(Duration::from_millis(1)),
            )
        }
    }
}
