//! `opsguard token issue` as the real binary: the token it prints is accepted by the API,
//! the issue is audited, the key never printed; without a key it refuses clearly.

use super::*;
use std::process::Output;

async fn token_issue(db: &TestDb, secret: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = crate::process::opsguard(db);
    cmd.args(["token", "issue"]).args(args);
    if let Some(secret) = secret {
        cmd.env("OPSGUARD_INGEST_JWT_SECRET", secret);
    }
    cmd.output().await.unwrap()
}

#[tokio::test]
async fn an_issued_token_is_accepted_and_the_issue_audited() {
    let app = spawn_app_with(with_secret).await;
    let out = token_issue(
        &app.db,
        Some(SECRET),
        &["--service", "billing", "--ttl", "2h"],
    )
    .await;
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "the key is never printed"
    );
    let token = stdout.trim();
    assert_eq!(token.split('.').count(), 3, "{stdout}");

    let (status, answer) = post(&app, Some(token), json!([event(json!({}))]).to_string()).await;
    assert_eq!(status, 202, "{answer}");
    let sender: String = sqlx::query_scalar("SELECT sender FROM auth_events")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(sender, "billing");

    let rows = app.audit_rows().await;
    let issued: Vec<_> = rows
        .iter()
        .filter(|r| r.entry.command == "token issue")
        .collect();
    assert_eq!(issued.len(), 2, "attempt and outcome: {rows:?}");
    assert_eq!(issued[0].entry.actor_kind, "cli");
    assert_eq!(issued[1].entry.outcome.as_deref(), Some("ok"));
    assert!(issued[0].entry.args.contains("--service billing --ttl 2h"));
    assert!(
        rows.iter()
            .all(|r| !r.entry.args.contains(SECRET) && !r.entry.args.contains(token))
    );
}

#[tokio::test]
async fn without_a_key_or_with_a_bad_ttl_nothing_is_issued() {
    let db = TestDb::create().await;
    let out = token_issue(&db, None, &["--service", "billing"]).await;
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("no ingest JWT secret: set OPSGUARD_INGEST_JWT_SECRET"),
        "{stderr}"
    );

    let out = token_issue(&db, Some(SECRET), &["--service", "billing", "--ttl", "30x"]).await;
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("'30x' is not a duration"), "{stderr}");
}
