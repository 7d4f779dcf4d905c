//! Long jobs end: a pg_dump that stops producing output, a pg_dump that trickles past the
//! job's deadline, and a pg_restore that stops reading each fail their job with the cause
//! named (stall timeout or deadline) in the job's error and the alert, instead of renewing
//! the lease forever; the stalled program is killed and nothing is left behind.

use super::super::gates::add;
use super::super::helpers::*;
use super::super::secrets::Scratch;
use super::faults::failing_backup;
use super::*;
use std::path::Path;

/// An executable shell script at `path`.
pub(super) fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}")).unwrap();
    std::process::Command::new("chmod")
        .args(["+x", path.to_str().unwrap()])
        .status()
        .unwrap();
}

/// A pg_dump that answers `--version` like the real one, writes its pid to `pidfile`, then
/// runs `rest`.
pub(super) fn fake_pg_dump(path: &Path, pidfile: &Path, rest: &str) {
    script(
        path,
        &format!(
            "[ \"$1\" = --version ] && exec pg_dump --version\necho $$ > '{}'\n{rest}\n",
            pidfile.display()
        ),
    );
}

/// Wait until the process whose pid `pidfile` holds is gone (killed and reaped).
pub(super) async fn wait_gone(pidfile: &Path) {
    let pid = std::fs::read_to_string(pidfile).expect("the fake program wrote its pid");
    let proc_dir = format!("/proc/{}", pid.trim());
    wait_for(&format!("process {} to be gone", pid.trim()), || async {
        !Path::new(&proc_dir).exists()
    })
    .await;
}

#[tokio::test]
async fn a_pg_dump_that_stops_producing_output_fails_the_job_naming_the_stall_timeout() {
    let src = SourceDb::create(100).await;
    let store = Scratch::new();
    let dir = store.file("store");
    let (fake, pidfile) = (store.file("pg_dump"), store.file("pg_dump.pid"));
    // Part of a real dump, then silence with the output held open.
    fake_pg_dump(
        &fake,
        &pidfile,
        "pg_dump \"$@\" | head -c 5000\nexec sleep 600",
    );
    let (error, alert) = failing_backup(&dir, &src.dsn, |s| {
        s.backups.pg_dump = fake.to_string_lossy().into_owned();
        s.backups.stall_secs = 2;
    })
    .await;
    assert!(
        error.starts_with("stalled: no bytes moved for 2s while dumping")
            && error.contains("stall timeout stall_secs = 2"),
        "{error}"
    );
    assert!(
        alert.contains("stalled") && alert.contains("stall_secs"),
        "{alert}"
    );
    wait_gone(&pidfile).await;
    assert!(files(&dir).is_empty(), "left: {:?}", files(&dir));
}

#[tokio::test]
async fn a_pg_dump_that_trickles_past_the_targets_deadline_fails_naming_the_deadline() {
    let src = SourceDb::create(100).await;
    let store = Scratch::new();
    let dir = store.file("store");
    let (fake, pidfile) = (store.file("pg_dump"), store.file("pg_dump.pid"));
    // Never stalls (bytes every 100 ms), never ends.
    fake_pg_dump(
        &fake,
        &pidfile,
        "while :; do head -c 512 /dev/urandom; sleep 0.1; done",
    );
    let (error, alert) = failing_backup(&dir, &src.dsn, |s| {
        s.backups.pg_dump = fake.to_string_lossy().into_owned();
        s.backups.stall_secs = 30;
        // The target's own deadline beats [backups] deadline_secs.
        s.backups.deadline_secs = 3600;
        s.backups.targets[0].deadline_secs = Some(3);
    })
    .await;
    assert!(
        error.starts_with("deadline exceeded")
            && error.contains("deadline of 3s (deadline_secs)")
            && error.contains("while dumping"),
        "{error}"
    );
    assert!(alert.contains("deadline exceeded"), "{alert}");
    wait_gone(&pidfile).await;
    assert!(files(&dir).is_empty(), "left: {:?}", files(&dir));
}

#[tokio::test]
async fn a_pg_restore_that_stops_reading_fails_the_restore_test_and_its_scratch_db_is_dropped() {
    let src = SourceDb::create(2_000).await;
    let store = Scratch::new();
    let dir = store.file("store");
    let (fake, pidfile) = (store.file("pg_restore"), store.file("pg_restore.pid"));
    script(
        &fake,
        &format!("echo $$ > '{}'\nexec sleep 600\n", pidfile.display()),
    );
    let app = spawn_app_with(|s| {
        with_backups(s, &dir, vec![target("main", &src.dsn)]);
        s.backups.pg_restore = fake.to_string_lossy().into_owned();
        s.backups.stall_secs = 2;
    })
    .await;
    add(&app, ADMIN, "admin").await;
    let (job, (status, _)) = backup_now(&app, "main").await;
    assert_eq!(status, "succeeded");
    let id = backup_of(&app, job).await;
    let reply = app.say(ADMIN, &format!("/restore_test {id}")).await.text();
    let test_job = job_id(&reply);
    let (status, error) = wait_job(&app, test_job).await;
    assert_eq!(status, "failed");
    let error = error.unwrap();
    assert!(
        error.starts_with("stalled: no bytes moved for 2s while restoring into a scratch database"),
        "{error}"
    );
    wait_gone(&pidfile).await;
    let (ok, verdict): (Option<bool>, Option<String>) =
        sqlx::query_as("SELECT verified_ok, verify_error FROM backups WHERE id = $1")
            .bind(id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(ok, Some(false));
    assert!(verdict.unwrap().contains("stall_secs = 2"));
    let (scratch,): (String,) = sqlx::query_as("SELECT scratch_db FROM backup_jobs WHERE id = $1")
        .bind(test_job)
        .fetch_one(app.pool())
        .await
        .unwrap();
    let (left,): (i64,) = sqlx::query_as("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(&scratch)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(left, 0, "the scratch database was dropped");
}
