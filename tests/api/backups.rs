//! Backups through the pipeline against real PostgreSQL: `/backup` answers with the job id
//! and a progress message that ends as the result; the catalogue, the stored object and its
//! checksum agree; a second backup of a running target is refused; `/restore_test` restores
//! into a scratch database and drops it. Faults are in `backups/faults.rs`, tampering in
//! `backups/tamper.rs`, a kill mid-backup in `backups/kill.rs`, retention in
//! `backups/retention.rs`, the by-hand restore (age + pg_restore) in `backups/by_hand.rs`,
//! stall timeouts and deadlines in `backups/limits.rs`, the hand-back at shutdown in
//! `backups/handback.rs`.

mod by_hand;
mod faults;
mod handback;
mod kill;
mod limits;
mod pg_dump_version;
mod retention;
mod s3;
mod shell;
mod sigterm;
mod tamper;
mod watching;

use super::gates::add;
use super::helpers::*;
use super::secrets::{MASTER_KEY, Scratch};
use opsguard::config::{BackupTarget, Settings};
use opsguard::domain::secret::Secret;
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const ADMIN: i64 = 7001;
pub const ALERTS: i64 = -100777;

/// A database of its own holding data to back up; dropped on drop.
pub struct SourceDb {
    pub name: String,
    pub dsn: String,
}

pub use super::helpers::base;

pub async fn admin_exec(sql: String) {
    let mut admin = PgConnection::connect(&format!("{}/postgres", base()))
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut admin)
        .await
        .unwrap();
}

impl SourceDb {
    /// Tables `public.items` (`rows` rows), `public.empty` and `"odd schema"."Mixed Case"`.
    pub async fn create(rows: i64) -> SourceDb {
        let name = format!("opsguard_src_{}", uuid::Uuid::new_v4().simple());
        admin_exec(format!("CREATE DATABASE \"{name}\"")).await;
        let dsn = format!("{}/{name}", base());
        let mut conn = PgConnection::connect(&dsn).await.unwrap();
        for sql in [
            "CREATE TABLE items (id bigint PRIMARY KEY, label text NOT NULL, at timestamptz DEFAULT now())".to_string(),
            format!("INSERT INTO items (id, label) SELECT g, md5(g::text) FROM generate_series(1, {rows}) g"),
            "CREATE TABLE empty (x int)".into(),
            "CREATE SCHEMA \"odd schema\"".into(),
            "CREATE TABLE \"odd schema\".\"Mixed Case\" (v text)".into(),
            "INSERT INTO \"odd schema\".\"Mixed Case\" VALUES ('<b>x</b>'), ('y')".into(),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
        }
        SourceDb { name, dsn }
    }
}

impl Drop for SourceDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        on_own_runtime(async move {
            if let Ok(mut admin) = PgConnection::connect(&format!("{}/postgres", base())).await {
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut admin)
                    .await;
            }
        });
    }
}

pub fn target(name: &str, dsn: &str) -> BackupTarget {
    BackupTarget {
        name: name.into(),
        dsn: Secret::new(dsn),
        schedule: None,
        keep_last: None,
        keep_days: None,
        storage: None,
        deadline_secs: None,
        stall_secs: None,
    }
}

/// Backups of `targets` into `store`, a fast worker, alerts to `ALERTS`, no schedules.
pub fn with_backups(s: &mut Settings, store: &Path, targets: Vec<BackupTarget>) {
    s.master_key = Some(Secret::new(MASTER_KEY));
    s.backups.storage = store.to_string_lossy().into_owned();
    s.backups.targets = targets;
    s.backups.worker_interval_ms = 100;
    s.backups.progress_every_secs = 1;
    s.backups.alert_chats = vec![ALERTS];
    s.backups.restore_test_cron = String::new();
    s.backups.prune_cron = String::new();
    s.outbox.poll_interval_ms = 50;
    s.outbox.per_chat_interval_ms = 0;
}

/// Wait until job `id` has ended; returns (status, error).
pub async fn wait_job(app: &TestApp, id: i64) -> (String, Option<String>) {
    for _ in 0..600 {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT status, error FROM backup_jobs WHERE id = $1")
                .bind(id)
                .fetch_optional(app.pool())
                .await
                .unwrap();
        if let Some((status, error)) = row
            && (status == "succeeded" || status == "failed")
        {
            return (status, error);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {id} did not end");
}

/// The job id in a "job #N" reply.
pub fn job_id(text: &str) -> i64 {
    let rest = text.split("#").nth(1).expect("a job id in the reply");
    rest.chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap()
}

/// Every file under `dir`, recursively.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

pub fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// (status, sha256, storage_key, table_counts) of a catalogue row.
pub async fn catalogued(
    app: &TestApp,
    id: i64,
) -> (String, Option<String>, String, serde_json::Value) {
    sqlx::query_as("SELECT status, sha256, storage_key, table_counts FROM backups WHERE id = $1")
        .bind(id)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

/// The catalogue id of the backup job `job` wrote.
pub async fn backup_of(app: &TestApp, job: i64) -> i64 {
    let (id,): (i64,) = sqlx::query_as("SELECT id FROM backups WHERE job_id = $1")
        .bind(job)
        .fetch_one(app.pool())
        .await
        .unwrap();
    id
}

/// A settings file for the real binary: the defaults and one target, `main`, at `dsn`.
pub fn write_config(path: &Path, dsn: &str) {
    let defaults =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml"))
            .unwrap();
    let target = format!("\n[[backups.targets]]\nname = \"main\"\ndsn = \"{dsn}\"\n");
    std::fs::write(path, defaults + &target).unwrap();
}

/// Wait until an `editMessageText` call's text contains `needle`.
pub async fn wait_edit(app: &TestApp, needle: &str) {
    let telegram = app.telegram.clone();
    app.telegram
        .wait_until(needle, |_| {
            telegram
                .calls_to("editMessageText")
                .iter()
                .any(|c| c.text().contains(needle))
        })
        .await;
}

/// Run `/backup <target>` as the admin and wait for the job; returns (job id, catalogue id).
pub async fn backup_now(app: &TestApp, target: &str) -> (i64, (String, Option<String>)) {
    let reply = app.say(ADMIN, &format!("/backup {target}")).await;
    let job = job_id(&reply.text());
    (job, wait_job(app, job).await)
}

#[tokio::test]
async fn backup_answers_at_once_edits_its_progress_message_and_catalogues_a_checked_backup() {
    let src = SourceDb::create(5_000).await;
    let store = Scratch::new();
    let dir = store.file("store");
    let app = spawn_app_with(|s| with_backups(s, &dir, vec![target("main", &src.dsn)])).await;
    add(&app, ADMIN, "admin").await;

    let reply = app.say(ADMIN, "/backup main").await;
    assert!(
        reply.text().contains("Backup job #") && reply.text().contains("queued"),
        "{}",
        reply.text()
    );
    let job = job_id(&reply.text());
    assert_eq!(wait_job(&app, job).await, ("succeeded".into(), None));

    // The progress message: sent once, then edited in place until it shows the result.
    wait_edit(&app, "is good").await;
    let progress = app
        .telegram
        .sent_to(ADMIN)
        .into_iter()
        .find(|c| c.text().contains("queued.") && c.text().starts_with("⏳"))
        .expect("a progress message");
    let edits = app.telegram.calls_to("editMessageText");
    let result = edits.iter().find(|c| c.text().contains("is good")).unwrap();
    assert_eq!(result.body["message_id"].as_i64(), progress.message_id);
    let text = result.text();
    for expected in [
        "dumped",
        "stored (ratio",
        "sha256",
        "3 tables counted",
        "main-",
    ] {
        assert!(text.contains(expected), "{expected} missing from: {text}");
    }

    // The catalogue, the object and its checksum agree; counts are exact.
    let id = backup_of(&app, job).await;
    let (status, sha, key, counts) = catalogued(&app, id).await;
    assert_eq!(status, "good");
    let object = dir.join(&key);
    assert_eq!(Some(sha256_of(&object)), sha);
    assert!(text.contains(sha.as_deref().unwrap()));
    assert_eq!(counts["public.items"], 5_000);
    assert_eq!(counts["public.empty"], 0);
    assert_eq!(counts["odd schema.Mixed Case"], 2);
    assert_eq!(
        files(&dir),
        vec![object.clone()],
        "only the finished object is stored"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&object).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "readable by its owner only");
    // Encrypted: the dump's table data is not readable in the stored bytes.
    let raw = std::fs::read(&object).unwrap();
    assert!(raw.starts_with(b"age-encryption.org/v1"));
    assert!(!raw.windows(8).any(|w| w == b"<b>x</b>"));

    let listed = app.say(ADMIN, "/backups").await.text();
    assert!(
        listed.contains(&format!("#{id}</b> main · good")),
        "{listed}"
    );
    assert!(listed.contains("not restore-tested yet"), "{listed}");
    let rows = app.audit_rows().await;
    assert!(
        rows.iter()
            .any(|r| r.entry.command == "backup" && r.entry.args == "main")
    );
}

#[tokio::test]
async fn a_second_backup_of_a_target_being_backed_up_is_refused_with_the_running_jobs_id() {
    let src = SourceDb::create(10).await;
    let store = Scratch::new();
    let dir = store.file("store");
    let app = spawn_app_with(|s| with_backups(s, &dir, vec![target("main", &src.dsn)])).await;
    add(&app, ADMIN, "admin").await;
    let (running,): (i64,) = sqlx::query_as(
        "INSERT INTO backup_jobs (kind, target, status, requested_by, via, lease_until)
         VALUES ('backup', 'main', 'running', 4242, 'command', now() + interval '1 hour') RETURNING id",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    let reply = app.say(ADMIN, "/backup main").await.text();
    assert!(
        reply.contains(&format!(
            "already running: job #{running}, requested by user 4242"
        )),
        "{reply}"
    );
    let (jobs,): (i64,) = sqlx::query_as("SELECT count(*) FROM backup_jobs")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(jobs, 1, "nothing was queued");
    assert!(files(&dir).is_empty());
}

#[tokio::test]
async fn unknown_targets_and_backup_ids_are_refused_with_what_exists() {
    let src = SourceDb::create(10).await;
    let store = Scratch::new();
    let dir = store.file("store");
    let app = spawn_app_with(|s| {
        with_backups(
            s,
            &dir,
            vec![target("main", &src.dsn), target("billing", &src.dsn)],
        )
    })
    .await;
    add(&app, ADMIN, "admin").await;
    let reply = app.say(ADMIN, "/backup nope").await.text();
    assert!(
        reply.contains("Unknown backup target 'nope'. Known: main, billing."),
        "{reply}"
    );
    let reply = app.say(ADMIN, "/restore_test 999").await.text();
    assert!(
        reply.contains("No backup #999. Latest: none yet."),
        "{reply}"
    );
    let reply = app.say(ADMIN, "/restore_test abc").await.text();
    assert!(
        reply.contains("a backup id is a positive number"),
        "{reply}"
    );
    let (jobs,): (i64,) = sqlx::query_as("SELECT count(*) FROM backup_jobs")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(jobs, 0);
}

#[tokio::test]
async fn a_restore_test_restores_into_a_scratch_database_compares_counts_and_drops_it() {
    let src = SourceDb::create(2_000).await;
    let store = Scratch::new();
    let dir = store.file("store");
    let app = spawn_app_with(|s| with_backups(s, &dir, vec![target("main", &src.dsn)])).await;
    add(&app, ADMIN, "admin").await;
    add(&app, 7002, "operator").await;
    let (job, ended) = backup_now(&app, "main").await;
    assert_eq!(ended.0, "succeeded");
    let id = backup_of(&app, job).await;

    // An operator may back up but not restore-test.
    let denied = app.say(7002, &format!("/restore_test {id}")).await.text();
    assert!(!denied.contains("queued"), "{denied}");

    let reply = app.say(ADMIN, &format!("/restore_test {id}")).await.text();
    assert!(reply.contains("Restore test #"), "{reply}");
    let test_job = job_id(&reply);
    assert_eq!(wait_job(&app, test_job).await, ("succeeded".into(), None));
    let (ok, error): (Option<bool>, Option<String>) =
        sqlx::query_as("SELECT verified_ok, verify_error FROM backups WHERE id = $1")
            .bind(id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!((ok, error), (Some(true), None));
    let (scratch,): (String,) = sqlx::query_as("SELECT scratch_db FROM backup_jobs WHERE id = $1")
        .bind(test_job)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(
        scratch.starts_with(&format!("opsguard_restore_{test_job}_")),
        "{scratch}"
    );
    let (left,): (i64,) = sqlx::query_as("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(&scratch)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(left, 0, "the scratch database was dropped");
    wait_edit(&app, "3 tables and 2002 rows as catalogued").await;
    let listed = app.say(ADMIN, "/backups main").await.text();
    assert!(listed.contains("restore test ✅"), "{listed}");
}
