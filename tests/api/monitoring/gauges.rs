//! The state gauges against rows put straight into the database: outbox, backups, restore
//! tests, rotations, open alerts, the newest check run. They are cached between scrapes,
//! and every query they make is served by an index (flat as the tables grow).

use super::super::helpers::*;
use super::super::secrets::Scratch;
use super::{monitored, scrape};
use opsguard::http::state_metrics::{QUERIES, WINDOW};
use sqlx::{Connection, PgPool};

async fn exec(pool: &PgPool, sql: &'static str) {
    sqlx::query(sql).execute(pool).await.unwrap();
}

async fn backup_job(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO backup_jobs (kind, target, status, via) VALUES ('backup', 'main', 'succeeded', 'test') RETURNING id",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_gauges_show_what_the_database_holds() {
    let dir = Scratch::new();
    let app = spawn_app_with(monitored(&dir)).await;
    let pool = app.pool();
    // Outbox: two rows waiting (not due for a day, so the worker leaves them), the older
    // queued ten minutes ago; one dead letter; one sent.
    exec(
        pool,
        "INSERT INTO outbox (chat_id, html, source, created_at, not_before) VALUES
        (1, 'a', 'test', now() - interval '600 seconds', now() + interval '1 day'),
        (1, 'b', 'test', now(), now() + interval '1 day')",
    )
    .await;
    exec(
        pool,
        "INSERT INTO outbox (chat_id, html, source, status) VALUES (1, 'c', 'test', 'dead')",
    )
    .await;
    exec(pool, "INSERT INTO outbox (chat_id, html, source, status, sent_at) VALUES (1, 'd', 'test', 'sent', now())").await;
    // Backups of `main`: a good one finished 2026-01-01T00:00:00Z whose restore test failed
    // on 2026-01-02T00:00:00Z, then a failed backup.
    let job = backup_job(pool).await;
    sqlx::query(
        "INSERT INTO backups (job_id, target, status, finished_at, storage, storage_key, verified_at, verified_ok)
         VALUES ($1, 'main', 'good', '2026-01-01T00:00:00Z', 's', 'k1', '2026-01-02T00:00:00Z', false),
                ($1, 'main', 'failed', '2026-01-03T00:00:00Z', 's', 'k2', NULL, NULL)",
    )
    .bind(job)
    .execute(pool)
    .await
    .unwrap();
    // The secret's latest rotation failed (an earlier one succeeded).
    exec(
        pool,
        "INSERT INTO rotations (secret, via, status, step) VALUES
        ('app-key', 'command', 'succeeded', 'finish'), ('app-key', 'command', 'failed', 'set')",
    )
    .await;
    // One open and one closed alert of ip-failures.
    exec(
        pool,
        "INSERT INTO login_alerts (rule, key, count, first_at, last_at, state) VALUES
        ('ip-failures', 'ip:192.0.2.1', 11, now(), now(), 'open'),
        ('ip-failures', 'ip:192.0.2.2', 11, now(), now(), 'closed')",
    )
    .await;
    // An older check run with a critical finding, then the newest: one high, two low.
    for (finished, severities) in [
        ("2026-02-01T00:00:00Z", vec!["critical"]),
        ("2026-02-02T00:00:00Z", vec!["high", "low", "low"]),
    ] {
        let run: i64 = sqlx::query_scalar(
            "INSERT INTO check_runs (selection, started_at, finished_at, actor, request_id, checked)
             VALUES ('all', $1::timestamptz, $1::timestamptz, 'test', 'r', '[]') RETURNING id",
        )
        .bind(finished)
        .fetch_one(pool)
        .await
        .unwrap();
        for (position, severity) in severities.iter().enumerate() {
            sqlx::query(
                "INSERT INTO check_findings (run_id, position, check_name, target, severity, title, evidence, remediation, reference)
                 VALUES ($1, $2, 'c', 't', $3, 'x', 'e', 'r', 'ref')",
            )
            .bind(run)
            .bind(position as i32)
            .bind(*severity)
            .execute(pool)
            .await
            .unwrap();
        }
    }

    let m = scrape(&app).await;
    assert_eq!(m.value("opsguard_outbox_pending", &[]), Some(2.0));
    assert_eq!(m.value("opsguard_outbox_dead", &[]), Some(1.0));
    let age = m
        .value("opsguard_outbox_oldest_pending_age_seconds", &[])
        .unwrap();
    assert!((600.0..660.0).contains(&age), "oldest pending {age} s");
    let main = [("target", "main")];
    // 2026-01-01T00:00:00Z and 2026-01-02T00:00:00Z as Unix time (`date -d … +%s`).
    assert_eq!(
        m.value("opsguard_backup_last_good_timestamp_seconds", &main),
        Some(1_767_225_600.0)
    );
    assert_eq!(
        m.value("opsguard_backup_restore_test_timestamp_seconds", &main),
        Some(1_767_312_000.0)
    );
    assert_eq!(
        m.value("opsguard_backup_restore_test_success", &main),
        Some(0.0)
    );
    let key = [("secret", "app-key")];
    assert_eq!(
        m.value("opsguard_secret_last_rotation_failed", &key),
        Some(1.0)
    );
    assert_eq!(
        m.value("opsguard_login_alerts_open", &[("rule", "ip-failures")]),
        Some(1.0)
    );
    assert_eq!(
        m.value("opsguard_login_alerts_open", &[("rule", "surge")]),
        Some(0.0)
    );
    for (severity, n) in [
        ("critical", 0.0),
        ("high", 1.0),
        ("medium", 0.0),
        ("low", 2.0),
    ] {
        assert_eq!(
            m.value("opsguard_check_findings", &[("severity", severity)]),
            Some(n),
            "{severity}"
        );
    }
    // 2026-02-02T00:00:00Z.
    assert_eq!(
        m.value("opsguard_check_last_run_timestamp_seconds", &[]),
        Some(1_769_990_400.0)
    );
    assert_eq!(m.value("opsguard_state_refresh_success", &[]), Some(1.0));
    let max = m.value("opsguard_db_pool_max_connections", &[]).unwrap();
    let in_use = m
        .value("opsguard_db_pool_connections", &[("state", "in_use")])
        .unwrap();
    assert!(
        max >= 1.0 && (0.0..=max).contains(&in_use),
        "{in_use} of {max}"
    );

    // The restore test is run again and passes: the gauge follows.
    exec(
        pool,
        "UPDATE backups SET verified_ok = true WHERE status = 'good'",
    )
    .await;
    let m = scrape(&app).await;
    assert_eq!(
        m.value("opsguard_backup_restore_test_success", &main),
        Some(1.0)
    );
}

#[tokio::test]
async fn scrapes_within_the_cache_interval_do_not_read_the_database_again() {
    let dir = Scratch::new();
    let app = spawn_app_with(|s| {
        monitored(&dir)(s);
        s.http.metrics_cache_secs = 3600;
    })
    .await;
    assert_eq!(
        scrape(&app).await.value("opsguard_outbox_dead", &[]),
        Some(0.0)
    );
    exec(
        app.pool(),
        "INSERT INTO outbox (chat_id, html, source, status) VALUES (1, 'c', 'test', 'dead')",
    )
    .await;
    // Committed before this scrape: a fresh read would show it.
    assert_eq!(
        scrape(&app).await.value("opsguard_outbox_dead", &[]),
        Some(0.0)
    );
}

#[tokio::test]
async fn every_gauge_query_is_served_by_an_index() {
    let app = spawn_app().await;
    let mut conn = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
    // Sequential scans priced out of reach: a plan keeps one only where no index serves.
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut conn)
        .await
        .unwrap();
    let names = vec!["main".to_string(), "other".to_string()];
    for (name, sql) in QUERIES {
        let explain = format!("EXPLAIN {sql}");
        let query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(explain));
        let query = match name {
            "backups" => query.bind(&names).bind(WINDOW),
            "secrets" => query.bind(&names),
            _ => query,
        };
        let plan = query.fetch_all(&mut conn).await.unwrap().join("\n");
        assert!(!plan.contains("Seq Scan"), "{name} scans a table:\n{plan}");
        assert!(plan.contains("Index"), "{name}:\n{plan}");
    }
}
