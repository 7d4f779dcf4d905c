//! Failure modes: PostgreSQL unreachable, the audit log unwritable (fail closed), Redis
//! unreachable (degraded but serving), and rate limits shared through Redis.

mod database_down;
mod inbox_refused;
mod outcome_audit;
mod telegram_down;

use super::helpers::*;
use opsguard::domain::UserId;
use opsguard::domain::secret::Secret;
use opsguard::storage;
use sqlx::{Connection, PgConnection};
use std::time::Duration;

/// Run SQL on the server's `postgres` database, as an administrator would.
async fn as_admin(sql: String) {
    let mut admin = PgConnection::connect(&admin_url()).await.unwrap();
    let sql = sqlx::AssertSqlSafe(sql);
    sqlx::query(sql).execute(&mut admin).await.unwrap();
}

async fn roles_of(app: &TestApp, user: i64) -> Vec<String> {
    let principal = storage::users::principal_of(app.pool(), UserId(user))
        .await
        .unwrap();
    principal.unwrap().user.roles
}

async fn readyz(app: &TestApp) -> u16 {
    app.http
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn with_postgresql_unreachable_commands_are_refused_and_nothing_runs() {
    let app = spawn_app_with(|s| s.database.acquire_timeout_ms = 500).await;
    app.add_user(42, "admin").await;
    app.add_user(7, "viewer").await;
    // User 44 was seen by this replica but is not cached: told the database is down.
    app.add_user(44, "viewer").await;
    app.engine.authz().evict(UserId(44));
    // A stranger cannot be told from a user without the database: it gets the neutral line.
    // User 43 is added behind the engine's back (checked after recovery).
    let viewer = opsguard::domain::RoleName::parse("viewer").unwrap();
    opsguard::storage::users::upsert(app.pool(), UserId(43), "User43")
        .await
        .unwrap();
    opsguard::storage::users::grant(app.pool(), UserId(43), &viewer, "test")
        .await
        .unwrap();
    assert!(app.say(42, "/whoami").await.text().contains("Telegram id"));
    let rows_before = app.audit_rows().await.len();
    let name = app.db.name.clone();
    as_admin(format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false")).await;
    as_admin(format!(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    ))
    .await;
    // Collect what the operator sees, then restore the database before asserting.
    let lookup = app.say(44, "/whoami").await;
    let stranger = app.say(999, "/whoami").await;
    let grant = app.say(42, "/grant 7 operator").await;
    let ready_down = readyz(&app).await;
    as_admin(format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true")).await;

    assert!(
        lookup
            .text()
            .contains("cannot reach its database, so nothing was run"),
        "{}",
        lookup.text()
    );
    assert!(!lookup.text().contains("Telegram id"));
    assert_eq!(stranger.text(), STRANGER_LINE);
    assert!(
        grant.text().contains("so nothing was run"),
        "{}",
        grant.text()
    );
    assert!(grant.buttons().is_empty(), "no confirmation was offered");
    assert_eq!(ready_down, 503);

    // Nothing ran: no pending action, no role, no audit row; and the bot recovers.
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM pending_actions")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(pending, 0);
    assert_eq!(roles_of(&app, 7).await, ["viewer"]);
    assert_eq!(app.audit_rows().await.len(), rows_before);
    // The bot recovers once PostgreSQL is back: the pool reconnects by itself (polled, since
    // a loaded machine may need a moment with the 500 ms acquire timeout set above).
    let mut recovered = false;
    for _ in 0..50 {
        if readyz(&app).await == 200 && app.say(43, "/whoami").await.text().contains("Telegram id")
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "the bot serves again once PostgreSQL is back");
}

#[tokio::test]
async fn when_the_audit_log_cannot_be_written_nothing_runs() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    app.add_user(7, "viewer").await;
    let prompt = app.say(42, "/grant 7 operator").await;
    let confirm = prompt.buttons()[0].1.clone();
    // Every audit insert now fails, whatever function or batch writes it.
    for sql in [
        "CREATE FUNCTION audit_broken() RETURNS trigger LANGUAGE plpgsql
         AS $$ BEGIN RAISE EXCEPTION 'audit storage is broken'; END $$",
        "CREATE TRIGGER audit_log_broken BEFORE INSERT ON audit_log
         FOR EACH ROW EXECUTE FUNCTION audit_broken()",
    ] {
        sqlx::query(sql).execute(app.pool()).await.unwrap();
    }
    let pressed = app.press(42, &confirm, prompt.message_id.unwrap()).await;
    let whoami = app.say(42, "/whoami").await;
    sqlx::query("DROP TRIGGER audit_log_broken ON audit_log")
        .execute(app.pool())
        .await
        .unwrap();

    for reply in [&pressed, &whoami] {
        let text = reply.text();
        assert!(
            text.contains("audit log cannot be written, so nothing was run"),
            "{text}"
        );
        assert!(
            !text.contains("Telegram id") && !text.contains("now has the role"),
            "{text}"
        );
    }
    assert_eq!(roles_of(&app, 7).await, ["viewer"], "the grant did not run");
    let rows = app.audit_rows().await;
    let decisions: Vec<_> = rows.iter().map(|r| r.entry.decision.as_str()).collect();
    assert_eq!(
        decisions,
        ["pending", "pending"],
        "only the prompt was audited"
    );
    assert_eq!(
        storage::audit::verify(app.pool(), app.chain_key())
            .await
            .unwrap()
            .broken,
        None
    );
    assert!(app.say(42, "/whoami").await.text().contains("Telegram id"));
}

#[tokio::test]
async fn without_redis_the_bot_keeps_serving_in_degraded_mode() {
    let app = spawn_app_with(|s| {
        s.redis.url = Secret::new("redis://127.0.0.1:1");
        s.rate_limits.read = 3;
    })
    .await;
    app.add_user(42, "admin").await;
    app.add_user(43, "viewer").await;
    let status = app.say(42, "/status").await.text();
    for expected in [
        "Redis unreachable",
        "Degraded modes",
        "rate limits are per process",
    ] {
        assert!(status.contains(expected), "{expected} in {status}");
    }
    for _ in 0..2 {
        assert!(app.say(42, "/whoami").await.text().contains("Telegram id"));
    }
    let limited = app.say(42, "/whoami").await.text();
    assert!(limited.contains("Retry in"), "{limited}");
    let last = app.audit_rows().await.pop().unwrap();
    assert_eq!(
        (last.entry.command.as_str(), last.entry.decision.as_str()),
        ("whoami", "rate_limited")
    );

    // A replayed update runs once, de-duplicated through PostgreSQL.
    let id = app.next_update_id();
    let update = text_update(id, 43, 43, "/whoami");
    for _ in 0..3 {
        assert_eq!(app.post_update(&update).await.status(), 200);
    }
    assert!(app.wait_reply(43, 0).await.text().contains("Telegram id"));
    // All three were answered 200; none is in flight, so a second run has finished too.
    app.idle().await;
    assert_eq!(app.telegram.sent_to(43).len(), 1);
    let taken: i64 =
        sqlx::query_scalar("SELECT count(*) FROM processed_updates WHERE update_id = $1")
            .bind(id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(taken, 1);
    let ran = app.audit_rows().await.into_iter();
    let ran = ran.filter(|r| r.entry.actor_id == Some(43) && r.entry.command == "whoami");
    assert_eq!(ran.count(), 2, "one attempt and one outcome");
}

fn retry_secs(text: &str) -> u64 {
    let rest = text
        .split("Retry in ")
        .nth(1)
        .unwrap_or_else(|| panic!("no retry in {text}"));
    rest.split(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn redis_rate_limits_are_per_user_and_per_risk_class() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    app.add_user(43, "viewer").await;
    app.add_user(7, "viewer").await;
    for i in 1..=20 {
        let reply = app.say(42, "/whoami").await.text();
        assert!(reply.contains("Telegram id"), "read #{i}: {reply}");
    }
    let refused = app.say(42, "/whoami").await.text();
    assert!(refused.contains("Too many read commands"), "{refused}");
    assert!((1..=60).contains(&retry_secs(&refused)), "{refused}");
    assert!(
        app.say(43, "/whoami").await.text().contains("Telegram id"),
        "per user"
    );

    // The window lives in Redis, so another replica refuses too.
    assert!(!app.engine.redis().is_degraded());
    let client = redis::Client::open(REDIS_URL).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{}rl:user:42:read", app.db.redis_prefix);
    let hits: u64 = redis::cmd("ZCARD")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(hits, 20);
    let replica = app.spawn_replica().await;
    assert!(replica.say(42, "/whoami").await.text().contains("Retry in"));

    for i in 1..=5 {
        let reply = app.say(42, "/grant 7 operator").await;
        assert!(
            !reply.buttons().is_empty(),
            "sensitive #{i}: {}",
            reply.text()
        );
    }
    let refused = app.say(42, "/grant 7 operator").await;
    assert!(
        refused.text().contains("Too many sensitive commands"),
        "{}",
        refused.text()
    );
    assert!((1..=60).contains(&retry_secs(&refused.text())));
    assert!(refused.buttons().is_empty());

    let limited: Vec<_> = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.entry.decision == "rate_limited")
        .collect();
    assert_eq!(limited.len(), 6, "three refusals, two rows each");
    assert!(limited.iter().all(|r| r.entry.actor_id == Some(42)));
    let reasons: Vec<_> = limited
        .iter()
        .step_by(2)
        .map(|r| r.entry.reason.clone().unwrap_or_default())
        .collect();
    assert!(
        reasons[0].starts_with("read limit reached") && reasons[2].starts_with("sensitive limit"),
        "{reasons:?}"
    );
}

/// Hits counted in memory while Redis was down still count once an empty Redis is back:
/// no fresh budget after an outage (at most twice the limit in any window).
#[tokio::test]
async fn a_redis_restart_does_not_hand_out_a_fresh_rate_limit_budget() {
    let redis = PrivateRedis::start(&[]);
    redis.ready().await;
    let port = redis.port.to_string();
    let app = spawn_app_with(|s| {
        s.redis.url = Secret::new(redis.url());
        s.rate_limits.read = 3;
    })
    .await;
    app.add_user(42, "admin").await;
    assert!(app.say(42, "/whoami").await.text().contains("Telegram id"));
    drop(redis);
    // Memory does not know what Redis counted: three more while Redis is down, then limited.
    for _ in 0..3 {
        assert!(app.say(42, "/whoami").await.text().contains("Telegram id"));
    }
    assert!(app.engine.redis().is_degraded(), "counted in memory");
    assert!(app.say(42, "/whoami").await.text().contains("Retry in"));

    // An empty Redis comes back on the same port.
    let mut back = PrivateRedis::start(&["--port", &port]);
    back.port = port.parse().unwrap();
    back.ready().await;
    wait_for("opsguard to reach Redis again", || async {
        app.engine.redis().ping().await.is_ok()
    })
    .await;
    let after = app.say(42, "/whoami").await.text();
    assert!(
        after.contains("Retry in"),
        "a fresh budget after the restart: {after}"
    );
    let allowed = app
        .audit_rows()
        .await
        .iter()
        .filter(|r| r.entry.command == "whoami" && r.entry.decision == "allowed")
        .count()
        / 2;
    assert_eq!(allowed, 4, "one through Redis, three in memory");
    assert!(
        allowed <= 2 * 3,
        "within twice the limit of 3 over the outage"
    );
}
