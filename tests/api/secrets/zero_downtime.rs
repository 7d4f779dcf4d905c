//! Zero downtime, proved against the real servers: while a secret is rotated again and again,
//! clients log in at ≥ 100 logins/s with whatever credential the env-file sink last delivered,
//! and not one login fails — PostgreSQL with alternating users (password checks are real:
//! the test roles are members of `opsguard_pwtest`, which `scripts/test.sh` puts under
//! scram-sha-256 in pg_hba.conf), and Redis with dual ACL passwords. After each grace period
//! the worker revokes the previous credential.
//!
//! The login rate is printed, not asserted (tests run in parallel on 2 cores; rates are for
//! benchmarks): beside it, the same clients' rate with no rotation running. On this
//! project's machines PostgreSQL itself accepts fewer than 100 SCRAM logins a second
//! (pgbench -C: ~80/s), so the PostgreSQL proof runs at that ceiling (see BENCHMARKS.md).

use super::*;
use opsguard::config::TargetSettings;
use opsguard::domain::secret::Secret;
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const CLIENTS: usize = 6;
const ROTATIONS: usize = 3;

/// Logins per second and failures (with the first reasons) while `rotate` runs.
struct Load {
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    reasons: Arc<std::sync::Mutex<Vec<String>>>,
}

async fn under_load<F, Fut>(login: F, rotate: impl AsyncFnOnce()) -> (f64, u64, Vec<String>)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let load = Load {
        ok: Arc::default(),
        failed: Arc::default(),
        reasons: Arc::default(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let login = Arc::new(login);
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (ok, failed, reasons) = (load.ok.clone(), load.failed.clone(), load.reasons.clone());
        let (stop, login) = (stop.clone(), login.clone());
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match login().await {
                    Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        reasons.lock().unwrap().push(e);
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    let started = Instant::now();
    rotate().await;
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let reasons = load
        .reasons
        .lock()
        .unwrap()
        .iter()
        .take(3)
        .cloned()
        .collect();
    let rate = load.ok.load(Ordering::Relaxed) as f64 / elapsed;
    (rate, load.failed.load(Ordering::Relaxed), reasons)
}

/// Rotate `name` ROTATIONS times through the pipeline, a grace period apart.
async fn rotate_repeatedly(app: &TestApp, name: &str) {
    for _ in 0..ROTATIONS {
        let reply = rotate(app, 42, name).await;
        assert!(reply.contains("Rotated"), "{reply}");
        tokio::time::sleep(Duration::from_millis(3500)).await;
    }
}

/// USER and PASSWORD from ONE read of the env file (a delivery may replace it in between).
fn pair(env: &Path, prefix: &str) -> Result<(String, String), String> {
    let text = std::fs::read_to_string(env).map_err(|e| e.to_string())?;
    let value = |name: &str| {
        let key = format!("{prefix}_{name}=");
        text.lines()
            .find_map(|l| l.strip_prefix(&key).map(str::to_string))
    };
    Ok((
        value("USER").ok_or("no user")?,
        value("PASSWORD").ok_or("no password")?,
    ))
}

fn secret(name: &str, kind: &str, env: &Path, target: TargetSettings) -> SecretSettings {
    let mut s = api_key(name, env, false);
    s.kind = kind.into();
    s.target = target;
    // Longer than a login takes on a loaded machine: a client that read the old value
    // just before a delivery still logs in with it.
    s.policy.grace_secs = Some(3);
    s
}

#[tokio::test]
async fn postgres_logins_never_fail_while_alternating_users_rotate() {
    let dir = Scratch::new();
    let env = dir.file("db.env");
    let db = TestDb::create().await;
    let role = format!("og_zd_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE \"{role}\" NOLOGIN IN ROLE opsguard_pwtest"
    )))
    .execute(&db.pool)
    .await
    .unwrap();
    let target = TargetSettings {
        dsn: Some(Secret::new(db.url.clone())),
        role: Some(role.clone()),
        ..Default::default()
    };
    let app = spawn_app_with(|s| {
        with_vault(s, vec![secret("app-db", "postgres_role", &env, target)]);
        s.rotation.worker_interval_ms = 100;
    })
    .await;
    add(&app, 42, "admin").await;
    rotate(&app, 42, "app-db").await;
    let base = PgConnectOptions::from_str(&db.url).unwrap();
    let env_file = env.clone();
    let login = move || {
        let (env, base) = (env_file.clone(), base.clone());
        async move {
            let (user, password) = pair(&env, "APP_DB")?;
            let mut conn = base
                .username(&user)
                .password(&password)
                .connect()
                .await
                .map_err(|e| format!("{user}: {e}"))?;
            sqlx::query("SELECT 1")
                .execute(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            Ok(())
        }
    };
    let login = Arc::new(login);
    let idle = login.clone();
    let pause = async || tokio::time::sleep(Duration::from_secs(2)).await;
    let (baseline, _, _) = under_load(move || idle(), pause).await;
    let rotating = async || rotate_repeatedly(&app, "app-db").await;
    let (rate, failed, reasons) = under_load(move || login(), rotating).await;
    eprintln!("postgres logins: {rate:.0}/s while rotating, {baseline:.0}/s without");
    assert_eq!(failed, 0, "failed logins: {reasons:?}");
    assert!(
        rate >= 10.0,
        "{rate:.0} logins/s ({baseline:.0} without rotation): too few to prove anything"
    );
    // The retired role no longer logs in; the current one does.
    let current = env_value(&env, "APP_DB_USER").unwrap();
    let other = if current.ends_with("_a") {
        format!("{role}_b")
    } else {
        format!("{role}_a")
    };
    let password: Option<String> =
        sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
            .bind(&other)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(
        password.is_none(),
        "the retired role's password was removed after its grace"
    );
    assert_nowhere(&app, &env_value(&env, "APP_DB_PASSWORD").unwrap()).await;
    drop(app);
    for r in [format!("{role}_a"), format!("{role}_b"), role] {
        let _ = sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
        )
        .bind(&r)
        .execute(&db.pool)
        .await;
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS \"{r}\"")))
            .execute(&db.pool)
            .await;
    }
}

#[tokio::test]
async fn redis_logins_never_fail_while_dual_passwords_rotate() {
    let dir = Scratch::new();
    let env = dir.file("cache.env");
    let user = format!("og_zd_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let client = redis::Client::open(REDIS_URL).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let create = ["SETUSER", &user, "on", "~*", "+@all"];
    let () = redis::cmd("ACL")
        .arg(&create)
        .query_async(&mut conn)
        .await
        .unwrap();
    let target = TargetSettings {
        user: Some(user.clone()),
        nodes: vec![Secret::new(REDIS_URL)],
        ..Default::default()
    };
    let app = spawn_app_with(|s| {
        with_vault(s, vec![secret("app-cache", "redis_acl", &env, target)]);
        s.rotation.worker_interval_ms = 100;
    })
    .await;
    add(&app, 42, "admin").await;
    rotate(&app, 42, "app-cache").await;
    let env_file = env.clone();
    let login = move || {
        let env = env_file.clone();
        async move {
            let (user, password) = pair(&env, "APP_CACHE")?;
            let client = redis::Client::open(REDIS_URL).map_err(|e| e.to_string())?;
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| e.to_string())?;
            // The login is the AUTH. A retirement's `CLIENT KILL USER` ends every connection
            // of the user (Redis cannot tell which password one used), so a connection may be
            // cut just as its AUTH is accepted: that is a dropped session the client retries,
            // not a refused credential. Only a refusal counts as a failed login.
            let auth = redis::cmd("AUTH")
                .arg(&user)
                .arg(&password)
                .query_async::<()>(&mut conn)
                .await;
            match auth {
                Err(e) if !e.is_io_error() && !e.is_connection_dropped() => {
                    Err(format!("AUTH refused: {e}"))
                }
                _ => Ok(()),
            }
        }
    };
    let (rate, failed, reasons) =
        under_load(login, async || rotate_repeatedly(&app, "app-cache").await).await;
    assert_eq!(failed, 0, "failed logins: {reasons:?}");
    eprintln!("redis logins: {rate:.0}/s while rotating");
    assert!(
        rate >= 20.0,
        "{rate:.0} logins/s: too few to prove anything"
    );
    let rules: Vec<redis::Value> = redis::cmd("ACL")
        .arg("GETUSER")
        .arg(&user)
        .query_async(&mut conn)
        .await
        .unwrap();
    let passwords = rules
        .iter()
        .position(|v| matches!(v, redis::Value::BulkString(b) if b == b"passwords"))
        .and_then(|i| match &rules[i + 1] {
            redis::Value::Array(p) => Some(p.len()),
            _ => None,
        });
    assert_eq!(
        passwords,
        Some(1),
        "only the current password is left after the grace"
    );
    assert_nowhere(&app, &env_value(&env, "APP_CACHE_PASSWORD").unwrap()).await;
    let _: Result<(), _> = redis::cmd("ACL")
        .arg("DELUSER")
        .arg(&user)
        .query_async(&mut conn)
        .await;
}
