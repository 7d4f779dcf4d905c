//! Crash safety: the real binary is aborted at each step boundary of a rotation (the
//! `[rotation] crash_at` test hook), then the start-up tick of a new process resumes it:
//! the rotation completes, exactly one version is current, the delivered value is it, and
//! for a `postgres_role` secret (alternating users) and a `redis_acl` secret every credential the vault calls
//! current or previous logs in.

use super::*;
use crate::process::opsguard;
use opsguard::domain::rotation::SecretName;
use opsguard::domain::secret::Secret;
use opsguard::secrets::{store, vault::MasterKey};
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml");

/// `config/default.toml` plus an `api_key` secret delivered to `env` and a `postgres_role`
/// secret (role `role` on `db`) delivered to `db_env`.
pub(super) fn config_with_secret(dir: &Scratch, env: &Path, db: &TestDb, role: &str) -> PathBuf {
    let mut text = std::fs::read_to_string(CONFIG).unwrap();
    text.push_str(&format!(
        "\n[[secrets]]\nname = \"app-key\"\nkind = \"api_key\"\npolicy = {{ approval = false }}\nsinks = [{{ type = \"env_file\", path = \"{}\" }}]\n",
        env.display()
    ));
    text.push_str(&format!(
        "\n[[secrets]]\nname = \"app-db\"\nkind = \"postgres_role\"\ntarget = {{ dsn = \"{}\", role = \"{role}\" }}\npolicy = {{ approval = false }}\nsinks = [{{ type = \"env_file\", path = \"{}\" }}]\n",
        db.url,
        dir.file("db.env").display()
    ));
    text.push_str(&format!(
        "\n[[secrets]]\nname = \"app-cache\"\nkind = \"redis_acl\"\ntarget = {{ user = \"{role}\", nodes = [\"{REDIS_URL}\"] }}\npolicy = {{ approval = false }}\nsinks = [{{ type = \"env_file\", path = \"{}\" }}]\n",
        dir.file("cache.env").display()
    ));
    let path = dir.file("opsguard.toml");
    std::fs::write(&path, text).unwrap();
    path
}

pub(super) async fn cli(
    db: &TestDb,
    config: &Path,
    crash_at: Option<&str>,
    args: &[&str],
) -> (bool, String) {
    let mut cmd = opsguard(db);
    cmd.env("OPSGUARD_CONFIG", config)
        .env("OPSGUARD_MASTER_KEY", MASTER_KEY)
        .env("OPSGUARD__ROTATION__LEASE_SECS", "1")
        .args(args);
    if let Some(point) = crash_at {
        cmd.env("OPSGUARD__ROTATION__CRASH_AT", point);
    }
    let out = cmd.output().await.unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn a_rotation_killed_at_any_step_is_resumed_to_one_working_current_version() {
    let points = [
        "create:before",
        "create:after",
        "set:before",
        "set:after",
        "test:before",
        "test:after",
        "finish:before",
        "finish:after",
    ];
    for point in points {
        let db = TestDb::create().await;
        let dir = Scratch::new();
        let env = dir.file("app.env");
        let role = format!("og_cr_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let create = format!("CREATE ROLE \"{role}\" NOLOGIN IN ROLE opsguard_pwtest");
        sqlx::query(sqlx::AssertSqlSafe(create))
            .execute(&db.pool)
            .await
            .unwrap();
        let redis = redis::Client::open(REDIS_URL).unwrap();
        let mut admin = redis.get_multiplexed_async_connection().await.unwrap();
        let acl = ["SETUSER", role.as_str(), "on", "~*", "+@all"];
        let () = redis::cmd("ACL")
            .arg(&acl)
            .query_async(&mut admin)
            .await
            .unwrap();
        let config = config_with_secret(&dir, &env, &db, &role);
        let mut outputs = Vec::new();
        // A first rotation of the role and the ACL user completes: the crashed ones have a
        // current version to keep.
        for name in ["app-db", "app-cache"] {
            let (ok, out) = cli(&db, &config, None, &["secret", "rotate", name]).await;
            assert!(ok, "{point}: {out}");
            outputs.push(out);
        }
        for name in ["app-key", "app-db", "app-cache"] {
            let (ok, out) = cli(&db, &config, Some(point), &["secret", "rotate", name]).await;
            assert!(
                !ok && out.contains(&format!("crash_at {point}")),
                "{point} {name}: {out}"
            );
            outputs.push(out);
            if point != "finish:after" {
                let (ok, busy) = cli(&db, &config, None, &["secret", "rotate", name]).await;
                assert!(
                    !ok && busy.contains("already in progress"),
                    "{point}: {busy}"
                );
                outputs.push(busy);
            }
        }
        // A new process (as `serve` does at start) resumes once the dead one's lease is over.
        wait_for("the dead process's leases to run out", || async {
            let held: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM rotations WHERE lease_until > now()
                 AND status IN ('running', 'retrying', 'rolling_back')",
            )
            .fetch_one(&db.pool)
            .await
            .unwrap();
            held == 0
        })
        .await;
        let mut settings = Settings::load_with(
            &[
                ("OPSGUARD_CONFIG".to_string(), config.display().to_string()),
                ("DATABASE_URL".to_string(), db.url.clone()),
            ]
            .into(),
        )
        .unwrap();
        settings.master_key = Some(Secret::new(MASTER_KEY));
        let rotations = opsguard::secrets::open(&db.pool, &settings)
            .await
            .unwrap()
            .unwrap();
        rotations.tick().await.unwrap();

        let statuses: Vec<String> = sqlx::query_scalar("SELECT status FROM rotations")
            .fetch_all(&db.pool)
            .await
            .unwrap();
        assert_eq!(statuses, vec!["succeeded".to_string(); 5], "{point}");
        for name in ["app-key", "app-db", "app-cache"] {
            let pending = store::versions(&db.pool, name, &["pending"]).await.unwrap();
            assert!(pending.is_empty(), "{point} {name}: no pending left");
            let current = store::versions(&db.pool, name, &["current"]).await.unwrap();
            assert_eq!(current.len(), 1, "{point} {name}: one current version");
        }
        let key = store::versions(&db.pool, "app-key", &["current"])
            .await
            .unwrap();
        let delivered = env_value(&env, "APP_KEY_API_KEY").unwrap_or_else(|| panic!("{point}"));
        assert_eq!(
            fingerprint(&delivered),
            key[0].fingerprint,
            "{point}: delivered = current"
        );
        // Every database credential the vault calls current or previous logs in.
        let master = MasterKey::parse(Some(&Secret::new(MASTER_KEY))).unwrap();
        let name = SecretName::parse("app-db").unwrap();
        let live = store::versions(&db.pool, "app-db", &["current", "previous"])
            .await
            .unwrap();
        assert_eq!(live.len(), 2, "{point}: a current and a previous version");
        let base = PgConnectOptions::from_str(&db.url).unwrap();
        for v in &live {
            let password = master.open(&name, v.version, &v.nonce, &v.sealed).unwrap();
            let user = v.public["role"].as_str().unwrap();
            let login = base
                .clone()
                .username(user)
                .password(password.expose())
                .connect()
                .await;
            assert!(
                login.is_ok(),
                "{point}: {} v{} ({user}) does not log in",
                v.state,
                v.version
            );
            for out in &outputs {
                assert!(
                    !out.contains(password.expose()),
                    "{point}: a CLI output shows a password"
                );
            }
        }
        // Every Redis password the vault calls current or previous authenticates.
        let cache = SecretName::parse("app-cache").unwrap();
        let cache_live = store::versions(&db.pool, "app-cache", &["current", "previous"])
            .await
            .unwrap();
        assert_eq!(
            cache_live.len(),
            2,
            "{point}: a current and a previous password"
        );
        for v in &cache_live {
            let password = master.open(&cache, v.version, &v.nonce, &v.sealed).unwrap();
            let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
            let auth = redis::cmd("AUTH")
                .arg(&role)
                .arg(password.expose())
                .query_async::<()>(&mut conn)
                .await;
            assert!(
                auth.is_ok(),
                "{point}: redis {} v{} fails",
                v.state,
                v.version
            );
            for out in &outputs {
                assert!(
                    !out.contains(password.expose()),
                    "{point}: output shows a password"
                );
            }
        }
        let _: Result<(), _> = redis::cmd("ACL")
            .arg("DELUSER")
            .arg(&role)
            .query_async(&mut admin)
            .await;
        let db_current = env_value(&dir.file("db.env"), "APP_DB_PASSWORD").unwrap();
        assert!(
            live.iter()
                .any(|v| v.state == "current" && v.fingerprint == fingerprint(&db_current))
        );
        let (ok, listed) = cli(&db, &config, None, &["secret", "list"]).await;
        assert!(
            ok && listed.contains(&format!("sha256:{}", key[0].fingerprint)),
            "{point}: {listed}"
        );
        outputs.push(listed);
        for out in &outputs {
            assert!(
                !out.contains(&delivered),
                "{point}: output and logs show fingerprints only"
            );
        }
        drop(rotations);
        for r in [format!("{role}_a"), format!("{role}_b"), role] {
            let kill = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1";
            let _ = sqlx::query(kill).bind(&r).execute(&db.pool).await;
            let drop = format!("DROP ROLE IF EXISTS \"{r}\"");
            let _ = sqlx::query(sqlx::AssertSqlSafe(drop))
                .execute(&db.pool)
                .await;
        }
    }
}
