//! The durable 200 when PostgreSQL answers but refuses the inbox write (not known down): the
//! update is not run unstored; the webhook answers 503 so Telegram sends it again, and the
//! resent update, once it can be stored, runs once.

use crate::helpers::*;

#[tokio::test]
async fn an_update_the_inbox_refuses_is_answered_503_and_not_run() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    let audited_before = app.audit_rows().await.len();
    // Every inbox insert now fails, while the database answers every other query.
    for sql in [
        "CREATE FUNCTION inbox_broken() RETURNS trigger LANGUAGE plpgsql
         AS $$ BEGIN RAISE EXCEPTION 'inbox storage is broken'; END $$",
        "CREATE TRIGGER update_inbox_broken BEFORE INSERT ON update_inbox
         FOR EACH ROW EXECUTE FUNCTION inbox_broken()",
    ] {
        sqlx::query(sql).execute(app.pool()).await.unwrap();
    }
    let update = text_update(app.next_update_id(), 42, 42, "/whoami");
    let refused = app.post_update(&update).await.status();
    app.idle().await;
    let sent_while_refused = app.telegram.sent_to(42).len();
    let audited_while_refused = app.audit_rows().await.len();
    let latch_tripped = app.engine.db_latch().is_down();
    sqlx::query("DROP TRIGGER update_inbox_broken ON update_inbox")
        .execute(app.pool())
        .await
        .unwrap();

    assert_eq!(refused, 503, "not acknowledged: Telegram sends it again");
    assert_eq!(sent_while_refused, 0, "the command did not run");
    assert_eq!(
        audited_while_refused, audited_before,
        "not even its attempt was audited"
    );
    assert!(!latch_tripped, "a refusal is not an outage");
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("opsguard_webhook_rejections_total{reason=\"inbox_refused\"}"),
        "{metrics}"
    );

    // Telegram's resend of the same update is stored now, and runs once.
    assert_eq!(app.post_update(&update).await.status(), 200);
    let reply = app.wait_reply(42, 0).await;
    assert!(reply.text().contains("Telegram id"), "{}", reply.text());
    assert_eq!(app.post_update(&update).await.status(), 200);
    app.idle().await;
    assert_eq!(app.telegram.sent_to(42).len(), 1, "run once");
    let attempts = app.audit_rows().await;
    let whoami: Vec<_> = attempts
        .iter()
        .filter(|r| r.entry.command == "whoami" && r.entry.phase == "attempt")
        .collect();
    assert_eq!(whoami.len(), 1);
}
