//! Consumers of dead replicas leave the group: a replica that died never says goodbye, and
//! every restart names a new consumer. What a dead consumer held is claimed first (the
//! consumer's XAUTOCLAIM sweep takes entries idle past `claim_idle_ms`); a consumer idle
//! past `dead_consumer_idle_ms` with nothing pending is then deleted (XGROUP DELCONSUMER).
//! Check and delete are one script, so an entry delivered meanwhile is never dropped with
//! its consumer; this replica's own consumer is never removed.

use super::Consumer;
use redis::aio::MultiplexedConnection;
use std::time::{Duration, Instant};

/// Deletes each consumer of group ARGV[1] on stream KEYS[1], other than ARGV[2], that is
/// idle at least ARGV[3] ms with nothing pending; returns their names.
const REMOVE_DEAD: &str = r#"
local removed = {}
local consumers = redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
local threshold = tonumber(ARGV[3])
for _, c in ipairs(consumers) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['name'] ~= ARGV[2] and tonumber(f['pending']) == 0
      and tonumber(f['idle']) >= threshold then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    removed[#removed + 1] = f['name']
  end
end
return removed
"#;

impl Consumer {
    /// Every so often (half the idle threshold, at most a minute), remove dead consumers.
    pub(super) async fn groom(
        &mut self,
        conn: &mut MultiplexedConnection,
    ) -> Result<(), redis::RedisError> {
        let s = &self.settings;
        let every = Duration::from_millis(s.dead_consumer_idle_ms / 2)
            .clamp(Duration::from_millis(500), Duration::from_secs(60));
        if self.last_groom.is_some_and(|t| t.elapsed() < every) {
            return Ok(());
        }
        self.last_groom = Some(Instant::now());
        let removed: Vec<String> = redis::Script::new(REMOVE_DEAD)
            .key(&s.key)
            .arg(&s.group)
            .arg(&self.name)
            .arg(s.dead_consumer_idle_ms)
            .invoke_async(conn)
            .await?;
        if !removed.is_empty() {
            metrics::counter!("opsguard_auth_stream_consumers_removed_total")
                .increment(removed.len() as u64);
            tracing::info!(count = removed.len(), stream.consumers = ?removed, "stream.dead_consumers_removed");
        }
        Ok(())
    }
}
