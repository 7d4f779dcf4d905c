//! Two-person approval that reaches the approver: each request is pushed to every other
//! admin who may decide it, with buttons that work for that admin alone, in their private
//! chat, while the request is open; the requester is told how it ended.

use super::*;
use crate::fake_telegram::Call;
use opsguard::domain::ChatId;
use opsguard::storage::chats;

const GROUP: i64 = -100_777;

/// 42 (requester), 43 and 45 admins, 7 viewer, 44 operator.
async fn three_admins(app: &TestApp) {
    admin_and_viewer(app).await;
    add(app, 43, "admin").await;
    add(app, 45, "admin").await;
    add(app, 44, "operator").await;
}

/// `/grant 7 admin` by 42, confirmed: the request id.
async fn request(app: &TestApp) -> String {
    let reply = app.say(42, "/grant 7 admin").await;
    let msg = reply.message_id.unwrap();
    let asked = app.press(42, &reply.buttons()[0].1, msg).await.text();
    says(&asked, "sent to 2 admin(s) who may approve it");
    app.approval_id(&asked).await
}

/// The copy of request `id` pushed to `admin`: (approve data, deny data, message id).
async fn copy_of(app: &TestApp, admin: i64, id: &str) -> (String, String, i64) {
    let is_copy =
        |c: &Call| c.method == "sendMessage" && c.chat_id() == Some(admin) && c.text().contains(id);
    let calls = app
        .telegram
        .wait_until(&format!("the request pushed to {admin}"), |calls| {
            calls.iter().any(is_copy)
        })
        .await;
    let copy = calls.into_iter().find(|c| is_copy(c)).unwrap();
    says(&copy.text(), "Approval needed");
    says(
        &copy.text(),
        "<code>42</code> (User42) asks to run <code>/grant 7 admin</code>",
    );
    let b = copy.buttons();
    assert_eq!(b.len(), 2, "{copy:?}");
    assert_eq!(
        (b[0].0.as_str(), b[1].0.as_str()),
        ("👍 Approve", "🚫 Deny")
    );
    (b[0].1.clone(), b[1].1.clone(), copy.message_id.unwrap())
}

/// Wait for a message to `chat` containing `needle` (sent or edited in), return its text.
async fn told(app: &TestApp, chat: i64, method: &str, needle: &str) -> Call {
    let hit =
        |c: &Call| c.method == method && c.chat_id() == Some(chat) && c.text().contains(needle);
    let calls = app
        .telegram
        .wait_until(&format!("{method} to {chat} with {needle:?}"), |calls| {
            calls.iter().any(hit)
        })
        .await;
    calls.into_iter().find(|c| hit(c)).unwrap()
}

/// Press `data` as `user` in `chat`; the callback's answer (a refusal is its text).
async fn press_in(app: &TestApp, user: i64, chat: i64, data: &str, msg: i64) -> String {
    let update_id = app.next_update_id();
    let update = callback_update(update_id, user, chat, data, msg);
    assert_eq!(app.post_update(&update).await.status(), 200);
    let id = serde_json::json!(format!("cb{update_id}"));
    let is_answer =
        |c: &Call| c.method == "answerCallbackQuery" && c.body["callback_query_id"] == id;
    let calls = app
        .telegram
        .wait_until("the answer", |c| c.iter().any(is_answer))
        .await;
    calls.into_iter().find(|c| is_answer(c)).unwrap().text()
}

/// How many times the grant ran (its `ok` outcome rows).
async fn grants_run(app: &TestApp) -> usize {
    app.settle().await;
    let rows = app.audit_rows().await;
    let ran = |r: &&storage::audit::AuditRow| {
        r.entry.command == "grant" && r.entry.outcome.as_deref() == Some("ok")
    };
    rows.iter().filter(ran).count()
}

/// The chats the request's pushes were queued for.
async fn pushed_chats(app: &TestApp) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT chat_id FROM outbox WHERE source = 'approval' AND edit_of IS NULL
         AND html LIKE '%Approval needed%' ORDER BY chat_id",
    )
    .fetch_all(app.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn every_other_admin_gets_the_request_and_approve_runs_it_and_tells_the_requester() {
    let app = spawn_app().await;
    three_admins(&app).await;
    let id = request(&app).await;
    let (approve43, _, msg43) = copy_of(&app, 43, &id).await;
    let (approve45, _, msg45) = copy_of(&app, 45, &id).await;
    assert_ne!(approve43, approve45, "each admin's buttons are their own");
    // One transaction queued every copy: the requester, the viewer and the operator got none.
    assert_eq!(pushed_chats(&app).await, vec![43, 45]);
    assert!(!has_role(&app, 7, "admin").await);

    let done = app.press(43, &approve43, msg43).await.text();
    says(&done, &format!("Approved request <code>{id}</code>"));
    says(&done, "now has the role <b>admin</b>");
    assert!(has_role(&app, 7, "admin").await);
    let to_requester = told(&app, 42, "sendMessage", "approved by <code>43</code>").await;
    says(&to_requester.text(), "and ran");
    says(&to_requester.text(), "now has the role <b>admin</b>");
    let edited = told(&app, 45, "editMessageText", "Approved by <code>43</code>").await;
    assert!(
        edited.buttons().is_empty(),
        "the decided copy keeps no buttons"
    );
    told(&app, 43, "editMessageText", "Approved by <code>43</code>").await;

    // Replays, by the approver or by the other admin, are refused and run nothing again.
    let replay = app.press(43, &approve43, msg43).await.text();
    assert_eq!(replay, "This request was already decided.");
    let late = app.press(45, &approve45, msg45).await.text();
    assert_eq!(late, "This request was already decided.");
    assert_eq!(grants_run(&app).await, 1);
}

#[tokio::test]
async fn deny_tells_the_requester_who_denied_and_runs_nothing() {
    let app = spawn_app().await;
    three_admins(&app).await;
    let id = request(&app).await;
    let (_, deny45, msg45) = copy_of(&app, 45, &id).await;
    let (approve43, _, msg43) = copy_of(&app, 43, &id).await;
    let denied = app.press(45, &deny45, msg45).await.text();
    says(&denied, &format!("Denied request <code>{id}</code>"));
    let to_requester = told(&app, 42, "sendMessage", "denied by <code>45</code>").await;
    says(&to_requester.text(), "Nothing was run");
    told(&app, 43, "editMessageText", "Denied by <code>45</code>").await;
    let late = app.press(43, &approve43, msg43).await.text();
    assert_eq!(late, "This request was already decided.");
    assert!(!has_role(&app, 7, "admin").await);
    assert_eq!(grants_run(&app).await, 0);
}

#[tokio::test]
async fn only_the_admin_it_was_pushed_to_may_press_it_in_their_private_chat() {
    let app = spawn_app().await;
    three_admins(&app).await;
    chats::allow(app.pool(), ChatId(GROUP), "ops")
        .await
        .unwrap();
    let id = request(&app).await;
    let (approve43, deny43, msg43) = copy_of(&app, 43, &id).await;
    // The requester, another admin, a viewer: none may use 43's buttons.
    for user in [42, 45, 7] {
        for data in [&approve43, &deny43] {
            let answer = app.press(user, data, msg43).await.text();
            assert_eq!(answer, "This button is not yours.", "user {user}");
        }
    }
    // 43 in a group (a forwarded copy, a shared screen): refused as well.
    let in_group = press_in(&app, 43, GROUP, &approve43, msg43).await;
    assert_eq!(
        in_group,
        "This button works only in your private chat with the bot."
    );
    // Forged data in the button's shape.
    let forged = format!("ap:{}", ActionId::for_button());
    assert_eq!(
        app.press(43, &forged, msg43).await.text(),
        "This button is not valid."
    );
    assert!(!has_role(&app, 7, "admin").await);
    assert_eq!(grants_run(&app).await, 0);
    let expected = [
        ("denied", "action belongs to another user"),
        ("denied", "action used from another chat"),
        ("denied", "unknown or forged action"),
    ];
    let refused = attempts(&app, "callback").await;
    assert_eq!(refused.len(), 8, "{refused:?}");
    assert!(refused[..6].iter().all(|r| *r == pairs(&expected[..1])[0]));
    assert_eq!(refused[6..], pairs(&expected[1..]));
    // None of that spent the request: its approver still can.
    let done = app.press(43, &approve43, msg43).await.text();
    says(&done, "now has the role <b>admin</b>");
}

#[tokio::test]
async fn an_expired_request_is_told_once_and_its_buttons_refuse() {
    let app = spawn_app_with(|s| {
        s.gates.approval_ttl_secs = 1;
        s.gates.sweep_interval_ms = 100;
    })
    .await;
    three_admins(&app).await;
    // A second replica sweeps too: the requester is still told once.
    let replica = app
        .spawn_replica_with(|s| s.gates.sweep_interval_ms = 100)
        .await;
    let id = request(&app).await;
    let (approve43, _, msg43) = copy_of(&app, 43, &id).await;
    let to_requester = told(&app, 42, "sendMessage", "Your request expired").await;
    says(&to_requester.text(), &id);
    let edited = told(&app, 43, "editMessageText", "Expired undecided").await;
    assert!(edited.buttons().is_empty());
    told(&app, 45, "editMessageText", "Expired undecided").await;
    let late = app.press(43, &approve43, msg43).await.text();
    assert_eq!(late, "⌛ This request has expired. Nothing was run.");
    let typed = app.say(43, &format!("/approve {id}")).await.text();
    says(&typed, "has expired");
    // Nothing is left to claim, and the requester got exactly one message about it.
    let again = opsguard::engine::approval::sweep_expired(app.pool(), app.engine.audit()).await;
    assert_eq!(again.unwrap(), 0);
    // The request is closed in the audit log, once, as expired with nothing run.
    let closed: Vec<_> = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.entry.outcome.as_deref() == Some("expired"))
        .collect();
    assert_eq!(closed.len(), 1, "one expiry row");
    let row = &closed[0].entry;
    assert_eq!(
        (row.command.as_str(), row.args.as_str()),
        ("grant", "7 admin")
    );
    assert_eq!((row.actor_id, row.phase.as_str()), (Some(42), "outcome"));
    let asked = app.audit_rows().await;
    assert!(
        asked.iter().any(|r| r.entry.request_id == row.request_id
            && r.entry.outcome.as_deref() == Some("awaiting_approval")),
        "the expiry row closes the request that asked"
    );
    let told_rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE chat_id = 42 AND html LIKE '%Your request expired%'",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(told_rows, 1);
    assert!(!has_role(&app, 7, "admin").await);
    drop(replica);
}

#[tokio::test]
async fn sweeps_running_side_by_side_claim_each_expired_request_once() {
    // A database and no application: nothing else sweeps it.
    let db = TestDb::create().await;
    for n in 0..30 {
        let new = storage::pending::NewPending {
            kind: storage::pending::Kind::Approval,
            user: UserId(42),
            chat_id: 42,
            command: "/grant 7 admin",
            need_stepup: false,
            need_approval: false,
            request_id: &format!("r{n}"),
            ttl: chrono::Duration::seconds(-1),
        };
        storage::pending::create(&db.pool, new).await.unwrap();
    }
    let audit = opsguard::storage::audit_writer::AuditWriter::spawn(db.pool.clone(), None);
    let sweep = || opsguard::engine::approval::sweep_expired(&db.pool, &audit);
    let (a, b, c) = tokio::join!(sweep(), sweep(), sweep());
    assert_eq!(a.unwrap() + b.unwrap() + c.unwrap(), 30);
    let told_rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE chat_id = 42 AND html LIKE '%Your request expired%'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(told_rows, 30);
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT request_id) FROM audit_log WHERE outcome = 'expired'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(audited, 30);
}

#[tokio::test]
async fn an_approved_command_that_fails_is_told_as_failed() {
    let app = spawn_app().await;
    three_admins(&app).await;
    let id = request(&app).await;
    let (approve43, _, msg43) = copy_of(&app, 43, &id).await;
    copy_of(&app, 45, &id).await;
    // The user to be granted the role is removed before anyone approves.
    sqlx::query("DELETE FROM users WHERE telegram_id = 7")
        .execute(app.pool())
        .await
        .unwrap();
    let done = app.press(43, &approve43, msg43).await.text();
    says(&done, "User 7 is not known");
    let to_requester = told(&app, 42, "sendMessage", "approved by <code>43</code>").await;
    says(&to_requester.text(), "did not run to success");
    says(&to_requester.text(), "User 7 is not known");
    told(&app, 45, "editMessageText", "it failed").await;
    let status: String = sqlx::query_scalar("SELECT status FROM pending_actions WHERE id = $1")
        .bind(&id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(status, "failed");
    assert_eq!(grants_run(&app).await, 0);
}
