//! The preflight of `postgres_role`: what the admin role lacks is named as the statement
//! that grants it (CREATEROLE, pg_signal_backend), by the kind, by `opsguard secret check`
//! (non-zero) and by `/rotate`, which is refused up front and changes nothing: no rotation
//! row, no version, no role created on the target; and at the start of the real `serve`,
//! which logs it and starts anyway.

use super::stuck::{AdminRole, app_db, versions};
use super::*;
use crate::gates::add;
use crate::helpers::{run_opsguard, spawn_app_with};
use crate::secrets::{MASTER_KEY, Scratch, rotate, with_vault};
use opsguard::secrets::kind::KindError;

fn kind_for(roles: &Roles, dsn: String) -> PostgresRole {
    let dsn = Secret::new(dsn);
    PostgresRole::new(
        dsn,
        &roles.group,
        Strategy::Alternating,
        Duration::from_secs(10),
    )
    .unwrap()
}

#[tokio::test]
async fn the_preflight_names_each_missing_grant() {
    let roles = Roles::create(false).await;
    let superuser = kind_for(&roles, admin_url());
    assert_eq!(superuser.preflight().await.unwrap(), Vec::<String>::new());

    let ready = AdminRole::create(true, true).await;
    let kind = kind_for(&roles, ready.dsn());
    assert_eq!(kind.preflight().await.unwrap(), Vec::<String>::new());

    let no_signal = AdminRole::create(true, false).await;
    let missing = kind_for(&roles, no_signal.dsn()).preflight().await.unwrap();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(
        missing[0].starts_with(&format!(
            "GRANT pg_signal_backend TO \"{}\"",
            no_signal.name
        )),
        "{missing:?}"
    );

    exec(format!("REVOKE pg_read_all_stats FROM \"{}\"", ready.name)).await;
    let missing = kind.preflight().await.unwrap();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(
        missing[0].starts_with(&format!("GRANT pg_read_all_stats TO \"{}\"", ready.name)),
        "{missing:?}"
    );

    let bare = AdminRole::create(false, false).await;
    let missing = kind_for(&roles, bare.dsn()).preflight().await.unwrap();
    assert_eq!(missing.len(), 2, "{missing:?}");
    assert!(
        missing[0].starts_with(&format!("ALTER ROLE \"{}\" CREATEROLE", bare.name)),
        "{missing:?}"
    );
    assert!(missing[1].starts_with("GRANT pg_signal_backend TO"));

    // A target that cannot be asked is an error, not a missing grant.
    let nowhere = kind_for(&roles, "postgres://root@127.0.0.1:1/postgres".into());
    let err = nowhere.preflight().await.unwrap_err();
    assert!(matches!(err, KindError::Unreachable(_)), "{err:?}");
}

#[tokio::test]
async fn a_rotation_without_the_grants_is_refused_up_front_and_changes_nothing() {
    let dir = Scratch::new();
    let env = dir.file("db.env");
    let roles = Roles::create(false).await;
    let admin = AdminRole::create(true, false).await;
    let app = spawn_app_with(|s| with_vault(s, vec![app_db(&env, &roles, &admin, 60)])).await;
    add(&app, 42, "admin").await;
    let refused = rotate(&app, 42, "app-db").await;
    assert!(
        refused.contains("Rotation of app-db refused, nothing changed")
            && refused.contains(&format!(
                "GRANT pg_signal_backend TO &quot;{}&quot;",
                admin.name
            )),
        "{refused}"
    );
    let rotations: i64 = sqlx::query_scalar("SELECT count(*) FROM rotations")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(rotations, 0);
    assert!(versions(&app).await.is_empty());
    assert!(!env.exists(), "nothing was delivered");
    let mut conn = super::admin().await;
    let created: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_roles WHERE rolname IN ($1, $2)")
            .bind(roles.a())
            .bind(roles.b())
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(created, 0, "no login role was created");

    // The same from a shell: `secret check` names it and fails; granted, it passes and
    // the rotation works.
    let config = dir.file("opsguard.toml");
    std::fs::write(
        &config,
        format!(
            "[[secrets]]\nname = \"app-db\"\nkind = \"postgres_role\"\n\
             target = {{ dsn = \"{}\", role = \"{}\" }}\n",
            admin.dsn(),
            roles.group
        ),
    )
    .unwrap();
    let envs = [
        ("OPSGUARD_CONFIG", config.as_os_str()),
        ("OPSGUARD_MASTER_KEY", std::ffi::OsStr::new(MASTER_KEY)),
    ];
    let (code, out, err) = run_opsguard(&app.db.url, &envs, &["secret", "check", "app-db"]).await;
    assert_ne!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(&format!(
            "app-db (postgres_role): missing grant: GRANT pg_signal_backend TO \"{}\"",
            admin.name
        )),
        "{out}{err}"
    );
    admin.signal(true).await;
    let (code, out, err) = run_opsguard(&app.db.url, &envs, &["secret", "check"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("app-db (postgres_role): ready"), "{out}");
    assert!(rotate(&app, 42, "app-db").await.contains("Rotated"));
}

/// The start-up preflight of the real `serve`: a missing grant is logged as a warning
/// naming the secret and the statement that grants it, and `serve` starts anyway.
#[tokio::test]
async fn serve_logs_each_missing_grant_at_start_up_and_starts_anyway() {
    let dir = Scratch::new();
    let roles = Roles::create(false).await;
    let admin = AdminRole::create(true, false).await;
    let db = crate::helpers::TestDb::create().await;
    let telegram = crate::fake_telegram::FakeTelegram::start().await;
    let config = dir.file("opsguard.toml");
    std::fs::write(
        &config,
        format!(
            "[[secrets]]\nname = \"app-db\"\nkind = \"postgres_role\"\n\
             target = {{ dsn = \"{}\", role = \"{}\" }}\n",
            admin.dsn(),
            roles.group
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let extra = [
        ("OPSGUARD_CONFIG", config.as_str()),
        ("OPSGUARD_MASTER_KEY", MASTER_KEY),
    ];
    let command = crate::process::serve_command(&db, &telegram, &extra);
    // Started: `/healthz` answers with the grant still missing.
    let mut served = crate::process::start_serving(command).await;
    // Its log (JSON lines on stderr), read as it comes so the pipe never fills.
    let stderr = served.child.stderr.take().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<serde_json::Value>::new()));
    let lines = log.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut reader = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            if let Ok(value) = serde_json::from_str(&line) {
                lines.lock().unwrap().push(value);
            }
        }
    });
    let warned = || {
        log.lock()
            .unwrap()
            .iter()
            .filter(|l| {
                l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("secrets.preflight_missing_grant"))
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    crate::helpers::wait_for("the missing grant in the log", || async {
        !warned().is_empty()
    })
    .await;
    let warned = warned();
    assert_eq!(warned.len(), 1, "{warned:?}");
    let fields = &warned[0]["fields"];
    assert_eq!(warned[0]["level"], "WARN", "{warned:?}");
    assert_eq!(fields["secret"], "app-db", "{fields}");
    assert_eq!(fields["secret.kind"], "postgres_role", "{fields}");
    let missing = fields["preflight.missing"].as_str().unwrap_or_default();
    assert!(
        missing.starts_with(&format!("GRANT pg_signal_backend TO \"{}\"", admin.name)),
        "{fields}"
    );
    assert!(
        served.child.try_wait().unwrap().is_none(),
        "serve still runs"
    );
}
