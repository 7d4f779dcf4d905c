//! A process killed in the middle of a backup: the real binary (`opsguard backup run`) is
//! SIGKILLed while pg_dump is still running. Nothing is listed as good; when the lease runs
//! out, the next start marks the job failed, removes the staging file, and alerts.

use super::super::helpers::*;
use super::super::process::opsguard;
use super::super::secrets::{MASTER_KEY, Scratch};
use super::*;
use std::time::Duration;

#[tokio::test]
async fn a_kill_mid_backup_leaves_nothing_listed_and_the_restart_marks_the_job_failed() {
    let db = TestDb::create().await;
    let src = SourceDb::create(1_000).await;
    let store = Scratch::new();
    let dir = store.file("store");
    // pg_dump writes the whole dump, then hangs: the backup is mid-stream when killed.
    let slow = store.file("pg_dump");
    std::fs::write(
        &slow,
        "#!/bin/sh\n[ \"$1\" = --version ] && exec pg_dump --version\npg_dump \"$@\"\nexec sleep 30\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", slow.to_str().unwrap()])
        .status()
        .unwrap();
    let config = store.file("opsguard.toml");
    write_config(&config, &src.dsn);
    let mut child = opsguard(&db)
        .env("OPSGUARD_CONFIG", &config)
        .env("OPSGUARD_MASTER_KEY", MASTER_KEY)
        .env("OPSGUARD__BACKUPS__STORAGE", &dir)
        .env("OPSGUARD__BACKUPS__PG_DUMP", &slow)
        .env("OPSGUARD__BACKUPS__LEASE_SECS", "3")
        .args(["backup", "run", "main"])
        .spawn()
        .unwrap();
    // Wait until the upload has begun (its staging file exists) and the row is 'writing'.
    let mut started = false;
    // Generous: under a loaded machine the debug binary takes a while to get going.
    for _ in 0..1200 {
        let writing: Option<(String,)> = sqlx::query_as("SELECT status FROM backups LIMIT 1")
            .fetch_optional(&db.pool)
            .await
            .unwrap();
        if writing.is_some_and(|(s,)| s == "writing") && !files(&dir).is_empty() {
            started = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(started, "the backup did not start");
    tokio::time::sleep(Duration::from_millis(500)).await;
    child.kill().await.unwrap();
    let _ = child.wait().await;
    let staged = files(&dir);
    assert!(
        staged.iter().all(|f| f.to_string_lossy().contains('#')),
        "only staging files: {staged:?}"
    );
    let (good,): (i64,) = sqlx::query_as("SELECT count(*) FROM backups WHERE status = 'good'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(good, 0);

    // The next start (any replica) fails it once the lease has run out.
    let app = spawn_app_on(db.clone(), |s| {
        with_backups(s, &dir, vec![target("main", &src.dsn)]);
        s.backups.lease_secs = 3;
    })
    .await;
    let (job,): (i64,) = sqlx::query_as("SELECT id FROM backup_jobs")
        .fetch_one(app.pool())
        .await
        .unwrap();
    let (status, error) = wait_job(&app, job).await;
    assert_eq!(status, "failed");
    assert!(error.unwrap().starts_with("interrupted"));
    // The job is failed first; its object is removed and its row marked just after (the
    // alert is the last step, so once it is out, the clean-up is done).
    let telegram = app.telegram.clone();
    app.telegram
        .wait_until("the alert", |_| {
            telegram
                .sent_to(ALERTS)
                .iter()
                .any(|c| c.text().contains("interrupted"))
        })
        .await;
    let (row,): (String,) = sqlx::query_as("SELECT status FROM backups")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(row, "failed");
    assert!(files(&dir).is_empty(), "left: {:?}", files(&dir));
    // A new backup of the target is accepted again.
    add_admin(&app).await;
    let (_, (status, _)) = backup_now(&app, "main").await;
    assert_eq!(status, "succeeded");
}

async fn add_admin(app: &TestApp) {
    super::super::gates::add(app, ADMIN, "admin").await;
}
