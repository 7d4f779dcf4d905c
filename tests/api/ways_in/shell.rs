//! The shell as the README shows it: `opsguard chat allow -1001234567890 --title on-call`
//! (a group's id is negative, which must not be read as a flag), run as the real binary.

use crate::helpers::*;
use opsguard::domain::ChatId;
use opsguard::storage::chats;

async fn run(db: &TestDb, args: &[&str]) -> (bool, String, String) {
    let out = crate::process::opsguard(db)
        .args(args)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn chat_allow_and_remove_take_a_negative_group_id() {
    let db = TestDb::create().await;
    let (ok, stdout, stderr) = run(
        &db,
        &["chat", "allow", "-1001234567890", "--title", "on-call"],
    )
    .await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("chat -1001234567890 is allow-listed"),
        "{stdout}"
    );
    assert!(
        chats::is_allowed(&db.pool, ChatId(-1_001_234_567_890))
            .await
            .unwrap()
    );
    let (ok, stdout, _) = run(&db, &["chat", "list"]).await;
    assert!(ok);
    assert!(stdout.contains("-1001234567890\ton-call"), "{stdout}");
    let (ok, stdout, stderr) = run(&db, &["chat", "remove", "-1001234567890"]).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("chat -1001234567890 removed"), "{stdout}");
    assert!(
        !chats::is_allowed(&db.pool, ChatId(-1_001_234_567_890))
            .await
            .unwrap()
    );
    // A real flag is still a flag: an unknown one is refused, nothing allowed.
    let (ok, _, stderr) = run(&db, &["chat", "allow", "-100", "--nope"]).await;
    assert!(!ok && stderr.contains("--nope"), "{stderr}");
    assert!(chats::list(&db.pool).await.unwrap().is_empty());
}
