//! The two-role set-up: the runtime role reads and appends, nothing more; `migrate
//! --runtime-role` sets it up and the shell runs as it.

use super::*;
use opsguard::domain::secret::Secret;
use opsguard::storage::{self, audit};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn the_runtime_role_can_only_read_and_append_and_forged_appends_are_named() {
    let roles = Roles::create().await;
    let db = owned_db(&roles).await;
    opsguard::audit::roles::grant_runtime(&db.pool, &roles.runtime)
        .await
        .unwrap();
    let runtime_url = url_as(&roles.runtime, &db.name);
    let app = spawn_app_on(db.clone(), |s| {
        keyed(s);
        s.database.url = Secret::new(runtime_url.clone());
    })
    .await;
    traffic_and_checkpoint(&app).await;
    assert!(!app.get_text("/readyz").await.contains("warning"));
    let status = app.say(42, "/status").await.text();
    assert!(!status.contains("Audit log"), "{status}");

    let runtime = storage::pool(&runtime_url, 2, Duration::from_secs(5)).unwrap();
    let head = audit::head(&runtime).await.unwrap();
    assert_eq!(
        head.keyed_from,
        Some(1),
        "a fresh keyed deployment keys every row"
    );
    for sql in [
        // (a) cut the tail and move the head back
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update",
        "DELETE FROM audit_log WHERE seq > 2",
        "UPDATE audit_head SET seq = 2",
        // (b) rewrite a row (and the head)
        "UPDATE audit_log SET args = 'forged' WHERE seq = 1",
        "UPDATE audit_head SET keyed_from = NULL",
        // (c) insert past the head
        "INSERT INTO audit_log SELECT seq + 1000, request_id, at, phase, actor_kind, actor_id, chat_id, command, args, decision, reason, outcome, error, duration_ms, content_hash, prev_hash, row_hash FROM audit_log WHERE seq = 1",
        "TRUNCATE audit_log",
        // and no way around: no new objects, no grants to itself
        "CREATE TABLE audit_copy (x int)",
        "CREATE OR REPLACE FUNCTION audit_refuse_unkeyed() RETURNS void LANGUAGE sql AS 'SELECT'",
    ] {
        let err = run_as(&runtime, sql).await.expect_err(sql);
        assert!(
            err.contains("permission denied") || err.contains("must be owner"),
            "{sql}: {err}"
        );
    }
    let grant = format!("SELECT opsguard_grant_runtime('{}')", roles.owner);
    assert!(
        run_as(&runtime, &grant).await.is_err(),
        "only the owner grants"
    );
    // Appending without the key: the SQL-chained function refuses a keyed chain, and a
    // hand-made "keyed" row is appended but named by verify.
    let unkeyed = "SELECT audit_append('r', now(), 'attempt', 'cli', NULL, NULL, 'x', '', 'allowed', NULL, NULL, NULL, NULL, sha256('x'))";
    let err = run_as(&runtime, unkeyed).await.unwrap_err();
    assert!(err.contains("needs OPSGUARD_MASTER_KEY"), "{err}");
    app.settle().await;
    let head = audit::head(&runtime).await.unwrap();
    let forged = format!(
        "SELECT audit_append_keyed({}, (SELECT row_hash FROM audit_head), '{}', ARRAY['r'], ARRAY[now()], ARRAY['attempt'], ARRAY['cli'], ARRAY[NULL::int8], ARRAY[NULL::int8], ARRAY['x'], ARRAY[''], ARRAY['allowed'], ARRAY[NULL], ARRAY[NULL], ARRAY[NULL], ARRAY[NULL::int8], ARRAY[sha256('x')], ARRAY[sha256('guess')])",
        head.seq,
        head.key_id.clone().unwrap()
    );
    run_as(&runtime, &forged).await.unwrap();
    let report = verify_all(&app).await;
    assert_eq!(
        broken_seq(&report),
        Some(head.seq + 1),
        "{:?}",
        report.lines()
    );
    assert!(
        report.lines()[0].contains("does not match"),
        "{:?}",
        report.lines()
    );
}

/// The deployment as the README tells it: `opsguard migrate --runtime-role` as the owner,
/// then every other command as the runtime role.
#[tokio::test]
async fn migrate_grants_the_runtime_role_and_the_shell_runs_as_it() {
    let roles = Roles::create().await;
    let name = format!("opsguard_test_{}", uuid::Uuid::new_v4().simple());
    as_root(&format!(
        "CREATE DATABASE \"{name}\" OWNER \"{}\"",
        roles.owner
    ))
    .await;
    let owner_url = url_as(&roles.owner, &name);
    let pool = storage::pool(&owner_url, 2, Duration::from_secs(5)).unwrap();
    let _db = Arc::new(TestDb {
        redis_prefix: format!("test:{name}:"),
        name: name.clone(),
        url: owner_url.clone(),
        pool,
    });
    let checkpoints = _db.checkpoint_dir();
    let opsguard = async |url: &str, args: &[&str]| {
        let (code, out, err) = opsguard_cli(url, &checkpoints, args).await;
        (code, out + &err)
    };
    let (code, out) = opsguard(&owner_url, &["migrate", "--runtime-role", &roles.owner]).await;
    assert_ne!(code, Some(0), "the owner cannot be the runtime role: {out}");
    assert!(out.contains("owns the audit log"), "{out}");
    let (code, out) = opsguard(&owner_url, &["migrate", "--runtime-role", &roles.runtime]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("read-only on the audit log"), "{out}");

    let runtime_url = url_as(&roles.runtime, &name);
    let (code, out) = opsguard(&runtime_url, &["user", "add", "5", "--role", "admin"]).await;
    assert_eq!(code, Some(0), "{out}");
    // Keyed but with nothing from outside to vouch for it yet: exit 3, not 0.
    let (code, out) = opsguard(&runtime_url, &["audit", "verify"]).await;
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("NO signed checkpoint checked"), "{out}");
    let (code, out) = opsguard(&runtime_url, &["audit", "checkpoint"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("checkpoint of row 5 written to"), "{out}");
    let (code, out) = opsguard(&runtime_url, &["audit", "verify"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("intact: 7 rows verified (keyed from row 1)")
            && out.contains("1 signed checkpoint(s) checked; newest: the checkpoint of row 5"),
        "{out}"
    );
    let (code, out) = opsguard(&owner_url, &["migrate"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("single-role set-up") || out.contains("migrations applied"),
        "{out}"
    );
}
