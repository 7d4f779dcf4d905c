//! The audit log against someone holding opsguard's own database credentials (issue 13 §1).
//! With two roles, the runtime role cannot delete, rewrite or insert audit rows at all, and
//! what it can append through the functions without the key is named by verify. With one
//! (non-superuser) role that owns the log, (a) cutting rows off the end and moving the head
//! back, (b) changing a row and re-hashing everything after it, and (c) inserting past the
//! head all succeed in SQL, and verify names the first bad row each time: through the HMAC
//! chain and the signed checkpoints kept outside the database.

use super::helpers::*;
use opsguard::domain::secret::Secret;
use opsguard::storage::{self, audit};
use sqlx::{Connection, PgConnection, PgPool};
use std::sync::Arc;
use std::time::Duration;

pub const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const CHECKPOINT_CHAT: i64 = -100_777;

fn base() -> String {
    std::env::var("OPSGUARD_TEST_PG").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432".into())
}

/// `base()` as another role, on database `db`.
fn url_as(role: &str, db: &str) -> String {
    let mut url = reqwest::Url::parse(&base()).unwrap();
    url.set_username(role).unwrap();
    url.set_password(None).unwrap();
    url.set_path(db);
    url.to_string()
}

async fn as_root(sql: &str) {
    let mut admin = PgConnection::connect(&format!("{}/postgres", base()))
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Two login roles of this test's own (cluster-wide), dropped after everything else.
struct Roles {
    owner: String,
    runtime: String,
}

impl Roles {
    async fn create() -> Roles {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let roles = Roles {
            owner: format!("og_owner_{}", &tag[..12]),
            runtime: format!("og_app_{}", &tag[..12]),
        };
        for role in [&roles.owner, &roles.runtime] {
            as_root(&format!(
                "CREATE ROLE \"{role}\" LOGIN NOSUPERUSER NOCREATEROLE"
            ))
            .await;
        }
        roles
    }
}

impl Drop for Roles {
    fn drop(&mut self) {
        let roles = [self.owner.clone(), self.runtime.clone()];
        on_own_runtime(async move {
            for role in roles {
                // The test's database is dropped first (TestDb lives in the app); wait for it.
                for _ in 0..50 {
                    let mut admin = PgConnection::connect(&format!("{}/postgres", base()))
                        .await
                        .unwrap();
                    let sql = format!("DROP ROLE IF EXISTS \"{role}\"");
                    if sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut admin)
                        .await
                        .is_ok()
                    {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
    }
}

/// A database owned by `roles.owner` (not a superuser), migrated by it; `url` connects as
/// the owner (the single-role set-up) until a test points the app elsewhere.
async fn owned_db(roles: &Roles) -> Arc<TestDb> {
    let name = format!("opsguard_test_{}", uuid::Uuid::new_v4().simple());
    as_root(&format!(
        "CREATE DATABASE \"{name}\" OWNER \"{}\"",
        roles.owner
    ))
    .await;
    let url = url_as(&roles.owner, &name);
    let pool = storage::pool(&url, 8, Duration::from_secs(5)).unwrap();
    storage::migrate(&url, &pool).await.unwrap();
    Arc::new(TestDb {
        redis_prefix: format!("test:{name}:"),
        name,
        url,
        pool,
    })
}

fn keyed(s: &mut opsguard::config::Settings) {
    s.master_key = Some(Secret::new(MASTER_KEY));
    s.audit.checkpoint_chats = vec![CHECKPOINT_CHAT];
}

async fn run_as(pool: &PgPool, sql: &str) -> Result<u64, String> {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
        .map_err(|e| e.to_string())
}

async fn verify_all(app: &TestApp) -> opsguard::audit::FullReport {
    opsguard::audit::verify_all(
        app.pool(),
        app.engine.settings(),
        app.engine.audit_keys(),
        &[],
    )
    .await
    .unwrap()
}

fn broken_seq(report: &opsguard::audit::FullReport) -> Option<i64> {
    report.chain.broken.as_ref().map(|b| b.seq)
}

/// Some traffic, then a checkpoint through the bot; returns the line sent to the chat.
async fn traffic_and_checkpoint(app: &TestApp) -> String {
    app.add_user(42, "admin").await;
    for _ in 0..3 {
        app.say(42, "/whoami").await;
    }
    let reply = app.say(42, "/audit checkpoint").await.text();
    assert!(reply.contains("Checkpoint of row"), "{reply}");
    let calls = app
        .telegram
        .wait_until("the checkpoint message", |calls| {
            calls.iter().any(|c| c.chat_id() == Some(CHECKPOINT_CHAT))
        })
        .await;
    let text = calls
        .iter()
        .find(|c| c.chat_id() == Some(CHECKPOINT_CHAT))
        .unwrap()
        .text();
    let start = text
        .find("opsguard-audit-checkpoint v1")
        .expect("a checkpoint line");
    let line = &text[start..];
    line[..line.find("</code>").unwrap()].to_string()
}

#[tokio::test]
async fn the_runtime_role_can_only_read_and_append_and_forged_appends_are_named() {
    let roles = Roles::create().await;
    let db = owned_db(&roles).await;
    opsguard::audit::roles::grant_runtime(&db.pool, &roles.runtime)
        .await
        .unwrap();
    let runtime_url = url_as(&roles.runtime, &db.name);
    let app = spawn_app_on(db.clone(), |s| {
        keyed(s);
        s.database.url = Secret::new(runtime_url.clone());
    })
    .await;
    traffic_and_checkpoint(&app).await;
    assert!(!app.get_text("/readyz").await.contains("warning"));
    let status = app.say(42, "/status").await.text();
    assert!(!status.contains("Audit log"), "{status}");

    let runtime = storage::pool(&runtime_url, 2, Duration::from_secs(5)).unwrap();
    let head = audit::head(&runtime).await.unwrap();
    assert_eq!(
        head.keyed_from,
        Some(1),
        "a fresh keyed deployment keys every row"
    );
    for sql in [
        // (a) cut the tail and move the head back
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update",
        "DELETE FROM audit_log WHERE seq > 2",
        "UPDATE audit_head SET seq = 2",
        // (b) rewrite a row (and the head)
        "UPDATE audit_log SET args = 'forged' WHERE seq = 1",
        "UPDATE audit_head SET keyed_from = NULL",
        // (c) insert past the head
        "INSERT INTO audit_log SELECT seq + 1000, request_id, at, phase, actor_kind, actor_id, chat_id, command, args, decision, reason, outcome, error, duration_ms, content_hash, prev_hash, row_hash FROM audit_log WHERE seq = 1",
        "TRUNCATE audit_log",
        // and no way around: no new objects, no grants to itself
        "CREATE TABLE audit_copy (x int)",
        "CREATE OR REPLACE FUNCTION audit_refuse_unkeyed() RETURNS void LANGUAGE sql AS 'SELECT'",
    ] {
        let err = run_as(&runtime, sql).await.expect_err(sql);
        assert!(
            err.contains("permission denied") || err.contains("must be owner"),
            "{sql}: {err}"
        );
    }
    let grant = format!("SELECT opsguard_grant_runtime('{}')", roles.owner);
    assert!(
        run_as(&runtime, &grant).await.is_err(),
        "only the owner grants"
    );
    // Appending without the key: the SQL-chained function refuses a keyed chain, and a
    // hand-made "keyed" row is appended but named by verify.
    let unkeyed = "SELECT audit_append('r', now(), 'attempt', 'cli', NULL, NULL, 'x', '', 'allowed', NULL, NULL, NULL, NULL, sha256('x'))";
    let err = run_as(&runtime, unkeyed).await.unwrap_err();
    assert!(err.contains("needs OPSGUARD_MASTER_KEY"), "{err}");
    app.settle().await;
    let head = audit::head(&runtime).await.unwrap();
    let forged = format!(
        "SELECT audit_append_keyed({}, '{}', ARRAY['r'], ARRAY[now()], ARRAY['attempt'], ARRAY['cli'], ARRAY[NULL::int8], ARRAY[NULL::int8], ARRAY['x'], ARRAY[''], ARRAY['allowed'], ARRAY[NULL], ARRAY[NULL], ARRAY[NULL], ARRAY[NULL::int8], ARRAY[sha256('x')], ARRAY[sha256('guess')])",
        head.seq,
        head.key_id.clone().unwrap()
    );
    run_as(&runtime, &forged).await.unwrap();
    let report = verify_all(&app).await;
    assert_eq!(
        broken_seq(&report),
        Some(head.seq + 1),
        "{:?}",
        report.lines()
    );
    assert!(
        report.lines()[0].contains("does not match"),
        "{:?}",
        report.lines()
    );
}

#[tokio::test]
async fn one_owner_role_is_warned_about_and_its_tampering_is_named() {
    let roles = Roles::create().await;
    let db = owned_db(&roles).await;
    let app = spawn_app_on(db.clone(), keyed).await;
    let ready = app.get_text("/readyz").await;
    assert!(
        ready.starts_with("ready\n") && ready.contains("single-role set-up"),
        "{ready}"
    );
    traffic_and_checkpoint(&app).await;
    let status = app.say(42, "/status").await.text();
    assert!(
        status.contains("⚠️ Audit log: single-role set-up"),
        "{status}"
    );
    app.settle().await;
    let intact = verify_all(&app).await;
    assert!(intact.intact(), "{:?}", intact.lines());
    assert_eq!(intact.checkpoints, 1);
    let owner = &db.pool;
    let head = audit::head(owner).await.unwrap();
    let checkpoint_seq = intact.newest.as_ref().unwrap().seq;
    assert!(checkpoint_seq >= 7 && checkpoint_seq <= head.seq);
    let off = "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update";
    run_as(owner, off).await.unwrap();

    // (b) change row 3 and re-hash every later row and the head — without the key the
    // attacker can only use SHA-256 (or a guess), so row 3 is named.
    let rows = audit::latest(owner, 1000).await.unwrap();
    let mut rows: Vec<_> = rows.into_iter().rev().collect();
    rows[2].entry.args = "forged".into();
    let guess = opsguard::domain::audit::ChainKey::new([0; 32]);
    let mut prev = rows[1].row_hash.clone();
    for row in &rows[2..] {
        let content = row.entry.content_hash().to_vec();
        let hash = guess.row_hash(&prev, row.seq, &content).to_vec();
        sqlx::query("UPDATE audit_log SET args = $1, content_hash = $2, prev_hash = $3, row_hash = $4 WHERE seq = $5")
            .bind(&row.entry.args)
            .bind(&content)
            .bind(&prev)
            .bind(&hash)
            .bind(row.seq)
            .execute(owner)
            .await
            .unwrap();
        prev = hash;
    }
    sqlx::query("UPDATE audit_head SET row_hash = $1")
        .bind(&prev)
        .execute(owner)
        .await
        .unwrap();
    let report = verify_all(&app).await;
    assert_eq!(broken_seq(&report), Some(3), "{:?}", report.lines());

    // Downgrade: the same rewrite with plain SHA-256 and the chain marked as never keyed
    // verifies row by row; the checkpoint's switch point names row 1.
    let mut prev = vec![0u8; 32];
    for row in &rows {
        let content = row.entry.content_hash().to_vec();
        let hash = opsguard::domain::audit::row_hash(&prev, row.seq, &content).to_vec();
        sqlx::query("UPDATE audit_log SET prev_hash = $1, row_hash = $2 WHERE seq = $3")
            .bind(&prev)
            .bind(&hash)
            .bind(row.seq)
            .execute(owner)
            .await
            .unwrap();
        prev = hash;
    }
    sqlx::query("UPDATE audit_head SET row_hash = $1, keyed_from = NULL, key_id = NULL")
        .bind(&prev)
        .execute(owner)
        .await
        .unwrap();
    let report = verify_all(&app).await;
    assert_eq!(broken_seq(&report), Some(1), "{:?}", report.lines());
    assert!(
        report.lines()[0].contains("re-hashed without the key"),
        "{:?}",
        report.lines()
    );
}

#[tokio::test]
async fn a_cut_tail_and_a_row_past_the_head_are_named() {
    let roles = Roles::create().await;
    let db = owned_db(&roles).await;
    let app = spawn_app_on(db.clone(), keyed).await;
    let line = traffic_and_checkpoint(&app).await;
    app.settle().await;
    let owner = &db.pool;
    let checkpoint = verify_all(&app).await.newest.unwrap();
    run_as(
        owner,
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update",
    )
    .await
    .unwrap();

    // (c) a row inserted past the head (a copy of a real one, its seq moved on)
    let head = audit::head(owner).await.unwrap();
    let past = head.seq + 3;
    let insert = format!(
        "INSERT INTO audit_log SELECT {past}, request_id, at, phase, actor_kind, actor_id, chat_id, command, args, decision, reason, outcome, error, duration_ms, content_hash, prev_hash, row_hash FROM audit_log WHERE seq = {}",
        head.seq
    );
    run_as(owner, &insert).await.unwrap();
    let report = verify_all(&app).await;
    assert_eq!(broken_seq(&report), Some(past), "{:?}", report.lines());
    assert!(
        report.lines()[0].contains("past the chain head"),
        "{:?}",
        report.lines()
    );
    run_as(owner, &format!("DELETE FROM audit_log WHERE seq = {past}"))
        .await
        .unwrap();

    // (a) the rows from 5 on deleted and the head moved back to row 4: the chain alone is
    // consistent; the checkpoint (row 7 or later) names row 5.
    run_as(owner, "DELETE FROM audit_log WHERE seq >= 5")
        .await
        .unwrap();
    run_as(
        owner,
        "UPDATE audit_head SET seq = 4, row_hash = (SELECT row_hash FROM audit_log WHERE seq = 4)",
    )
    .await
    .unwrap();
    let chain_only = audit::verify(owner, app.chain_key()).await.unwrap();
    assert_eq!(
        chain_only.broken, None,
        "the cut is invisible to the chain alone"
    );
    let report = verify_all(&app).await;
    assert_eq!(broken_seq(&report), Some(5), "{:?}", report.lines());
    assert!(
        report.lines()[0].contains(&format!("rows 5–{} are missing", checkpoint.seq)),
        "{:?}",
        report.lines()
    );

    // The shell says so with exit code 2 — from the storage's checkpoint, or, with the
    // storage gone, from the line copied out of the chat.
    let cli = |extra: Vec<String>| {
        let db = db.clone();
        async move {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_opsguard"))
                .args(["audit", "verify"])
                .args(extra)
                .env_clear()
                .env("DATABASE_URL", &db.url)
                .env("OPSGUARD_MASTER_KEY", MASTER_KEY)
                .env("OPSGUARD__AUDIT__CHECKPOINT_STORAGE", db.checkpoint_dir())
                .env(
                    "OPSGUARD_CONFIG",
                    concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml"),
                )
                .output()
                .await
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).to_string(),
            )
        }
    };
    let (code, out) = cli(vec![]).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("are missing"), "{out}");
    // Without anything from outside the database a cut tail is invisible (and each run's
    // own audit rows now fill the gap) ...
    std::fs::remove_dir_all(db.checkpoint_dir()).unwrap();
    let (code, out) = cli(vec![]).await;
    assert_eq!(code, Some(0), "{out}");
    // ... which the line kept in the checkpoint chat shows.
    let (code, out) = cli(vec!["--checkpoint".into(), line.clone()]).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(&format!("checkpoint of row {}", checkpoint.seq)),
        "{out}"
    );
    let forged = line.replace("seq=", "seq=1");
    let (code, out) = cli(vec!["--checkpoint".into(), forged]).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("BAD CHECKPOINT given line 1"), "{out}");
}

#[tokio::test]
async fn an_unkeyed_chain_switches_to_keyed_and_refuses_a_missing_or_other_key() {
    let db = TestDb::create().await;
    let plain = spawn_app_on(db.clone(), |_| {}).await;
    plain.add_user(42, "admin").await;
    plain.say(42, "/whoami").await;
    plain.settle().await;
    let status = plain.say(42, "/status").await.text();
    assert!(
        status.contains("OPSGUARD_MASTER_KEY is not set"),
        "{status}"
    );
    let before = audit::head(&db.pool).await.unwrap();
    assert_eq!(before.keyed_from, None);

    // A replica (same update-id sequence, so de-duplication lets its updates in) with a key.
    let app = plain.spawn_replica_with(keyed).await;
    drop(plain);
    app.say(42, "/whoami").await;
    app.settle().await;
    let report = verify_all(&app).await;
    assert!(report.intact(), "{:?}", report.lines());
    assert_eq!(
        report.chain.keyed_from,
        Some(before.seq + 1),
        "the switch point"
    );
    drop(app);
    let keyed_head = audit::head(&db.pool).await.unwrap();

    for (key, needle) in [
        (None, "set OPSGUARD_MASTER_KEY"),
        (
            Some("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="),
            "not the key the audit chain is keyed with",
        ),
    ] {
        let mut settings = settings_for(&db, "http://127.0.0.1:9");
        settings.master_key = key.map(Secret::new);
        let err = opsguard::startup::Application::build(settings)
            .await
            .err()
            .expect("start-up refused");
        assert!(format!("{err:#}").contains(needle), "{err:#}");
    }
    // Nothing was appended by the refused starts, and the keyed rows need the key to verify.
    assert_eq!(audit::head(&db.pool).await.unwrap(), keyed_head);
    let err = audit::verify(&db.pool, None).await.unwrap_err();
    assert!(matches!(err, audit::VerifyError::NeedsKey { .. }), "{err}");
}

#[tokio::test]
async fn a_forged_checkpoint_in_storage_is_reported() {
    let app = spawn_app_with(keyed).await;
    traffic_and_checkpoint(&app).await;
    let dir = app.db.checkpoint_dir().join("audit-checkpoints");
    std::fs::write(
        dir.join("99999999999999999999-forged.txt"),
        "opsguard-audit-checkpoint v1 seq=99 head=00 at=2026-01-01T00:00:00.000000Z keyed_from=1 key=- sig=AAAA",
    )
    .unwrap();
    let report = verify_all(&app).await;
    assert!(!report.intact());
    assert!(
        report.bad_checkpoints[0].contains("99999999999999999999-forged.txt"),
        "{:?}",
        report.lines()
    );
    let reply = app.say(42, "/audit verify").await.text();
    assert!(
        reply.starts_with("❌") && reply.contains("BAD CHECKPOINT"),
        "{reply}"
    );
}

/// The deployment as the README tells it: `opsguard migrate --runtime-role` as the owner,
/// then every other command as the runtime role.
#[tokio::test]
async fn migrate_grants_the_runtime_role_and_the_shell_runs_as_it() {
    let roles = Roles::create().await;
    let name = format!("opsguard_test_{}", uuid::Uuid::new_v4().simple());
    as_root(&format!(
        "CREATE DATABASE \"{name}\" OWNER \"{}\"",
        roles.owner
    ))
    .await;
    let owner_url = url_as(&roles.owner, &name);
    let pool = storage::pool(&owner_url, 2, Duration::from_secs(5)).unwrap();
    let _db = Arc::new(TestDb {
        redis_prefix: format!("test:{name}:"),
        name: name.clone(),
        url: owner_url.clone(),
        pool,
    });
    let opsguard = |url: &str, args: &[&str]| {
        let (url, args) = (
            url.to_string(),
            args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        );
        async move {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_opsguard"))
                .args(&args)
                .env_clear()
                .env("DATABASE_URL", url)
                .env("OPSGUARD_MASTER_KEY", MASTER_KEY)
                .env(
                    "OPSGUARD_CONFIG",
                    concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml"),
                )
                .output()
                .await
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            (out.status.code(), text)
        }
    };
    let (code, out) = opsguard(&owner_url, &["migrate", "--runtime-role", &roles.owner]).await;
    assert_ne!(code, Some(0), "the owner cannot be the runtime role: {out}");
    assert!(out.contains("owns the audit log"), "{out}");
    let (code, out) = opsguard(&owner_url, &["migrate", "--runtime-role", &roles.runtime]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("read-only on the audit log"), "{out}");

    let runtime_url = url_as(&roles.runtime, &name);
    let (code, out) = opsguard(&runtime_url, &["user", "add", "5", "--role", "admin"]).await;
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = opsguard(&runtime_url, &["audit", "verify"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("intact: 3 rows verified (keyed from row 1)"),
        "{out}"
    );
    let (code, out) = opsguard(&owner_url, &["migrate"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("single-role set-up") || out.contains("migrations applied"),
        "{out}"
    );
}
