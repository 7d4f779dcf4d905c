//! TOTP step-up against someone who holds an admin's Telegram session and reads the whole
//! chat history: the enrolment URI is protected and deleted (on confirmation, or at expiry
//! even across a restart), the secret is sealed in the database, a confirmed authenticator
//! is replaced only with its current code, and guessing codes locks step-up for longer and
//! longer while every admin is told.

use super::stepup::{SECRET, enrolment_secret, install, with_key, wrong_code};
use super::*;
use crate::helpers::rfc6238::code_now;
use std::time::Duration;

/// Wait until the database knows which message showed 42's enrolment URI.
async fn enrolment_message(app: &TestApp) -> i64 {
    for _ in 0..500 {
        let pending = storage::totp::pending(app.pool(), UserId(42))
            .await
            .unwrap();
        if let Some(id) = pending.and_then(|p| p.message_id) {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the enrolment message was never recorded");
}

/// Every text column of the TOTP tables, as one string.
pub async fn stored_text(app: &TestApp) -> String {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT coalesce(secret_b32, '') || encode(secret_sealed, 'escape') FROM totp_enrolments
         UNION ALL SELECT encode(secret_sealed, 'escape') FROM totp_pending",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    rows.concat()
}

#[tokio::test]
async fn the_enrolment_uri_is_protected_sealed_and_deleted_once_confirmed() {
    let app = spawn_app_with(with_key).await;
    add(&app, 42, "admin").await;
    let shown = app.say(42, "/totp enroll").await;
    assert!(
        shown.protected(),
        "sent without protect_content: {}",
        shown.raw()
    );
    let secret = enrolment_secret(&shown.text());
    let message = shown.message_id.unwrap();
    assert_eq!(enrolment_message(&app).await, message);
    assert!(
        !stored_text(&app).await.contains(&secret),
        "stored in clear"
    );
    let code = code_now(&secret);
    says(
        &app.say(42, &format!("/totp confirm {code}")).await.text(),
        "Authenticator enrolled",
    );
    // What the hijacker would scroll back to is gone.
    app.telegram
        .wait_until("the URI message deleted", |_| {
            app.telegram.deletions().contains(&(42, message))
        })
        .await;
    assert!(
        !stored_text(&app).await.contains(&secret),
        "stored in clear"
    );
    let plain: Option<String> =
        sqlx::query_scalar("SELECT secret_b32 FROM totp_enrolments WHERE telegram_id = 42")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(plain, None);
    app.settle().await;
    for row in app.audit_rows().await {
        assert!(!format!("{:?}", row.entry).contains(&secret), "audited");
    }
}

#[tokio::test]
async fn an_unconfirmed_enrolment_expires_and_its_message_is_deleted_after_a_restart() {
    // The first process never sweeps again after its start; it dies with the enrolment open.
    let first = spawn_app_with(|s| {
        with_key(s);
        s.gates.totp_enrol_ttl_secs = 1;
        s.gates.sweep_interval_ms = 500_000;
    })
    .await;
    add(&first, 42, "admin").await;
    let shown = first.say(42, "/totp enroll").await;
    let secret = enrolment_secret(&shown.text());
    let message = enrolment_message(&first).await;
    // Another process on the same database (sharing the fake Bot API) takes over.
    let second = first
        .spawn_replica_with(|s| {
            with_key(s);
            s.gates.totp_enrol_ttl_secs = 1;
            s.gates.sweep_interval_ms = 100;
        })
        .await;
    drop(first);
    second
        .telegram
        .wait_until("the expired URI message deleted", |_| {
            second.telegram.deletions().contains(&(42, message))
        })
        .await;
    // The expired secret is gone too: a code from it enrols nothing.
    let code = code_now(&secret);
    let late = second
        .say(42, &format!("/totp confirm {code}"))
        .await
        .text();
    says(&late, "No enrolment is waiting");
    let stored = storage::totp::get(second.pool(), UserId(42)).await.unwrap();
    assert!(stored.is_none(), "an expired enrolment confirmed nothing");
}

#[tokio::test]
async fn replacing_an_authenticator_takes_its_current_code() {
    let app = spawn_app_with(with_key).await;
    add(&app, 42, "admin").await;
    install(&app, 42, SECRET).await;
    const SEALED: &str = "SELECT secret_sealed FROM totp_enrolments WHERE telegram_id = 42";
    let sealed = || sqlx::query_scalar::<_, Vec<u8>>(SEALED).fetch_one(app.pool());
    let before = sealed().await.unwrap();
    // The hijacker has the session, not the authenticator.
    let bare = app.say(42, "/totp enroll").await.text();
    says(&bare, "You already have an authenticator");
    let good = code_now(SECRET);
    let guessed = app
        .say(42, &format!("/totp enroll {}", wrong_code(&good)))
        .await
        .text();
    says(&guessed, "Wrong code");
    assert!(!guessed.contains("otpauth") && !bare.contains("otpauth"));
    assert!(
        storage::totp::pending(app.pool(), UserId(42))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(sealed().await.unwrap(), before, "nothing changed");
    // The owner, with the current code, may replace it; the old one holds until confirmed.
    let shown = app.say(42, &format!("/totp enroll {good}")).await;
    let secret = enrolment_secret(&shown.text());
    assert_eq!(sealed().await.unwrap(), before);
    let code = code_now(&secret);
    says(
        &app.say(42, &format!("/totp confirm {code}")).await.text(),
        "Authenticator enrolled",
    );
    assert_ne!(sealed().await.unwrap(), before);
}

#[tokio::test]
async fn without_a_master_key_enrolment_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    add(&app, 42, "admin").await;
    let reply = app.say(42, "/totp enroll").await.text();
    says(&reply, "OPSGUARD_MASTER_KEY is not set");
    assert!(!reply.contains("otpauth"), "{reply}");
    let rows: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM totp_enrolments) + (SELECT count(*) FROM totp_pending)",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(rows, 0);
}

/// Five wrong `/stepup` codes from 42 (the default `totp_max_failures`); the last reply.
async fn five_wrong(app: &TestApp) -> String {
    let wrong = format!("/stepup {}", wrong_code(&code_now(SECRET)));
    let mut last = String::new();
    for _ in 0..5 {
        last = app.say(42, &wrong).await.text();
    }
    last
}

/// The lockout is over, as if its time had passed (the step-up prompt is still open).
async fn unlock(app: &TestApp) {
    sqlx::query("UPDATE totp_enrolments SET locked_until = now() WHERE telegram_id = 42")
        .execute(app.pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn each_lockout_doubles_up_to_a_day_and_every_admin_is_told() {
    let app = spawn_app_with(|s| {
        with_key(s);
        s.gates.commands.get_mut("revoke").unwrap().stepup = true;
        s.rate_limits.operate = 1_000;
    })
    .await;
    add(&app, 42, "admin").await;
    add(&app, 43, "admin").await;
    add(&app, 7, "viewer").await;
    install(&app, 42, SECRET).await;
    says(
        &confirmed(&app, "/revoke 7 viewer").await,
        "needs a TOTP code",
    );
    says(&five_wrong(&app).await, "Step-up is now locked for 15 min");
    unlock(&app).await;
    says(&five_wrong(&app).await, "Step-up is now locked for 30 min");
    unlock(&app).await;
    says(&five_wrong(&app).await, "Step-up is now locked for 60 min");
    sqlx::query(
        "UPDATE totp_enrolments SET locked_until = now(), lockouts = 12 WHERE telegram_id = 42",
    )
    .execute(app.pool())
    .await
    .unwrap();
    says(
        &five_wrong(&app).await,
        "Step-up is now locked for 1440 min",
    );
    // Even the right code waits out the lockout.
    let good = app
        .say(42, &format!("/stepup {}", code_now(SECRET)))
        .await
        .text();
    says(&good, "Step-up is locked after too many wrong codes");
    assert!(has_role(&app, 7, "viewer").await);
    // Every admin (the other one too) hears of every lockout; the operator does not.
    let told = |chat: i64| {
        let telegram = app.telegram.clone();
        move |_: &[_]| {
            let texts: Vec<String> = telegram.sent_to(chat).iter().map(|c| c.text()).collect();
            texts
                .iter()
                .filter(|t| t.contains("TOTP step-up of user <code>42</code> is locked"))
                .count()
                == 4
        }
    };
    app.telegram
        .wait_until("admin 43 told of 4 lockouts", told(43))
        .await;
    app.telegram
        .wait_until("admin 42 told of 4 lockouts", told(42))
        .await;
    let to_operator = app.telegram.sent_to(7);
    assert!(to_operator.iter().all(|c| !c.text().contains("is locked")));
    let last = app.telegram.sent_to(43).last().unwrap().text();
    says(&last, "locked for 1440 min");
    says(&last, "opsguard user disable 42");
}
