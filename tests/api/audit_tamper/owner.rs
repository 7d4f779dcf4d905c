//! One role that owns the log (not a superuser): warned about, and every rewrite it can
//! make is named by verify; the switch to a keyed chain; forged checkpoints.

use super::*;
use opsguard::domain::secret::Secret;
use opsguard::storage::audit;

#[tokio::test]
async fn one_owner_role_is_warned_about_and_its_tampering_is_named() {
    let roles = Roles::create().await;
    let db = owned_db(&roles).await;
    let app = spawn_app_on(db.clone(), keyed).await;
    let ready = app.get_text("/readyz").await;
    assert!(
        ready.starts_with("ready\n") && ready.contains("single-role set-up"),
        "{ready}"
    );
    traffic_and_checkpoint(&app).await;
    let status = app.say(42, "/status").await.text();
    assert!(
        status.contains("⚠️ Audit log: single-role set-up"),
        "{status}"
    );
    app.settle().await;
    let intact = verify_all(&app).await;
    assert!(intact.intact(), "{:?}", intact.lines());
    assert_eq!(intact.checkpoints, 1);
    let owner = &db.pool;
    let head = audit::head(owner).await.unwrap();
    let checkpoint_seq = intact.newest.as_ref().unwrap().seq;
    assert!(checkpoint_seq >= 7 && checkpoint_seq <= head.seq);
    let off = "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update";
    run_as(owner, off).await.unwrap();

    // (b) change row 3 and re-hash every later row and the head — without the key the
    // attacker can only use SHA-256 (or a guess), so row 3 is named.
    let rows = audit::latest(owner, 1000).await.unwrap();
    let mut rows: Vec<_> = rows.into_iter().rev().collect();
    rows[2].entry.args = "forged".into();
    let guess = opsguard::domain::audit::ChainKey::new([0; 32]);
    rehash(owner, &rows, 2, |prev, seq, content| {
        guess.row_hash(prev, seq, content)
    })
    .await;
    let report = verify_all(&app).await;
    assert_eq!(broken_seq(&report), Some(3), "{:?}", report.lines());

    // Downgrade: the same rewrite with plain SHA-256 and the chain marked as never keyed
    // verifies row by row; the checkpoint's switch point names row 1.
    rehash(owner, &rows, 0, opsguard::domain::audit::row_hash).await;
    run_as(
        owner,
        "UPDATE audit_head SET keyed_from = NULL, key_id = NULL",
    )
    .await
    .unwrap();
    let report = verify_all(&app).await;
    assert_eq!(broken_seq(&report), Some(1), "{:?}", report.lines());
    assert!(
        report.lines()[0].contains("re-hashed without the key"),
        "{:?}",
        report.lines()
    );
}

#[tokio::test]
async fn a_cut_tail_and_a_row_past_the_head_are_named() {
    let roles = Roles::create().await;
    let db = owned_db(&roles).await;
    let app = spawn_app_on(db.clone(), keyed).await;
    let line = traffic_and_checkpoint(&app).await;
    app.settle().await;
    let owner = &db.pool;
    let checkpoint = verify_all(&app).await.newest.unwrap();
    run_as(
        owner,
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update",
    )
    .await
    .unwrap();

    // (c) a row inserted past the head (a copy of a real one, its seq moved on)
    let head = audit::head(owner).await.unwrap();
    let past = head.seq + 3;
    let insert = format!(
        "INSERT INTO audit_log SELECT {past}, request_id, at, phase, actor_kind, actor_id, chat_id, command, args, decision, reason, outcome, error, duration_ms, content_hash, prev_hash, row_hash FROM audit_log WHERE seq = {}",
        head.seq
    );
    run_as(owner, &insert).await.unwrap();
    let report = verify_all(&app).await;
    assert_eq!(broken_seq(&report), Some(past), "{:?}", report.lines());
    assert!(
        report.lines()[0].contains("past the chain head"),
        "{:?}",
        report.lines()
    );
    run_as(owner, &format!("DELETE FROM audit_log WHERE seq = {past}"))
        .await
        .unwrap();

    // (a) the rows from 5 on deleted and the head moved back to row 4: the chain alone is
    // consistent; the checkpoint (row 7 or later) names row 5.
    run_as(owner, "DELETE FROM audit_log WHERE seq >= 5")
        .await
        .unwrap();
    run_as(
        owner,
        "UPDATE audit_head SET seq = 4, row_hash = (SELECT row_hash FROM audit_log WHERE seq = 4)",
    )
    .await
    .unwrap();
    let chain_only = audit::verify(owner, app.chain_key()).await.unwrap();
    assert_eq!(
        chain_only.broken, None,
        "the cut is invisible to the chain alone"
    );
    let report = verify_all(&app).await;
    assert_eq!(broken_seq(&report), Some(5), "{:?}", report.lines());
    assert!(
        report.lines()[0].contains(&format!("rows 5–{} are missing", checkpoint.seq)),
        "{:?}",
        report.lines()
    );

    // The shell says so with exit code 2 — from the storage's checkpoint, or, with the
    // storage gone, from the line copied out of the chat.
    let dir = db.checkpoint_dir();
    let cli = async |extra: &[&str]| {
        let args: Vec<&str> = ["audit", "verify"].iter().chain(extra).copied().collect();
        let (code, out, _) = opsguard_cli(&db.url, &dir, &args).await;
        (code, out)
    };
    let (code, out) = cli(&[]).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("are missing"), "{out}");
    // Without anything from outside the database a cut tail is invisible to the chain (each
    // run's own audit rows now fill the gap), so verify refuses to call it intact ...
    std::fs::remove_dir_all(db.checkpoint_dir()).unwrap();
    let (code, out) = cli(&[]).await;
    assert_eq!(code, Some(3), "unanchored, not intact: {out}");
    assert!(out.contains("NO signed checkpoint checked"), "{out}");
    // ... which the line kept in the checkpoint chat shows.
    let (code, out) = cli(&["--checkpoint", &line]).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(&format!("checkpoint of row {}", checkpoint.seq)),
        "{out}"
    );
    let forged = line.replace("seq=", "seq=1");
    let (code, out) = cli(&["--checkpoint", &forged]).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("BAD CHECKPOINT given line 1"), "{out}");
}

#[tokio::test]
async fn an_unkeyed_chain_switches_to_keyed_and_refuses_a_missing_or_other_key() {
    let db = TestDb::create().await;
    let plain = spawn_app_on(db.clone(), |_| {}).await;
    plain.add_user(42, "admin").await;
    plain.say(42, "/whoami").await;
    plain.settle().await;
    let status = plain.say(42, "/status").await.text();
    assert!(
        status.contains("OPSGUARD_MASTER_KEY is not set"),
        "{status}"
    );
    let before = audit::head(&db.pool).await.unwrap();
    assert_eq!(before.keyed_from, None);

    // A replica (same update-id sequence, so de-duplication lets its updates in) with a key.
    let app = plain.spawn_replica_with(keyed).await;
    drop(plain);
    app.say(42, "/whoami").await;
    app.settle().await;
    let report = verify_all(&app).await;
    assert!(report.intact(), "{:?}", report.lines());
    assert_eq!(
        report.chain.keyed_from,
        Some(before.seq + 1),
        "the switch point"
    );
    drop(app);
    let keyed_head = audit::head(&db.pool).await.unwrap();

    for (key, needle) in [
        (None, "set OPSGUARD_MASTER_KEY"),
        (
            Some("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="),
            "not the key the audit chain is keyed with",
        ),
    ] {
        let mut settings = settings_for(&db, "http://127.0.0.1:9");
        settings.master_key = key.map(Secret::new);
        let err = opsguard::startup::Application::build(settings)
            .await
            .err()
            .expect("start-up refused");
        assert!(format!("{err:#}").contains(needle), "{err:#}");
    }
    // Nothing was appended by the refused starts, and the keyed rows need the key to verify.
    assert_eq!(audit::head(&db.pool).await.unwrap(), keyed_head);
    let err = audit::verify(&db.pool, None).await.unwrap_err();
    assert!(matches!(err, audit::VerifyError::NeedsKey { .. }), "{err}");
}

#[tokio::test]
async fn a_forged_checkpoint_in_storage_is_reported() {
    let app = spawn_app_with(keyed).await;
    traffic_and_checkpoint(&app).await;
    let dir = app.db.checkpoint_dir().join("audit-checkpoints");
    std::fs::write(
        dir.join("99999999999999999999-forged.txt"),
        "opsguard-audit-checkpoint v1 seq=99 head=00 at=2026-01-01T00:00:00.000000Z keyed_from=1 key=- sig=AAAA",
    )
    .unwrap();
    let report = verify_all(&app).await;
    assert!(!report.intact());
    assert!(
        report.bad_checkpoints[0].contains("99999999999999999999-forged.txt"),
        "{:?}",
        report.lines()
    );
    let reply = app.say(42, "/audit verify").await.text();
    assert!(
        reply.starts_with("❌") && reply.contains("BAD CHECKPOINT"),
        "{reply}"
    );
}

#[tokio::test]
async fn a_head_moved_back_stops_appends_and_a_blocked_log_is_still_verified() {
    let roles = Roles::create().await;
    let db = owned_db(&roles).await;
    let app = spawn_app_on(db.clone(), keyed).await;
    traffic_and_checkpoint(&app).await;
    let owner = &db.pool;
    // The owner cuts the last two rows and moves the head back under the running process:
    // its writer, which appended those rows, refuses to append behind them (fail closed).
    let head = audit::head(owner).await.unwrap();
    run_as(
        owner,
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update",
    )
    .await
    .unwrap();
    let cut = format!("DELETE FROM audit_log WHERE seq > {}", head.seq - 2);
    run_as(owner, &cut).await.unwrap();
    let back = format!(
        "UPDATE audit_head SET seq = {0}, row_hash = (SELECT row_hash FROM audit_log WHERE seq = {0})",
        head.seq - 2
    );
    run_as(owner, &back).await.unwrap();
    let reply = app.say(42, "/whoami").await.text();
    assert!(reply.contains("audit log cannot be written"), "{reply}");
    assert_eq!(
        audit::head(owner).await.unwrap().seq,
        head.seq - 2,
        "nothing appended"
    );

    // A row planted at head + 1 makes every append fail; `opsguard audit verify` cannot
    // write its own attempt row, and verifies anyway: exit 2, the planted row named.
    let planted = head.seq - 1;
    let insert = format!(
        "INSERT INTO audit_log SELECT {planted}, request_id, at, phase, actor_kind, actor_id, chat_id, command, args, decision, reason, outcome, error, duration_ms, content_hash, prev_hash, row_hash FROM audit_log WHERE seq = 1"
    );
    run_as(owner, &insert).await.unwrap();
    let (code, stdout, stderr) =
        opsguard_cli(&db.url, &db.checkpoint_dir(), &["audit", "verify"]).await;
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("verifying without an audit row"),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!("BROKEN at row {planted}")),
        "{stdout}"
    );
}

/// Rewrite rows `from..` (their content as given) chained with `hash`, and the head, as an
/// attacker with the owner's rights but without the chain key would.
async fn rehash(
    owner: &sqlx::PgPool,
    rows: &[audit::AuditRow],
    from: usize,
    hash: impl Fn(&[u8], i64, &[u8]) -> [u8; 32],
) {
    let mut prev = match from {
        0 => vec![0u8; 32],
        n => rows[n - 1].row_hash.clone(),
    };
    for row in &rows[from..] {
        let content = row.entry.content_hash().to_vec();
        let row_hash = hash(&prev, row.seq, &content).to_vec();
        sqlx::query("UPDATE audit_log SET args = $1, content_hash = $2, prev_hash = $3, row_hash = $4 WHERE seq = $5")
            .bind(&row.entry.args)
            .bind(&content)
            .bind(&prev)
            .bind(&row_hash)
            .bind(row.seq)
            .execute(owner)
            .await
            .unwrap();
        prev = row_hash;
    }
    sqlx::query("UPDATE audit_head SET row_hash = $1")
        .bind(&prev)
        .execute(owner)
        .await
        .unwrap();
}

/// Someone who can stop the scheduled checkpoints (a planted `schedule_runs` row, deleted
/// outbox rows) leaves the newest checkpoint ageing: verify says so instead of "intact".
#[tokio::test]
async fn a_checkpoint_schedule_that_stopped_is_reported() {
    let app = spawn_app_with(keyed).await;
    app.add_user(42, "admin").await;
    app.say(42, "/whoami").await;
    let keys = app.engine.audit_keys().unwrap();
    let head = audit::head(app.pool()).await.unwrap();
    let three_hours_ago = chrono::Utc::now() - chrono::Duration::hours(3);
    let old = opsguard::audit::Checkpoint::of(&head, three_hours_ago);
    let file = app.db.checkpoint_dir().join(old.object_key());
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, old.signed_line(keys)).unwrap();
    let mut settings = app.engine.settings().clone();
    settings.audit.checkpoint_cron = "0 0 * * * *".into();
    let verify = async || {
        opsguard::audit::verify_all(app.pool(), &settings, Some(keys), &[])
            .await
            .unwrap()
    };
    let report = verify().await;
    assert!(report.intact(), "{:?}", report.lines());
    assert!(report.stale && !report.anchored(), "{:?}", report.lines());
    assert!(report.lines()[1].contains("STALE"), "{:?}", report.lines());
    let reply = app.say(42, "/audit checkpoint").await.text();
    assert!(reply.contains("Checkpoint of row"), "{reply}");
    let report = verify().await;
    assert!(!report.stale && report.anchored(), "{:?}", report.lines());
}
