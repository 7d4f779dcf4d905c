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
            rule: "events".into(),
            key: format!("{key}"),
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
            rule: "accounts".into(),
            key: format!("{key}"),
            cap: 20,
            window_ms: 60_000,
            entries: Entries::Accounts(pairs),
        });
    }
    out
}

/// Two replicas' windows on the same Redis, each exchange by one of them at random, answer
/// exactly as one in-process stand-in fed every exchange: a state a replica holds from its
/// own last exchange (and Redis does not send again) is never stale after the other wrote.
#[tokio::test]
async fn redis_windows_answer_exactly_as_the_in_process_windows_do() {
    let db = TestDb::create().await;
    let shutdown = CancellationToken::new();
    let wait = std::time::Duration::from_millis(500);
    let live = RedisLink::connect(REDIS_URL, &db.redis_prefix, wait, shutdown.clone()).await;
    let dead = RedisLink::connect("redis://127.0.0.1:1", "x:", wait, shutdown.clone()).await;
    let replicas = [Windows::new(live.clone()), Windows::new(live.clone())];
    let local = Windows::new(dead.clone());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let base = Utc::now().timestamp_millis();
    let mut non_empty = 0;
    for round in 0..120 {
        let batch = updates(&mut rng, base + round * 10);
        let replica = &replicas[(rng.below(4) == 0) as usize];
        let from_redis = replica.exchange(batch.clone()).await;
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
    assert!(non_empty > 100, "the windows filled up and were trimmed");
    let held: Vec<u64> = replicas.iter().map(Windows::states_held_used).collect();
    assert!(
        held.iter().all(|&n| n > 20),
        "both replicas answered from held states: {held:?}"
    );
    shutdown.cancel();
}

fn one(rule: &str, key: &str, window_ms: i64, times: Vec<i64>) -> WindowUpdate {
    WindowUpdate {
        rule: rule.into(),
        key: key.into(),
        cap: 10,
        window_ms,
        entries: Entries::Events(times),
    }
}

/// Windows on the live Redis, under a test database's own prefix.
struct Live {
    db: std::sync::Arc<TestDb>,
    link: std::sync::Arc<RedisLink>,
    windows: Windows,
    shutdown: CancellationToken,
}

impl Live {
    async fn start(wait: std::time::Duration) -> Live {
        let db = TestDb::create().await;
        let shutdown = CancellationToken::new();
        let link = RedisLink::connect(REDIS_URL, &db.redis_prefix, wait, shutdown.clone()).await;
        let windows = Windows::new(link.clone());
        Live {
            db,
            link,
            windows,
            shutdown,
        }
    }

    async fn exchange(&self, update: WindowUpdate) -> Vec<Previous> {
        self.windows.exchange(vec![update]).await
    }

    /// The rule's generation hashes in Redis.
    async fn hashes(&self, rule: &str) -> Vec<String> {
        let mut conn = self.link.conn().expect("redis");
        redis::cmd("KEYS")
            .arg(format!("{}logins:win:{rule}:*", self.db.redis_prefix))
            .query_async(&mut conn)
            .await
            .unwrap()
    }

    /// What Redis stores for `field` of `rule`, in its newest generation holding it.
    async fn stored(&self, rule: &str, field: &str) -> String {
        let mut conn = self.link.conn().expect("redis");
        let mut hashes = self.hashes(rule).await;
        hashes.sort_by_key(|h| h.rsplit(':').next().unwrap().parse::<i64>().unwrap());
        for hash in hashes.iter().rev() {
            let value: Option<String> = redis::cmd("HGET")
                .arg(hash)
                .arg(field)
                .query_async(&mut conn)
                .await
                .unwrap();
            if let Some(value) = value {
                return value;
            }
        }
        panic!("{rule} {field}: nothing stored");
    }

    fn finish(self) {
        assert!(!self.link.is_degraded(), "{:?}", self.link.last_error());
        self.shutdown.cancel();
    }
}

/// State is kept in hashes per window-long generation: written in one generation, it is read
/// back in the next, and gone (hash and all) three windows after the last write.
#[tokio::test]
async fn window_state_outlives_a_generation_and_expires_after_a_window() {
    let live = Live::start(std::time::Duration::from_millis(500)).await;
    let short = |times: Vec<i64>| one("short", "k", 1_000, times);
    assert_eq!(
        live.exchange(short(vec![1, 2])).await,
        [Previous::Events(vec![])]
    );
    // Later in the same or the next generation: the state is there, merged.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(
        live.exchange(short(vec![3])).await,
        [Previous::Events(vec![2, 1])]
    );
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(
        live.exchange(short(vec![])).await,
        [Previous::Events(vec![3, 2, 1])]
    );
    // Three windows after the last write: nothing is left, not even a hash.
    tokio::time::sleep(std::time::Duration::from_millis(2_600)).await;
    assert_eq!(
        live.exchange(short(vec![])).await,
        [Previous::Events(vec![])]
    );
    let left = live.hashes("short").await;
    assert!(left.is_empty(), "{left:?}");
    live.finish();
}

/// A state of a few entries (most keys of an attack from many sources) is stored whole, as
/// its entries, with no version and no base: a version costs Redis a third more per key and
/// no replica holds a state so small. It takes a version once it reaches 4 entries, and what
/// comes back is the same either way.
#[tokio::test]
async fn a_small_state_is_stored_whole_and_versioned_once_it_grows() {
    let live = Live::start(std::time::Duration::from_millis(500)).await;
    let small = |times: Vec<i64>| one("small", "ip:198.51.100.4", 3_600_000, times);
    assert_eq!(
        live.exchange(small(vec![1])).await,
        [Previous::Events(vec![])]
    );
    assert_eq!(live.stored("small", "ip:198.51.100.4").await, "1");
    assert_eq!(
        live.exchange(small(vec![3, 2])).await,
        [Previous::Events(vec![1])]
    );
    assert_eq!(live.stored("small", "ip:198.51.100.4").await, "3,2,1");
    assert_eq!(
        live.exchange(small(vec![4])).await,
        [Previous::Events(vec![3, 2, 1])]
    );
    let grown = live.stored("small", "ip:198.51.100.4").await;
    let (version, rest) = grown.split_once('|').expect("a versioned delta");
    assert!(version.starts_with('v'), "{grown}");
    assert_eq!(rest, "4|4,3,2,1");
    assert_eq!(
        live.exchange(small(vec![])).await,
        [Previous::Events(vec![4, 3, 2, 1])]
    );
    live.finish();
}

/// A rule with more keys in a batch than one call inside the script takes (1,000) is split,
/// and every key still gets its own state back, in order.
#[tokio::test]
async fn a_batch_of_many_keys_is_exchanged_whole_and_in_order() {
    let live = Live::start(std::time::Duration::from_secs(5)).await;
    let batch = |t: i64| -> Vec<WindowUpdate> {
        (0..20_000)
            .map(|k| one("wide", &format!("ip:{k}"), 60_000, vec![t + k]))
            .collect()
    };
    let first = live.windows.exchange(batch(0)).await;
    assert!(first.iter().all(|p| *p == Previous::Events(vec![])));
    let second = live.windows.exchange(batch(1_000_000)).await;
    assert!(!live.link.is_degraded(), "{:?}", live.link.last_error());
    for (k, previous) in second.into_iter().enumerate() {
        assert_eq!(previous, Previous::Events(vec![k as i64]), "key {k}");
    }
    live.finish();
}

/// The first write of a generation removes the one before the previous right away (UNLINK,
/// freed off Redis's main thread) rather than leaving it to its TTL.
#[tokio::test]
async fn a_new_generation_unlinks_the_one_before_the_previous() {
    let live = Live::start(std::time::Duration::from_millis(500)).await;
    // Write early in a 1 s generation G (Redis runs on this machine's clock), so the second
    // write lands in G + 2, while G's hash has most of a second of TTL left: only the UNLINK
    // can have removed it.
    while !(100..300).contains(&Utc::now().timestamp_subsec_millis()) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    live.exchange(one("gens", "k", 1_000, vec![1])).await;
    tokio::time::sleep(std::time::Duration::from_millis(2_050)).await;
    live.exchange(one("gens", "k", 1_000, vec![2])).await;
    let hashes = live.hashes("gens").await;
    assert_eq!(hashes.len(), 1, "{hashes:?}");
    live.finish();
}

/// A long attack from one address: one failure per exchange, hundreds of exchanges, by one
/// replica or by two in turn. What Redis stores for the key stays bounded: its delta (new
/// entries since the last fold: folded by the replica that holds the state, else by Redis
/// itself past 96) and its base (the newest `cap`), so an event of a long attack costs what
/// one of a young attack does; and what comes back is still exactly the newest `cap`.
#[tokio::test]
async fn a_long_attacks_stored_state_stays_near_its_cap() {
    for (replicas, delta_at_most) in [(1, 24), (2, 96)] {
        let live = Live::start(std::time::Duration::from_secs(5)).await;
        let other = Windows::new(live.link.clone());
        let cap = 20;
        let base = Utc::now().timestamp_millis();
        let mut last = Vec::new();
        for n in 0..300 {
            let t = base + n;
            let windows = if replicas == 2 && n % 2 == 1 {
                &other
            } else {
                &live.windows
            };
            let times = windows
                .exchange(vec![WindowUpdate {
                    rule: "long".into(),
                    key: "ip:203.0.113.9".into(),
                    cap,
                    window_ms: 600_000,
                    entries: Entries::Events(vec![t]),
                }])
                .await;
            let accounts = windows
                .exchange(vec![WindowUpdate {
                    rule: "spread".into(),
                    key: "spray:203.0.113.9".into(),
                    cap,
                    window_ms: 600_000,
                    entries: Entries::Accounts(vec![(t, format!("user-{n}@example.org"))]),
                }])
                .await;
            last = vec![times, accounts];
        }
        let newest: Vec<i64> = (0..i64::from(cap)).map(|i| base + 298 - i).collect();
        assert_eq!(last[0], [Previous::Events(newest.clone())]);
        let accounts: Vec<(std::sync::Arc<str>, i64)> = newest
            .iter()
            .map(|t| (format!("user-{}@example.org", t - base).into(), *t))
            .collect();
        assert_eq!(last[1], [Previous::Accounts(accounts)]);
        let mut conn = live.link.conn().expect("redis");
        for (rule, field, sep) in [
            ("long", "ip:203.0.113.9", ','),
            ("spread", "spray:203.0.113.9", '\n'),
        ] {
            for hash in live.hashes(rule).await {
                let (delta, stored_base): (Option<String>, Option<String>) = redis::pipe()
                    .cmd("HGET")
                    .arg(&hash)
                    .arg(field)
                    .cmd("HGET")
                    .arg(&hash)
                    .arg(format!("{field}\u{1}"))
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                let count = |s: &str| s.split(sep).filter(|e| !e.is_empty()).count();
                let delta = delta.expect("a delta");
                let delta = count(delta.splitn(3, '|').nth(2).expect("versioned"));
                let stored_base = count(&stored_base.expect("a base: the state was folded"));
                assert!(
                    delta <= delta_at_most,
                    "{rule}, {replicas} replica(s): {delta} entries in the delta"
                );
                assert_eq!(
                    stored_base, cap as usize,
                    "{rule}, {replicas} replica(s): the base holds the newest {cap}"
                );
            }
        }
        live.finish();
    }
}
