//! The stream consumer's loose ends: consumers of replicas that died leave the group once
//! what they held was claimed, and a batch PostgreSQL keeps refusing is dead-lettered with
//! the reason after `max_attempts` deliveries (event by event: the rest is stored).

use super::*;

/// The names of the group's consumers.
async fn consumers(conn: &mut MultiplexedConnection, keys: &Keys) -> Vec<String> {
    let info: redis::streams::StreamInfoConsumersReply = redis::cmd("XINFO")
        .arg(("CONSUMERS", &keys.stream, keys.group))
        .query_async(conn)
        .await
        .unwrap();
    info.consumers.into_iter().map(|c| c.name).collect()
}

#[tokio::test]
async fn consumers_of_dead_replicas_are_removed_once_what_they_held_is_claimed() {
    let keys = Keys::new();
    let mut conn = redis().await;
    let _: () = redis::cmd("XGROUP")
        .arg(("CREATE", &keys.stream, keys.group, "0", "MKSTREAM"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let e = event(json!({"account": "held"})).to_string();
    xadd_signed(&mut conn, &keys.stream, &e, SECRET, &[]).await;
    // One dead replica read the entry and never acknowledged it; another held nothing.
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg(("GROUP", keys.group, "replica-that-died-1", "COUNT", 10))
        .arg(("STREAMS", &keys.stream, ">"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: i64 = redis::cmd("XGROUP")
        .arg((
            "CREATECONSUMER",
            &keys.stream,
            keys.group,
            "replica-that-died-2",
        ))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(pending(&mut conn, &keys).await, 1);

    let app = spawn_app_with(|s| {
        keys.apply(s, 300);
        s.logins.stream.dead_consumer_idle_ms = 3000;
    })
    .await;
    let mut gone = false;
    for _ in 0..750 {
        let names = consumers(&mut conn, &keys).await;
        if !names.iter().any(|n| n.starts_with("replica-that-died")) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "left: {:?}", consumers(&mut conn, &keys).await);
    // Claimed before its consumer went: stored and acknowledged.
    assert_eq!(stored(&app).await, 1);
    assert_eq!(pending(&mut conn, &keys).await, 0);
    assert_eq!(
        consumers(&mut conn, &keys).await.len(),
        1,
        "the live one stays"
    );
    let left = keys.delete(app, &mut conn).await;
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_batch_postgresql_keeps_refusing_is_dead_lettered_after_max_attempts() {
    let keys = Keys::new();
    let mut conn = redis().await;
    let app = spawn_app_with(|s| {
        keys.apply(s, 200);
        s.logins.stream.max_attempts = 3;
    })
    .await;
    for sql in [
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
           IF NEW.account = 'poison' THEN RAISE EXCEPTION 'refused by test trigger'; END IF;
           RETURN NEW; END $$",
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON auth_events
           FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
    ] {
        sqlx::query(sql).execute(app.pool()).await.unwrap();
    }
    // One batch: read together, refused together.
    let mut pipe = redis::pipe();
    pipe.atomic();
    for account in ["user0", "poison", "user2"] {
        let e = event(json!({"account": account})).to_string();
        let hmac = IngestKeys::sign(&Secret::new(SECRET), e.as_bytes());
        pipe.cmd("XADD")
            .arg((&keys.stream, "*", "event", e, "hmac", hmac));
    }
    let ids: Vec<String> = pipe.query_async(&mut conn).await.unwrap();

    let mut dead = Vec::new();
    for _ in 0..750 {
        dead = dead_letters(&mut conn, &keys).await;
        if !dead.is_empty() && pending(&mut conn, &keys).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(dead.len(), 1, "{dead:?}");
    let fields: std::collections::HashMap<_, _> = dead[0].1.iter().cloned().collect();
    assert_eq!(fields["entry"], ids[1]);
    let reason = &fields["reason"];
    assert!(
        reason.starts_with("PostgreSQL refused it 3 times (max_attempts)")
            && reason.contains("refused by test trigger"),
        "{reason}"
    );
    assert_eq!(pending(&mut conn, &keys).await, 0);
    assert_eq!(stored(&app).await, 2, "the rest of the batch is stored");
    keys.delete(app, &mut conn).await;
}
