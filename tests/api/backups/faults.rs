//! Backup faults: pg_dump missing, a wrong password, an unreachable server, storage that
//! cannot be written or is full. Each marks the job failed with its cause, lists no backup
//! as good, leaves no object (nor staging file) behind, alerts, and never shows a password.

use super::super::gates::add;
use super::super::helpers::*;
use super::super::secrets::Scratch;
use super::*;

/// Back up `main` (configured by `customize`), expect failure; returns (error, alert text).
pub(super) async fn failing_backup(
    dir: &std::path::Path,
    dsn: &str,
    customize: impl FnOnce(&mut opsguard::config::Settings),
) -> (String, String) {
    let app = spawn_app_with(|s| {
        with_backups(s, dir, vec![target("main", dsn)]);
        customize(s);
    })
    .await;
    add(&app, ADMIN, "admin").await;
    let (job, (status, error)) = backup_now(&app, "main").await;
    assert_eq!(status, "failed");
    let error = error.unwrap();
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT status, error FROM backups WHERE job_id = $1")
            .bind(job)
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert!(rows.iter().all(|(s, _)| s == "failed"), "{rows:?}");
    let telegram = app.telegram.clone();
    let calls = app
        .telegram
        .wait_until("the failure alert", |_| {
            !telegram.sent_to(ALERTS).is_empty()
        })
        .await;
    drop(calls);
    let alert = app.telegram.sent_to(ALERTS)[0].text();
    assert!(
        alert.contains("failed") && alert.contains(&format!("#{job}")),
        "{alert}"
    );
    let listed = app.say(ADMIN, "/backups").await.text();
    assert!(!listed.contains("· good"), "{listed}");
    (error, alert)
}

/// A new login role that must pass scram-sha-256 on 127.0.0.1 (a member of opsguard_pwtest,
/// which scripts/test.sh puts under password checks), with `password`.
async fn password_role(password: &str) -> String {
    let role = format!("og_bk_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    admin_exec(
        "DO $$ BEGIN CREATE ROLE opsguard_pwtest NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
            .into(),
    )
    .await;
    admin_exec(format!("CREATE ROLE {role} LOGIN PASSWORD '{password}'")).await;
    admin_exec(format!("GRANT opsguard_pwtest TO {role}")).await;
    role
}

#[tokio::test]
async fn pg_dump_missing_fails_the_job_with_the_cause_and_stores_nothing() {
    let src = SourceDb::create(100).await;
    let store = Scratch::new();
    let dir = store.file("store");
    let (error, alert) = failing_backup(&dir, &src.dsn, |s| {
        s.backups.pg_dump = "/nonexistent/bin/pg_dump".into();
    })
    .await;
    assert!(error.contains("pg_dump could not be started"), "{error}");
    assert!(alert.contains("pg_dump could not be started"), "{alert}");
    assert!(files(&dir).is_empty(), "left: {:?}", files(&dir));
}

#[tokio::test]
async fn a_pg_dump_that_fails_midway_reports_the_tail_of_its_stderr_and_removes_the_partial_object()
{
    let src = SourceDb::create(100).await;
    let store = Scratch::new();
    let dir = store.file("store");
    // A pg_dump that writes part of a real dump and then fails, as a crash or a lost
    // connection would.
    let script = store.file("pg_dump");
    std::fs::write(
        &script,
        "#!/bin/sh\npg_dump \"$@\" | head -c 5000\necho 'pg_dump: error: connection to server lost' >&2\nexit 1\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", script.to_str().unwrap()])
        .status()
        .unwrap();
    let (error, _) = failing_backup(&dir, &src.dsn, |s| {
        s.backups.pg_dump = script.to_string_lossy().into_owned();
    })
    .await;
    assert!(
        error.contains("pg_dump failed") && error.contains("connection to server lost"),
        "{error}"
    );
    assert!(files(&dir).is_empty(), "left: {:?}", files(&dir));
}

#[tokio::test]
async fn a_wrong_password_fails_with_the_cause_and_never_shows_the_password() {
    let src = SourceDb::create(10).await;
    let role = password_role("right-password-1").await;
    let dsn = pg_url(Some(&role), Some("Wr0ng-Canary-Pw"), &src.name);
    let store = Scratch::new();
    let dir = store.file("store");
    let (error, alert) = failing_backup(&dir, &dsn, |_| {}).await;
    admin_exec(format!("DROP ROLE {role}")).await;
    assert!(error.contains("password authentication failed"), "{error}");
    for text in [&error, &alert] {
        assert!(
            !text.contains("Wr0ng-Canary-Pw"),
            "the password leaked: {text}"
        );
    }
    assert!(files(&dir).is_empty());
}

#[tokio::test]
async fn an_unreachable_server_fails_with_the_cause() {
    let store = Scratch::new();
    let dir = store.file("store");
    let (error, _) = failing_backup(&dir, "postgres://u:Canary-Pw-2@127.0.0.1:1/app", |_| {}).await;
    assert!(error.contains("cannot read 127.0.0.1:1/app"), "{error}");
    assert!(!error.contains("Canary-Pw-2"));
    assert!(files(&dir).is_empty());
}

#[tokio::test]
async fn storage_that_cannot_be_written_fails_the_backup_with_the_cause() {
    let src = SourceDb::create(10).await;
    let store = Scratch::new();
    // A directory that cannot exist: its parent is a file (root ignores permissions).
    std::fs::write(store.file("plain-file"), b"x").unwrap();
    let dir = store.file("plain-file").join("backups");
    let (error, _) = failing_backup(&dir, &src.dsn, |_| {}).await;
    assert!(error.contains("cannot create the directory"), "{error}");
}

#[tokio::test]
async fn a_full_disk_fails_the_backup_and_removes_the_partial_object() {
    let store = Scratch::new();
    let dir = store.file("tiny");
    std::fs::create_dir_all(&dir).unwrap();
    // A 256 KiB filesystem: mounting needs root (CI and this machine run as root).
    let mounted = std::process::Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=256k",
            "tmpfs",
            dir.to_str().unwrap(),
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(mounted, "this test mounts a small tmpfs and needs root");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(dir.clone());
    // Random text compresses poorly, so the stored object outgrows 256 KiB.
    let src = SourceDb::create(40_000).await;
    let (error, _) = failing_backup(&dir, &src.dsn, |_| {}).await;
    assert!(error.to_lowercase().contains("no space left"), "{error}");
    assert!(files(&dir).is_empty(), "left: {:?}", files(&dir));
}

#[tokio::test]
async fn without_targets_or_a_master_key_a_backup_is_refused_saying_what_is_missing() {
    let app = spawn_app().await;
    add(&app, ADMIN, "admin").await;
    let reply = app.say(ADMIN, "/backup").await.text();
    assert!(
        reply.contains("No backup targets are configured"),
        "{reply}"
    );

    let src = SourceDb::create(10).await;
    let store = Scratch::new();
    let dir = store.file("store");
    let app = spawn_app_with(|s| {
        with_backups(s, &dir, vec![target("main", &src.dsn)]);
        s.master_key = None;
    })
    .await;
    add(&app, ADMIN, "admin").await;
    let reply = app.say(ADMIN, "/backup main").await.text();
    assert!(
        reply.contains("backups need OPSGUARD_MASTER_KEY"),
        "{reply}"
    );
    let (jobs,): (i64,) = sqlx::query_as("SELECT count(*) FROM backup_jobs")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(jobs, 0, "nothing was queued");
}

#[tokio::test]
async fn the_password_reaches_pg_dump_through_its_environment_never_its_arguments() {
    let src = SourceDb::create(10).await;
    let role = password_role("Right-Canary-Pw-9").await;
    admin_exec(format!("ALTER DATABASE \"{}\" OWNER TO {role}", src.name)).await;
    let mut conn = sqlx::PgConnection::connect(&src.dsn).await.unwrap();
    for table in ["items", "empty", "\"odd schema\".\"Mixed Case\""] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER TABLE {table} OWNER TO {role}"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER SCHEMA \"odd schema\" OWNER TO {role}"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    let store = Scratch::new();
    let dir = store.file("store");
    // A pg_dump that records what it was given, then runs the real one.
    let seen = store.file("seen.txt");
    let spy = store.file("pg_dump");
    std::fs::write(
        &spy,
        format!(
            "#!/bin/sh\n{{ echo \"ARGS: $*\"; env; }} >> '{}'\nexec pg_dump \"$@\"\n",
            seen.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", spy.to_str().unwrap()])
        .status()
        .unwrap();
    let dsn = pg_url(Some(&role), Some("Right-Canary-Pw-9"), &src.name);
    let app = spawn_app_with(|s| {
        with_backups(s, &dir, vec![target("main", &dsn)]);
        s.backups.pg_dump = spy.to_string_lossy().into_owned();
    })
    .await;
    add(&app, ADMIN, "admin").await;
    let (_, (status, error)) = backup_now(&app, "main").await;
    admin_exec(format!("DROP DATABASE \"{}\" WITH (FORCE)", src.name)).await;
    admin_exec(format!("DROP ROLE {role}")).await;
    assert_eq!(
        (status.as_str(), error),
        ("succeeded", None),
        "scram login through PGPASSWORD"
    );
    let seen = std::fs::read_to_string(seen).unwrap();
    let args: Vec<&str> = seen.lines().filter(|l| l.starts_with("ARGS: ")).collect();
    assert!(!args.is_empty());
    for line in &args {
        assert!(
            !line.contains("Right-Canary-Pw-9"),
            "the password is on the command line: {line}"
        );
        assert!(
            line == &"ARGS: --version"
                || (line.contains("--format=custom") && line.contains("--compress=0")),
            "{line}"
        );
    }
    assert!(seen.contains("PGPASSWORD=Right-Canary-Pw-9"));
    // A clean environment: libpq's variables and the basics, nothing of opsguard's own
    // (the test process's CARGO_*, RUST_* and the like would show if it were inherited).
    let allowed = [
        "PATH", "HOME", "LANG", "LC_ALL", "TZ", "PWD", "OLDPWD", "SHLVL", "_",
    ];
    for line in seen.lines().filter(|l| !l.starts_with("ARGS: ")) {
        let key = line.split('=').next().unwrap_or_default();
        assert!(
            key.starts_with("PG") || allowed.contains(&key),
            "inherited: {key}"
        );
    }
}
