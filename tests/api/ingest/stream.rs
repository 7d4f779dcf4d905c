//! The Redis stream consumer against real Redis: entries are stored and acknowledged, bad
//! ones dead-lettered with their reason, and entries a dead consumer held are taken over.
//! Whoever can write to Redis is not a service: only entries signed under the ingest key
//! (an HMAC of the event, or a service token) are stored; the rest are dead-lettered as
//! unauthenticated. Dead consumers and refused batches: `stream/ends.rs`.

mod ends;

use super::*;
use opsguard::logins::keys::Keys as IngestKeys;
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
        s.logins.ingest.jwt_secret = Some(Secret::new(SECRET));
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

/// XADD an event with its HMAC under `key` (and these extra fields).
async fn xadd_signed(
    conn: &mut MultiplexedConnection,
    stream: &str,
    event: &str,
    key: &str,
    extra: &[(&str, &str)],
) -> String {
    let hmac = IngestKeys::sign(&Secret::new(key), event.as_bytes());
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream).arg("*").arg("event").arg(event);
    cmd.arg("hmac").arg(hmac);
    for (k, v) in extra {
        cmd.arg(*k).arg(*v);
    }
    cmd.query_async(conn).await.unwrap()
}

/// The dead letters as (entry id, fields).
async fn dead_letters(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
) -> Vec<(String, Vec<(String, String)>)> {
    redis::cmd("XRANGE")
        .arg(&keys.dead)
        .arg("-")
        .arg("+")
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
    let (stream, key) = (keys.stream.as_str(), SECRET);
    xadd_signed(&mut conn, stream, &with_id, key, &[]).await;
    let bad_json = xadd_signed(&mut conn, stream, "{not json", key, &[]).await;
    let tagged = event(json!({"account": "<i>x</i>"})).to_string();
    xadd_signed(&mut conn, stream, &tagged, key, &[]).await;
    let bad_ip = event(json!({"ip": "nope"})).to_string();
    xadd_signed(&mut conn, stream, &bad_ip, key, &[]).await;
    xadd(&mut conn, &keys.stream, "other", "x").await;
    xadd_signed(&mut conn, stream, &with_id, key, &[]).await;
    wait_stored(&app, 2).await;

    let mut dead: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for _ in 0..100 {
        dead = dead_letters(&mut conn, &keys).await;
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
        xadd_signed(&mut conn, &keys.stream, &e, SECRET, &[]).await;
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
    // A marker entry added now is read after everything claimed before it: once it is
    // stored, the consumer is past every claimed batch, and the count is final.
    let marker = event(json!({"account": "marker"})).to_string();
    xadd_signed(&mut conn, &keys.stream, &marker, SECRET, &[]).await;
    wait_stored(&app, 6).await;
    assert_eq!(
        stored(&app).await,
        6,
        "each claimed entry is stored once, and the marker"
    );
    let left = keys.delete(app, &mut conn).await;
    assert_eq!(
        left,
        ["replica-that-died"],
        "the dead one stays; the stopped one left"
    );
}

#[tokio::test]
async fn only_entries_signed_under_the_ingest_key_are_stored() {
    let keys = Keys::new();
    let app = spawn_app_with(|s| keys.apply(s, 30_000)).await;
    let mut conn = redis().await;
    let stream = keys.stream.as_str();
    let attacker = "a-key-the-attacker-made-up-0123456789";
    let signed = event(json!({"account": "signed"})).to_string();
    xadd_signed(&mut conn, stream, &signed, SECRET, &[]).await;
    // The same key named by its kid; a service token (its sub is the sender).
    let by_kid = event(json!({"account": "by-kid"})).to_string();
    let kid = IngestKeys::kid(&Secret::new(SECRET));
    xadd_signed(&mut conn, stream, &by_kid, SECRET, &[("kid", &kid)]).await;
    let with_token = event(json!({"account": "with-token"})).to_string();
    let token = good_token();
    let fields = [("event", with_token.as_str()), ("token", token.as_str())];
    let _: String = redis::cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg(&fields[..])
        .query_async(&mut conn)
        .await
        .unwrap();

    // What someone who can write to Redis (but holds no key) can do.
    let unsigned = event(json!({"account": "unsigned"})).to_string();
    xadd(&mut conn, stream, "event", &unsigned).await;
    let forged = event(json!({"account": "forged"})).to_string();
    xadd_signed(&mut conn, stream, &forged, attacker, &[]).await;
    // An HMAC copied from a genuine entry onto other bytes.
    let genuine = IngestKeys::sign(&Secret::new(SECRET), signed.as_bytes());
    let altered = event(json!({"account": "altered"})).to_string();
    let fields = [("event", altered.as_str()), ("hmac", genuine.as_str())];
    let _: String = redis::cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg(&fields[..])
        .query_async(&mut conn)
        .await
        .unwrap();
    let wrong_kid = event(json!({"account": "wrong-kid"})).to_string();
    xadd_signed(
        &mut conn,
        stream,
        &wrong_kid,
        SECRET,
        &[("kid", "deadbeef")],
    )
    .await;
    let mut forged_claims = claims();
    forged_claims["sub"] = json!("forger");
    let forged_token = sign(&forged_claims, attacker);
    let by_forger = event(json!({"account": "forged-token"})).to_string();
    let fields = [
        ("event", by_forger.as_str()),
        ("token", forged_token.as_str()),
    ];
    let _: String = redis::cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg(&fields[..])
        .query_async(&mut conn)
        .await
        .unwrap();

    let mut dead = Vec::new();
    for _ in 0..300 {
        dead = dead_letters(&mut conn, &keys).await;
        if dead.len() == 5 && pending(&mut conn, &keys).await == 0 && stored(&app).await == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reasons: Vec<String> = dead
        .iter()
        .map(|(_, fields)| {
            let reason = fields.iter().find(|(k, _)| k == "reason").unwrap();
            reason.1.clone()
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "unauthenticated: the entry carries neither an 'hmac' nor a 'token' field",
            "unauthenticated: bad hmac",
            "unauthenticated: bad hmac",
            "unauthenticated: no key has the kid 'deadbeef'",
            "unauthenticated: bad signature",
        ]
    );
    assert_eq!(pending(&mut conn, &keys).await, 0, "all acknowledged");
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT account, sender FROM auth_events ORDER BY account")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            ("by-kid".into(), "stream".into()),
            ("signed".into(), "stream".into()),
            ("with-token".into(), "auth-api".into()),
        ],
        "only the signed entries are stored"
    );
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("opsguard_auth_stream_unauthenticated_total"),
        "{metrics}"
    );
    keys.delete(app, &mut conn).await;
}
