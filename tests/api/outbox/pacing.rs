//! Telegram's limits kept by the outbox worker: 1 message per second per chat (other chats
//! not held back), N per minute per group, and the overall per-second limit.

use super::{fast, messages, queue, queue_each, texts, wait_delivered, whole_pass};
use crate::helpers::*;
use std::time::{Duration, Instant};

#[tokio::test]
async fn one_chat_gets_a_message_a_second_and_other_chats_are_not_held_back() {
    let app = spawn_app_with(|s| {
        fast(s);
        s.outbox.per_chat_interval_ms = 1000;
    })
    .await;
    queue(&app, 1201, "chat 1201 #0").await;
    queue(&app, 1201, "chat 1201 #1").await;
    queue(&app, 1202, "chat 1202 #0").await;
    wait_delivered(&app, &[1201], 2).await;
    let one = messages(&app, 1201);
    let gap = one[1].at - one[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "two messages {gap:?} apart"
    );
    let other = &messages(&app, 1202)[0];
    assert!(
        other.at < one[0].at + Duration::from_millis(500),
        "chat 1202 waited for chat 1201's pacing"
    );
    assert_eq!(texts(&app, 1201), vec!["chat 1201 #0", "chat 1201 #1"]);
}

#[tokio::test]
async fn a_group_gets_at_most_its_per_minute_limit_and_a_private_chat_is_not_limited_by_it() {
    let app = spawn_app_with(|s| {
        fast(s);
        s.outbox.per_chat_interval_ms = 50;
        s.outbox.group_per_minute = 3;
    })
    .await;
    app.add_user(42, "viewer").await;
    let group = -1_001_300;
    queue_each(&app, &[group, 1301], 5).await;
    wait_delivered(&app, &[1301], 5).await;
    wait_delivered(&app, &[group], 3).await;
    // Whole passes of the worker since: the group's 4th was due and held back.
    whole_pass(&app, 1302).await;
    assert_eq!(
        texts(&app, group),
        vec![
            format!("chat {group} #0"),
            format!("chat {group} #1"),
            format!("chat {group} #2")
        ],
        "the group's 4th message waits for the minute to pass"
    );
    let status = app.say(42, "/status").await.text();
    assert!(status.contains("📤 Outbox: 2 pending"), "{status}");
}

#[tokio::test]
async fn no_second_ever_sees_more_than_the_overall_limit() {
    let app = spawn_app_with(|s| {
        fast(s);
        s.outbox.global_per_second = 10;
    })
    .await;
    let replica = app
        .spawn_replica_with(|s| {
            fast(s);
            s.outbox.global_per_second = 10;
        })
        .await;
    let chats: Vec<i64> = (1401..1431).collect();
    let started = Instant::now();
    queue_each(&app, &chats, 1).await;
    wait_delivered(&app, &chats, 1).await;
    let took = started.elapsed();
    let mut times: Vec<Instant> = chats.iter().map(|c| messages(&app, *c)[0].at).collect();
    times.sort();
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .take_while(|u| **u < *t + Duration::from_secs(1))
            .count();
        assert!(in_window <= 10, "{in_window} messages within 1 s from #{i}");
    }
    assert!(
        took >= Duration::from_millis(1900),
        "30 messages in {took:?}"
    );
    drop(replica);
}

/// Direct sends older than any limit counts are forgotten for every chat, including the
/// ones that got no reply since (a stranger's chat would otherwise keep its rows for ever);
/// recent ones stay, since the limits still count them.
#[tokio::test]
async fn stale_direct_sends_of_silent_chats_are_pruned_and_recent_ones_kept() {
    let db = TestDb::create().await;
    for (chat, age_secs) in [
        (5001_i64, 3600),
        (5002, 400),
        (-1005003, 86_400),
        (5004, 10),
    ] {
        sqlx::query(
            "INSERT INTO direct_sends (chat_id, sent_at)
             VALUES ($1, now() - make_interval(secs => $2))",
        )
        .bind(chat)
        .bind(age_secs as f64)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    let app = spawn_app_on(db.clone(), fast).await;
    let chats = || async {
        sqlx::query_scalar::<_, i64>("SELECT chat_id FROM direct_sends ORDER BY chat_id")
            .fetch_all(app.pool())
            .await
            .unwrap()
    };
    wait_for("the stale rows to go", || async {
        chats().await.len() == 1
    })
    .await;
    assert_eq!(chats().await, [5004], "the send of 10 s ago still counts");
}

/// The slot a reply reserves, from the sends a chat already had (seconds ago), with the
/// default limits (3 in 3 s per chat, 20 a minute per group): literal cases.
#[tokio::test]
async fn a_reply_reserves_the_slot_its_chat_limits_allow() {
    let db = TestDb::create().await;
    let limits = opsguard::config::OutboxSettings::default();
    let group: Vec<f64> = (0..20).map(|i| 50.0 - f64::from(i)).collect();
    // (chat, its sends so far in seconds ago, the wait expected in seconds)
    let cases: [(i64, Vec<f64>, f64); 5] = [
        (7001, vec![], 0.0),
        (7002, vec![0.5, 0.2], 0.0),
        // Three in the last three seconds: the next when the oldest leaves the window.
        (7003, vec![2.0, 1.0, 0.5], 1.0),
        // A group with 20 in the last minute waits for the oldest to be a minute old.
        (-1007004, group.clone(), 10.0),
        // A private chat has no per-minute limit: 20 a while ago hold nothing back.
        (7005, group, 0.0),
    ];
    for (chat, ago, expected) in cases {
        for secs in &ago {
            sqlx::query(
                "INSERT INTO direct_sends (chat_id, sent_at)
                 VALUES ($1, clock_timestamp() - make_interval(secs => $2))",
            )
            .bind(chat)
            .bind(secs)
            .execute(&db.pool)
            .await
            .unwrap();
        }
        let wait = opsguard::outbox::pace::reserve(&db.pool, chat, &limits, None)
            .await
            .unwrap()
            .expect("no limit on the wait");
        let wait = wait.as_secs_f64();
        assert!(
            (wait - expected).abs() < 0.25,
            "chat {chat}: waits {wait} s, expected {expected} s"
        );
        let reserved: i64 =
            sqlx::query_scalar("SELECT count(*) FROM direct_sends WHERE chat_id = $1")
                .bind(chat)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!(
            reserved as usize,
            ago.len() + 1,
            "chat {chat}: one slot reserved"
        );
    }
    // Beyond the longest wait the caller accepts: nothing is reserved.
    let held = opsguard::outbox::pace::reserve(
        &db.pool,
        7003,
        &limits,
        Some(std::time::Duration::from_millis(100)),
    )
    .await
    .unwrap();
    assert_eq!(held, None);
    let reserved: i64 =
        sqlx::query_scalar("SELECT count(*) FROM direct_sends WHERE chat_id = 7003")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(reserved, 4, "a refused reservation writes nothing");
}
