//! Bad schedules stop start-up with an error naming the schedule: an invalid or non-six-field
//! cron expression, a command that does not parse, a duplicate name.

use super::super::helpers::*;
use super::{says, sched};
use opsguard::config::Settings;
use opsguard::startup::Application;
use std::collections::HashMap;

/// Load settings from the default file plus `extra` TOML (a temporary file).
fn load(extra: &str) -> Result<Settings, String> {
    let base = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml"))
        .unwrap();
    let path =
        std::env::temp_dir().join(format!("opsguard-{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, format!("{base}\n{extra}")).unwrap();
    let env: HashMap<String, String> =
        [("OPSGUARD_CONFIG".to_string(), path.display().to_string())].into();
    let result = Settings::load_with(&env).map_err(|e| e.to_string());
    let _ = std::fs::remove_file(&path);
    result
}

fn entry(name: &str, cron: &str, command: &str) -> String {
    format!(
        "[[schedules]]\nname = \"{name}\"\ncron = \"{cron}\"\ncommand = \"{command}\"\nchat = 42\n"
    )
}

#[tokio::test]
async fn invalid_schedules_stop_start_up_naming_the_schedule() {
    let good = load(&entry("nightly", "0 0 2 * * *", "/status")).unwrap();
    let names: Vec<_> = good.schedules.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "daily-audit-verify",
            "prune-auth-events",
            "rotate-due-secrets",
            "nightly"
        ]
    );
    for (extra, name, needle) in [
        (
            entry("bad-cron", "0 0 25 * * *", "/status"),
            "bad-cron",
            "invalid cron expression",
        ),
        (
            entry("five-fields", "0 2 * * *", "/status"),
            "five-fields",
            "expected six",
        ),
        (
            entry("bad-command", "0 0 2 * * *", "/frobnicate"),
            "bad-command",
            "unknown command /frobnicate",
        ),
        (
            entry("bad-args", "0 0 2 * * *", "/audit lots"),
            "bad-args",
            "does not parse",
        ),
        (
            entry("sensitive", "0 0 2 * * *", "/grant 7 viewer"),
            "sensitive",
            "cannot be scheduled",
        ),
        (
            entry("twice", "0 0 2 * * *", "/status") + &entry("twice", "0 0 3 * * *", "/help"),
            "twice",
            "duplicate",
        ),
    ] {
        let err = load(&extra).expect_err(name);
        says(&err, &format!("schedule '{name}'"));
        says(&err, needle);
    }
    // Settings changed in code are checked again when the application is built.
    let db = TestDb::create().await;
    let mut settings = settings_for(&db, "http://127.0.0.1:9");
    settings
        .schedules
        .push(sched("late-bad", "not a cron", "/status", 42));
    let err = Application::build(settings)
        .await
        .err()
        .expect("build refused")
        .to_string();
    says(&err, "schedule 'late-bad'");
}
