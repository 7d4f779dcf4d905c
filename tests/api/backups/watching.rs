//! What an operator watches: the progress message shows bytes, rate and elapsed time while
//! a backup runs; the implied schedules appear in `/schedules`; the `backups` check reads
//! the catalogue (no backup, never restore-tested, all well).

use super::super::gates::add;
use super::super::helpers::*;
use super::super::secrets::Scratch;
use super::*;

#[tokio::test]
async fn the_progress_message_shows_bytes_rate_and_elapsed_while_the_backup_runs() {
    let src = SourceDb::create(2_000).await;
    let store = Scratch::new();
    let dir = store.file("store");
    // A pg_dump that takes its time after writing, so progress edits happen mid-backup.
    let slow = store.file("pg_dump");
    std::fs::write(
        &slow,
        "#!/bin/sh\n[ \"$1\" = --version ] && exec pg_dump --version\npg_dump \"$@\"\nsleep 5\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", slow.to_str().unwrap()])
        .status()
        .unwrap();
    let app = spawn_app_with(|s| {
        with_backups(s, &dir, vec![target("main", &src.dsn)]);
        s.backups.pg_dump = slow.to_string_lossy().into_owned();
    })
    .await;
    add(&app, ADMIN, "admin").await;
    let (_, (status, _)) = backup_now(&app, "main").await;
    assert_eq!(status, "succeeded");
    wait_edit(&app, "is good").await;
    let edits = app.telegram.calls_to("editMessageText");
    let progress: Vec<String> = edits
        .iter()
        .map(|c| c.text())
        .filter(|t| t.contains("dumping, compressing, encrypting"))
        .collect();
    assert!(!progress.is_empty(), "no progress edit among {edits:?}");
    let last = progress.last().unwrap();
    assert!(
        last.contains("KiB read · ") && last.contains("/s · "),
        "{last}"
    );
    // Edits come after the progress message and target it; the result is the last word.
    assert!(edits.last().unwrap().text().contains("is good"));
}

#[tokio::test]
async fn targets_imply_their_schedules_and_the_backups_check_reads_the_catalogue() {
    let src = SourceDb::create(100).await;
    let store = Scratch::new();
    let dir = store.file("store");
    let app = spawn_app_with(|s| {
        let mut main = target("main", &src.dsn);
        main.schedule = Some("0 0 2 * * *".into());
        with_backups(s, &dir, vec![main]);
        s.backups.restore_test_cron = "0 0 5 * * Sun".into();
        s.backups.prune_cron = "0 30 5 * * *".into();
    })
    .await;
    add(&app, ADMIN, "admin").await;
    let schedules = app.say(ADMIN, "/schedules").await.text();
    for name in ["backup-main", "restore-test-backups", "prune-backups"] {
        assert!(schedules.contains(name), "{name} missing: {schedules}");
    }
    assert!(schedules.contains("/restore_test latest"), "{schedules}");

    let report = app.say(ADMIN, "/check backups").await.text();
    assert!(report.contains("No backups recorded"), "{report}");
    let (_, (status, _)) = backup_now(&app, "main").await;
    assert_eq!(status, "succeeded");
    let report = app.say(ADMIN, "/check backups").await.text();
    assert!(
        report.contains("never restore-tested") && !report.contains("No backups recorded"),
        "{report}"
    );
    let reply = app.say(ADMIN, "/restore_test latest").await.text();
    assert_eq!(wait_job(&app, job_id(&reply)).await.0, "succeeded");
    let report = app.say(ADMIN, "/check backups").await.text();
    assert!(
        !report.contains("restore-tested") && !report.contains("No backups"),
        "{report}"
    );
}
