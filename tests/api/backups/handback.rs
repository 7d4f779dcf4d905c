//! Shutdown mid-backup: the replica's shutdown token (what SIGTERM cancels) cuts the job,
//! which goes back to the queue — not failed, no error, its partial object and catalogue row
//! gone, pg_dump killed — and another replica claims it and finishes it.

use super::super::gates::add;
use super::super::helpers::*;
use super::super::secrets::Scratch;
use super::limits::{fake_pg_dump, wait_gone};
use super::*;

/// (status, started_at is set, error) of job `id`.
async fn job_row(app: &TestApp, id: i64) -> (String, bool, Option<String>) {
    sqlx::query_as("SELECT status, started_at IS NOT NULL, error FROM backup_jobs WHERE id = $1")
        .bind(id)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_backup_running_at_shutdown_is_handed_back_and_another_replica_finishes_it() {
    let src = SourceDb::create(1_000).await;
    let store = Scratch::new();
    let dir = store.file("store");
    let (fake, pidfile) = (store.file("pg_dump"), store.file("pg_dump.pid"));
    // The whole dump, then it hangs: the backup is mid-stream when the replica stops.
    fake_pg_dump(&fake, &pidfile, "pg_dump \"$@\"\nexec sleep 600");
    let first = spawn_app_with(|s| {
        with_backups(s, &dir, vec![target("main", &src.dsn)]);
        s.backups.pg_dump = fake.to_string_lossy().into_owned();
    })
    .await;
    add(&first, ADMIN, "admin").await;
    let job = job_id(&first.say(ADMIN, "/backup main").await.text());
    // Mid-stream: running, its catalogue row writing, pg_dump's output read.
    wait_edit(&first, "dumping, compressing, encrypting").await;
    assert_eq!(job_row(&first, job).await.0, "running");

    first.shutdown.cancel();
    wait_for("the job to be handed back", || async {
        job_row(&first, job).await.0 == "queued"
    })
    .await;
    assert_eq!(
        job_row(&first, job).await,
        ("queued".into(), false, None),
        "queued as if never started, not failed"
    );
    wait_gone(&pidfile).await;
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM backups WHERE job_id = $1")
        .bind(job)
        .fetch_one(first.pool())
        .await
        .unwrap();
    assert_eq!(rows, 0, "the cut run's catalogue row is gone");
    assert!(files(&dir).is_empty(), "left: {:?}", files(&dir));
    assert!(
        first.telegram.sent_to(ALERTS).is_empty(),
        "a hand-back is no failure"
    );

    // Another replica (with a pg_dump that ends) claims it and finishes it.
    let second = first
        .spawn_replica_with(|s| with_backups(s, &dir, vec![target("main", &src.dsn)]))
        .await;
    // The stopped replica's outbox no longer sends: the second one delivers its edit.
    wait_edit(&second, "handed back to the queue").await;
    assert_eq!(wait_job(&second, job).await, ("succeeded".into(), None));
    let id = backup_of(&second, job).await;
    let (status, sha, key, counts) = catalogued(&second, id).await;
    assert_eq!(status, "good");
    assert_eq!(Some(sha256_of(&dir.join(&key))), sha);
    assert_eq!(counts["public.items"], 1_000);
    wait_edit(&second, "is good").await;
}
