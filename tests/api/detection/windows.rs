//! The Redis window exchange keeps exactly what the in-process stand-in keeps: the same
//! pseudo-random exchanges (late events, ties, accounts seen again, accounts holding `:`,
//! several keys and both caps) go to a live Redis and to a link that cannot connect, and
//! every answer must match.

use super::*;
use opsguard::logins::windows::{Entries, Previous, WindowUpdate, Windows};
use opsguard::redis_link::RedisLink;
use tokio_util::sync::CancellationToken;

/// A small deterministic generator (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn updates(rng: &mut Rng, base_ms: i64) -> Vec<WindowUpdate> {
    let mut out = Vec::new();
    for key in 0..4 {
        if rng.below(3) == 0 {
            continue;
        }
        let n = 1 + rng.below(8) as usize;
        // Times within ±40 ms of the base: late events and equal times happen often.
        let mut time = || base_ms + rng.below(80) as i64 - 40;
        let times: Vec<i64> = (0..n).map(|_| time()).collect();
        out.push(WindowUpdate {
            key: format!("events:{key}"),
            cap: 5,
            window_ms: 60_000,
            entries: Entries::Events(times),
        });
    }
    for key in 0..3 {
        if rng.below(3) == 0 {
            continue;
        }
        let n = 1 + rng.below(12) as usize;
        let pairs = (0..n)
            .map(|_| {
                let t = base_ms + rng.below(80) as i64 - 40;
                (t, format!("u:{}<b>", rng.below(30)))
            })
            .collect();
        out.push(WindowUpdate {
            key: format!("accounts:{key}"),
            cap: 20,
            window_ms: 60_000,
            entries: Entries::Accounts(pairs),
        });
    }
    out
}

#[tokio::test]
async fn redis_windows_answer_exactly_as_the_in_process_windows_do() {
    let db = TestDb::create().await;
    let shutdown = CancellationToken::new();
    let wait = std::time::Duration::from_millis(500);
    let live = RedisLink::connect(REDIS_URL, &db.redis_prefix, wait, shutdown.clone()).await;
    let dead = RedisLink::connect("redis://127.0.0.1:1", "x:", wait, shutdown.clone()).await;
    let (shared, local) = (Windows::new(live.clone()), Windows::new(dead.clone()));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let base = Utc::now().timestamp_millis();
    let mut non_empty = 0;
    for round in 0..60 {
        let batch = updates(&mut rng, base + round * 10);
        let from_redis = shared.exchange(batch.clone()).await;
        let in_process = local.exchange(batch).await;
        assert_eq!(from_redis, in_process, "round {round}");
        non_empty += from_redis
            .iter()
            .filter(|p| match p {
                Previous::Events(t) => t.len() == 5,
                Previous::Accounts(a) => a.len() >= 10,
            })
            .count();
    }
    assert!(!live.is_degraded(), "{:?}", live.last_error());
    assert!(dead.is_degraded());
    assert!(non_empty > 50, "the windows filled up and were trimmed");
    shutdown.cancel();
}
