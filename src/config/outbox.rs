//! Outbox worker settings (`[outbox]`): polling, batching, retries and Telegram's limits.

use serde::Deserialize;
use std::time::Duration;

/// How the outbox worker delivers queued pushes (`[outbox]` in the TOML file).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct OutboxSettings {
    /// How long the worker sleeps when nothing was due.
    pub poll_interval_ms: u64,
    /// Rows claimed (and sent concurrently, one per chat) per transaction.
    pub batch_size: u32,
    /// Failed attempts after which a row is dead-lettered (`status = 'dead'`).
    pub max_attempts: i32,
    /// Backoff after the n-th failure: `backoff_base_ms * 2^(n-1)`, at most `backoff_cap_ms`.
    /// A 429 waits exactly Telegram's `retry_after` instead.
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
    /// At least this long between two messages to one chat (Telegram: 1 per second).
    pub per_chat_interval_ms: u64,
    /// At most this many messages per minute to one group chat (negative id; Telegram: 20).
    pub group_per_minute: i64,
    /// At most this many messages per second overall, shared by replicas (Telegram: 30);
    /// 0 lifts the limit (benchmarks against a fake Bot API).
    pub global_per_second: u32,
    /// Direct replies: at most this many messages in `reply_burst × per_chat_interval_ms`
    /// to one chat (Telegram allows short bursts), so a quiet chat's reply goes at once.
    pub reply_burst: u32,
    /// A direct reply that cannot go within this long (a busy group, a long `retry_after`)
    /// is queued in the outbox instead.
    pub reply_max_wait_ms: u64,
    /// One Bot API call gives up after this long and counts as a failure.
    pub send_timeout_ms: u64,
    /// Sent rows are deleted after this many days.
    pub keep_sent_days: u32,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            poll_interval_ms: 500,
            batch_size: 100,
            max_attempts: 8,
            backoff_base_ms: 1_000,
            backoff_cap_ms: 300_000,
            per_chat_interval_ms: 1_000,
            group_per_minute: 20,
            global_per_second: 30,
            reply_burst: 3,
            reply_max_wait_ms: 5_000,
            send_timeout_ms: 30_000,
            keep_sent_days: 7,
        }
    }
}

impl OutboxSettings {
    /// The wait before retrying after the `failures`-th failure (1-based).
    pub fn backoff(&self, failures: i32) -> Duration {
        let exp = failures.saturating_sub(1).clamp(0, 30) as u32;
        let ms = self
            .backoff_base_ms
            .saturating_mul(1u64 << exp)
            .min(self.backoff_cap_ms);
        Duration::from_millis(ms)
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(1))
    }

    pub fn send_timeout(&self) -> Duration {
        Duration::from_millis(self.send_timeout_ms.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_the_cap() {
        let s = OutboxSettings {
            backoff_base_ms: 100,
            backoff_cap_ms: 1_000,
            ..OutboxSettings::default()
        };
        let waits: Vec<u64> = (1..=6).map(|n| s.backoff(n).as_millis() as u64).collect();
        assert_eq!(waits, vec![100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(s.backoff(1_000).as_millis(), 1_000);
    }
}
