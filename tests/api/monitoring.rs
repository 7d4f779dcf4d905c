//! Monitoring opsguard itself: `/metrics` of a fresh app passes `promtool check metrics`
//! and shows every family with `# HELP` and `# TYPE`; the state gauges show what the
//! database holds, read through indexes and cached; the alert rules pass their
//! `promtool test rules` unit tests; the dashboard and the rules name only metrics that
//! exist.

pub mod exposition;
mod gauges;

use super::backups::{target, with_backups};
use super::helpers::*;
use super::secrets::{Scratch, api_key, with_vault};
use exposition::Exposition;
use opsguard::config::Settings;
use opsguard::domain::secret::Secret;
use std::path::Path;
use std::process::{Command, Stdio};

/// A backup target `main` and a managed secret `app-key`, so their per-target and
/// per-secret series exist; gauges read afresh at every scrape unless a test says otherwise.
fn monitored(dir: &Scratch) -> impl FnOnce(&mut Settings) + '_ {
    move |s| {
        with_vault(s, vec![api_key("app-key", &dir.file("a.env"), false)]);
        with_backups(
            s,
            &dir.file("store"),
            vec![target("main", "postgres://nobody@127.0.0.1:1/x")],
        );
        s.http.metrics_cache_secs = 0;
    }
}

async fn scrape(app: &TestApp) -> Exposition {
    Exposition::parse(&app.get_text("/metrics").await)
}

/// Run a tool of the monitoring stack; a missing one fails the test naming its package.
fn run(program: &str, args: &[&str], stdin: Option<&str>, dir: &Path) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} not runnable ({e}): apt-get install prometheus"));
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn deploy(dir: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(dir)
}

#[tokio::test]
async fn a_fresh_app_passes_promtool_with_every_family_described() {
    let dir = Scratch::new();
    let app = spawn_app_with(monitored(&dir)).await;
    let text = app.get_text("/metrics").await;
    let out = run("promtool", &["check", "metrics"], Some(&text), &dir.0);
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let m = Exposition::parse(&text);
    // What the issue asks an operator to see, and the process metrics of every exporter.
    let expected = [
        ("opsguard_build_info", "gauge"),
        ("opsguard_outbox_pending", "gauge"),
        ("opsguard_outbox_dead", "gauge"),
        ("opsguard_outbox_oldest_pending_age_seconds", "gauge"),
        ("opsguard_backup_last_good_timestamp_seconds", "gauge"),
        ("opsguard_backup_restore_test_success", "gauge"),
        ("opsguard_secret_age_seconds", "gauge"),
        ("opsguard_secret_last_rotation_failed", "gauge"),
        ("opsguard_login_alerts_open", "gauge"),
        ("opsguard_check_findings", "gauge"),
        ("opsguard_redis_degraded", "gauge"),
        ("opsguard_db_pool_connections", "gauge"),
        ("opsguard_audit_write_failures_total", "counter"),
        ("opsguard_webhook_rejections_total", "counter"),
        ("opsguard_commands_total", "counter"),
        ("opsguard_pipeline_seconds", "histogram"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_cpu_seconds_total", "counter"),
        ("process_open_fds", "gauge"),
        ("process_max_fds", "gauge"),
        ("process_start_time_seconds", "gauge"),
    ];
    for (name, kind) in expected {
        m.assert_described(name, kind);
    }
    // Zero values from the start, for what nothing has happened to yet.
    assert_eq!(m.value("opsguard_outbox_pending", &[]), Some(0.0));
    assert_eq!(m.value("opsguard_outbox_dead", &[]), Some(0.0));
    assert_eq!(
        m.value(
            "opsguard_backup_last_good_timestamp_seconds",
            &[("target", "main")]
        ),
        Some(0.0)
    );
    assert_eq!(
        m.value(
            "opsguard_backup_restore_test_success",
            &[("target", "main")]
        ),
        Some(0.0)
    );
    assert_eq!(
        m.value(
            "opsguard_secret_last_rotation_failed",
            &[("secret", "app-key")]
        ),
        Some(0.0)
    );
    for rule in ["ip-failures", "account-lockout", "password-spray", "surge"] {
        assert_eq!(
            m.value("opsguard_login_alerts_open", &[("rule", rule)]),
            Some(0.0),
            "{rule}"
        );
    }
    for severity in ["critical", "high", "medium", "low", "info"] {
        assert_eq!(
            m.value("opsguard_check_findings", &[("severity", severity)]),
            Some(0.0)
        );
    }
    assert_eq!(m.value("opsguard_redis_degraded", &[]), Some(0.0));
    assert!(
        m.value(
            "opsguard_webhook_rejections_total",
            &[("reason", "bad_secret")]
        )
        .is_some()
    );
    assert!(
        m.value(
            "opsguard_audit_write_failures_total",
            &[("phase", "attempt")]
        )
        .is_some()
    );
    assert!(m.value("process_resident_memory_bytes", &[]).unwrap() > 1e6);
    // The build: this crate's version and the commit git names for this checkout.
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let version = env!("CARGO_PKG_VERSION");
    let build = [("version", version), ("commit", commit.as_str())];
    assert_eq!(m.value("opsguard_build_info", &build), Some(1.0), "{text}");
}

#[tokio::test]
async fn every_metric_recorded_in_the_source_is_described_from_the_start() {
    let app = spawn_app().await;
    let m = scrape(&app).await;
    let names = exposition::recorded_in_source(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(names.len() >= 15, "found {names:?}");
    for name in &names {
        assert!(
            m.families.contains_key(name.as_str()),
            "{name} is not on a fresh /metrics"
        );
        let family = &m.families[name.as_str()];
        assert!(family.help.is_some(), "{name} has no # HELP");
    }
}

#[tokio::test]
async fn without_redis_the_degraded_gauge_says_so() {
    let app = spawn_app_with(|s| {
        s.redis.url = Secret::new("redis://127.0.0.1:1");
        s.http.metrics_cache_secs = 0;
    })
    .await;
    assert_eq!(
        scrape(&app).await.value("opsguard_redis_degraded", &[]),
        Some(1.0)
    );
}

#[test]
fn the_alert_rules_pass_their_promtool_unit_tests() {
    let dir = deploy("prometheus");
    let check = run("promtool", &["check", "rules", "alerts.yml"], None, &dir);
    let show = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert!(check.status.success(), "{}", show(&check));
    let test = run(
        "promtool",
        &["test", "rules", "alerts_test.yml"],
        None,
        &dir,
    );
    assert!(test.status.success(), "{}", show(&test));
    // Each alert the issue names has a rule, and each rule is unit-tested.
    let rules = std::fs::read_to_string(dir.join("alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(dir.join("alerts_test.yml")).unwrap();
    for alert in [
        "OpsguardBackupTooOld",
        "OpsguardOutboxDeadLetters",
        "OpsguardRotationFailed",
        "OpsguardAuditWriteFailures",
        "OpsguardRedisDegraded",
        "OpsguardWebhookRejectionSpike",
    ] {
        assert!(
            rules.contains(&format!("alert: {alert}\n")),
            "no rule {alert}"
        );
    }
    for line in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        assert!(
            tests.contains(&format!("alertname: {line}\n")),
            "{line} is not tested"
        );
    }
}

#[tokio::test]
async fn the_dashboard_and_the_rules_name_only_metrics_that_exist() {
    let dir = Scratch::new();
    let app = spawn_app_with(monitored(&dir)).await;
    let m = scrape(&app).await;
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(deploy("grafana").join("opsguard.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "opsguard");
    let mut exprs = Vec::new();
    exposition::collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 15, "{exprs:?}");
    let rules = std::fs::read_to_string(deploy("prometheus").join("alerts.yml")).unwrap();
    exprs.extend(
        rules
            .lines()
            .filter_map(|l| l.trim().strip_prefix("expr: ").map(str::to_string)),
    );
    for expr in &exprs {
        let names = exposition::metric_names(expr);
        assert!(!names.is_empty(), "no metric in {expr}");
        for name in names {
            assert!(
                m.has_series(&name),
                "{expr} names {name}, which /metrics does not show"
            );
        }
    }
}
