//! The real binary: the console from a pipe, SIGTERM with a command in flight, and a grep
//! for planted canary secrets in everything the process and the bot put out; a SIGKILL
//! with outbox rows pending is in `process/crash.rs`.

mod bounded;
mod crash;
mod inbox;
mod polled;

use super::fake_telegram::FakeTelegram;
use super::helpers::*;
use opsguard::domain::{RoleName, UserId};
use opsguard::storage;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml");

/// The real binary with a clean environment aimed at `db` (and its Redis prefix).
pub fn opsguard(db: &TestDb) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_opsguard"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("OPSGUARD_CONFIG", CONFIG)
        .env("OPSGUARD_SYSTEM_CONFIG", "")
        .env("DATABASE_URL", &db.url)
        .env("REDIS_URL", REDIS_URL)
        .env("OPSGUARD__REDIS__KEY_PREFIX", &db.redis_prefix)
        .env(
            "OPSGUARD__LOGINS__STREAM__KEY",
            format!("{}auth-events", db.redis_prefix),
        )
        .env(
            "OPSGUARD__LOGINS__STREAM__DEAD_LETTER_KEY",
            format!("{}auth-events:dead", db.redis_prefix),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

async fn run_console(db: &TestDb, user: &str, input: &str) -> String {
    let mut child = opsguard(db)
        .args(["console", "--as", user])
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .await
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "console failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub(crate) async fn add(db: &TestDb, id: i64, role: &str) {
    storage::users::upsert(&db.pool, UserId(id), &format!("User{id}"))
        .await
        .unwrap();
    storage::users::grant(
        &db.pool,
        UserId(id),
        &RoleName::parse(role).unwrap(),
        "test",
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn console_runs_the_pipeline_from_a_pipe_with_numbered_buttons() {
    let db = TestDb::create().await;
    add(&db, 42, "admin").await;
    add(&db, 7, "viewer").await;
    let out = run_console(&db, "42", "/whoami\n/grant 7 operator\n1\n/grant 7 <b>\n").await;
    assert!(out.contains("Telegram id: 42"), "{out}");
    assert!(out.contains("[1] ✅ Confirm   [2] ✖ Cancel"), "{out}");
    assert!(out.contains("now has the role operator"), "{out}");
    assert!(
        out.contains("Usage: /grant <user-id> <role>"),
        "plain text, unescaped: {out}"
    );
    let p = storage::users::principal_of(&db.pool, UserId(7))
        .await
        .unwrap()
        .unwrap();
    assert!(p.user.roles.contains(&"operator".to_string()));
    let rows = storage::audit::latest(&db.pool, 100).await.unwrap();
    assert!(rows.iter().all(|r| r.entry.actor_kind == "console"));

    let stranger = run_console(&db, "999", "/whoami\n/help\n").await;
    assert_eq!(stranger.trim(), format!("{0}\n{0}", STRANGER_LINE));
}

pub(crate) struct Served {
    pub child: Child,
    pub addr: String,
}

/// The real binary's `serve` aimed at `telegram`, in webhook mode on a free port (remove
/// `OPSGUARD_WEBHOOK_SECRET` for long polling), with `extra` environment.
pub(crate) fn serve_command(
    db: &TestDb,
    telegram: &FakeTelegram,
    extra: &[(&str, &str)],
) -> (Command, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = opsguard(db);
    cmd.arg("serve")
        .env("OPSGUARD_LISTEN", &addr)
        .env("OPSGUARD_TELEGRAM_TOKEN", BOT_TOKEN)
        .env("OPSGUARD_TELEGRAM_API_URL", &telegram.url)
        .env("OPSGUARD_WEBHOOK_SECRET", WEBHOOK_SECRET);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    (cmd, addr)
}

/// Start `serve` and wait until it answers `/healthz`.
pub(crate) async fn start_serving((mut cmd, addr): (Command, String)) -> Served {
    let child = cmd.spawn().unwrap();
    let client = reqwest::Client::new();
    for _ in 0..1500 {
        if client
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_ok()
        {
            return Served { child, addr };
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("serve did not come up");
}

pub(crate) async fn serve(db: &TestDb, telegram: &FakeTelegram, extra: &[(&str, &str)]) -> Served {
    start_serving(serve_command(db, telegram, extra)).await
}

pub(crate) async fn post(
    addr: &str,
    secret: &str,
    body: String,
) -> reqwest::Result<reqwest::Response> {
    reqwest::Client::new()
        .post(format!("http://{addr}/telegram/webhook"))
        .header("X-Telegram-Bot-Api-Secret-Token", secret)
        .body(body)
        .send()
        .await
}

#[tokio::test]
async fn sigterm_finishes_commands_in_flight_then_exits_zero() {
    let db = TestDb::create().await;
    add(&db, 42, "admin").await;
    let telegram = FakeTelegram::start().await;
    let mut served = serve(&db, &telegram, &[]).await;
    telegram.set_send_delay(Duration::from_millis(800));
    let status = post(
        &served.addr,
        WEBHOOK_SECRET,
        text_update(1, 42, 42, "/whoami").to_string(),
    )
    .await
    .unwrap();
    // Answered 200: the update is stored and its command dispatched (in flight) already,
    // and its reply is held 800 ms by the fake Bot API.
    assert_eq!(status.status(), 200);
    let pid = served.child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let exit = tokio::time::timeout(Duration::from_secs(15), served.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    let replies = telegram.sent_to(42);
    assert_eq!(
        replies.len(),
        1,
        "the command in flight finished and replied"
    );
    assert!(
        replies[0].text().contains("Telegram id: <code>42</code>"),
        "{}",
        replies[0].text()
    );
    assert!(
        post(&served.addr, WEBHOOK_SECRET, "{}".into())
            .await
            .is_err(),
        "no more updates are taken"
    );
}

#[tokio::test]
async fn planted_canary_secrets_never_leave_the_process() {
    let db = TestDb::create().await;
    add(&db, 42, "admin").await;
    let telegram = FakeTelegram::start().await;
    let canary_secret = "CANARYwebhookSECRET77_0123456789abcdef";
    let canary_redis = "CANARYredisPASSWORD88";
    let canary_pg = "CANARYpgPASSWORD99";
    let at = db.url.find('@').expect("the test URL names a user");
    let pg_url = format!("{}:{canary_pg}{}", &db.url[..at], &db.url[at..]);
    assert!(pg_url.contains(canary_pg));
    let redis_url = format!("redis://:{canary_redis}@127.0.0.1:6379");
    let mut served = serve(
        &db,
        &telegram,
        &[
            ("OPSGUARD_WEBHOOK_SECRET", canary_secret),
            ("DATABASE_URL", &pg_url),
            ("REDIS_URL", &redis_url),
            ("RUST_LOG", "info"),
        ],
    )
    .await;
    let commands = [
        "/status",
        "/whoami",
        "/stepup 123456",
        "/totp confirm 654321",
        "/audit 30",
        "/grant 42 x y",
        "/audit verify",
    ];
    for (i, text) in commands.iter().enumerate() {
        let body = text_update(10 + i as i64, 42, 42, text).to_string();
        assert_eq!(
            post(&served.addr, canary_secret, body)
                .await
                .unwrap()
                .status(),
            200
        );
        telegram
            .wait_until(text, |_| telegram.sent_to(42).len() > i)
            .await;
    }
    let wrong = post(
        &served.addr,
        "CANARYguess",
        text_update(99, 42, 42, "/status").to_string(),
    )
    .await
    .unwrap();
    assert_eq!(wrong.status(), 401);
    let status = telegram.sent_to(42)[0].text();
    assert!(status.contains("Redis unreachable"), "{status}");

    served.child.start_kill().unwrap();
    let _ = served.child.wait().await;
    let mut logs = String::new();
    served
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .await
        .unwrap();
    let mut export = Vec::new();
    storage::audit::export(&db.pool, &mut export).await.unwrap();
    let outputs = [
        ("logs", logs.clone()),
        (
            "telegram",
            telegram
                .calls()
                .iter()
                .map(|c| c.raw())
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        ("audit", String::from_utf8(export).unwrap()),
    ];
    for (name, text) in outputs {
        for canary in [
            canary_secret,
            canary_redis,
            canary_pg,
            "123456",
            "654321",
            BOT_TOKEN,
        ] {
            assert!(!text.contains(canary), "{canary} leaked into {name}");
        }
    }
    assert!(logs.contains("redis"), "logs were captured: {logs}");
}
