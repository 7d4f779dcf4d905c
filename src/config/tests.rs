//! The loader as an operator meets it: built-in defaults, overlay files (lists replaced
//! whole), JSON lists from the environment, secrets from files, and errors that name the
//! variable or file, the key and the closest valid key, never a secret.

use super::*;
use std::collections::HashMap;
use std::path::PathBuf;

/// A scratch file (removed on drop).
struct Scratch(PathBuf);

impl Scratch {
    fn new(contents: impl AsRef<[u8]>) -> Scratch {
        let path =
            std::env::temp_dir().join(format!("opsguard-config-{}", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, contents).unwrap();
        Scratch(path)
    }
    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn env(vars: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.entry("OPSGUARD_SYSTEM_CONFIG".into()).or_default();
    env
}

fn load(vars: &[(&str, &str)]) -> Result<Settings, String> {
    Settings::load_with(&env(vars)).map_err(|e| e.to_string())
}

const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

#[test]
fn the_built_in_defaults_load_with_no_file_and_no_variable() {
    let s = load(&[]).unwrap();
    assert_eq!(s.rate_limits.read, 20);
    assert_eq!(s.http.listen, "127.0.0.1:8080");
    assert_eq!(s.schedules.len(), 3);
}

#[test]
fn a_two_line_overlay_sets_one_target_and_keeps_every_default() {
    let check = Scratch::new("[checks.tls]\ntargets = [\"example.com:443\"]\n");
    let s = load(&[("OPSGUARD_CONFIG", &check.path())]).unwrap();
    assert_eq!(s.checks.tls.targets, ["example.com:443"]);
    assert_eq!((s.rate_limits.read, s.schedules.len()), (20, 3));
    let backup =
        Scratch::new("[backups]\ntargets = [{ name = \"main\", dsn = \"postgres://u@db/app\" }]\n");
    let s = load(&[("OPSGUARD_CONFIG", &backup.path())]).unwrap();
    assert_eq!(s.backups.target_names(), ["main"]);
    assert_eq!(s.backups.storage, "/var/lib/opsguard/backups");
}

#[test]
fn a_list_an_overlay_sets_replaces_the_default_list() {
    let file = Scratch::new(
        "[[schedules]]\nname = \"only\"\ncron = \"0 0 1 * * *\"\ncommand = \"/status\"\nchat = 0\n",
    );
    let s = load(&[("OPSGUARD_CONFIG", &file.path())]).unwrap();
    let names: Vec<_> = s.schedules.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["only"]);
}

#[test]
fn the_system_file_comes_before_opsguard_config_and_a_missing_one_is_skipped() {
    let system = Scratch::new("[rate_limits]\nread = 30\noperate = 7\n");
    let user = Scratch::new("[rate_limits]\nread = 40\n");
    let s = load(&[("OPSGUARD_SYSTEM_CONFIG", &system.path())]).unwrap();
    assert_eq!((s.rate_limits.read, s.rate_limits.operate), (30, 7));
    let both = [
        ("OPSGUARD_SYSTEM_CONFIG", system.path()),
        ("OPSGUARD_CONFIG", user.path()),
    ];
    let both: Vec<(&str, &str)> = both.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = load(&both).unwrap();
    assert_eq!((s.rate_limits.read, s.rate_limits.operate), (40, 7));
    let s = load(&[("OPSGUARD_SYSTEM_CONFIG", "/nonexistent/opsguard.toml")]).unwrap();
    assert_eq!(s.rate_limits.read, 20);
    assert_eq!(SYSTEM_CONFIG, "/etc/opsguard/opsguard.toml");
    // A path that cannot be checked is not taken for absent: the operator hears of it.
    let beneath_a_file = format!("{}/opsguard.toml", user.path());
    let err = load(&[("OPSGUARD_SYSTEM_CONFIG", &beneath_a_file)]).unwrap_err();
    assert!(
        err.contains(&format!("cannot check {beneath_a_file}")),
        "{err}"
    );
    let err = load(&[("OPSGUARD_CONFIG", "/nonexistent/x.toml")]).unwrap_err();
    assert!(err.contains("OPSGUARD_CONFIG=/nonexistent/x.toml"), "{err}");
}

#[test]
fn lists_come_from_the_environment_as_json() {
    let recipient = age::x25519::Identity::generate().to_public().to_string();
    let recipients = format!("[\"{recipient}\"]");
    let s = load(&[
        (
            "OPSGUARD__CHECKS__POSTGRES__DSNS",
            r#"["postgres://u:pw@db/app"]"#,
        ),
        ("OPSGUARD__BACKUPS__RECIPIENTS", &recipients),
        ("OPSGUARD__LOGINS__ALERT_CHATS", "[123, -1001234567890]"),
        ("OPSGUARD__HTTP__TRUSTED_PROXIES", ""),
        ("OPSGUARD__HTTP__LISTEN", "[::1]:8080"),
    ])
    .unwrap();
    assert_eq!(s.checks.postgres.dsns[0].expose(), "postgres://u:pw@db/app");
    assert_eq!(s.backups.recipients, [recipient]);
    assert_eq!(s.logins.alert_chats, [123, -1001234567890]);
    assert_eq!(s.http.listen, "[::1]:8080");
    let err = load(&[("OPSGUARD__LOGINS__ALERT_CHATS", "123,456")]).unwrap_err();
    assert!(err.contains("OPSGUARD__LOGINS__ALERT_CHATS"), "{err}");
    assert!(err.contains("a list") && !err.contains("default"), "{err}");
    let err = load(&[("OPSGUARD__CHECKS__POSTGRES__DSNS", "postgres://u:canary@db")]).unwrap_err();
    assert!(err.contains("OPSGUARD__CHECKS__POSTGRES__DSNS"), "{err}");
    assert!(!err.contains("canary"), "{err}");
}

#[test]
fn a_wrong_type_names_the_variable_or_file_and_key_never_the_value() {
    let err = load(&[("OPSGUARD__RATE_LIMITS__READ", "lots")]).unwrap_err();
    assert!(err.contains("OPSGUARD__RATE_LIMITS__READ") && err.contains("whole number"));
    let file = Scratch::new("[database]\nmax_connections = \"canary-pw\"\n");
    let err = load(&[("OPSGUARD_CONFIG", &file.path())]).unwrap_err();
    assert!(err.contains("database.max_connections"), "{err}");
    assert!(
        err.contains(&format!("OPSGUARD_CONFIG={}", file.path())),
        "{err}"
    );
    assert!(!err.contains("canary"), "{err}");
    let broken = Scratch::new("[database]\nurl = \"postgres://u:canary@db\n");
    let err = load(&[("OPSGUARD_CONFIG", &broken.path())]).unwrap_err();
    assert!(
        err.contains("not valid TOML (line 2)") && !err.contains("canary"),
        "{err}"
    );
    // A key the files do not set is typed by guess, and read as text when that is wrong.
    let s = load(&[("OPSGUARD__BACKUPS__S3__ACCESS_KEY_ID", "12345")]).unwrap();
    assert_eq!(s.backups.s3.access_key_id.as_deref(), Some("12345"));
}

#[test]
fn secrets_come_from_files_and_credentials_trimmed() {
    let key = Scratch::new(format!("{KEY}\n"));
    let s = load(&[("OPSGUARD_MASTER_KEY_FILE", &key.path())]).unwrap();
    assert_eq!(s.master_key.unwrap().expose(), KEY);
    let token = Scratch::new("123:canary-token\r\n");
    let s = load(&[("OPSGUARD_TELEGRAM_TOKEN_FILE", &token.path())]).unwrap();
    assert_eq!(s.token().unwrap().expose(), "123:canary-token");

    let err = load(&[
        ("OPSGUARD_MASTER_KEY", KEY),
        ("OPSGUARD_MASTER_KEY_FILE", &key.path()),
    ])
    .unwrap_err();
    assert!(err.contains("OPSGUARD_MASTER_KEY or OPSGUARD_MASTER_KEY_FILE, not both"));
    let err = load(&[("DATABASE_URL_FILE", "/nonexistent/db-url")]).unwrap_err();
    assert!(err.contains("DATABASE_URL_FILE") && err.contains("/nonexistent/db-url"));
    let binary = Scratch::new(b"canary-\xff-secret");
    let err = load(&[("REDIS_URL_FILE", &binary.path())]).unwrap_err();
    assert!(
        err.contains(&binary.path()) && !err.contains("canary"),
        "{err}"
    );

    let dir = Scratch::new("");
    std::fs::remove_file(&dir.0).unwrap();
    std::fs::create_dir(&dir.0).unwrap();
    std::fs::write(dir.0.join("OPSGUARD_WEBHOOK_SECRET"), "a".repeat(40) + "\n").unwrap();
    let s = load(&[("CREDENTIALS_DIRECTORY", &dir.path())]).unwrap();
    assert_eq!(s.webhook_secret().unwrap().expose(), "a".repeat(40));
}

#[test]
fn any_setting_reads_from_a_file_named_by_its_double_underscore_file_variable() {
    let secret = Scratch::new("aws-canary-secret/with+chars\n");
    let id = Scratch::new("12345\n");
    let s = load(&[
        (
            "OPSGUARD__BACKUPS__S3__SECRET_ACCESS_KEY__FILE",
            &secret.path(),
        ),
        ("OPSGUARD__BACKUPS__S3__ACCESS_KEY_ID__FILE", &id.path()),
    ])
    .unwrap();
    let got = s.backups.s3.secret_access_key.as_ref().map(|k| k.expose());
    assert_eq!(got, Some("aws-canary-secret/with+chars"));
    assert_eq!(s.backups.s3.access_key_id.as_deref(), Some("12345"));
    // A list, typed after the defaults, from a file.
    let list = Scratch::new("[1, -100]\n");
    let s = load(&[("OPSGUARD__LOGINS__ALERT_CHATS__FILE", &list.path())]).unwrap();
    assert_eq!(s.logins.alert_chats, vec![1, -100]);

    let err = load(&[
        ("OPSGUARD__BACKUPS__S3__SECRET_ACCESS_KEY", "inline-canary"),
        (
            "OPSGUARD__BACKUPS__S3__SECRET_ACCESS_KEY__FILE",
            &secret.path(),
        ),
    ])
    .unwrap_err();
    assert!(err.contains("not both"), "{err}");
    assert!(!err.contains("canary"), "{err}");
    let err = load(&[(
        "OPSGUARD__BACKUPS__S3__SECRET_ACCESS_KEY__FILE",
        "/nonexistent/s3",
    )])
    .unwrap_err();
    assert!(err.contains("/nonexistent/s3"), "{err}");
    let empty = Scratch::new("\n");
    let err = load(&[("OPSGUARD__RATE_LIMITS__READ__FILE", &empty.path())]).unwrap_err();
    assert!(err.contains("is empty"), "{err}");
}

#[test]
fn an_unknown_key_stops_loading_naming_it_its_origin_and_the_closest_key() {
    let err = load(&[("OPSGUARD__RATE_LIMTS__READ", "5")]).unwrap_err();
    assert!(err.contains("unknown setting rate_limts"), "{err}");
    assert!(
        err.contains("environment variable OPSGUARD__RATE_LIMTS__READ"),
        "{err}"
    );
    assert!(err.contains("did you mean rate_limits?"), "{err}");
    for (toml, key, suggestion) in [
        (
            "[rate_limits]\nraed = 3\n",
            "rate_limits.raed",
            "rate_limits.read",
        ),
        (
            "[[schedules]]\nname = \"a\"\ncrn = \"0 0 1 * * *\"\ncron = \"0 0 1 * * *\"\ncommand = \"/status\"\nchat = 0\n",
            "schedules.0.crn",
            "schedules.0.cron",
        ),
        (
            "[gates.commands.rotate]\naproval = true\n",
            "gates.commands.rotate.aproval",
            "gates.commands.rotate.approval",
        ),
        (
            "[backups]\nstorag = \"/x\"\n",
            "backups.storag",
            "backups.storage",
        ),
        (
            "[telegram]\npoll_timeout_sec = 20\n",
            "telegram.poll_timeout_sec",
            "telegram.poll_timeout_secs",
        ),
    ] {
        let file = Scratch::new(toml);
        let err = load(&[("OPSGUARD_CONFIG", &file.path())]).unwrap_err();
        assert!(err.contains(&format!("unknown setting {key} ")), "{err}");
        assert!(err.contains(&file.path()), "{err}");
        assert!(
            err.contains(&format!("did you mean {suggestion}?")),
            "{err}"
        );
    }
}

#[test]
fn every_broken_rule_is_reported_not_only_the_first() {
    let file = Scratch::new(
        "[authz]\ncache_ttl_secs = 999\n[[schedules]]\nname = \"one\"\ncron = \"nope\"\ncommand = \"/status\"\nchat = 0\n[[schedules]]\nname = \"two\"\ncron = \"0 0 1 * * *\"\ncommand = \"/frobnicate\"\nchat = 0\n",
    );
    let s = Settings::read_with(&env(&[("OPSGUARD_CONFIG", &file.path())])).unwrap();
    let problems: Vec<String> = s.problems().iter().map(|p| p.to_string()).collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("authz.cache_ttl_secs"), "{problems:?}");
    assert!(problems[1].contains("'one'") && problems[2].contains("'two'"));
    let err = Settings::load_with(&env(&[("OPSGUARD_CONFIG", &file.path())])).unwrap_err();
    assert!(err.to_string().contains("authz.cache_ttl_secs"), "{err}");
}

#[test]
fn a_misspelt_key_in_a_secret_sink_stops_loading_naming_the_sink() {
    let file = Scratch::new(
        "[[secrets]]\nname = \"app-key\"\nkind = \"api_key\"\nsinks = [{ type = \"env_file\", pth = \"/run/app.env\" }]\n",
    );
    let err = load(&[("OPSGUARD_CONFIG", &file.path())]).unwrap_err();
    assert!(
        err.contains("unknown setting secrets.0.sinks.0.pth"),
        "{err}"
    );
    assert!(
        err.contains("did you mean secrets.0.sinks.0.path?"),
        "{err}"
    );
    let ok = Scratch::new(
        "[[secrets]]\nname = \"app-key\"\nkind = \"api_key\"\nsinks = [{ type = \"env_file\", path = \"/run/app.env\" }]\n",
    );
    assert!(load(&[("OPSGUARD_CONFIG", &ok.path())]).is_ok());
}

#[test]
fn metrics_are_cached_for_at_least_a_second() {
    let err = load(&[("OPSGUARD__HTTP__METRICS_CACHE_SECS", "0")]).unwrap_err();
    assert!(err.contains("http.metrics_cache_secs"), "{err}");
    let s = load(&[("OPSGUARD__HTTP__METRICS_CACHE_SECS", "1")]).unwrap();
    assert_eq!(s.http.metrics_cache_secs, 1);
}

#[test]
fn no_room_for_work_or_for_the_permission_cache_stops_loading() {
    for var in [
        "OPSGUARD__TELEGRAM__MAX_UPDATES_IN_WORK",
        "OPSGUARD__AUTHZ__CACHE_MAX_USERS",
    ] {
        let err = load(&[(var, "0")]).unwrap_err();
        assert!(
            err.contains("telegram.max_updates_in_work / authz.cache_max_users")
                && err.contains("must be at least 1"),
            "{var}: {err}"
        );
    }
    let s = load(&[("OPSGUARD__TELEGRAM__MAX_UPDATES_IN_WORK", "3")]).unwrap();
    assert_eq!(
        (s.telegram.max_updates_in_work, s.authz.cache_max_users),
        (3, 10_000)
    );
}
