//! A rotation interrupted by a stop (issue 20): the real binary is aborted after a step
//! (the `[rotation] crash_at` test hook), and the next process's tick resumes it and tells
//! the admin who requested it and the rotation's alert chats that it was interrupted and is
//! resumed, then that it finished — through the outbox, one notice each per chat.

use super::crash::{cli, config_with_secret};
use super::*;
use opsguard::domain::secret::Secret;

const REQUESTER: i64 = 42;
const ALERT_CHAT: i64 = -100_555;

#[tokio::test]
async fn an_interrupted_rotation_tells_its_requester_and_alert_chats_it_resumed_and_finished() {
    let db = TestDb::create().await;
    let dir = Scratch::new();
    let env = dir.file("app.env");
    let role = format!("og_rs_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let config = config_with_secret(&dir, &env, &db, &role);
    let (ok, out) = cli(
        &db,
        &config,
        Some("set:after"),
        &["secret", "rotate", "app-key"],
    )
    .await;
    assert!(!ok && out.contains("crash_at set:after"), "{out}");
    // As when an admin confirmed it in chat (a shell rotation has no requester to tell).
    sqlx::query("UPDATE rotations SET requested_by = $1")
        .bind(REQUESTER)
        .execute(&db.pool)
        .await
        .unwrap();
    wait_for("the dead process's lease to run out", || async {
        sqlx::query_scalar::<_, bool>("SELECT bool_and(lease_until < now()) FROM rotations")
            .fetch_one(&db.pool)
            .await
            .unwrap()
    })
    .await;
    let mut settings = Settings::load_with(
        &[
            ("OPSGUARD_CONFIG".to_string(), config.display().to_string()),
            ("DATABASE_URL".to_string(), db.url.clone()),
        ]
        .into(),
    )
    .unwrap();
    settings.master_key = Some(Secret::new(MASTER_KEY));
    settings.rotation.alert_chats = vec![ALERT_CHAT];
    let rotations = opsguard::secrets::open(&db.pool, &settings)
        .await
        .unwrap()
        .unwrap();
    rotations.tick().await.unwrap();

    let status: String = sqlx::query_scalar("SELECT status FROM rotations")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(status, "succeeded");
    let notices: Vec<(i64, String)> =
        sqlx::query_as("SELECT chat_id, html FROM outbox WHERE source = 'rotation' ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let to = |chat: i64| -> Vec<String> {
        notices
            .iter()
            .filter(|(c, _)| *c == chat)
            .map(|(_, h)| h.clone())
            .collect()
    };
    for chat in [REQUESTER, ALERT_CHAT] {
        let said = to(chat);
        assert_eq!(said.len(), 2, "{chat}: {said:?}");
        assert!(
            said[0].contains(
                "of <b>app-key</b> was interrupted by a stop after step <code>set</code>"
            ) && said[0].contains("is resumed now"),
            "{}",
            said[0]
        );
        assert!(
            said[1].contains("of <b>app-key</b>, resumed after a stop, finished: version 1"),
            "{}",
            said[1]
        );
    }
    assert_eq!(notices.len(), 4, "nobody else: {notices:?}");
    // A rotation that is not interrupted tells nobody of a resume.
    let again = rotations
        .request("app-key", Some(REQUESTER), "command")
        .await
        .unwrap();
    assert!(
        matches!(again, opsguard::secrets::rotate::Requested::Ran(_)),
        "{again:?}"
    );
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE source = 'rotation'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(after, 4);
}
