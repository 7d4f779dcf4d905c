//! What the README promises: with no opsguard at hand, a backup opens with the standard
//! `age` tool (an identity whose recipient is in `[backups] recipients`), `zstd -d`, and
//! restores with stock `pg_restore`, giving back every row.

use super::super::gates::add;
use super::super::helpers::*;
use super::super::secrets::Scratch;
use super::*;
use std::process::Command;

#[tokio::test]
async fn a_backup_restores_by_hand_with_age_zstd_and_pg_restore() {
    let store = Scratch::new();
    let key = store.file("operator-key.txt");
    let made = Command::new("age-keygen").arg("-o").arg(&key).output();
    let made =
        made.expect("the standard age tool (age-keygen) is installed: scripts/test.sh installs it");
    assert!(made.status.success());
    let recipient = String::from_utf8(made.stderr)
        .unwrap()
        .trim()
        .trim_start_matches("Public key: ")
        .to_string();
    assert!(recipient.starts_with("age1"), "{recipient}");

    let src = SourceDb::create(1_500).await;
    let dir = store.file("store");
    let app = spawn_app_with(|s| {
        with_backups(s, &dir, vec![target("main", &src.dsn)]);
        s.backups.recipients = vec![recipient.clone()];
    })
    .await;
    add(&app, ADMIN, "admin").await;
    let (job, ended) = backup_now(&app, "main").await;
    assert_eq!(ended.0, "succeeded");
    let id = backup_of(&app, job).await;
    let (_, _, stored_key, _) = catalogued(&app, id).await;
    let object = dir.join(stored_key);

    // The README's commands, word for word but for the paths.
    let into = SourceDb::create(0).await;
    admin_exec(format!("DROP DATABASE \"{}\" WITH (FORCE)", into.name)).await;
    admin_exec(format!("CREATE DATABASE \"{}\"", into.name)).await;
    let script = format!(
        "set -eo pipefail; age --decrypt -i '{}' '{}' | zstd -d | pg_restore --no-owner --dbname='{}'",
        key.display(),
        object.display(),
        into.dsn
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut conn = sqlx::PgConnection::connect(&into.dsn).await.unwrap();
    let (items,): (i64,) = sqlx::query_as("SELECT count(*) FROM items")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let (odd,): (i64,) = sqlx::query_as("SELECT count(*) FROM \"odd schema\".\"Mixed Case\"")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!((items, odd), (1_500, 2));

    // And `sha256sum` of the file is the catalogue's checksum.
    let sum = Command::new("sha256sum").arg(&object).output().unwrap();
    let sum = String::from_utf8(sum.stdout).unwrap();
    let (_, sha, _, _) = catalogued(&app, id).await;
    assert!(sum.starts_with(sha.as_deref().unwrap()));
}
