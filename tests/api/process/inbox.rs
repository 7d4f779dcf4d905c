//! The durable update inbox against SIGKILL of the real `serve` binary (issue 15): a
//! command it was running (attempt audited, no outcome) is reported by another replica as
//! interrupted once the lease runs out, audited so, and never run a second time.
//!
//! A replica killed right after its 200, before the command's attempt was audited, has the
//! update run (once) by another replica within the lease plus 5 s.
//!
//! The killed replica is held where the test wants it by a table lock the test takes:
//! on `users` after the attempt (`/users` reads it once the attempt is written, the
//! permissions being cached by then); on `audit_log` before it (the attempt is its first
//! write after the 200). The test waits for proof of where it stands (the waiting query,
//! the audit rows), then kills.

use super::serve;
use crate::helpers::*;
use sqlx::{PgPool, Postgres, Transaction};
use std::time::{Duration, Instant};

pub(super) const LEASE_SECS: u64 = 2;
pub(super) const LEASE: (&str, &str) = ("OPSGUARD__TELEGRAM__INBOX_LEASE_SECS", "2");

pub(super) async fn lock(pool: &PgPool, table: &str) -> Transaction<'static, Postgres> {
    let mut tx = pool.begin().await.unwrap();
    let sql = format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut *tx)
        .await
        .unwrap();
    tx
}

/// A query of the database's other sessions naming `table` waits for a lock.
pub(super) async fn someone_waits_on(db: &TestDb, table: &str) -> bool {
    let waiting: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'
         AND strpos(query, $2) > 0",
    )
    .bind(&db.name)
    .bind(table)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    waiting > 0
}

/// (phase, outcome) of each audit row of `command`, oldest first, with its request id.
pub(super) async fn rows_of(app: &TestApp, command: &str) -> Vec<(String, String, Option<String>)> {
    app.audit_rows()
        .await
        .into_iter()
        .filter(|r| r.entry.command == command)
        .map(|r| (r.entry.request_id, r.entry.phase, r.entry.outcome))
        .collect()
}

pub(super) async fn open_inbox_rows(app: &TestApp) -> i64 {
    opsguard::storage::inbox::open_count(app.pool())
        .await
        .unwrap()
}

/// End the database sessions that wait for a lock on a query naming `table`: those of a
/// killed replica (a backend waiting for a lock notices its client is gone only once it
/// gets the lock, and would then commit the write of a process that no longer exists).
pub(super) async fn end_waiting_sessions(db: &TestDb, table: &str) {
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = $1 AND wait_event_type = 'Lock' AND strpos(query, $2) > 0",
    )
    .bind(&db.name)
    .bind(table)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(!ended.is_empty() && ended.iter().all(|e| *e), "{ended:?}");
}

pub(super) fn kill(child: &tokio::process::Child) {
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
}

/// Wait until chat `chat` has more than `before` messages, at most `limit` after `since`.
pub(super) async fn reply_within(
    app: &TestApp,
    chat: i64,
    before: usize,
    since: Instant,
    limit: Duration,
) {
    wait_for("an answer after the kill", || async {
        app.telegram.sent_to(chat).len() > before
    })
    .await;
    let took = since.elapsed();
    assert!(
        took < limit,
        "answered {took:?} after the kill, not within {limit:?}"
    );
}

#[tokio::test]
async fn a_command_killed_mid_run_is_reported_interrupted_and_never_run_twice() {
    let b = spawn_app_with(|s| s.telegram.inbox_lease_secs = LEASE_SECS).await;
    b.add_user(42, "admin").await;
    let mut a = serve(&b.db, &b.telegram, &[LEASE]).await;
    // Warm the killed replica's permission cache, so `/users` passes authorization unheld.
    let warm = text_update(b.next_update_id(), 42, 42, "/whoami");
    let posted = super::post(&a.addr, WEBHOOK_SECRET, warm.to_string()).await;
    assert_eq!(posted.unwrap().status(), 200);
    b.wait_reply(42, 0).await;
    let lock = lock(b.pool(), "users").await;
    let update = text_update(b.next_update_id(), 42, 42, "/users");
    let answered = super::post(&a.addr, WEBHOOK_SECRET, update.to_string())
        .await
        .unwrap();
    assert_eq!(answered.status(), 200);
    // Its attempt is audited and it is running (waiting for `users`), with no outcome.
    wait_for("the attempt of /users while it runs", || async {
        let rows = rows_of(&b, "users").await;
        rows.len() == 1 && rows[0].1 == "attempt" && someone_waits_on(&b.db, "users").await
    })
    .await;
    // Its lease is renewed while it runs (past the first lease, still the first take).
    wait_for("a renewed lease", || async {
        let renewed: Option<bool> = sqlx::query_scalar(
            "SELECT takes = 1 AND lease_until > received_at + interval '2 seconds'
             FROM update_inbox WHERE done_at IS NULL",
        )
        .fetch_optional(b.pool())
        .await
        .unwrap();
        renewed == Some(true)
    })
    .await;
    let request_id = rows_of(&b, "users").await[0].0.clone();
    kill(&a.child);
    let _ = a.child.wait().await;
    let killed_at = Instant::now();
    lock.rollback().await.unwrap();

    reply_within(&b, 42, 1, killed_at, Duration::from_secs(LEASE_SECS + 5)).await;
    let notice = b.telegram.sent_to(42)[1].text();
    assert!(notice.contains("interrupted"), "{notice}");
    assert!(notice.contains(&request_id), "names the request: {notice}");
    wait_for("the update to be done", || async {
        open_inbox_rows(&b).await == 0
    })
    .await;
    let rows = rows_of(&b, "users").await;
    let audited: Vec<_> = rows
        .iter()
        .map(|r| (r.0.as_str(), r.1.as_str(), r.2.as_deref()))
        .collect();
    assert_eq!(
        audited,
        [
            (request_id.as_str(), "attempt", None),
            (request_id.as_str(), "outcome", Some("interrupted")),
        ],
        "audited interrupted, never run again"
    );
    let sent: Vec<_> = b.telegram.sent_to(42).iter().map(|c| c.text()).collect();
    assert_eq!(sent.len(), 2, "the /whoami reply and the notice: {sent:?}");
    assert!(!sent.iter().any(|t| t.contains(" users</b>")), "{sent:?}");
}

#[tokio::test]
async fn an_update_whose_replica_died_right_after_its_200_is_answered_by_another() {
    let b = spawn_app_with(|s| s.telegram.inbox_lease_secs = LEASE_SECS).await;
    b.add_user(42, "admin").await;
    let mut a = serve(&b.db, &b.telegram, &[LEASE]).await;
    let lock = lock(b.pool(), "audit_log").await;
    let update = text_update(b.next_update_id(), 42, 42, "/whoami");
    let answered = super::post(&a.addr, WEBHOOK_SECRET, update.to_string())
        .await
        .unwrap();
    assert_eq!(answered.status(), 200, "stored, then acknowledged");
    // The replica holds the update and waits to audit its attempt: nothing has run.
    wait_for("the attempt's audit write to wait for the lock", || async {
        someone_waits_on(&b.db, "audit").await
    })
    .await;
    let request_id: uuid::Uuid =
        sqlx::query_scalar("SELECT request_id FROM update_inbox WHERE done_at IS NULL")
            .fetch_one(b.pool())
            .await
            .unwrap();
    kill(&a.child);
    let _ = a.child.wait().await;
    let killed_at = Instant::now();
    end_waiting_sessions(&b.db, "audit").await;
    lock.rollback().await.unwrap();

    reply_within(&b, 42, 0, killed_at, Duration::from_secs(LEASE_SECS + 5)).await;
    let reply = b.telegram.sent_to(42)[0].text();
    assert!(
        reply.contains("Telegram id: <code>42</code>"),
        "run, not reported: {reply}"
    );
    wait_for("the update to be done", || async {
        open_inbox_rows(&b).await == 0
    })
    .await;
    let request_id = request_id.to_string();
    let rows = rows_of(&b, "whoami").await;
    let audited: Vec<_> = rows
        .iter()
        .map(|r| (r.0.as_str(), r.1.as_str(), r.2.as_deref()))
        .collect();
    assert_eq!(
        audited,
        [
            (request_id.as_str(), "attempt", None),
            (request_id.as_str(), "outcome", Some("ok")),
        ],
        "run once, under the request id it was stored with"
    );
    assert_eq!(b.telegram.sent_to(42).len(), 1, "{:#?}", b.telegram.calls());
}
