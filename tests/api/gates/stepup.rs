//! TOTP: enrolment (private chat only, confirmed by a code) and step-up in front of
//! `/revoke` — codes are single-use per 30-s step, and wrong codes lock step-up.

use super::*;
use crate::helpers::rfc6238::{code, code_now};
use opsguard::domain::ChatId;

pub const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// A master key for the vault (TOTP secrets are sealed under it).
pub fn with_key(s: &mut opsguard::config::Settings) {
    s.master_key = Some(opsguard::domain::secret::Secret::new(
        crate::secrets::MASTER_KEY,
    ));
}

/// Give `user` a confirmed authenticator for `secret`, sealed like any other.
pub async fn install(app: &TestApp, user: i64, secret: &str) {
    let key = app.engine.master_key().expect("the vault is open");
    opsguard::engine::totp::install(app.pool(), &key, UserId(user), secret)
        .await
        .unwrap();
}

/// The base32 secret in an enrolment reply's `otpauth://` URI.
pub fn enrolment_secret(reply: &str) -> String {
    assert!(reply.contains("otpauth://totp/"), "{reply}");
    let at = reply.find("secret=").unwrap() + "secret=".len();
    reply[at..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

/// A code that is not `good` (nor, but with odds of ~1e-6, one of its neighbouring steps).
pub fn wrong_code(good: &str) -> String {
    format!(
        "{:06}",
        (good.parse::<u32>().unwrap() + 500_000) % 1_000_000
    )
}

#[tokio::test]
async fn totp_enrolment_is_private_and_confirmed_by_a_code() {
    let app = spawn_app_with(with_key).await;
    add(&app, 42, "admin").await;
    let group = -100_555;
    storage::chats::allow(app.pool(), ChatId(group), "ops")
        .await
        .unwrap();
    let enrol = app.say(42, "/totp enroll").await;
    let secret = enrolment_secret(&enrol.text());
    let in_group = app.say_in(42, group, "/totp enroll").await.text();
    says(&in_group, "Enrol only in a private chat");
    assert!(!in_group.contains("otpauth"), "{in_group}");
    let pending = || async {
        storage::totp::pending(app.pool(), UserId(42))
            .await
            .unwrap()
            .expect("an enrolment in progress")
    };
    let sealed = pending().await.secret_sealed;
    let code = code_now(&secret);
    let wrong = format!("/totp confirm {}", wrong_code(&code));
    says(&app.say(42, &wrong).await.text(), "Wrong code");
    assert_eq!(
        pending().await.secret_sealed,
        sealed,
        "the refusals changed nothing"
    );
    let ok = app.say(42, &format!("/totp confirm {code}")).await.text();
    says(&ok, "Authenticator enrolled");
    let stored = storage::totp::get(app.pool(), UserId(42)).await.unwrap();
    assert!(stored.is_some_and(|e| e.confirmed));
    // A confirmed factor cannot be replaced from chat alone (a stolen account could re-enrol).
    let again = app.say(42, "/totp enroll").await.text();
    says(&again, "You already have an authenticator");
    assert!(!again.contains("otpauth"), "{again}");
    assert!(
        opsguard::engine::totp::reset(app.pool(), UserId(42))
            .await
            .unwrap()
    );
    says(&app.say(42, "/totp enroll").await.text(), "otpauth://totp/");
    app.settle().await;
    let rows = app.audit_rows().await;
    assert!(
        rows.iter().all(|r| !r.entry.args.contains(&code)),
        "codes are redacted"
    );
}

/// `/revoke` needs a TOTP code; 42 is an admin, 7 holds viewer and operator.
pub async fn stepup_app(enrolled: bool) -> TestApp {
    let app = spawn_app_with(|s| {
        with_key(s);
        s.gates.commands.get_mut("revoke").unwrap().stepup = true;
    })
    .await;
    admin_and_viewer(&app).await;
    add(&app, 7, "operator").await;
    if enrolled {
        install(&app, 42, SECRET).await;
    }
    app
}

#[tokio::test]
async fn stepup_runs_the_revoke_and_a_code_passes_only_once() {
    let app = stepup_app(true).await;
    let reply = app.say(42, "/revoke 7 viewer").await;
    says(&reply.text(), "Then you will be asked for a TOTP code.");
    let msg = reply.message_id.unwrap();
    let asked = app.press(42, &reply.buttons()[0].1, msg).await.text();
    says(&asked, "<code>/revoke 7 viewer</code> needs a TOTP code");
    assert!(
        has_role(&app, 7, "viewer").await,
        "nothing is revoked before the code"
    );
    // A code from two 30-s steps ago is outside the window of one step either side.
    let stale = app.say(42, &format!("/stepup {}", code(SECRET, -2))).await;
    says(&stale.text(), "Wrong code. 4 attempt(s) left");
    assert!(
        has_role(&app, 7, "viewer").await,
        "a stale code revokes nothing"
    );
    let code = code_now(SECRET);
    let done = app.say(42, &format!("/stepup {code}")).await.text();
    says(&done, "no longer has the role <b>viewer</b>");
    assert!(!has_role(&app, 7, "viewer").await);
    // The same code (its 30-s step already used) cannot pass a second prompt.
    says(
        &confirmed(&app, "/revoke 7 operator").await,
        "needs a TOTP code",
    );
    let replay = app.say(42, &format!("/stepup {code}")).await.text();
    says(&replay, "Wrong code");
    assert!(has_role(&app, 7, "operator").await);
    let revoke = attempts(&app, "revoke").await;
    let passed = |(d, r): &&(String, String)| d == "allowed" && r == "TOTP step-up passed";
    assert_eq!(revoke.iter().filter(passed).count(), 1);
}

#[tokio::test]
async fn an_expired_stepup_prompt_takes_no_code_and_revokes_nothing() {
    let app = spawn_app_with(|s| {
        with_key(s);
        s.gates.commands.get_mut("revoke").unwrap().stepup = true;
        s.gates.stepup_ttl_secs = 1;
    })
    .await;
    admin_and_viewer(&app).await;
    install(&app, 42, SECRET).await;
    let asked = confirmed(&app, "/revoke 7 viewer").await;
    says(&asked, "needs a TOTP code");
    wait_expired(&app).await;
    let code = code_now(SECRET);
    let late = app.say(42, &format!("/stepup {code}")).await.text();
    says(&late, "No step-up prompt is waiting for you in this chat.");
    assert!(has_role(&app, 7, "viewer").await, "nothing revoked");
    let revoke = attempts(&app, "revoke").await;
    assert!(revoke.iter().all(|(d, _)| d == "pending"), "{revoke:?}");
    // The code was not spent on the expired prompt: a fresh one takes it.
    says(
        &confirmed(&app, "/revoke 7 viewer").await,
        "needs a TOTP code",
    );
    let done = app.say(42, &format!("/stepup {code}")).await.text();
    says(&done, "no longer has the role <b>viewer</b>");
}

#[tokio::test]
async fn five_wrong_codes_lock_stepup_and_revoke_nothing() {
    let app = stepup_app(true).await;
    says(
        &confirmed(&app, "/revoke 7 viewer").await,
        "needs a TOTP code",
    );
    let good = code_now(SECRET);
    let wrong = format!("/stepup {}", wrong_code(&good));
    for left in (1..=4).rev() {
        let reply = app.say(42, &wrong).await.text();
        says(&reply, &format!("Wrong code. {left} attempt(s) left"));
    }
    says(&app.say(42, &wrong).await.text(), "Step-up is now locked");
    let late = app.say(42, &format!("/stepup {good}")).await.text();
    says(&late, "Step-up is locked after too many wrong codes");
    assert!(has_role(&app, 7, "viewer").await);
    let revoke = attempts(&app, "revoke").await;
    assert!(revoke.iter().all(|(d, _)| d == "pending"), "{revoke:?}");
}

#[tokio::test]
async fn stepup_without_an_authenticator_says_to_enrol() {
    let app = stepup_app(false).await;
    let reply = confirmed(&app, "/revoke 7 viewer").await;
    says(&reply, "Send /totp enroll in a private chat first");
    let stray = app.say(42, "/stepup 123456").await.text();
    says(&stray, "No step-up prompt is waiting");
    assert!(has_role(&app, 7, "viewer").await);
    let last = attempts(&app, "revoke").await.pop().unwrap();
    assert_eq!(
        [last],
        *pairs(&[("denied", "step-up required, not enrolled")])
    );
}
