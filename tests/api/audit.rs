//! The audit trail: two rows per request on every path, redaction, append-only storage,
//! tamper detection, concurrent writers, the CLI (`audit verify|export`, `user`) and `/audit n`.

use super::fake_telegram::Call;
use super::helpers::*;
use opsguard::domain::audit::AuditEntry;
use opsguard::storage::audit::{self, AuditRow};
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::Duration;

/// Rows grouped by request id, in the order each request was first audited.
fn by_request(rows: &[AuditRow]) -> Vec<Vec<&AuditRow>> {
    let mut groups: HashMap<&str, Vec<&AuditRow>> = HashMap::new();
    for row in rows {
        groups.entry(&row.entry.request_id).or_default().push(row);
    }
    let mut groups: Vec<_> = groups.into_values().collect();
    groups.sort_by_key(|g| g[0].seq);
    groups
}

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// Send `text` as `user` and check the reply says `needle`.
async fn expect(app: &TestApp, user: i64, text: &str, needle: &str) -> Call {
    let reply = app.say(user, text).await;
    assert!(reply.text().contains(needle), "{text} → {}", reply.text());
    reply
}

/// Wait until at least `n` rows exist (some paths send no reply to wait for).
async fn wait_rows(app: &TestApp, n: usize) -> Vec<AuditRow> {
    for _ in 0..250 {
        let rows = app.audit_rows().await;
        if rows.len() >= n {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("expected {n} audit rows");
}

/// Run `sql` with the append-only trigger switched off, as a superuser could.
async fn tamper(pool: &PgPool, sql: &str) {
    let mut tx = pool.begin().await.unwrap();
    for stmt in [
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update",
        sql,
        "ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update",
    ] {
        let stmt = sqlx::AssertSqlSafe(stmt.to_string());
        sqlx::query(stmt).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

async fn broken_at(pool: &PgPool) -> Option<i64> {
    audit::verify(pool, None)
        .await
        .unwrap()
        .broken
        .map(|b| b.seq)
}

fn entry(request_id: String) -> AuditEntry {
    AuditEntry {
        request_id,
        at_micros: chrono::Utc::now().timestamp_micros(),
        phase: "attempt".into(),
        actor_kind: "scheduler".into(),
        actor_id: None,
        chat_id: None,
        command: "status".into(),
        args: String::new(),
        decision: "allowed".into(),
        reason: None,
        outcome: None,
        error: None,
        duration_ms: None,
    }
}

/// user | what they send | what the reply says | the request's audit: command decision outcome
const PATHS: &str = "
42  | /whoami           | Telegram id        | whoami allowed ok
7   | /users            | may not run /users | users denied rejected
8   | /whoami           | Telegram id        | whoami allowed ok
8   | /whoami           | Telegram id        | whoami allowed ok
8   | /whoami           | Retry in           | whoami rate_limited rejected
42  | /audit many       | Wrong arguments    | audit invalid rejected
42  | /frobnicate       | Unknown command    | frobnicate unknown rejected
42  | hello there       | only understand    | (text) invalid rejected
999 | /help             | private bot        | help denied rejected
42  | /grant 7 operator | Confirm            | grant pending awaiting_confirmation
42  | /grant 99999 viewer | is not known     | grant invalid rejected
";

#[tokio::test]
async fn every_path_leaves_one_attempt_and_one_outcome_row() {
    let app = spawn_app_with(|s| s.rate_limits.read = 2).await;
    for (user, role) in [(42, "admin"), (7, "viewer"), (8, "viewer")] {
        app.add_user(user, role).await;
    }
    let mut expected = Vec::new();
    for line in PATHS.trim().lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        expect(&app, cells[0].parse().unwrap(), cells[1], cells[2]).await;
        expected.push(cells[3].to_string());
    }
    let group = text_update(app.next_update_id(), 42, -100_123, "/whoami");
    assert_eq!(app.post_update(&group).await.status(), 200);
    wait_rows(&app, 24).await;
    // A user removed between the prompt and the press: the grant runs and fails.
    let prompt = expect(&app, 42, "/grant 8 operator", "Confirm").await;
    let confirm = prompt.buttons()[0].1.clone();
    sqlx::query("DELETE FROM users WHERE telegram_id = 8")
        .execute(app.pool())
        .await
        .unwrap();
    let failed = app.press(42, &confirm, prompt.message_id.unwrap()).await;
    assert!(failed.text().contains("not known"), "{}", failed.text());
    let forged = app.press(42, &format!("c:{}", "z".repeat(26)), 1).await;
    assert!(forged.text().contains("not valid"), "{}", forged.text());
    expected.extend(
        [
            "whoami denied rejected",
            "grant pending awaiting_confirmation",
            "grant allowed failed",
            "callback denied rejected",
        ]
        .map(String::from),
    );

    let rows = wait_rows(&app, 30).await;
    assert_eq!(rows.len(), 30, "{rows:#?}");
    let mut seen = Vec::new();
    for group in by_request(&rows) {
        let phase = |p: &str| group.iter().filter(|r| r.entry.phase == p).count();
        assert_eq!((phase("attempt"), phase("outcome")), (1, 1), "{group:#?}");
        let (attempt, outcome) = (&group[0].entry, &group[1].entry);
        assert_eq!([&attempt.phase, &outcome.phase], ["attempt", "outcome"]);
        assert!(attempt.duration_ms.is_none() && outcome.duration_ms.is_some());
        assert_eq!(attempt.decision, outcome.decision);
        let result = outcome.outcome.as_deref().unwrap_or_default();
        seen.push(format!("{} {} {result}", outcome.command, outcome.decision));
    }
    assert_eq!(seen, expected);
    let failed = rows
        .iter()
        .find(|r| r.entry.outcome.as_deref() == Some("failed"));
    assert!(format!("{failed:?}").contains("is not known"), "{failed:?}");
}

/// What an operator types → the command and arguments its audit rows may keep.
const REDACTION: &str = "
/stepup 123456              => stepup [redacted]
/totp confirm 123456        => totp confirm [redacted]
/frobnicate 123456 hunter2  => frobnicate [2 argument(s) redacted]
/stepup 123456 hunter2      => stepup [2 argument(s) redacted]
my code is 123456 hunter2   => (text) [25 chars redacted]
";

#[tokio::test]
async fn codes_and_unparsed_arguments_never_reach_the_audit_log() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    for (i, line) in REDACTION.trim().lines().enumerate() {
        let (input, kept) = line.split_once("=>").unwrap();
        app.say(42, input.trim()).await;
        let rows = app.audit_rows().await;
        assert_eq!(rows.len(), 2 * i + 2, "two rows per request");
        for row in rows.iter().rev().take(2) {
            let mut entry = row.entry.clone();
            assert_eq!(format!("{} {}", entry.command, entry.args), kept.trim());
            entry.request_id.clear();
            let stored = format!("{entry:?}");
            assert!(
                !stored.contains("123456") && !stored.contains("hunter2"),
                "{stored}"
            );
        }
    }
}

#[tokio::test]
async fn the_audit_log_refuses_update_delete_and_truncate() {
    let db = TestDb::create().await;
    for i in 0..4 {
        let entry = entry(format!("r{i}"));
        audit::append(&db.pool, None, &entry).await.unwrap();
    }
    for sql in [
        "UPDATE audit_log SET decision = 'denied' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 4",
        "TRUNCATE audit_log",
    ] {
        let err = sqlx::query(sql).execute(&db.pool).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(count(&db.pool, "SELECT count(*) FROM audit_log").await, 4);
    assert_eq!(broken_at(&db.pool).await, None);
}

/// Each line tampers with the log (or undoes it) and names the row verify must report.
const TAMPERING: &str = "
UPDATE audit_log SET args = 'forged' WHERE seq = 4             | #4
UPDATE audit_log SET args = '' WHERE seq = 4                   | intact
UPDATE audit_log SET decision = 'denied' WHERE seq = 7         | #7
UPDATE audit_log SET decision = 'allowed' WHERE seq = 7        | intact
CREATE TABLE saved AS SELECT * FROM audit_log WHERE seq = 6    | intact
DELETE FROM audit_log WHERE seq = 6                            | #6
INSERT INTO audit_log SELECT * FROM saved                      | intact
DELETE FROM audit_log WHERE seq >= 9                           | #9
";

#[tokio::test]
async fn verify_names_the_altered_the_missing_and_the_truncated_row() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    for _ in 0..5 {
        app.say(42, "/whoami").await;
    }
    let pool = app.pool();
    assert_eq!(audit::verify(pool, None).await.unwrap().rows, 10);
    assert_eq!(broken_at(pool).await, None);
    for step in TAMPERING.trim().lines() {
        let (sql, expected) = step.split_once('|').unwrap();
        tamper(pool, sql).await;
        let broken = audit::verify(pool, None).await.unwrap().broken;
        let seq = broken.as_ref().map(|b| format!("#{}", b.seq));
        assert_eq!(seq.as_deref().unwrap_or("intact"), expected.trim(), "{sql}");
        if sql.starts_with("DELETE") {
            assert!(broken.unwrap().reason.contains("missing"), "{sql}");
        }
    }
    expect(&app, 42, "/audit verify", "BROKEN at row 9: row missing").await;
}

#[tokio::test]
async fn concurrent_writers_keep_one_unbroken_chain() {
    let db = TestDb::create().await;
    // Keyed: each append locks the head, chains here and appends in one transaction.
    let key = opsguard::domain::audit::ChainKey::new([9; 32]);
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (pool, key) = (db.pool.clone(), key.clone());
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..50 {
                    let entry = entry(format!("w{w}-{i}"));
                    seqs.push(audit::append(&pool, Some(&key), &entry).await.unwrap());
                }
                seqs
            })
        })
        .collect();
    for writer in writers {
        let seqs = writer.await.unwrap();
        assert!(seqs.windows(2).all(|p| p[0] < p[1]), "in order: {seqs:?}");
    }
    let report = audit::verify(&db.pool, Some(&key)).await.unwrap();
    assert_eq!(
        (report.rows, report.broken, report.keyed_from),
        (400, None, Some(1))
    );
    let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM audit_log ORDER BY seq")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(seqs, (1..=400).collect::<Vec<i64>>());
    let ids = count(&db.pool, "SELECT count(DISTINCT request_id) FROM audit_log");
    assert_eq!(ids.await, 400);
}

async fn cli(db: &TestDb, args: &[&str]) -> (Option<i32>, String, String) {
    run_opsguard(&db.url, &[], args).await
}

#[tokio::test]
async fn the_cli_verifies_exports_and_audits_its_own_actions() {
    let db = TestDb::create().await;
    let (code, _, err) = cli(&db, &["user", "add", "77", "--role", "nosuchrole"]).await;
    assert_ne!(code, Some(0));
    assert!(err.contains("no role 'nosuchrole'; roles: admin"), "{err}");
    let users = count(&db.pool, "SELECT count(*) FROM users").await;
    assert_eq!(users, 0, "a failed `user add` adds nothing");

    let (code, out, err) = cli(&db, &["user", "add", "77", "--role", "viewer"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let (_, list, _) = cli(&db, &["user", "list"]).await;
    assert!(list.lines().any(|l| l == "77\tuser 77\tviewer"), "{list}");
    let rows = audit::latest(&db.pool, 100).await.unwrap();
    let kinds: Vec<_> = rows
        .iter()
        .map(|r| (r.entry.actor_kind.as_str(), r.entry.command.as_str()))
        .collect();
    assert_eq!(kinds, [("cli", "user add"); 2], "an attempt and an outcome");
    assert_eq!(rows[0].entry.outcome.as_deref(), Some("ok"));

    // verify and export are audited too: the walk already sees verify's own attempt row.
    let (code, out, _) = cli(&db, &["audit", "verify"]).await;
    assert_eq!(code, Some(0));
    assert!(out.contains("intact: 3 rows"), "{out}");

    let (code, out, _) = cli(&db, &["audit", "export"]).await;
    assert_eq!(code, Some(0));
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        5,
        "user add ×2, audit verify ×2, the export's attempt: {out}"
    );
    let after: Vec<_> = audit::latest(&db.pool, 100).await.unwrap();
    let commands: Vec<_> = after
        .iter()
        .rev()
        .map(|r| r.entry.command.as_str())
        .collect();
    assert_eq!(
        commands,
        [
            "user add",
            "user add",
            "audit verify",
            "audit verify",
            "audit export",
            "audit export"
        ]
    );
    let mut prev = hex::encode([0u8; 32]);
    for (line, row) in lines.iter().zip(rows.iter().rev()) {
        assert_eq!(line["seq"], row.seq);
        assert_eq!(line["entry"]["args"], "77 viewer");
        assert_eq!(line["prev_hash"], prev.as_str());
        let content = hex::encode(&row.content_hash);
        assert_eq!(line["content_hash"], content.as_str());
        prev = hex::encode(&row.row_hash);
        assert_eq!(line["row_hash"], prev.as_str());
    }

    tamper(&db.pool, "UPDATE audit_log SET args = '' WHERE seq = 1").await;
    let (code, out, _) = cli(&db, &["audit", "verify"]).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("BROKEN at row 1:"), "{out}");
}

#[tokio::test]
async fn audit_n_shows_the_latest_rows_escaped() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    app.say(42, "/<b>x</b>").await;
    let reply = app.say(42, "/audit 3").await.text();
    assert!(reply.contains("Latest 3 audit rows"), "{reply}");
    assert_eq!(reply.matches("<code>#").count(), 3, "{reply}");
    let at = |s: &str| reply.find(s).unwrap_or_else(|| panic!("{s} in {reply}"));
    assert!(at("<code>#3 ") < at("<code>#2 ") && at("<code>#2 ") < at("<code>#1 "));
    assert!(reply.contains("&lt;b&gt;x&lt;/b&gt;"), "{reply}");
    assert!(!reply.contains("<b>x"), "{reply}");
}
