//! Retention through `/prune_backups`: the newest `keep_last` and everything younger than
//! `keep_days` stay, the newest verified backup always stays, the rest are deleted from
//! storage and marked; the command is audited and reports what it removed.

use super::super::gates::add;
use super::super::helpers::*;
use super::super::secrets::Scratch;
use super::*;

#[tokio::test]
async fn pruning_keeps_the_newest_the_young_and_the_newest_verified_and_reports_the_rest() {
    let src = SourceDb::create(50).await;
    let store = Scratch::new();
    let dir = store.file("store");
    let app = spawn_app_with(|s| {
        with_backups(s, &dir, vec![target("main", &src.dsn)]);
        s.backups.keep_last = 2;
        s.backups.keep_days = 3;
    })
    .await;
    add(&app, ADMIN, "admin").await;
    add(&app, 7003, "operator").await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (job, (status, _)) = backup_now(&app, "main").await;
        assert_eq!(status, "succeeded");
        let id = backup_of(&app, job).await;
        ids.push(id);
    }
    // ids[0..5] oldest first. Age them: ids[0..3] are 10 days old, ids[3] 1 day; ids[1]
    // passed a restore test (the newest verified one); ids[0] passed an older one.
    sqlx::query("UPDATE backups SET started_at = now() - interval '10 days' WHERE id = ANY($1)")
        .bind(&ids[0..3])
        .execute(app.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE backups SET verified_ok = true, verified_at = now() - interval '9 days' WHERE id = $1")
        .bind(ids[0])
        .execute(app.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE backups SET verified_ok = true, verified_at = now() - interval '8 days' WHERE id = $1")
        .bind(ids[1])
        .execute(app.pool())
        .await
        .unwrap();

    let denied = app.say(7003, "/prune_backups").await.text();
    assert!(
        !denied.contains("Removed"),
        "an operator may not prune: {denied}"
    );

    let reply = app.say(ADMIN, "/prune_backups").await.text();
    // Newest two (ids[4], ids[3]) are kept by count; ids[1] is the newest verified; ids[0]
    // and ids[2] are old, unverified-newest, beyond the count: removed.
    assert!(reply.contains("Removed 2 backup(s)"), "{reply}");
    assert!(
        reply.contains(&format!("#{} main", ids[0]))
            && reply.contains(&format!("#{} main", ids[2])),
        "{reply}"
    );
    let statuses: Vec<(i64, String)> = sqlx::query_as("SELECT id, status FROM backups ORDER BY id")
        .fetch_all(app.pool())
        .await
        .unwrap();
    let expected: Vec<(i64, String)> = ids
        .iter()
        .map(|id| {
            (
                *id,
                if *id == ids[0] || *id == ids[2] {
                    "deleted"
                } else {
                    "good"
                }
                .to_string(),
            )
        })
        .collect();
    assert_eq!(statuses, expected);
    assert_eq!(files(&dir).len(), 3, "two objects deleted from storage");
    let again = app.say(ADMIN, "/prune_backups").await.text();
    assert!(again.contains("No backup is past its retention"), "{again}");
    app.settle().await;
    let rows = app.audit_rows().await;
    assert!(rows.iter().any(|r| r.entry.command == "prune_backups" && r.entry.outcome.as_deref() == Some("ok")));
}
