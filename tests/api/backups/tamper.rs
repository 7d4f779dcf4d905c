//! A backup changed by one byte fails its restore test with the reason — a checksum
//! mismatch, or (when the catalogue's checksum was changed to match) a decryption failure —
//! is alerted, and no scratch database is left behind.

use super::super::gates::add;
use super::super::helpers::*;
use super::super::secrets::Scratch;
use super::*;

async fn restore_test(app: &TestApp, id: i64) -> (String, Option<String>) {
    let reply = app.say(ADMIN, &format!("/restore_test {id}")).await.text();
    assert!(reply.contains("queued"), "{reply}");
    wait_job(app, job_id(&reply)).await
}

#[tokio::test]
async fn a_backup_changed_by_one_byte_fails_its_restore_test_with_the_reason() {
    let src = SourceDb::create(3_000).await;
    let store = Scratch::new();
    let dir = store.file("store");
    let app = spawn_app_with(|s| with_backups(s, &dir, vec![target("main", &src.dsn)])).await;
    add(&app, ADMIN, "admin").await;
    let (job, ended) = backup_now(&app, "main").await;
    assert_eq!(ended.0, "succeeded");
    let id = backup_of(&app, job).await;
    let (_, _, key, _) = catalogued(&app, id).await;
    let object = dir.join(key);
    let mut bytes = std::fs::read(&object).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&object, &bytes).unwrap();

    let (status, error) = restore_test(&app, id).await;
    assert_eq!(status, "failed");
    let error = error.unwrap();
    assert!(error.starts_with("checksum mismatch"), "{error}");
    let (ok, why): (Option<bool>, Option<String>) =
        sqlx::query_as("SELECT verified_ok, verify_error FROM backups WHERE id = $1")
            .bind(id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(ok, Some(false));
    assert!(why.unwrap().contains("checksum mismatch"));
    let telegram = app.telegram.clone();
    app.telegram
        .wait_until("the alert", |_| {
            telegram
                .sent_to(ALERTS)
                .iter()
                .any(|c| c.text().contains("checksum mismatch"))
        })
        .await;

    // Someone also rewrote the catalogue's checksum: age's authentication still refuses.
    sqlx::query("UPDATE backups SET sha256 = $2 WHERE id = $1")
        .bind(id)
        .bind(sha256_of(&object))
        .execute(app.pool())
        .await
        .unwrap();
    let (status, error) = restore_test(&app, id).await;
    assert_eq!(status, "failed");
    assert!(
        error.as_deref().unwrap().starts_with("decryption failed"),
        "{error:?}"
    );
    // No scratch database of any job of this test is left.
    let (mine,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM pg_database WHERE datname IN (SELECT scratch_db FROM backup_jobs)",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(mine, 0, "no scratch database is left");
    let listed = app.say(ADMIN, "/backups").await.text();
    assert!(listed.contains("restore test ❌"), "{listed}");
}
