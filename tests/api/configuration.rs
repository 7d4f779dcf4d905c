//! Configuration as an operator meets it, through the real binary: no file needed (run from
//! `/`), `opsguard config check` showing secrets as fingerprints only and naming each problem
//! with a non-zero exit, misspelt keys with the closest valid one, and a `pg_dump` older than
//! a target's server reported by `config check` and by the backup itself.

use super::helpers::*;
use super::process::opsguard;
use super::secrets::{MASTER_KEY, Scratch};
use std::os::unix::fs::PermissionsExt;

async fn run(mut cmd: tokio::process::Command, args: &[&str]) -> (Option<i32>, String, String) {
    let out = cmd.args(args).output().await.unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// The binary aimed at `db` with the built-in defaults only (no `OPSGUARD_CONFIG`).
fn bare(db: &TestDb) -> tokio::process::Command {
    let mut cmd = opsguard(db);
    cmd.env_remove("OPSGUARD_CONFIG");
    cmd
}

/// An executable script in `scratch` standing in for pg_dump.
fn fake_pg_dump(scratch: &Scratch, body: &str) -> String {
    let path = scratch.file("pg_dump");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn user_list_runs_from_the_root_directory_with_no_config_file() {
    let db = TestDb::create().await;
    let mut cmd = bare(&db);
    cmd.current_dir("/");
    let (code, out, err) = run(cmd, &["user", "list"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(!err.contains("default.toml"), "{err}");
}

#[tokio::test]
async fn config_check_prints_every_secret_as_a_fingerprint_and_never_its_text() {
    let db = TestDb::create().await;
    let scratch = Scratch::new();
    let token = "123456:canary-telegram-token";
    let webhook = "canary-webhook-secret-0123456789abcdef";
    let ingest = "canary-ingest-key-0123456789abcdefghijkl";
    let check_dsn = "postgres://app:canary-check-pw@db.internal/app";
    let target_dsn = format!("{}?password=canary-target-pw", db.url);
    let ingest_file = scratch.file("ingest");
    std::fs::write(&ingest_file, format!("{ingest}\n")).unwrap();
    let overlay = scratch.file("opsguard.toml");
    std::fs::write(
        &overlay,
        format!(
            "[checks.postgres]\ndsns = [\"{check_dsn}\"]\n\
             [[backups.targets]]\nname = \"main\"\ndsn = \"{target_dsn}\"\n"
        ),
    )
    .unwrap();
    let mut cmd = bare(&db);
    cmd.env("OPSGUARD_CONFIG", &overlay)
        .env("OPSGUARD_TELEGRAM_TOKEN", token)
        .env("OPSGUARD_WEBHOOK_SECRET", webhook)
        .env("OPSGUARD_MASTER_KEY", MASTER_KEY)
        .env("OPSGUARD_INGEST_JWT_SECRET_FILE", &ingest_file);
    let (code, out, err) = run(cmd, &["config", "check"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("configuration OK"), "{out}");
    // Known answers, computed once with `sha256sum` (first 8 hex digits of SHA-256).
    let target_print = format!("sha256:{}", sha256_fingerprint(&target_dsn));
    for (secret, shown) in [
        (token, "sha256:5a09654c"),
        (webhook, "sha256:05bac86b"),
        (MASTER_KEY, "sha256:bba9b297"),
        (check_dsn, "sha256:fdf794d8"),
        (&target_dsn, &target_print),
    ] {
        assert!(out.contains(shown), "{secret} as {shown}: {out}");
    }
    assert!(out.contains("[[backups.targets]]") && out.contains("name = \"main\""));
    assert!(
        !out.contains("canary") && !err.contains("canary"),
        "{out}{err}"
    );
    assert!(!out.contains(MASTER_KEY) && !err.contains(MASTER_KEY));
}

#[tokio::test]
async fn config_check_names_each_problem_and_exits_non_zero() {
    let db = TestDb::create().await;
    let scratch = Scratch::new();
    let overlay = scratch.file("opsguard.toml");
    std::fs::write(
        &overlay,
        "[checks.tls]\ntargets = [\"no-port.example.com\"]\n\
         [checks.http_headers]\nurls = [\"ftp://example.com\"]\n\
         [checks.postgres]\ndsns = [\"mysql://u:canary-pw@db/app\"]\n\
         [logins]\nalert_chats = [0]\n\
         [[schedules]]\nname = \"bad-cron\"\ncron = \"0 0 25 * * *\"\ncommand = \"/status\"\nchat = 0\n\
         [[schedules]]\nname = \"bad-command\"\ncron = \"0 0 1 * * *\"\ncommand = \"/frobnicate\"\nchat = 0\n",
    )
    .unwrap();
    let mut cmd = bare(&db);
    cmd.env("OPSGUARD_CONFIG", &overlay)
        .env("OPSGUARD_MASTER_KEY", "c2hvcnQ=")
        .env("OPSGUARD_INGEST_JWT_SECRET", "canary-short");
    let (code, out, err) = run(cmd, &["config", "check"]).await;
    assert_eq!(code, Some(1), "{out}{err}");
    for needle in [
        "checks.tls.targets[0] 'no-port.example.com': expected host:port",
        "checks.http_headers.urls[0] 'ftp://example.com'",
        "checks.postgres.dsns[0]",
        "logins.alert_chats: 0 is not a chat",
        "'bad-cron'",
        "'bad-command'",
        "OPSGUARD_MASTER_KEY: decodes to 5 bytes",
        "OPSGUARD_INGEST_JWT_SECRET",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    assert!(err.contains("configuration NOT OK: 8 problem(s)"), "{err}");
    assert!(!out.contains("configuration OK"), "{out}");
    assert!(
        !out.contains("canary") && !err.contains("canary"),
        "{out}{err}"
    );
}

#[tokio::test]
async fn a_misspelt_key_stops_every_command_naming_the_closest_one() {
    let db = TestDb::create().await;
    let scratch = Scratch::new();
    let overlay = scratch.file("opsguard.toml");
    std::fs::write(&overlay, "[rate_limits]\nsensitve = 3\n").unwrap();
    for args in [&["config", "check"][..], &["user", "list"][..]] {
        let mut cmd = bare(&db);
        cmd.env("OPSGUARD__RATE_LIMTS__READ", "5");
        let (code, _, err) = run(cmd, args).await;
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(
            err.contains(
                "unknown setting rate_limts (set by environment variable \
                 OPSGUARD__RATE_LIMTS__READ); did you mean rate_limits?"
            ),
            "{err}"
        );
        let mut cmd = bare(&db);
        cmd.env("OPSGUARD_CONFIG", &overlay);
        let (code, _, err) = run(cmd, args).await;
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(
            err.contains("unknown setting rate_limits.sensitve"),
            "{err}"
        );
        assert!(err.contains(&overlay.display().to_string()), "{err}");
        assert!(err.contains("did you mean rate_limits.sensitive?"), "{err}");
    }
}

#[tokio::test]
async fn an_old_pg_dump_is_reported_by_config_check_and_by_the_backup() {
    let db = TestDb::create().await;
    let scratch = Scratch::new();
    let old = fake_pg_dump(&scratch, "echo 'pg_dump (PostgreSQL) 9.6.24'");
    let overlay = scratch.file("opsguard.toml");
    let unreachable = "postgres://u@127.0.0.1:1/app";
    std::fs::write(
        &overlay,
        format!(
            "[[backups.targets]]\nname = \"main\"\ndsn = \"{}\"\n\
             [[backups.targets]]\nname = \"gone\"\ndsn = \"{unreachable}\"\n",
            db.url
        ),
    )
    .unwrap();
    let mut cmd = bare(&db);
    cmd.env("OPSGUARD_CONFIG", &overlay)
        .env("OPSGUARD__BACKUPS__PG_DUMP", &old);
    let (code, out, err) = run(cmd, &["config", "check"]).await;
    assert_eq!(code, Some(0), "warnings only: {out}{err}");
    assert!(
        err.contains("warning: backups.targets 'main': pg_dump 9 is older")
            && err.contains("is older than the server (PostgreSQL 1"),
        "{err}"
    );
    assert!(
        err.contains("warning: backups.targets 'gone' (127.0.0.1:1/app): cannot compare"),
        "{err}"
    );

    let refusing = fake_pg_dump(
        &scratch,
        "echo 'pg_dump: error: aborting because of server version mismatch' >&2\n\
         echo 'pg_dump: detail: server version: 17.2; pg_dump version: 15.10' >&2\nexit 1",
    );
    let mut cmd = opsguard(&db);
    cmd.env("OPSGUARD_CONFIG", &overlay)
        .env("OPSGUARD_MASTER_KEY", MASTER_KEY)
        .env("OPSGUARD__BACKUPS__STORAGE", scratch.file("store"))
        .env("OPSGUARD__BACKUPS__PG_DUMP", &refusing);
    let (code, out, err) = run(cmd, &["backup", "run", "main"]).await;
    assert_ne!(code, Some(0), "{out}{err}");
    let said = format!("{out}{err}");
    assert!(
        said.contains("pg_dump 15 is older than the server (PostgreSQL 17)")
            && said.contains("postgresql-client-17"),
        "{said}"
    );
}
