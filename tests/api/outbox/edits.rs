//! Edits through the outbox (progress messages): an edit row becomes `editMessageText` of the
//! message its original row delivered; pending edits of one message coalesce into the latest
//! text; an edit of a message the user deleted carries on in a new message, which later edits
//! then target.

use super::*;

/// Queue an edit of `row`'s message as the backups' progress does: at once, no buttons.
async fn queue_edit(app: &TestApp, row: i64, html: &str) -> i64 {
    outbox::enqueue_edit(
        app.pool(),
        row,
        html,
        Duration::ZERO,
        outbox::EditButtons::Remove,
    )
    .await
    .unwrap()
    .expect("the edit was queued")
}

async fn sent(app: &TestApp, row: i64) -> Option<i64> {
    for _ in 0..200 {
        let (status, message): (String, Option<i64>) =
            sqlx::query_as("SELECT status, message_id FROM outbox WHERE id = $1")
                .bind(row)
                .fetch_one(app.pool())
                .await
                .unwrap();
        if status == "sent" {
            return message;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("row {row} was not sent");
}

#[tokio::test]
async fn edits_target_the_delivered_message_coalesce_and_survive_its_deletion() {
    let app = spawn_app_with(fast).await;
    let chat = 601;
    let first = queue(&app, chat, "step 1").await;
    let message = sent(&app, first).await.expect("a message id was recorded");

    let edit = queue_edit(&app, first, "step 2").await;
    assert_eq!(sent(&app, edit).await, Some(message));
    let edits = app.telegram.calls_to("editMessageText");
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0].body["message_id"].as_i64(), Some(message));
    assert_eq!(edits[0].text(), "step 2");

    // Two edits queued while the chat is held coalesce: only the latest text goes out.
    app.telegram.hold_chats([chat]);
    let held = queue_edit(&app, first, "step 3").await;
    // Wait until the worker holds it in flight (leased), so the next edit cannot touch it.
    for _ in 0..400 {
        let (leased,): (bool,) =
            sqlx::query_as("SELECT lease_until IS NOT NULL FROM outbox WHERE id = $1")
                .bind(held)
                .fetch_one(app.pool())
                .await
                .unwrap();
        if leased {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let a = queue_edit(&app, first, "step 4").await;
    let b = queue_edit(&app, first, "step 5").await;
    assert_eq!(a, b, "a pending edit is overwritten, not queued again");
    app.telegram.release_all();
    sent(&app, held).await;
    sent(&app, b).await;
    let texts: Vec<String> = app
        .telegram
        .calls_to("editMessageText")
        .iter()
        .map(|c| c.text())
        .collect();
    assert!(!texts.contains(&"step 4".to_string()), "{texts:?}");
    assert_eq!(texts.last().map(String::as_str), Some("step 5"));

    // The user deleted the message: the next edit becomes a new message, and the one after
    // edits that new message.
    app.telegram.delete_message(message);
    let before = messages(&app, chat).len();
    let c = queue_edit(&app, first, "step 6").await;
    let replacement = sent(&app, c).await.expect("the new message's id");
    assert_ne!(replacement, message);
    let now = messages(&app, chat);
    assert_eq!(now.len(), before + 1);
    assert_eq!(now.last().unwrap().text(), "step 6");
    let d = queue_edit(&app, first, "step 7").await;
    sent(&app, d).await;
    let last = app
        .telegram
        .calls_to("editMessageText")
        .last()
        .cloned()
        .unwrap();
    assert_eq!(last.body["message_id"].as_i64(), Some(replacement));
    assert_eq!(last.text(), "step 7");
}
