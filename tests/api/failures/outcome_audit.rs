//! A failing outcome audit write is seen: the command already ran (its attempt row is
//! durable), so the operator still gets the answer, and the lost outcome row is logged at
//! ERROR and counted (`opsguard_audit_write_failures_total{phase="outcome"}`), on the
//! plain pipeline and on the gated path alike.

use crate::helpers::*;
use crate::process::opsguard;
use tokio::io::AsyncWriteExt;

/// Make PostgreSQL refuse the outcome rows of `command` (and only those).
async fn refuse_outcomes_of(pool: &sqlx::PgPool, command: &str) {
    sqlx::query(
        "CREATE FUNCTION test_refuse_outcome() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'test: outcome rows refused'; END $$",
    )
    .execute(pool)
    .await
    .unwrap();
    let trigger = format!(
        "CREATE TRIGGER test_refuse_outcome BEFORE INSERT ON audit_log FOR EACH ROW
         WHEN (NEW.phase = 'outcome' AND NEW.command = '{command}')
         EXECUTE FUNCTION test_refuse_outcome()"
    );
    sqlx::query(sqlx::AssertSqlSafe(trigger))
        .execute(pool)
        .await
        .unwrap();
}

/// The process-wide count of lost outcome rows (other tests may add to it: only its rise
/// is asserted).
async fn lost_outcomes(app: &TestApp) -> u64 {
    let metrics = app.get_text("/metrics").await;
    metrics
        .lines()
        .find(|l| l.starts_with("opsguard_audit_write_failures_total{phase=\"outcome\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0, |v| v.parse::<f64>().unwrap() as u64)
}

/// (phase, outcome) of every audit row of `command`, oldest first.
async fn phases(app: &TestApp, command: &str) -> Vec<(String, Option<String>)> {
    let rows = app.audit_rows().await.into_iter();
    rows.filter(|r| r.entry.command == command)
        .map(|r| (r.entry.phase, r.entry.outcome))
        .collect()
}

#[tokio::test]
async fn a_failing_outcome_write_is_counted_and_the_answer_still_given() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    app.add_user(7, "viewer").await;
    refuse_outcomes_of(app.pool(), "whoami").await;
    let before = lost_outcomes(&app).await;
    let reply = app.say(42, "/whoami").await.text();
    assert!(reply.contains("Telegram id: <code>42</code>"), "{reply}");
    app.idle().await;
    assert_eq!(
        phases(&app, "whoami").await,
        [("attempt".to_string(), None)],
        "the attempt row is durable, the outcome row was refused"
    );
    assert!(
        lost_outcomes(&app).await > before,
        "the lost row is counted"
    );

    // The gated path: the "pending" outcome of a confirmation prompt.
    for undo in [
        "DROP TRIGGER test_refuse_outcome ON audit_log",
        "DROP FUNCTION test_refuse_outcome()",
    ] {
        sqlx::query(undo).execute(app.pool()).await.unwrap();
    }
    refuse_outcomes_of(app.pool(), "grant").await;
    let before = lost_outcomes(&app).await;
    let prompt = app.say(42, "/grant 7 operator").await;
    assert_eq!(prompt.buttons().len(), 2, "{}", prompt.text());
    app.idle().await;
    assert_eq!(phases(&app, "grant").await, [("attempt".to_string(), None)]);
    assert!(
        lost_outcomes(&app).await > before,
        "counted on the gated path too"
    );
}

#[tokio::test]
async fn a_failing_outcome_write_is_logged_at_error() {
    let db = TestDb::create().await;
    opsguard::storage::users::upsert(&db.pool, opsguard::domain::UserId(42), "User42")
        .await
        .unwrap();
    let admin = opsguard::domain::RoleName::parse("admin").unwrap();
    opsguard::storage::users::grant(&db.pool, opsguard::domain::UserId(42), &admin, "test")
        .await
        .unwrap();
    refuse_outcomes_of(&db.pool, "whoami").await;
    let mut child = opsguard(&db)
        .args(["console", "--as", "42"])
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"/whoami\n").await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stdout.contains("Telegram id: 42"), "{stdout}{stderr}");
    let logged = stderr
        .lines()
        .find(|l| l.contains("audit.outcome_write_failed"))
        .unwrap_or_else(|| panic!("no log line for the lost outcome row: {stderr}"));
    assert!(logged.contains("ERROR"), "{logged}");
    assert!(logged.contains("whoami"), "names the command: {logged}");
}
