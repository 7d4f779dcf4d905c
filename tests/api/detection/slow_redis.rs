//! A window exchange Redis answers too late (issue 24): a loaded Redis is not a lost one.
//! A private Redis is paused for writes (`CLIENT PAUSE … WRITE`: a script waits, then runs)
//! while one batch's exchange is in flight, so the detector gives the exchange up after the
//! bulk timeout while Redis runs it afterwards. The batch's keys are rebuilt from the stored
//! events and unioned back: the same alert as without the stall, every event held once in
//! Redis, and no new epoch (which would rebuild every key) unless that repair fails too.

use super::*;
use opsguard::redis_link::RedisLink;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

const ADDRESS: &str = "203.0.113.60";
const BULK_TIMEOUT_MS: u64 = 600;

/// 16 failures from `ADDRESS`, 1 s apart from a minute ago, in batches of two; ip-failures
/// fires at 11 and counts on.
fn batches() -> Vec<Vec<AuthEvent>> {
    let t0 = Utc::now() - Duration::seconds(60);
    let events: Vec<AuthEvent> = (0..16)
        .map(|i| failure(ADDRESS, &format!("guess{i}"), t0 + Duration::seconds(i)))
        .collect();
    events.chunks(2).map(<[AuthEvent]>::to_vec).collect()
}

struct Stalled {
    app: TestApp,
    redis: PrivateRedis,
    link: Arc<RedisLink>,
    detector: Arc<Detector>,
    shutdown: CancellationToken,
}

async fn stalled() -> Stalled {
    let redis = PrivateRedis::start(&[]);
    redis.ready().await;
    let app = spawn_app_with(|s| only_rule(s, "ip-failures", 900)).await;
    let shutdown = CancellationToken::new();
    let link = RedisLink::connect_with_bulk(
        &redis.url(),
        &app.db.redis_prefix,
        std::time::Duration::from_secs(5),
        std::time::Duration::from_millis(BULK_TIMEOUT_MS),
        shutdown.clone(),
    )
    .await;
    let settings = app.engine.settings().logins.clone();
    let detector = Arc::new(Detector::new(app.pool().clone(), settings, link.clone()));
    Stalled {
        app,
        redis,
        link,
        detector,
        shutdown,
    }
}

impl Stalled {
    async fn command(&self, args: &[&str]) {
        let client = redis::Client::open(self.redis.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        let _: redis::Value = cmd.query_async(&mut conn).await.unwrap();
    }

    /// Stored first, as ingest does, then detected.
    async fn ingest(&self, batch: &[AuthEvent]) {
        self.store(batch).await;
        self.detector.detect(batch).await.unwrap();
    }

    async fn store(&self, batch: &[AuthEvent]) {
        opsguard::logins::store::insert_batch(self.app.pool(), batch, "web")
            .await
            .unwrap();
    }

    async fn epochs(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM login_window_epochs")
            .fetch_one(self.app.pool())
            .await
            .unwrap()
    }

    /// The event times Redis holds for the address, oldest first (from the newest generation
    /// holding the key: a key first written in a generation carries its state over).
    async fn held_times(&self) -> Vec<i64> {
        let client = redis::Client::open(self.redis.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let pattern = format!("{}logins:win:ip-failures:*", self.app.db.redis_prefix);
        let mut hashes: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut conn)
            .await
            .unwrap();
        hashes.sort_by_key(|h| h.rsplit(':').next().unwrap().parse::<i64>().unwrap());
        for hash in hashes.iter().rev() {
            // The key's delta (`v<version>|<n>|<times>`, or `<times>` while it is small) and
            // its base (its name + "\x01").
            let (delta, base): (Option<String>, Option<String>) = redis::pipe()
                .cmd("HGET")
                .arg(hash)
                .arg(format!("ip:{ADDRESS}"))
                .cmd("HGET")
                .arg(hash)
                .arg(format!("ip:{ADDRESS}\u{1}"))
                .query_async(&mut conn)
                .await
                .unwrap();
            if let Some(delta) = delta {
                let delta = match delta.strip_prefix('v') {
                    Some(versioned) => versioned.splitn(3, '|').nth(2).expect("a delta"),
                    None => delta.as_str(),
                };
                let base = base.unwrap_or_default();
                let mut times: Vec<i64> = [delta, base.as_str()]
                    .iter()
                    .flat_map(|s| s.split(','))
                    .filter(|t| !t.is_empty())
                    .map(|t| t.parse().unwrap())
                    .collect();
                times.sort_unstable();
                return times;
            }
        }
        Vec::new()
    }

    async fn alert_counts(&self) -> Vec<(String, String, i64)> {
        let rows = alerts(&self.app).await;
        rows.into_iter().map(|r| (r.1, r.2, r.3)).collect()
    }
}

fn times_of(batches: &[Vec<AuthEvent>]) -> Vec<i64> {
    let mut times: Vec<i64> = batches
        .iter()
        .flatten()
        .map(|e| e.at.timestamp_millis())
        .collect();
    times.sort_unstable();
    times
}

#[tokio::test]
async fn an_exchange_given_up_while_redis_stalls_is_repaired_in_place_without_a_new_epoch() {
    let t = stalled().await;
    let batches = batches();
    for batch in &batches[..3] {
        t.ingest(batch).await;
    }
    t.store(&batches[3]).await;
    // Writes wait 1 s: the exchange (sent at once) is given up after 0.6 s and runs later;
    // the repair, sent after the give-up, runs when the pause ends, within its own 0.6 s.
    t.command(&["CLIENT", "PAUSE", "1000", "WRITE"]).await;
    t.detector.detect(&batches[3]).await.unwrap();
    assert_eq!(t.detector.exchanges_timed_out(), 1, "the stall was seen");
    for batch in &batches[4..] {
        t.ingest(batch).await;
    }
    assert_eq!(
        t.alert_counts().await,
        vec![("ip-failures".into(), format!("ip:{ADDRESS}"), 16)],
        "one alert, counted as without the stall"
    );
    assert_eq!(t.held_times().await, times_of(&batches), "each event once");
    assert_eq!(
        t.epochs().await,
        1,
        "no new epoch: only the batch was rebuilt"
    );
    assert!(!t.link.is_degraded());
    t.shutdown.cancel();
}

#[tokio::test]
async fn when_the_repair_is_given_up_too_one_new_epoch_rebuilds_and_nothing_is_missed() {
    let t = stalled().await;
    let batches = batches();
    for batch in &batches[..3] {
        t.ingest(batch).await;
    }
    t.store(&batches[3]).await;
    // Writes wait until unpaused: the exchange and its repair are both given up.
    t.command(&["CLIENT", "PAUSE", "30000", "WRITE"]).await;
    t.detector.detect(&batches[3]).await.unwrap();
    t.command(&["CLIENT", "UNPAUSE"]).await;
    assert_eq!(t.detector.exchanges_timed_out(), 1, "the stall was seen");
    // The next batch, split in two detected at once (writes held 0.3 s, well within the
    // bulk timeout, so both are in flight together): one of them opens the new epoch.
    let (a, b) = batches[4].split_at(1);
    t.store(&batches[4]).await;
    t.command(&["CLIENT", "PAUSE", "300", "WRITE"]).await;
    let (one, two) = (t.detector.clone(), t.detector.clone());
    let (a, b) = (a.to_vec(), b.to_vec());
    let (x, y) = tokio::join!(
        tokio::spawn(async move { one.detect(&a).await.unwrap() }),
        tokio::spawn(async move { two.detect(&b).await.unwrap() })
    );
    x.unwrap();
    y.unwrap();
    for batch in &batches[5..] {
        t.ingest(batch).await;
    }
    assert_eq!(
        t.alert_counts().await,
        vec![("ip-failures".into(), format!("ip:{ADDRESS}"), 16)],
        "one alert, counted as without the stall"
    );
    assert_eq!(t.held_times().await, times_of(&batches), "each event once");
    assert_eq!(t.epochs().await, 2, "exactly one new epoch");
    assert!(!t.link.is_degraded());
    t.shutdown.cancel();
}
