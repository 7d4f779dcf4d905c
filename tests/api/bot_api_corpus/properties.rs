//! Property: any JSON object with a valid `update_id` gets an HTTP answer (200) and never
//! takes the process down; reading one never panics and never refuses it. Bodies come from a
//! seeded generator (`bodies.rs`); `OPSGUARD_PROPERTY_SEED` replays a failing seed.

use super::super::helpers::*;
use super::bodies::Bodies;
use opsguard::bot::inbound::Body;
use opsguard::bot::receive;

fn seed() -> u64 {
    std::env::var("OPSGUARD_PROPERTY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(19)
}

#[test]
fn reading_any_object_with_an_update_id_never_panics_nor_refuses_it() {
    let seed = seed();
    let mut bodies = Bodies::new(seed);
    let mut read_as = [0usize; 4];
    for n in 0..20_000 {
        let body = bodies.update(n);
        let update = receive::read(&body)
            .unwrap_or_else(|_| panic!("seed {seed}, body {n} refused: {body}"));
        assert_eq!(update.id, n, "seed {seed}: {body}");
        read_as[match update.body {
            Body::Message(_) => 0,
            Body::Callback(_) => 1,
            Body::Unused => 2,
            Body::Unreadable(_) => 3,
        }] += 1;
    }
    // The generator reaches every outcome, or the property says little.
    assert!(read_as.iter().all(|n| *n > 100), "{read_as:?}");
}

#[tokio::test]
async fn the_webhook_answers_every_object_with_an_update_id_and_stays_up() {
    let seed = seed();
    let app = spawn_app().await;
    app.add_user(42, "admin").await;
    let mut bodies = Bodies::new(seed);
    for _ in 0..300 {
        let body = bodies.update(app.next_update_id());
        let response = app.post_update(&body).await;
        assert_eq!(response.status(), 200, "seed {seed}: {body}");
        let text = response.text().await.unwrap();
        assert!(
            ["ok", "ignored", "unparsed", "duplicate", "dropped"].contains(&text.as_str()),
            "seed {seed}: {text} for {body}"
        );
    }
    // Still up, and still running commands.
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let before = app.telegram.sent_to(42).len();
    let update = text_update(app.next_update_id(), 42, 42, "/whoami");
    assert_eq!(app.post_update(&update).await.status(), 200);
    let reply = app.wait_reply(42, before).await;
    assert!(reply.text().contains("Telegram id"), "{}", reply.text());
}
