//! `opsguard backup run|list|verify|restore|key` from a shell, through the real binary: each
//! action audited (actor `cli`), the restore target's DSN taken from OPSGUARD_RESTORE_DSN so
//! its password stays off the command line, and a failure reported with a non-zero exit.

use super::super::helpers::*;
use super::super::process::opsguard;
use super::super::secrets::{MASTER_KEY, Scratch};
use super::*;
use opsguard::storage;

async fn shell(
    db: &TestDb,
    config: &Path,
    dir: &Path,
    args: &[&str],
    env: &[(&str, String)],
) -> (bool, String, String) {
    let mut cmd = opsguard(db);
    cmd.env("OPSGUARD_CONFIG", config)
        .env("OPSGUARD_MASTER_KEY", MASTER_KEY)
        .env("OPSGUARD__BACKUPS__STORAGE", dir)
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_shell_runs_lists_verifies_and_restores_backups_and_audits_each() {
    let db = TestDb::create().await;
    let src = SourceDb::create(700).await;
    let into = SourceDb::create(0).await;
    admin_exec(format!("DROP DATABASE \"{}\" WITH (FORCE)", into.name)).await;
    admin_exec(format!("CREATE DATABASE \"{}\"", into.name)).await;
    let store = Scratch::new();
    let dir = store.file("store");
    let config = store.file("opsguard.toml");
    write_config(&config, &src.dsn);

    let (ok, out, err) = shell(&db, &config, &dir, &["backup", "run", "main"], &[]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("backup #1 is good") && out.contains("sha256"),
        "{out}"
    );
    let (ok, out, _) = shell(&db, &config, &dir, &["backup", "list"], &[]).await;
    assert!(ok && out.contains("#1 main · good"), "{out}");
    let (ok, out, err) = shell(&db, &config, &dir, &["backup", "verify", "1"], &[]).await;
    assert!(ok, "{err}");
    assert!(out.contains("3 tables and 702 rows as catalogued"), "{out}");
    let (ok, out, err) = shell(
        &db,
        &config,
        &dir,
        &["backup", "restore", "1"],
        &[("OPSGUARD_RESTORE_DSN", into.dsn.clone())],
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("backup #1 restored into"), "{out}");
    let mut conn = sqlx::PgConnection::connect(&into.dsn).await.unwrap();
    let (items,): (i64,) = sqlx::query_as("SELECT count(*) FROM items")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(items, 700);
    let (ok, out, _) = shell(&db, &config, &dir, &["backup", "key"], &[]).await;
    assert!(ok && out.trim().starts_with("age1"), "{out}");

    // Failures exit non-zero with the reason.
    let (ok, _, err) = shell(&db, &config, &dir, &["backup", "run", "nope"], &[]).await;
    assert!(
        !ok && err.contains("unknown backup target 'nope'; known: main"),
        "{err}"
    );
    let (ok, _, err) = shell(&db, &config, &dir, &["backup", "verify", "99"], &[]).await;
    assert!(!ok && err.contains("no backup #99"), "{err}");

    let rows = storage::audit::latest(&db.pool, 100).await.unwrap();
    for command in ["backup run", "backup verify", "backup restore"] {
        assert!(
            rows.iter()
                .any(|r| r.entry.command == command && r.entry.actor_kind == "cli"),
            "{command} not audited"
        );
    }
}

#[tokio::test]
async fn the_console_runs_the_backup_it_queued_before_it_leaves() {
    use tokio::io::AsyncWriteExt;
    let db = TestDb::create().await;
    let src = SourceDb::create(50).await;
    let store = Scratch::new();
    let dir = store.file("store");
    let config = store.file("opsguard.toml");
    write_config(&config, &src.dsn);
    let (ok, _, err) = shell(
        &db,
        &config,
        &dir,
        &["user", "add", "41", "--role", "operator"],
        &[],
    )
    .await;
    assert!(ok, "{err}");
    let mut child = opsguard(&db)
        .env("OPSGUARD_CONFIG", &config)
        .env("OPSGUARD_MASTER_KEY", MASTER_KEY)
        .env("OPSGUARD__BACKUPS__STORAGE", &dir)
        .args(["console", "--as", "41"])
        .spawn()
        .unwrap();
    // The session stays open a while, so the console's own worker runs the job (the path
    // that once raced the exit): its result is still printed when the console leaves.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"/backup main\n").await.unwrap();
    wait_for("the console's worker to finish the backup", || async {
        let good: i64 = sqlx::query_scalar("SELECT count(*) FROM backups WHERE status = 'good'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        good == 1
    })
    .await;
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Backup job #1 of main queued"), "{text}");
    assert!(text.contains("backup #1 is good"), "{text}");
    assert_eq!(files(&dir).len(), 1);
}

/// Read the console's lines into `seen` until one contains `needle` (at most 60 s).
async fn read_until(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    seen: &mut Vec<String>,
    needle: &str,
) {
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push(line.clone());
            if line.contains(needle) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "no {needle:?} in {seen:#?}");
}

#[tokio::test]
async fn the_console_prints_backup_and_restore_test_progress_as_it_happens() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let db = TestDb::create().await;
    let src = SourceDb::create(50).await;
    let store = Scratch::new();
    let dir = store.file("store");
    let config = store.file("opsguard.toml");
    write_config(&config, &src.dsn);
    let add = ["user", "add", "41", "--role", "admin"];
    let (ok, _, err) = shell(&db, &config, &dir, &add, &[]).await;
    assert!(ok, "{err}");
    // A lock pg_dump must wait for keeps the backup in its first stage until released.
    let mut locker = sqlx::PgConnection::connect(&src.dsn).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    let lock = "LOCK TABLE items IN ACCESS EXCLUSIVE MODE";
    sqlx::query(lock).execute(&mut locker).await.unwrap();
    let mut child = opsguard(&db)
        .env("OPSGUARD_CONFIG", &config)
        .env("OPSGUARD_MASTER_KEY", MASTER_KEY)
        .env("OPSGUARD__BACKUPS__STORAGE", &dir)
        .env("OPSGUARD__BACKUPS__PROGRESS_EVERY_SECS", "1")
        .args(["console", "--as", "41"])
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = stdout.lines();
    let mut seen = Vec::new();
    stdin.write_all(b"/backup main\n").await.unwrap();
    read_until(&mut lines, &mut seen, "Backup job #1 of main queued").await;
    // The progress line shows while the job runs and the session is open.
    read_until(&mut lines, &mut seen, "dumping, compressing, encrypting").await;
    assert!(!seen.iter().any(|l| l.contains("is good")), "{seen:#?}");
    sqlx::query("COMMIT").execute(&mut locker).await.unwrap();
    read_until(&mut lines, &mut seen, "backup #1 is good").await;
    stdin.write_all(b"/restore_test 1\n").await.unwrap();
    read_until(&mut lines, &mut seen, "restored into a scratch database").await;
    // Leaving prints nothing twice: both results were shown as they happened.
    drop(stdin);
    while let Some(line) = lines.next_line().await.unwrap() {
        seen.push(line);
    }
    let status = child.wait().await.unwrap();
    assert!(status.success(), "{seen:#?}");
    let count = |needle: &str| seen.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(count("backup #1 is good"), 1, "{seen:#?}");
    assert_eq!(count("restored into a scratch database"), 1, "{seen:#?}");
}
