//! Bounded work (issue 24): the real `serve` binary with room for 2 updates in work, a
//! slow Bot API, and 40 updates posted at once. Every update is answered 200 and replied to
//! exactly once; those beyond the bound waited in the inbox and were taken up from there;
//! the process never had more than 2 in work (its own gauges, scraped from `/metrics`).

use super::{add, post, serve};
use crate::fake_telegram::FakeTelegram;
use crate::helpers::*;
use crate::monitoring::exposition::Exposition;
use std::time::Duration;

const BOUND: &str = "2";
fn users() -> std::ops::RangeInclusive<i64> {
    8001..=8040
}

#[tokio::test]
async fn a_flood_beyond_the_work_bound_waits_in_the_inbox_and_each_update_is_answered_once() {
    let db = TestDb::create().await;
    for user in users() {
        add(&db, user, "viewer").await;
    }
    let telegram = FakeTelegram::start().await;
    let served = serve(
        &db,
        &telegram,
        &[
            ("OPSGUARD__TELEGRAM__MAX_UPDATES_IN_WORK", BOUND),
            ("OPSGUARD__OUTBOX__GLOBAL_PER_SECOND", "0"),
        ],
    )
    .await;
    // Each reply takes 100 ms to be answered: the first two hold both slots.
    telegram.set_send_delay(Duration::from_millis(100));
    let posts = users().map(|user| {
        let body = text_update(user * 10, user, user, "/whoami").to_string();
        let addr = served.addr.clone();
        tokio::spawn(async move { post(&addr, WEBHOOK_SECRET, body).await.unwrap().status() })
    });
    for answered in futures::future::join_all(posts).await {
        assert_eq!(answered.unwrap(), 200);
    }
    // One snapshot per look (the fake shares this test's thread).
    let replied = || {
        let replies = telegram.calls_to("sendMessage");
        users()
            .filter(|u| replies.iter().any(|c| c.chat_id() == Some(*u)))
            .count()
    };
    wait_for("a reply to each of the 40 users", || async {
        replied() == 40
    })
    .await;
    wait_for("every stored update marked done", || async {
        opsguard::storage::inbox::open_count(&db.pool)
            .await
            .unwrap()
            == 0
    })
    .await;
    for user in users() {
        let replies = telegram.sent_to(user);
        assert_eq!(replies.len(), 1, "user {user}: {replies:#?}");
        assert!(
            replies[0].text().contains(&format!("{user}")),
            "{}",
            replies[0].text()
        );
    }
    let scrape = || async {
        let url = format!("http://{}/metrics", served.addr);
        reqwest::get(url).await.unwrap().text().await.unwrap()
    };
    // The last slot is freed a moment after the last done mark (the menu check follows).
    wait_for("nothing left in work", || async {
        Exposition::parse(&scrape().await).value("opsguard_updates_in_work", &[]) == Some(0.0)
    })
    .await;
    let metrics = scrape().await;
    let m = Exposition::parse(&metrics);
    let value = |name: &str, labels: &[(&str, &str)]| m.value(name, labels).unwrap_or(-1.0);
    assert_eq!(
        value("opsguard_updates_in_work_peak", &[]),
        2.0,
        "{metrics}"
    );
    let waited = value("opsguard_inbox_waiting_total", &[]);
    assert!(waited >= 1.0, "some updates waited: {metrics}");
    let taken_up = value("opsguard_inbox_taken_up_total", &[("state", "waited")]);
    assert_eq!(taken_up, waited, "each waiting update was taken up once");
    let accepted = value("opsguard_webhook_accepted_total", &[]);
    assert_eq!(accepted, 40.0);
}
