//! SIGTERM to the real `serve` binary in the middle of a big backup, compressing: the process
//! exits within its shutdown grace plus a second (issue 20), the job goes back to the queue (not failed: no error, no alert, its
//! partial object and catalogue row gone, pg_dump killed), and another replica finishes it.

use super::super::helpers::*;
use super::super::process::{add, serve_command, start_serving};
use super::super::secrets::{MASTER_KEY, Scratch};
use super::limits::{fake_pg_dump, wait_gone};
use super::*;
use crate::fake_telegram::FakeTelegram;
use std::time::{Duration, Instant};

const GRACE_SECS: u64 = 5;

/// (status, started_at is set, error) of the only job.
async fn the_job(db: &TestDb) -> Option<(i64, String, bool, Option<String>)> {
    sqlx::query_as("SELECT id, status, started_at IS NOT NULL, error FROM backup_jobs")
        .fetch_optional(&db.pool)
        .await
        .unwrap()
}

async fn catalogue_rows(db: &TestDb, status: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM backups WHERE status = $1")
        .bind(status)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

/// Bytes in the store so far (the upload in progress).
fn stored_bytes(dir: &std::path::Path) -> u64 {
    files(dir)
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

#[tokio::test]
async fn sigterm_mid_backup_exits_within_the_grace_and_hands_the_job_back() {
    let db = TestDb::create().await;
    add(&db, ADMIN, "admin").await;
    let src = SourceDb::create(1_000).await;
    let store = Scratch::new();
    let dir = store.file("store");
    let (fake, pidfile) = (store.file("pg_dump"), store.file("pg_dump.pid"));
    // The whole dump, then a big stream that is still coming (and being compressed, at a
    // slow level) at the SIGTERM: a writer of its own keeps the pipe open even once the
    // program is killed, so only the compressor giving up ends it.
    fake_pg_dump(
        &fake,
        &pidfile,
        "pg_dump \"$@\"\n( while head -c 1048576 /dev/urandom; do sleep 0.01; done ) &\nexec sleep 600",
    );
    let config = store.file("opsguard.toml");
    write_config(&config, &src.dsn);
    let alerts = ALERTS.to_string();
    let (config, storage, pg_dump) = (
        config.to_string_lossy().into_owned(),
        dir.to_string_lossy().into_owned(),
        fake.to_string_lossy().into_owned(),
    );
    let grace = GRACE_SECS.to_string();
    let telegram = FakeTelegram::start().await;
    let (mut command, addr) = serve_command(
        &db,
        &telegram,
        &[
            ("OPSGUARD_CONFIG", &config),
            ("OPSGUARD_MASTER_KEY", MASTER_KEY),
            ("OPSGUARD__BACKUPS__STORAGE", &storage),
            ("OPSGUARD__BACKUPS__PG_DUMP", &pg_dump),
            ("OPSGUARD__BACKUPS__WORKER_INTERVAL_MS", "100"),
            ("OPSGUARD__BACKUPS__ALERT_CHATS", &format!("[{alerts}]")),
            ("OPSGUARD__SHUTDOWN__GRACE_SECS", &grace),
            ("OPSGUARD__BACKUPS__ZSTD_LEVEL", "19"),
        ],
    );
    // Its log (JSON lines on stderr), read as it comes so the pipe never fills.
    command.stderr(std::process::Stdio::piped());
    let mut served = start_serving((command, addr)).await;
    let mut stderr = served.child.stderr.take().unwrap();
    let log = tokio::spawn(async move {
        let mut text = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text).await;
        text
    });
    let update = text_update(1, ADMIN, ADMIN, "/backup main");
    let posted = super::super::process::post(&served.addr, WEBHOOK_SECRET, update.to_string());
    assert_eq!(posted.await.unwrap().status(), 200);
    // Mid-stream: the job running, its catalogue row writing, pg_dump started, and the
    // compressed stream past a few megabytes (compressing goes on).
    wait_for("the backup to be mid-stream", || async {
        let running = the_job(&db).await.is_some_and(|j| j.1 == "running");
        running
            && catalogue_rows(&db, "writing").await == 1
            && pidfile.exists()
            && stored_bytes(&dir) > 3 * 1024 * 1024
    })
    .await;

    let pid = served.child.id().unwrap().to_string();
    let termed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(termed.success());
    let at = Instant::now();
    let exit = tokio::time::timeout(Duration::from_secs(60), served.child.wait())
        .await
        .expect("serve exited")
        .unwrap();
    let took = at.elapsed();
    assert!(exit.success(), "{exit:?}");
    // "Stopped" is said at the real exit, after everything else.
    let log = log.await.unwrap();
    let last = log
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_default();
    assert!(last.contains("opsguard.stopped"), "last log line: {last}");
    assert!(
        took <= Duration::from_secs(GRACE_SECS + 1),
        "exited {took:?} after SIGTERM, grace {GRACE_SECS} s"
    );
    let (job, status, started, error) = the_job(&db).await.unwrap();
    assert_eq!(
        (status.as_str(), started, error),
        ("queued", false, None),
        "handed back as if never started, not failed"
    );
    wait_gone(&pidfile).await;
    assert_eq!(catalogue_rows(&db, "writing").await, 0);
    // The backups' files only: the served process may have written its audit checkpoint
    // into the store's `audit-checkpoints/` meanwhile.
    let left: Vec<_> = files(&dir)
        .into_iter()
        .filter(|f| !f.to_string_lossy().contains("/audit-checkpoints/"))
        .collect();
    assert!(left.is_empty(), "left: {left:?}");
    assert!(
        telegram.sent_to(ALERTS).is_empty(),
        "a hand-back is no failure"
    );

    // Another replica, with a pg_dump that ends, claims it and finishes it.
    let second = spawn_app_on(db.clone(), |s| {
        with_backups(s, &dir, vec![target("main", &src.dsn)])
    })
    .await;
    assert_eq!(wait_job(&second, job).await, ("succeeded".into(), None));
    assert_eq!(catalogue_rows(&db, "good").await, 1);
}
