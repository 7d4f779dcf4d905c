//! Secret rotation through the pipeline, with an `api_key` secret delivered to an env file:
//! `/secrets`, `/rotate` behind its gates, the vault's sealing, failures that leave the old
//! value current, and the canary rule (a value never reaches chat, audit rows or errors).
//! Start-up with a wrong or missing master key is in `secrets/startup.rs`; crashes at each
//! step in `secrets/crash.rs`.

mod crash;
mod failures;
mod inside_grace;
mod resumed;
mod signing;
mod startup;
mod zero_downtime;

use super::gates::add;
use super::helpers::*;
use base64::Engine as _;
use opsguard::config::{PolicySettings, SecretSettings, Settings, SinkSettings};
use std::path::{Path, PathBuf};

pub const MASTER_KEY: &str = "b3BzZ3VhcmQtdGVzdC1tYXN0ZXIta2V5LTMyYnl0ZXM=";

/// A directory of its own under the system temp dir, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("opsguard-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An `api_key` secret named `name`, delivered to `env_file`, approval as given.
pub fn api_key(name: &str, env_file: &Path, approval: bool) -> SecretSettings {
    SecretSettings {
        name: name.into(),
        kind: "api_key".into(),
        target: Default::default(),
        policy: PolicySettings {
            approval: Some(approval),
            grace_secs: Some(3600),
            ..Default::default()
        },
        sinks: vec![SinkSettings::EnvFile {
            path: env_file.to_string_lossy().into_owned(),
        }],
    }
}

pub fn with_vault(s: &mut Settings, secrets: Vec<SecretSettings>) {
    s.master_key = Some(opsguard::domain::secret::Secret::new(MASTER_KEY));
    s.secrets = secrets;
    s.rotation.alert_chats = vec![-100_555];
}

/// The value an env file holds for `name`.
pub fn env_value(path: &Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_string))
}

/// The fingerprint the design promises (first 8 hex digits of SHA-256), computed here
/// with `sha2` rather than by the product (`helpers::sha256_fingerprint`, checked against
/// a known answer).
pub fn fingerprint(value: &str) -> String {
    sha256_fingerprint(value)
}

/// `/rotate <name>` as `user`, confirmed with the button; the reply to the press.
pub async fn rotate(app: &TestApp, user: i64, name: &str) -> String {
    let prompt = app.say(user, &format!("/rotate {name}")).await;
    let buttons = prompt.buttons();
    assert_eq!(buttons.len(), 2, "{}", prompt.text());
    app.press(user, &buttons[0].1, prompt.message_id.unwrap())
        .await
        .text()
}

/// Everything a value must never appear in: every Bot API call, every message queued in
/// the outbox (sent or not yet), every audit row, every rotation error and every sealed
/// value in the vault. Checked once no update is in flight (each has written its audit rows
/// and handed its reply over or queued it).
pub async fn assert_nowhere(app: &TestApp, value: &str) {
    app.settle().await;
    let queued: Vec<String> = sqlx::query_scalar("SELECT html FROM outbox")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert!(
        queued.iter().all(|html| !html.contains(value)),
        "queued for Telegram in the outbox"
    );
    for call in app.telegram.calls() {
        assert!(
            !call.body.to_string().contains(value),
            "leaked to Telegram: {}",
            call.method
        );
    }
    for row in app.audit_rows().await {
        assert!(
            !format!("{:?}", row.entry).contains(value),
            "leaked to the audit log"
        );
    }
    let errors: Vec<Option<String>> = sqlx::query_scalar("SELECT error FROM rotations")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert!(
        errors.iter().flatten().all(|e| !e.contains(value)),
        "leaked into an error"
    );
    let sealed: Vec<Vec<u8>> = sqlx::query_scalar("SELECT sealed FROM secret_versions")
        .fetch_all(app.pool())
        .await
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(value);
    for s in sealed {
        let s = String::from_utf8_lossy(&s);
        assert!(!s.contains(value) && !s.contains(&b64), "stored in clear");
    }
}

#[tokio::test]
async fn a_rotation_delivers_a_new_key_and_shows_only_fingerprints() {
    let dir = Scratch::new();
    let env = dir.file("app.env");
    let app = spawn_app_with(|s| with_vault(s, vec![api_key("app-key", &env, false)])).await;
    add(&app, 42, "admin").await;
    add(&app, 7, "viewer").await;
    let listed = app.say(7, "/secrets").await.text();
    assert!(listed.contains("<b>app-key</b> · api_key"), "{listed}");
    assert!(listed.contains("no current version yet") && listed.contains("never rotated"));

    let done = rotate(&app, 42, "app-key").await;
    let first = env_value(&env, "APP_KEY_API_KEY").expect("the env file holds the key");
    assert_eq!(first.len(), 43, "32 bytes, base64url");
    let print = fingerprint(&first);
    assert!(
        done.contains(&format!("version 1 <code>sha256:{print}</code> is current")),
        "{done}"
    );
    assert!(
        done.contains(&format!("env file {}", env.display())),
        "{done}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&env).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let again = rotate(&app, 42, "app-key").await;
    let second = env_value(&env, "APP_KEY_API_KEY").unwrap();
    assert_ne!(first, second);
    assert!(again.contains(&format!(
        "version 2 <code>sha256:{}</code>",
        fingerprint(&second)
    )));
    let listed = app.say(7, "/secrets").await.text();
    assert!(
        listed.contains(&format!(
            "current v2 <code>sha256:{}</code>",
            fingerprint(&second)
        )),
        "{listed}"
    );
    assert!(
        listed.contains(&format!(
            "previous v1 <code>sha256:{print}</code> works until"
        )),
        "{listed}"
    );
    assert!(
        listed.contains("succeeded") && listed.contains("by user 42"),
        "{listed}"
    );
    let states: Vec<(i32, String)> =
        sqlx::query_as("SELECT version, state FROM secret_versions ORDER BY version")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(states, vec![(1, "previous".into()), (2, "current".into())]);
    assert_nowhere(&app, &first).await;
    assert_nowhere(&app, &second).await;
}

#[tokio::test]
async fn an_unknown_secret_is_answered_at_once_with_the_known_ones() {
    let dir = Scratch::new();
    let app = spawn_app_with(|s| {
        with_vault(
            s,
            vec![
                api_key("app-key", &dir.file("a.env"), false),
                api_key("billing", &dir.file("b.env"), false),
            ],
        )
    })
    .await;
    add(&app, 42, "admin").await;
    let reply = app.say(42, "/rotate nope").await;
    assert!(
        reply.buttons().is_empty(),
        "no confirmation for an unknown secret"
    );
    assert!(
        reply
            .text()
            .contains("Unknown secret 'nope'. Known: app-key, billing."),
        "{}",
        reply.text()
    );
    let bad = app.say(42, "/rotate Bad;Name").await.text();
    assert!(bad.contains("Wrong arguments: a secret name is"), "{bad}");
    let none: i64 = sqlx::query_scalar("SELECT count(*) FROM rotations")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(none, 0);
    let viewer_tries = {
        add(&app, 7, "viewer").await;
        app.say(7, "/rotate app-key").await.text()
    };
    assert_eq!(viewer_tries, "⛔ You may not run /rotate.");
}

#[tokio::test]
async fn a_second_rotation_is_told_which_one_is_in_progress_and_by_whom() {
    let dir = Scratch::new();
    let app =
        spawn_app_with(|s| with_vault(s, vec![api_key("app-key", &dir.file("a.env"), false)]))
            .await;
    add(&app, 42, "admin").await;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO rotations (secret, requested_by, via, status, step, lease_until)
         VALUES ('app-key', 43, 'command', 'running', 'set', now() + interval '1 hour') RETURNING id",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    let reply = rotate(&app, 42, "app-key").await;
    assert!(
        reply.contains(&format!(
            "A rotation of app-key is already in progress: #{id} at step set, started by user 43"
        )),
        "{reply}"
    );
    assert!(env_value(&dir.file("a.env"), "APP_KEY_API_KEY").is_none());
}

#[tokio::test]
async fn with_approval_a_second_admin_must_approve_and_the_requester_cannot() {
    let dir = Scratch::new();
    let env = dir.file("a.env");
    let app = spawn_app_with(|s| with_vault(s, vec![api_key("app-key", &env, true)])).await;
    add(&app, 42, "admin").await;
    add(&app, 43, "admin").await;
    add(&app, 44, "operator").await;
    let asked = rotate(&app, 42, "app-key").await;
    let id = app.approval_id(&asked).await;
    let approve = format!("/approve {id}");
    assert!(
        app.say(42, &approve)
            .await
            .text()
            .contains("cannot approve or deny your own request")
    );
    assert_eq!(
        app.say(44, &approve).await.text(),
        "⛔ You may not run /approve."
    );
    assert!(
        env_value(&env, "APP_KEY_API_KEY").is_none(),
        "nothing ran yet"
    );
    let ok = app.say(43, &approve).await.text();
    assert!(ok.contains("Rotated <b>app-key</b>"), "{ok}");
    assert!(env_value(&env, "APP_KEY_API_KEY").is_some());
    assert!(
        app.say(43, &approve)
            .await
            .text()
            .contains("was already decided"),
        "a replay runs nothing"
    );
    let versions: i64 = sqlx::query_scalar("SELECT count(*) FROM secret_versions")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(versions, 1);
}

#[tokio::test]
async fn rotate_due_rotates_only_old_secrets_whose_policy_allows_the_schedule() {
    let dir = Scratch::new();
    let app = spawn_app_with(|s| {
        let mut manual = api_key("manual", &dir.file("m.env"), false);
        manual.policy.scheduled = Some(false);
        let fresh = api_key("fresh", &dir.file("f.env"), false);
        with_vault(
            s,
            vec![api_key("old", &dir.file("o.env"), false), manual, fresh],
        );
    })
    .await;
    add(&app, 42, "admin").await;
    for name in ["old", "manual", "fresh"] {
        rotate(&app, 42, name).await;
    }
    sqlx::query("UPDATE secret_versions SET promoted_at = now() - interval '100 days' WHERE secret <> 'fresh'")
        .execute(app.pool())
        .await
        .unwrap();
    let listed = app.say(42, "/secrets").await.text();
    assert!(listed.contains("next rotation: due now"), "{listed}");
    assert!(listed.contains("next rotation: not scheduled"), "{listed}");
    let reply = app.say(42, "/rotate_due").await.text();
    assert!(reply.contains("Rotated <b>old</b>"), "{reply}");
    assert!(
        !reply.contains("manual") && !reply.contains("fresh"),
        "{reply}"
    );
    let versions: Vec<(String, i64)> = sqlx::query_as(
        "SELECT secret, count(*) FROM secret_versions GROUP BY secret ORDER BY secret",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    let expected = [("fresh", 1), ("manual", 1), ("old", 2)].map(|(s, n)| (s.to_string(), n));
    assert_eq!(versions, expected.to_vec());
    assert_eq!(
        app.say(42, "/rotate_due").await.text(),
        "No scheduled rotation is due."
    );
}

#[tokio::test]
async fn a_secret_whose_policy_asks_for_totp_is_not_rotated_without_it() {
    let dir = Scratch::new();
    let env = dir.file("a.env");
    let app = spawn_app_with(|s| {
        let mut secret = api_key("app-key", &env, false);
        secret.policy.totp = true;
        with_vault(s, vec![secret]);
    })
    .await;
    add(&app, 42, "admin").await;
    let prompt = app.say(42, "/rotate app-key").await;
    assert!(
        prompt
            .text()
            .contains("Then you will be asked for a TOTP code."),
        "{}",
        prompt.text()
    );
    let reply = app
        .press(42, &prompt.buttons()[0].1, prompt.message_id.unwrap())
        .await
        .text();
    assert!(
        reply.contains("needs a TOTP code, and you have no authenticator enrolled"),
        "{reply}"
    );
    assert!(env_value(&env, "APP_KEY_API_KEY").is_none());
    let none: i64 = sqlx::query_scalar("SELECT count(*) FROM rotations")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(none, 0);
}
