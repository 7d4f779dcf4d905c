//! Someone on the network guessing the webhook secret: past 20 wrong secrets a minute their
//! address is answered 429 without a comparison — even the right secret — while other
//! addresses are served; and a guessable secret never gets as far as serving.

use super::*;
use opsguard::startup::Application;

const GUESS: &str = "not-the-secret-but-a-guess-of-it-0123";

#[tokio::test]
async fn past_twenty_wrong_secrets_a_minute_an_address_gets_429_even_with_the_right_one() {
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    let attacker = client_from("127.0.0.1");
    for i in 0..20 {
        let update = text_update(app.next_update_id(), 42, 42, "/whoami");
        let (status, _) = post_from(&app, &attacker, GUESS, &update, None).await;
        assert_eq!(status, 401, "guess {} is compared and refused", i + 1);
    }
    let update = text_update(app.next_update_id(), 42, 42, "/whoami");
    let (status, _) = post_from(&app, &attacker, GUESS, &update, None).await;
    assert_eq!(status, 429, "the 21st wrong secret in a minute");
    // Blocked, its secret is not even looked at: the right one gets 429 too.
    let update = text_update(app.next_update_id(), 42, 42, "/whoami");
    let (status, _) = post_from(&app, &attacker, WEBHOOK_SECRET, &update, None).await;
    assert_eq!(status, 429, "the right secret from a blocked address");

    // Another address is served as before: its reply is the proof the route still works.
    let other = client_from("127.0.0.2");
    let update = text_update(app.next_update_id(), 42, 42, "/whoami");
    let (status, body) = post_from(&app, &other, WEBHOOK_SECRET, &update, None).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let reply = app.wait_reply(42, 0).await;
    assert!(reply.text().contains("Telegram id"), "{}", reply.text());
    assert_eq!(
        app.telegram.sent_to(42).len(),
        1,
        "nothing the blocked address sent was run"
    );
    let whoami = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.entry.command == "whoami")
        .count();
    assert_eq!(
        whoami, 2,
        "one attempt and one outcome: the other address's"
    );
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("opsguard_webhook_rejections_total{reason=\"throttled\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_is_counted_on_its_own() {
    let app = spawn_app_with(|s| s.http.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    app.add_user(42, "admin").await;
    let proxy = client_from("127.0.0.1");
    // The attacker prepends addresses of its own: the proxy's own entry (last) counts.
    let attacker = Some("198.51.100.1, 203.0.113.66");
    for _ in 0..20 {
        let update = text_update(app.next_update_id(), 42, 42, "/whoami");
        assert_eq!(
            post_from(&app, &proxy, GUESS, &update, attacker).await.0,
            401
        );
    }
    let update = text_update(app.next_update_id(), 42, 42, "/whoami");
    let blocked = post_from(&app, &proxy, WEBHOOK_SECRET, &update, attacker).await;
    assert_eq!(blocked.0, 429);
    let rotated = Some("198.51.100.2, 203.0.113.66");
    assert_eq!(
        post_from(&app, &proxy, GUESS, &update, rotated).await.0,
        429
    );
    // Telegram, through the same proxy, is another client.
    let telegram = Some("149.154.167.197");
    let (status, _) = post_from(&app, &proxy, WEBHOOK_SECRET, &update, telegram).await;
    assert_eq!(status, 200);
    app.wait_reply(42, 0).await;
    // A peer that is not a trusted proxy cannot choose the address it is counted under.
    let direct = client_from("127.0.0.3");
    for _ in 0..20 {
        let update = text_update(app.next_update_id(), 42, 42, "/whoami");
        let fake = Some("192.0.2.77");
        assert_eq!(post_from(&app, &direct, GUESS, &update, fake).await.0, 401);
    }
    let fresh = Some("192.0.2.78");
    assert_eq!(post_from(&app, &direct, GUESS, &update, fresh).await.0, 429);
}

#[tokio::test]
async fn a_guessable_webhook_secret_stops_start_up_with_a_way_to_make_a_good_one() {
    let db = TestDb::create().await;
    let short = "only-thirty-one-characters-long";
    assert_eq!(short.len(), 31);
    let bad_chars = "a-secret-with-a-space in-it-0123456789";
    for secret in [short, bad_chars] {
        for args in [&["config", "check"][..], &["serve"][..]] {
            let run = crate::process::opsguard(&db)
                .args(args)
                .env("OPSGUARD_WEBHOOK_SECRET", secret)
                .env("OPSGUARD_LISTEN", "127.0.0.1:0")
                .output();
            // A `serve` that starts would never exit: that is the failure.
            let out = tokio::time::timeout(std::time::Duration::from_secs(20), run)
                .await
                .unwrap_or_else(|_| panic!("{args:?} started with the secret {secret}"))
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(!out.status.success(), "{args:?} {secret}: {stdout}");
            assert!(stderr.contains("OPSGUARD_WEBHOOK_SECRET"), "{stderr}");
            assert!(stderr.contains("openssl rand -hex 32"), "{stderr}");
            assert!(!stderr.contains(secret) && !stdout.contains(secret));
        }
    }
    // In process too (settings built in code skip the loader's checks).
    let telegram = super::super::fake_telegram::FakeTelegram::start().await;
    let mut settings = settings_for(&db, &telegram.url);
    settings.telegram.webhook_secret = Some(opsguard::domain::secret::Secret::new(short));
    let refused = Application::build(settings).await.err().expect("refused");
    assert!(format!("{refused:#}").contains("openssl rand -hex 32"));

    // A good one passes, and `config check` shows it as a fingerprint only.
    let good = "0123456789abcdef0123456789abcdef";
    let out = crate::process::opsguard(&db)
        .args(["config", "check"])
        .env("OPSGUARD_WEBHOOK_SECRET", good)
        .env("OPSGUARD_TELEGRAM_TOKEN", BOT_TOKEN)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("webhook mode"), "{stdout}");
    assert!(
        !stdout.contains(good) && !stdout.contains(BOT_TOKEN),
        "{stdout}"
    );
    assert!(
        stdout.contains("stream ingest        off"),
        "the Redis stream is off by default: {stdout}"
    );
}
