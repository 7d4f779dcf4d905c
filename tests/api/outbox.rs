//! The outbox worker against the fake Bot API: delivery with text and buttons, retries after
//! 429 and 500, dead letters in `/status`.
//! Pacing is in `outbox/pacing.rs`; replicas, restarts and crashes in `outbox/replicas.rs`.

mod dead_letters;
mod edits;
mod from_chat;
mod heads;
mod pacing;
mod replicas;

use super::fake_telegram::{Call, Forced};
use super::helpers::*;
use opsguard::config::Settings;
use opsguard::domain::Reply;
use opsguard::domain::reply::Button;
use opsguard::outbox;
use std::time::Duration;

/// Small values so the tests run fast; the per-chat interval is 100 ms, not 1 s.
pub fn fast(s: &mut Settings) {
    s.outbox.poll_interval_ms = 20;
    s.outbox.backoff_base_ms = 50;
    s.outbox.backoff_cap_ms = 200;
    s.outbox.per_chat_interval_ms = 100;
    // A send that gets no answer is given up quickly.
    s.outbox.send_timeout_ms = 300;
}

pub async fn queue(app: &TestApp, chat: i64, html: &str) -> i64 {
    outbox::enqueue(app.pool(), chat, &Reply::html(html), "test")
        .await
        .unwrap()
}

/// Accepted `sendMessage` calls to a chat, oldest first.
pub fn messages(app: &TestApp, chat: i64) -> Vec<Call> {
    app.telegram
        .sent_to(chat)
        .into_iter()
        .filter(|c| c.method == "sendMessage")
        .collect()
}

pub fn texts(app: &TestApp, chat: i64) -> Vec<String> {
    messages(app, chat).iter().map(Call::text).collect()
}

/// Wait until each chat got `n` messages.
pub async fn wait_delivered(app: &TestApp, chats: &[i64], n: usize) {
    let what = format!("{n} outbox messages in each of {chats:?}");
    app.telegram
        .wait_until(&what, |_| {
            chats.iter().all(|c| messages(app, *c).len() >= n)
        })
        .await;
}

/// Wait until every row queued for `chats` has come to `status` (a row that is `sent` or
/// `dead` is never tried again, so after this nothing more can reach those chats).
pub async fn wait_rows(app: &TestApp, chats: &[i64], status: &str) {
    wait_for(&format!("every row of {chats:?} {status}"), || async {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM outbox WHERE chat_id = ANY($1) AND status <> $2",
        )
        .bind(chats)
        .bind(status)
        .fetch_one(app.pool())
        .await
        .unwrap();
        open == 0
    })
    .await;
}

/// Proof that the outbox worker has made a whole pass since now: a marker row for `chat`
/// queued, delivered and recorded as sent, then a second one (claimed by a later pass,
/// so after every send of the first pass ended).
pub async fn whole_pass(app: &TestApp, chat: i64) {
    for n in 1..=2 {
        queue(app, chat, &format!("marker {n}")).await;
        wait_delivered(app, &[chat], n).await;
        wait_rows(app, &[chat], "sent").await;
    }
}

pub async fn row(app: &TestApp, id: i64) -> (String, i32, Option<String>) {
    sqlx::query_as("SELECT status, attempts, last_error FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

/// `texts` of each chat are exactly `expected` (in order, none twice, none missing).
pub fn assert_in_order(app: &TestApp, chats: &[i64], per_chat: usize) {
    for chat in chats {
        let expected: Vec<String> = (0..per_chat).map(|i| format!("chat {chat} #{i}")).collect();
        assert_eq!(texts(app, *chat), expected, "chat {chat}");
    }
}

pub async fn queue_each(app: &TestApp, chats: &[i64], per_chat: usize) {
    for i in 0..per_chat {
        for chat in chats {
            queue(app, *chat, &format!("chat {chat} #{i}")).await;
        }
    }
}

#[tokio::test]
async fn queued_rows_arrive_as_html_with_their_buttons_or_as_a_document_when_long() {
    let app = spawn_app_with(fast).await;
    let reply = Reply::html("<b>2 new</b> · 1 resolved").with_buttons(vec![Button {
        label: "Full list".into(),
        data: "c:abc".into(),
    }]);
    let id = outbox::enqueue(app.pool(), 501, &reply, "schedule:daily")
        .await
        .unwrap();
    // Over 4096 characters as Telegram counts them (tags do not count).
    let long = "<code>finding</code>\n".repeat(600);
    let long_id = queue(&app, 502, &long).await;
    wait_delivered(&app, &[501], 1).await;
    let sent = &messages(&app, 501)[0];
    assert_eq!(sent.text(), "<b>2 new</b> · 1 resolved");
    assert_eq!(sent.body["parse_mode"], "HTML");
    assert_eq!(sent.buttons(), vec![("Full list".into(), "c:abc".into())]);
    let calls = app
        .telegram
        .wait_until("the long row as a document", |calls| {
            calls
                .iter()
                .any(|c| c.method == "sendDocument" && c.raw().contains("502"))
        })
        .await;
    let doc = calls.iter().find(|c| c.method == "sendDocument").unwrap();
    assert!(doc.raw().contains(&format!("opsguard-{long_id}.txt")));
    assert!(!doc.raw().contains("<code>"), "plain text in the file");
    wait_rows(&app, &[501, 502], "sent").await;
    assert!(messages(&app, 502).is_empty(), "no partial messages");
    assert_eq!(row(&app, id).await, ("sent".into(), 1, None));
    assert_eq!(row(&app, long_id).await.0, "sent");
}

#[tokio::test]
async fn after_429_the_row_waits_exactly_retry_after_and_is_never_dead_lettered_for_it() {
    // One attempt allowed: a 429 that counted would dead-letter the row at once.
    let app = spawn_app_with(|s| {
        fast(s);
        s.outbox.max_attempts = 1;
    })
    .await;
    app.telegram
        .force([Forced::retry_after(1), Forced::retry_after(1)]);
    let id = queue(&app, 601, "chat 601 #0").await;
    wait_delivered(&app, &[601], 1).await;
    let rejected = app.telegram.rejected();
    assert_eq!(rejected.len(), 2);
    let delivered = &messages(&app, 601)[0];
    let gap1 = rejected[1].at - rejected[0].at;
    let gap2 = delivered.at - rejected[1].at;
    for gap in [gap1, gap2] {
        assert!(gap >= Duration::from_millis(1000), "retried after {gap:?}");
        assert!(
            gap < Duration::from_millis(1600),
            "waited {gap:?}: not exactly retry_after"
        );
    }
    wait_rows(&app, &[601], "sent").await;
    let (status, attempts, last_error) = row(&app, id).await;
    assert_eq!((status.as_str(), attempts), ("sent", 1));
    assert!(last_error.unwrap().contains("retry after 1"));
}

#[tokio::test]
async fn after_500s_messages_arrive_later_in_order_per_chat_none_lost_none_twice() {
    let app = spawn_app_with(fast).await;
    let chats = [701, 702, 703];
    app.telegram.force((0..4).map(|_| Forced::server_error()));
    queue_each(&app, &chats, 3).await;
    wait_delivered(&app, &chats, 3).await;
    // Every row sent: none can be sent again, so the counts below are final.
    wait_rows(&app, &chats, "sent").await;
    assert_eq!(
        app.telegram.rejected().len(),
        4,
        "the scripted failures were used"
    );
    assert_in_order(&app, &chats, 3);
    let failed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status = 'sent' AND attempts > 1")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert!(failed >= 1, "some rows were retried");
}

#[tokio::test]
async fn a_row_that_always_fails_is_dead_lettered_without_the_token_and_status_says_so() {
    let app = spawn_app_with(|s| {
        fast(s);
        s.outbox.max_attempts = 3;
    })
    .await;
    app.add_user(42, "viewer").await;
    let status = app.say(42, "/status").await.text();
    assert!(status.contains("📤 Outbox: 0 pending"), "{status}");
    assert!(!status.contains("dead-lettered"), "{status}");

    // The error echoes the request path, which holds the token.
    app.telegram.fail_chat(
        801,
        Forced::bad_request("Bad Request: chat not found ({path})"),
    );
    let id = queue(&app, 801, "never arrives").await;
    let later = queue(&app, 801, "queued behind it").await;
    app.telegram
        .wait_until("three attempts", |_| app.telegram.rejected().len() >= 6)
        .await;
    // Both rows dead-lettered: a dead row is never tried again, so the count is final.
    wait_rows(&app, &[801], "dead").await;
    assert_eq!(
        app.telegram.rejected().len(),
        6,
        "no attempts after max_attempts"
    );
    for id in [id, later] {
        let (status, attempts, last_error) = row(&app, id).await;
        assert_eq!((status.as_str(), attempts), ("dead", 3));
        let last_error = last_error.unwrap();
        assert!(last_error.contains("chat not found"), "{last_error}");
        assert!(
            !last_error.contains("TEST-bot-token"),
            "token in {last_error}"
        );
        assert!(!last_error.contains(BOT_TOKEN), "token in {last_error}");
    }
    // A row waiting out a long backoff.
    sqlx::query(
        "INSERT INTO outbox (chat_id, html, source, not_before)
         VALUES (802, 'later', 'test', now() + interval '1 hour')",
    )
    .execute(app.pool())
    .await
    .unwrap();
    let status = app.say(42, "/status").await.text();
    assert!(status.contains("⚠️ Outbox: 2 dead-lettered"), "{status}");
    assert!(status.contains("📤 Outbox: 1 pending, oldest"), "{status}");
}
