//! Rate limits per user and risk class: an exact sliding window in Redis (shared by every
//! replica), or in process memory while Redis is unreachable. Hits counted in memory during
//! an outage still count when Redis is back (which has forgotten them, or restarted empty)
//! until they leave the window, so over an outage a subject gets at most twice its limit
//! in any window from one replica (N replicas each count their own memory: (N+1)×), never a
//! fresh budget.

use crate::config::RateLimitSettings;
use crate::domain::RiskClass;
use crate::redis_link::RedisLink;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod local;
pub use local::{LocalWindows, Verdict, retry_after};

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

pub struct RateLimiter {
    settings: RateLimitSettings,
    redis: Arc<RedisLink>,
    script: redis::Script,
    local: Mutex<LocalWindows>,
}

/// The limit of a risk class.
pub fn limit_for(settings: &RateLimitSettings, risk: RiskClass) -> u32 {
    match risk {
        RiskClass::Read => settings.read,
        RiskClass::Operate => settings.operate,
        RiskClass::Sensitive => settings.sensitive,
    }
}

/// The key a subject's hits of a risk class are counted under (before the Redis prefix).
pub fn key_of(subject: &str, risk: RiskClass) -> String {
    format!("rl:{subject}:{}", risk.as_str())
}

impl RateLimiter {
    pub fn new(settings: RateLimitSettings, redis: Arc<RedisLink>) -> Self {
        RateLimiter {
            settings,
            redis,
            script: redis::Script::new(SLIDING_WINDOW),
            local: Mutex::new(LocalWindows::default()),
        }
    }

    /// `subject` names who is limited (e.g. `user:42`).
    pub async fn check(&self, subject: &str, risk: RiskClass) -> Verdict {
        let key = key_of(subject, risk);
        let limit = limit_for(&self.settings, risk);
        let window = Duration::from_secs(self.settings.window_secs);
        if let Some(wait) = self
            .local()
            .outage_hits_full(&key, limit, window, Instant::now())
        {
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
                Ok(wait_ms) => {
                    self.redis.record_ok();
                    let verdict = Verdict::of_redis_wait(wait_ms);
                    return self
                        .local()
                        .after_redis(&key, verdict, window, Instant::now());
                }
                Err(e) => self.redis.record_error(&e.to_string()),
            }
        }
        self.local().check(&key, limit, window, Instant::now())
    }

    fn local(&self) -> std::sync::MutexGuard<'_, LocalWindows> {
        self.local.lock().expect("rate limiter lock")
    }
}

#[cfg(test)]
mod tests;
