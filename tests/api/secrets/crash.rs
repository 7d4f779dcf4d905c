//! Crash safety: the real binary is aborted at each step boundary of a rotation (the
//! `[rotation] crash_at` test hook), then the start-up tick of a new process resumes it:
//! the rotation completes, exactly one version is current, and the delivered value is it.

use super::*;
use crate::process::opsguard;
use opsguard::secrets::worker;
use std::time::Duration;

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml");

/// `config/default.toml` plus one `api_key` secret delivered to `env`.
fn config_with_secret(dir: &Scratch, env: &Path) -> PathBuf {
    let mut text = std::fs::read_to_string(CONFIG).unwrap();
    text.push_str(&format!(
        "\n[[secrets]]\nname = \"app-key\"\nkind = \"api_key\"\npolicy = {{ approval = false }}\nsinks = [{{ type = \"env_file\", path = \"{}\" }}]\n",
        env.display()
    ));
    let path = dir.file("opsguard.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn cli(db: &TestDb, config: &Path, crash_at: Option<&str>, args: &[&str]) -> (bool, String) {
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
        let config = config_with_secret(&dir, &env);
        let mut outputs = Vec::new();
        let (ok, out) = cli(&db, &config, Some(point), &["secret", "rotate", "app-key"]).await;
        outputs.push(out.clone());
        assert!(!ok, "{point}: the process was aborted: {out}");
        assert!(out.contains(&format!("crash_at {point}")), "{point}: {out}");
        if point != "finish:after" {
            let (ok, busy) = cli(&db, &config, None, &["secret", "rotate", "app-key"]).await;
            outputs.push(busy.clone());
            assert!(
                !ok && busy.contains("already in progress"),
                "{point}: {busy}"
            );
        }
        // A new process (as `serve` does at start) resumes once the dead one's lease is over.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let mut settings = settings_for(&db, "http://127.0.0.1:9");
        with_vault(&mut settings, vec![api_key("app-key", &env, false)]);
        let rotations = worker::open(&db.pool, &settings).await.unwrap().unwrap();
        rotations.tick().await.unwrap();

        let statuses: Vec<String> = sqlx::query_scalar("SELECT status FROM rotations")
            .fetch_all(&db.pool)
            .await
            .unwrap();
        assert_eq!(statuses, vec!["succeeded".to_string()], "{point}");
        let current: Vec<(i32, String)> = sqlx::query_as(
            "SELECT version, fingerprint FROM secret_versions WHERE state = 'current'",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap();
        assert_eq!(current.len(), 1, "{point}: one current version");
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM secret_versions WHERE state = 'pending'")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!(pending, 0, "{point}");
        let delivered =
            env_value(&env, "APP_KEY_API_KEY").unwrap_or_else(|| panic!("{point}: delivered"));
        assert_eq!(
            fingerprint(&delivered),
            current[0].1,
            "{point}: the delivered value is current"
        );
        let (ok, listed) = cli(&db, &config, None, &["secret", "list"]).await;
        assert!(
            ok && listed.contains(&format!("sha256:{}", current[0].1)),
            "{point}: {listed}"
        );
        assert!(
            !listed.contains(&delivered),
            "{point}: the CLI shows fingerprints only"
        );
    }
}
