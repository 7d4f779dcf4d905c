//! A pg_dump older than the server it would dump: the backup fails before pg_dump runs,
//! naming both major versions and what to install, and stores nothing.

use super::super::helpers::*;
use super::super::secrets::Scratch;
use super::faults::failing_backup;
use super::*;
use sqlx::{Connection, PgConnection};

/// The test server's major version, asked of the server itself.
async fn server_major() -> u32 {
    let mut conn = PgConnection::connect(&admin_url()).await.unwrap();
    let num: String = sqlx::query_scalar("SELECT current_setting('server_version_num')")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    num.parse::<u32>().unwrap() / 10_000
}

#[tokio::test]
async fn a_pg_dump_older_than_the_server_fails_the_backup_before_it_runs() {
    let src = SourceDb::create(10).await;
    let server = server_major().await;
    let older = server - 1;
    let store = Scratch::new();
    let dir = store.file("store");
    // Says it is one major version behind; records any call that would dump.
    let dumped = store.file("dumped.txt");
    let old = store.file("pg_dump");
    std::fs::write(
        &old,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'pg_dump (PostgreSQL) {older}.9'; exit 0; fi\n\
             echo \"$*\" >> '{}'\nexec pg_dump \"$@\"\n",
            dumped.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", old.to_str().unwrap()])
        .status()
        .unwrap();
    let (error, alert) = failing_backup(&dir, &src.dsn, |s| {
        s.backups.pg_dump = old.to_string_lossy().into_owned();
    })
    .await;
    let said = format!("pg_dump {older} is older than the server (PostgreSQL {server})");
    assert!(error.contains(&said), "{error}");
    assert!(
        error.contains(&format!("postgresql-client-{server}")),
        "{error}"
    );
    assert!(alert.contains("failed"), "{alert}");
    assert!(!dumped.exists(), "pg_dump was run to dump");
    assert!(files(&dir).is_empty(), "left: {:?}", files(&dir));
}
