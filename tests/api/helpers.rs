//! Test harness: `spawn_app()` starts the real application on port 0 with its own
//! PostgreSQL database, its own Redis key prefix and a fake Telegram Bot API.

pub mod rfc6238;
mod wait;

pub use wait::wait_for;

/// All a stranger ever learns (the design: "answered with at most a neutral line"); the
/// literal text, not the product's constant.
pub const STRANGER_LINE: &str = "This is a private bot.";

/// A secret's fingerprint as the design defines it: the first 8 hex digits of SHA-256,
/// computed here, independently of `opsguard::domain::secret`.
pub fn sha256_fingerprint(value: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(value.as_bytes()))[..8].to_string()
}

#[test]
fn fingerprints_are_sha256_known_answers() {
    // `printf abc | sha256sum` and `printf opsguard-canary-0123456789 | openssl dgst -sha256`.
    assert_eq!(sha256_fingerprint("abc"), "ba7816bf");
    assert_eq!(opsguard::domain::secret::fingerprint(b"abc"), "ba7816bf");
    let canary = "opsguard-canary-0123456789";
    assert_eq!(sha256_fingerprint(canary), "e2962748");
    let shown = opsguard::domain::secret::Secret::new(canary).to_string();
    assert_eq!(shown, "sha256:e2962748");
}

use super::fake_telegram::{Call, FakeTelegram};
use opsguard::config::Settings;
use opsguard::domain::{RoleName, UserId};
use opsguard::engine::Engine;
use opsguard::startup::Application;
use opsguard::storage;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const WEBHOOK_SECRET: &str = "test-webhook-secret_0123456789abcdef-_XYZ";
pub const BOT_TOKEN: &str = "123456:TEST-bot-token";

/// The test server, `OPSGUARD_TEST_PG` (`postgres://user[:pass]@host:port`, no database);
/// every test reaches PostgreSQL through this, never a hard-coded address.
pub fn base() -> String {
    std::env::var("OPSGUARD_TEST_PG").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432".into())
}

/// The server's `postgres` database as the administrator of `base()`.
pub fn admin_url() -> String {
    format!("{}/postgres", base())
}

/// `base()` on database `db`, as `user` (None: base's own) with `password` (None: none).
pub fn pg_url(user: Option<&str>, password: Option<&str>, db: &str) -> String {
    let mut url = reqwest::Url::parse(&base()).expect("OPSGUARD_TEST_PG is a URL");
    if let Some(user) = user {
        url.set_username(user).unwrap();
    }
    url.set_password(password).unwrap();
    url.set_path(db);
    url.to_string()
}

/// `host:port` of `base()`, as checks and backups name a target.
pub fn pg_host_port() -> String {
    let url = reqwest::Url::parse(&base()).expect("OPSGUARD_TEST_PG is a URL");
    format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(5432)
    )
}

/// A database and a Redis key prefix of one's own; both are removed on drop.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub redis_prefix: String,
    pub pool: PgPool,
}

impl TestDb {
    pub async fn create() -> Arc<Self> {
        let name = format!("opsguard_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&format!("{}/postgres", base()))
            .await
            .expect("PostgreSQL on 127.0.0.1");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .unwrap();
        TestDb::migrated(name.clone(), format!("{}/{name}", base())).await
    }

    /// A database already created as `name`, migrated through `url` (which names the role
    /// that applies the migrations), removed on drop like any other.
    pub async fn migrated(name: String, url: String) -> Arc<Self> {
        let pool = storage::pool(&url, 8, Duration::from_secs(5)).unwrap();
        storage::migrate(&url, &pool).await.unwrap();
        Arc::new(TestDb {
            redis_prefix: format!("test:{name}:"),
            name,
            url,
            pool,
        })
    }
}

/// Run the real binary with `DATABASE_URL=url`, the default config and `envs`:
/// (exit code, stdout, stderr).
pub async fn run_opsguard(
    url: &str,
    envs: &[(&str, &std::ffi::OsStr)],
    args: &[&str],
) -> (Option<i32>, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_opsguard"))
        .args(args)
        .env_clear()
        .env("DATABASE_URL", url)
        .env("OPSGUARD_SYSTEM_CONFIG", "")
        .env(
            "OPSGUARD_CONFIG",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml"),
        )
        .envs(envs.iter().copied())
        .output()
        .await
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

impl TestDb {
    /// Where this test's audit checkpoints are written (removed on drop).
    pub fn checkpoint_dir(&self) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("{}-checkpoints", self.name))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.checkpoint_dir());
        let (name, prefix) = (self.name.clone(), self.redis_prefix.clone());
        on_own_runtime(async move {
            if let Ok(mut admin) = PgConnection::connect(&format!("{}/postgres", base())).await {
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut admin)
                    .await;
            }
            if let Ok(client) = redis::Client::open(REDIS_URL)
                && let Ok(mut conn) = client.get_multiplexed_async_connection().await
            {
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{prefix}*"))
                    .query_async(&mut conn)
                    .await
                    .unwrap_or_default();
                if !keys.is_empty() {
                    let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
                }
            }
        });
    }
}

/// Run clean-up from a `Drop` (which cannot await, and may run inside a runtime): on a
/// runtime of its own in a thread of its own, waiting until it is done.
pub fn on_own_runtime(work: impl std::future::Future<Output = ()> + Send + 'static) {
    let _ = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(work);
    })
    .join();
}

pub fn settings_for(db: &TestDb, telegram_url: &str) -> Settings {
    let env: HashMap<String, String> = [
        (
            "OPSGUARD_CONFIG",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml").to_string(),
        ),
        ("OPSGUARD_SYSTEM_CONFIG", String::new()),
        ("DATABASE_URL", db.url.clone()),
        ("REDIS_URL", REDIS_URL.to_string()),
        ("OPSGUARD_TELEGRAM_TOKEN", BOT_TOKEN.to_string()),
        ("OPSGUARD_TELEGRAM_API_URL", telegram_url.to_string()),
        ("OPSGUARD_WEBHOOK_SECRET", WEBHOOK_SECRET.to_string()),
        ("OPSGUARD_LISTEN", "127.0.0.1:0".to_string()),
        ("OPSGUARD__REDIS__KEY_PREFIX", db.redis_prefix.clone()),
        // The auth-event stream is not prefixed (services XADD to it by name): each test
        // gets its own, under its prefix, so the cleanup of the prefix removes it.
        (
            "OPSGUARD__LOGINS__STREAM__KEY",
            format!("{}auth-events", db.redis_prefix),
        ),
        (
            "OPSGUARD__LOGINS__STREAM__DEAD_LETTER_KEY",
            format!("{}auth-events:dead", db.redis_prefix),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut settings = Settings::load_with(&env).expect("test settings");
    // Checkpoints go to the test's own directory, and only when a test asks for one.
    settings.audit.checkpoint_storage = db.checkpoint_dir().display().to_string();
    settings.audit.checkpoint_cron.clear();
    // The default schedules fire at wall-clock times (03:30, 04:00 UTC): a test started
    // within their grace period would run them and find audit rows it never asked for.
    // Tests that want schedules declare their own.
    settings.schedules.clear();
    settings
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub telegram: FakeTelegram,
    pub db: Arc<TestDb>,
    pub engine: Engine,
    pub shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    next_update: Arc<AtomicI64>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(customize: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDb::create().await;
    let telegram = FakeTelegram::start().await;
    start(db, telegram, Arc::new(AtomicI64::new(1000)), customize).await
}

/// The app on an existing database (after a killed process used it, say).
pub async fn spawn_app_on(db: Arc<TestDb>, customize: impl FnOnce(&mut Settings)) -> TestApp {
    let telegram = FakeTelegram::start().await;
    start(db, telegram, Arc::new(AtomicI64::new(1000)), customize).await
}

async fn start(
    db: Arc<TestDb>,
    telegram: FakeTelegram,
    next_update: Arc<AtomicI64>,
    customize: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = settings_for(&db, &telegram.url);
    customize(&mut settings);
    let app = Application::build(settings)
        .await
        .expect("application builds");
    let addr = app.local_addr();
    let engine = app.engine();
    let shutdown = app.shutdown_token();
    let handle = tokio::spawn(app.run());
    // Wait until the permission-change listener is up, so cross-replica tests are fair.
    for _ in 0..200 {
        if engine.authz().is_listening() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    TestApp {
        addr,
        http: reqwest::Client::new(),
        telegram,
        db,
        engine,
        shutdown,
        server: handle,
        next_update,
    }
}

impl TestApp {
    /// A second replica on the same database, Redis prefix and Telegram.
    pub async fn spawn_replica(&self) -> TestApp {
        start(
            self.db.clone(),
            self.telegram.clone(),
            self.next_update.clone(),
            |_| {},
        )
        .await
    }

    /// A second replica on the same database, Redis prefix and Telegram, with its own
    /// settings changes.
    pub async fn spawn_replica_with(&self, customize: impl FnOnce(&mut Settings)) -> TestApp {
        start(
            self.db.clone(),
            self.telegram.clone(),
            self.next_update.clone(),
            customize,
        )
        .await
    }

    pub fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    /// The audit chain key of this app (`None` without a master key).
    pub fn chain_key(&self) -> Option<&opsguard::domain::audit::ChainKey> {
        self.engine.audit_keys().map(|k| k.chain())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// GET a path on the app and return the body.
    pub async fn get_text(&self, path: &str) -> String {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Add a user with a role, and wait until this replica's engine sees it (the change
    /// reaches its permission cache through NOTIFY, a moment after the commit).
    pub async fn add_user(&self, id: i64, role: &str) {
        storage::users::upsert(self.pool(), UserId(id), &format!("User{id}"))
            .await
            .unwrap();
        storage::users::grant(
            self.pool(),
            UserId(id),
            &RoleName::parse(role).unwrap(),
            "test",
        )
        .await
        .unwrap();
        for _ in 0..200 {
            let p = self.engine.authz().principal(UserId(id)).await.unwrap();
            if p.is_some_and(|p| p.user.roles.iter().any(|r| r == role)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the engine never saw user {id} as {role}");
    }

    pub fn next_update_id(&self) -> i64 {
        self.next_update.fetch_add(1, Ordering::SeqCst)
    }

    /// POST a raw body to the webhook with the right secret.
    pub async fn post_webhook(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.http
            .post(self.url("/telegram/webhook"))
            .header("X-Telegram-Bot-Api-Secret-Token", WEBHOOK_SECRET)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_update(&self, update: &Value) -> reqwest::Response {
        self.post_webhook(update.to_string()).await
    }

    /// Send a text as `user` in their private chat and wait for the reply.
    pub async fn say(&self, user: i64, text: &str) -> Call {
        self.say_in(user, user, text).await
    }

    pub async fn say_in(&self, user: i64, chat: i64, text: &str) -> Call {
        let before = self.telegram.sent_to(chat).len();
        let status = self
            .post_update(&text_update(self.next_update_id(), user, chat, text))
            .await
            .status();
        assert_eq!(status, 200, "webhook refused {text}");
        self.wait_reply(chat, before).await
    }

    /// Press a button (callback data) on message `message_id` and wait for the answer: a
    /// refusal comes back as the callback notice (an `answerCallbackQuery` with text, seen
    /// by the presser alone), anything else as a message in the chat.
    pub async fn press(&self, user: i64, data: &str, message_id: i64) -> Call {
        let before = self.telegram.sent_to(user).len();
        let update_id = self.next_update_id();
        let update = callback_update(update_id, user, user, data, message_id);
        assert_eq!(self.post_update(&update).await.status(), 200);
        let id = serde_json::json!(format!("cb{update_id}"));
        let is_answer =
            |c: &Call| c.method == "answerCallbackQuery" && c.body["callback_query_id"] == id;
        let calls = self
            .telegram
            .wait_until("the callback answer", |calls| calls.iter().any(is_answer))
            .await;
        let answer = calls.into_iter().find(|c| is_answer(c)).unwrap();
        if answer.body.get("text").is_some() {
            return answer;
        }
        self.wait_reply(user, before).await
    }

    pub async fn wait_reply(&self, chat: i64, before: usize) -> Call {
        let telegram = self.telegram.clone();
        self.telegram
            .wait_until(&format!("a reply in chat {chat}"), |_| {
                telegram.sent_to(chat).len() > before
            })
            .await;
        self.telegram.sent_to(chat)[before].clone()
    }

    /// Every audit row, oldest first, as (command, phase, decision, outcome, reason).
    pub async fn audit_rows(&self) -> Vec<storage::audit::AuditRow> {
        let mut rows = storage::audit::latest(self.pool(), 100_000).await.unwrap();
        rows.reverse();
        rows
    }

    /// The approval request id in a "needs a second admin" reply, once every approver's copy
    /// of it (queued with the reply, delivered by the outbox) has reached the fake Bot API,
    /// so the next message an approver gets is the answer to what they send.
    pub async fn approval_id(&self, asked: &str) -> String {
        let at = asked.find("/approve ").unwrap_or_else(|| panic!("{asked}")) + "/approve ".len();
        let id: String = asked[at..]
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        for _ in 0..500 {
            let unsent: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM outbox WHERE source = 'approval' AND edit_of IS NULL
                 AND status <> 'sent' AND strpos(html, $1) > 0",
            )
            .bind(&id)
            .fetch_one(self.pool())
            .await
            .unwrap();
            if unsent == 0 {
                return id;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the approvers' copies of request {id} were never sent");
    }

    /// Wait until no update is in flight on this replica: every update it answered 200
    /// has run to its end (audit rows written, reply handed over, menu pushed) or was never
    /// started (the counter is taken before the 200). Then what is absent is absent.
    pub async fn idle(&self) {
        wait_for("no update in flight", || async {
            self.engine.health().updates_in_flight() == 0
        })
        .await;
    }

    /// Wait until the app, once shut down, has stopped: `run` returns only after every task
    /// it tracks (scheduler, workers, commands in flight) has ended.
    pub async fn stopped(&self) {
        wait_for("the app to stop", || async { self.server.is_finished() }).await;
    }

    /// Shut the app down and wait until it has stopped: what it held back is then written
    /// (counts on open alerts, `logins.counts_every_ms`).
    pub async fn stop(&self) {
        self.shutdown.cancel();
        self.stopped().await;
    }

    /// Wait until every update this replica took has finished, audit rows included.
    pub async fn settle(&self) {
        self.idle().await;
    }
}

fn user_json(user: i64) -> Value {
    json!({ "id": user, "is_bot": false, "first_name": format!("User{user}") })
}

fn chat_json(user: i64, chat: i64) -> Value {
    if chat == user {
        json!({ "id": chat, "type": "private", "first_name": format!("User{user}") })
    } else {
        json!({ "id": chat, "type": "supergroup", "title": "ops" })
    }
}

pub fn text_update(update_id: i64, user: i64, chat: i64, text: &str) -> Value {
    json!({
        "update_id": update_id,
        "message": {
            "message_id": update_id, "date": 1_700_000_000,
            "from": user_json(user), "chat": chat_json(user, chat), "text": text
        }
    })
}

pub fn callback_update(update_id: i64, user: i64, chat: i64, data: &str, message_id: i64) -> Value {
    json!({
        "update_id": update_id,
        "callback_query": {
            "id": format!("cb{update_id}"), "from": user_json(user), "chat_instance": "1", "data": data,
            "message": {
                "message_id": message_id, "date": 1_700_000_000,
                "chat": chat_json(user, chat), "text": "prompt"
            }
        }
    })
}

/// A private `redis-server` on a free loopback port, for settings the shared Redis must
/// not be given; killed on drop.
pub struct PrivateRedis {
    pub child: std::process::Child,
    pub port: u16,
}

impl PrivateRedis {
    pub fn start(args: &[&str]) -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(args)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH (scripts/services.sh installs it)");
        PrivateRedis { child, port }
    }

    /// Its URL (no credentials).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Wait until it answers PING (for a server started without a password).
    pub async fn ready(&self) {
        for _ in 0..100 {
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the private redis-server did not start");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
