//! The Redis stream consumer against real Redis: entries are stored and acknowledged, bad
//! ones dead-lettered with their reason, and entries a dead consumer held are taken over.

use super::*;
use redis::aio::MultiplexedConnection;
use std::time::Duration;

/// Per-test stream and dead-letter keys (the stream key is not prefixed by opsguard).
struct Keys {
    stream: String,
    dead: String,
    group: &'static str,
}

impl Keys {
    fn new() -> Keys {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Keys {
            stream: format!("test:ingest:{id}"),
            dead: format!("test:ingest:{id}:dead"),
            group: "opsguard",
        }
    }

    fn apply(&self, s: &mut Settings, claim_idle_ms: u64) {
        s.logins.stream.enabled = true;
        s.logins.stream.key = self.stream.clone();
        s.logins.stream.dead_letter_key = self.dead.clone();
        s.logins.stream.group = self.group.into();
        s.logins.stream.block_ms = 100;
        s.logins.stream.claim_idle_ms = claim_idle_ms;
    }

    /// Stop the app, then delete the keys (a running consumer would create the stream
    /// again). Returns the consumers left in the group once the app had stopped.
    async fn delete(&self, app: TestApp, conn: &mut MultiplexedConnection) -> Vec<String> {
        app.shutdown.cancel();
        drop(app);
        let mut consumers = Vec::new();
        for _ in 0..100 {
            let info: redis::streams::StreamInfoConsumersReply = redis::cmd("XINFO")
                .arg(("CONSUMERS", &self.stream, self.group))
                .query_async(conn)
                .await
                .unwrap();
            consumers = info.consumers.into_iter().map(|c| c.name).collect();
            if !consumers
                .iter()
                .any(|c| !c.starts_with("replica-that-died"))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _: () = redis::cmd("DEL")
            .arg(&self.stream)
            .arg(&self.dead)
            .query_async(conn)
            .await
            .unwrap();
        consumers
    }
}

async fn redis() -> MultiplexedConnection {
    redis::Client::open(REDIS_URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn xadd(conn: &mut MultiplexedConnection, key: &str, field: &str, value: &str) -> String {
    redis::cmd("XADD")
        .arg(key)
        .arg("*")
        .arg(field)
        .arg(value)
        .query_async(conn)
        .await
        .unwrap()
}

async fn wait_stored(app: &TestApp, n: i64) {
    for _ in 0..300 {
        if stored(app).await >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{n} events were never stored (have {})", stored(app).await);
}

async fn pending(conn: &mut MultiplexedConnection, keys: &Keys) -> i64 {
    let summary: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(&keys.stream)
        .arg(keys.group)
        .query_async(conn)
        .await
        .unwrap();
    redis::from_redis_value(summary[0].clone()).unwrap()
}

#[tokio::test]
async fn entries_are_stored_acknowledged_and_bad_ones_dead_lettered() {
    let keys = Keys::new();
    let app = spawn_app_with(|s| keys.apply(s, 30_000)).await;
    let mut conn = redis().await;
    let with_id = event(json!({"id": "s-1"})).to_string();
    xadd(&mut conn, &keys.stream, "event", &with_id).await;
    let bad_json = xadd(&mut conn, &keys.stream, "event", "{not json").await;
    xadd(
        &mut conn,
        &keys.stream,
        "event",
        &event(json!({"account": "<i>x</i>"})).to_string(),
    )
    .await;
    let bad_ip = event(json!({"ip": "nope"})).to_string();
    xadd(&mut conn, &keys.stream, "event", &bad_ip).await;
    xadd(&mut conn, &keys.stream, "other", "x").await;
    xadd(&mut conn, &keys.stream, "event", &with_id).await;
    wait_stored(&app, 2).await;

    let mut dead: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for _ in 0..100 {
        dead = redis::cmd("XRANGE")
            .arg(&keys.dead)
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .unwrap();
        if dead.len() == 3 && pending(&mut conn, &keys).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let field = |i: usize, name: &str| {
        dead[i]
            .1
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(dead.len(), 3, "{dead:?}");
    assert_eq!(field(0, "event"), "{not json");
    assert_eq!(field(0, "entry"), bad_json);
    assert!(field(0, "reason").starts_with("not JSON"), "{dead:?}");
    assert_eq!(field(1, "event"), bad_ip);
    assert_eq!(field(1, "reason"), "ip: not an IP address");
    assert_eq!(field(2, "reason"), "the entry has no string field 'event'");
    assert_eq!(
        pending(&mut conn, &keys).await,
        0,
        "everything is acknowledged"
    );
    let accounts: Vec<(String, String)> =
        sqlx::query_as("SELECT account, sender FROM auth_events ORDER BY id")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(
        accounts,
        [
            ("alice".into(), "stream".into()),
            ("<i>x</i>".into(), "stream".into())
        ],
        "the repeated id is stored once"
    );
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("opsguard_auth_stream_dead_letters_total"),
        "{metrics}"
    );
    let left = keys.delete(app, &mut conn).await;
    assert!(
        left.is_empty(),
        "the stopped consumer left the group: {left:?}"
    );
}

#[tokio::test]
async fn entries_a_dead_consumer_read_but_never_acknowledged_are_claimed_and_stored() {
    let keys = Keys::new();
    let mut conn = redis().await;
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&keys.stream)
        .arg(keys.group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await
        .unwrap();
    for i in 0..5 {
        let e = event(json!({"account": format!("user{i}")})).to_string();
        xadd(&mut conn, &keys.stream, "event", &e).await;
    }
    // A replica reads the batch, then dies before it commits or acknowledges anything.
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(keys.group)
        .arg("replica-that-died")
        .arg("COUNT")
        .arg(10)
        .arg("STREAMS")
        .arg(&keys.stream)
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(pending(&mut conn, &keys).await, 5);

    let app = spawn_app_with(|s| keys.apply(s, 300)).await;
    wait_stored(&app, 5).await;
    for _ in 0..100 {
        if pending(&mut conn, &keys).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(pending(&mut conn, &keys).await, 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stored(&app).await, 5, "each claimed entry is stored once");
    let left = keys.delete(app, &mut conn).await;
    assert_eq!(
        left,
        ["replica-that-died"],
        "the dead one stays; the stopped one left"
    );
}
