//! TOTP secrets an older version stored in plaintext, after showing their URI in the chat
//! (where whoever holds the Telegram account reads it): sealed at start-up when a master
//! key is set, and refused for step-up and re-enrolment until a shell reset.

use super::stepup::{SECRET, enrolment_secret, with_key};
use super::totp_hijack::stored_text;
use super::*;
use crate::helpers::rfc6238::code_now;

/// A row as an older version left it: the secret in plaintext, its URI in 42's chat history.
#[tokio::test]
async fn a_secret_an_older_version_showed_in_chat_is_sealed_and_refused_until_a_shell_reset() {
    let db = TestDb::create().await;
    storage::users::upsert(&db.pool, UserId(42), "old")
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO totp_enrolments (telegram_id, secret_b32, confirmed) VALUES (42, $1, true)",
    )
    .bind(SECRET)
    .execute(&db.pool)
    .await
    .unwrap();
    let stepup = |s: &mut opsguard::config::Settings| {
        s.gates.commands.get_mut("revoke").unwrap().stepup = true;
    };
    let code = code_now(SECRET);
    // The hijacker read the old URI: codes from it pass nothing, with or without a key.
    let keyless = spawn_app_on(db.clone(), stepup).await;
    add(&keyless, 42, "admin").await;
    add(&keyless, 7, "viewer").await;
    says(
        &confirmed(&keyless, "/revoke 7 viewer").await,
        "needs a TOTP code",
    );
    let refused = keyless.say(42, &format!("/stepup {code}")).await.text();
    says(&refused, "left its secret in this chat");
    says(&refused, "opsguard user reset-totp 42");
    let app = keyless
        .spawn_replica_with(|s| {
            with_key(s);
            stepup(s);
        })
        .await;
    drop(keyless);
    // Start-up sealed it (nothing in clear at rest), and it is still refused.
    assert!(!stored_text(&app).await.contains(SECRET), "still in clear");
    says(
        &confirmed(&app, "/revoke 7 viewer").await,
        "needs a TOTP code",
    );
    let refused = app.say(42, &format!("/stepup {code}")).await.text();
    says(&refused, "left its secret in this chat");
    let reenrol = app.say(42, &format!("/totp enroll {code}")).await.text();
    says(&reenrol, "left its secret in this chat");
    let bare = app.say(42, "/totp enroll").await.text();
    says(&bare, "opsguard user reset-totp 42");
    assert!(!bare.contains("otpauth") && !reenrol.contains("otpauth"));
    assert!(has_role(&app, 7, "viewer").await);
    // After a shell reset the owner enrols afresh.
    assert!(
        opsguard::engine::totp::reset(app.pool(), UserId(42))
            .await
            .unwrap()
    );
    enrolment_secret(&app.say(42, "/totp enroll").await.text());
}

/// Without a master key, a start that finds secrets an older version left in plaintext
/// says so, and how to seal them; a start that finds none says nothing of it.
#[tokio::test]
async fn a_keyless_start_warns_of_plaintext_secrets_and_only_then() {
    let db = TestDb::create().await;
    storage::users::upsert(&db.pool, UserId(42), "old")
        .await
        .unwrap();
    let started = || async {
        let out = crate::process::opsguard(&db)
            .args(["console", "--as", "42"])
            .output()
            .await
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let clean = started().await;
    assert!(!clean.contains("totp.unsealed_secrets"), "{clean}");
    sqlx::query(
        "INSERT INTO totp_enrolments (telegram_id, secret_b32, confirmed) VALUES (42, $1, true)",
    )
    .bind(SECRET)
    .execute(&db.pool)
    .await
    .unwrap();
    let warned = started().await;
    assert!(warned.contains("totp.unsealed_secrets"), "{warned}");
    assert!(warned.contains("OPSGUARD_MASTER_KEY"), "{warned}");
}
