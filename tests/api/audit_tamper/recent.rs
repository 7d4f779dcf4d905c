//! `/audit verify` in chat walks from the last verified checkpoint (issue 24): it says which
//! rows it walked, names tampering after that checkpoint, and leaves the rows before it to
//! the full `opsguard audit verify`, which still names them.

use super::*;
use opsguard::storage::audit;

/// The `seq=` of a checkpoint line.
fn seq_of(line: &str) -> i64 {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("seq="))
        .and_then(|s| s.parse().ok())
        .expect("a seq field")
}

#[tokio::test]
async fn the_chat_verify_walks_from_the_verified_checkpoint_and_names_later_tampering() {
    let roles = Roles::create().await;
    let db = owned_db(&roles).await;
    let app = spawn_app_on(db.clone(), keyed).await;
    let checkpoint = seq_of(&traffic_and_checkpoint(&app).await);
    app.settle().await;

    // No checkpoint verified yet: the first walk is the whole chain, and it verifies the
    // checkpoint it covered.
    let first = app.say(42, "/audit verify").await.text();
    assert!(first.starts_with("✅ Audit chain intact: "), "{first}");
    assert!(first.contains(" rows verified"), "{first}");
    let marks = app.db.checkpoint_dir().join("audit-verified");
    assert_eq!(std::fs::read_dir(&marks).unwrap().count(), 1);

    for _ in 0..3 {
        app.say(42, "/whoami").await;
    }
    app.settle().await;
    // The command's own attempt row is appended before it runs: the walk ends there.
    let head = audit::head(&db.pool).await.unwrap().seq + 1;
    let second = app.say(42, "/audit verify").await.text();
    assert!(second.starts_with("✅"), "{second}");
    assert!(
        second.contains(&format!(
            "rows {checkpoint}–{head} verified from the checkpoint of row {checkpoint} signed at"
        )),
        "{second}"
    );

    // Tampering after the checkpoint is named by the chat's walk.
    run_as(
        &db.pool,
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update",
    )
    .await
    .unwrap();
    let later = checkpoint + 2;
    let args: String = sqlx::query_scalar("SELECT args FROM audit_log WHERE seq = $1")
        .bind(later)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    run_as(
        &db.pool,
        &format!("UPDATE audit_log SET args = 'forged' WHERE seq = {later}"),
    )
    .await
    .unwrap();
    let third = app.say(42, "/audit verify").await.text();
    assert!(third.starts_with("❌"), "{third}");
    assert!(
        third.contains(&format!(
            "BROKEN at row {later}: content does not match its hash"
        )),
        "{third}"
    );
    assert!(
        third.contains(&format!("Walked: rows {checkpoint}–")),
        "{third}"
    );

    // Tampering before it is outside the chat's walk (its answer says where it started);
    // the full verify names it.
    sqlx::query("UPDATE audit_log SET args = $1 WHERE seq = $2")
        .bind(&args)
        .bind(later)
        .execute(&db.pool)
        .await
        .unwrap();
    run_as(
        &db.pool,
        "UPDATE audit_log SET args = 'forged' WHERE seq = 2",
    )
    .await
    .unwrap();
    let fourth = app.say(42, "/audit verify").await.text();
    assert!(
        fourth.starts_with("✅") && fourth.contains(&format!("rows {checkpoint}–")),
        "{fourth}"
    );
    assert!(
        fourth.contains(&format!(
            "Rows before row {checkpoint}: `opsguard audit verify` walks every row"
        )),
        "{fourth}"
    );
    let full = verify_all(&app).await;
    assert_eq!(broken_seq(&full), Some(2), "{:?}", full.lines());
}

#[tokio::test]
async fn a_verified_mark_not_signed_as_one_is_reported_and_passed_over() {
    let app = spawn_app_with(keyed).await;
    let line = traffic_and_checkpoint(&app).await;
    app.settle().await;
    // A checkpoint line copied in as a verified mark: signed, but not as a mark.
    let marks = app.db.checkpoint_dir().join("audit-verified");
    std::fs::create_dir_all(&marks).unwrap();
    std::fs::write(marks.join("99999999999999999999-copied.txt"), &line).unwrap();
    let reply = app.say(42, "/audit verify").await.text();
    assert!(reply.starts_with("❌"), "{reply}");
    assert!(
        reply.contains("BAD CHECKPOINT") && reply.contains("99999999999999999999-copied.txt"),
        "{reply}"
    );
    assert!(reply.contains(" rows verified"), "the whole chain: {reply}");
}
