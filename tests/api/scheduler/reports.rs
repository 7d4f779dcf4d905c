//! What scheduled runs report: a command the `scheduler` role lacks is denied, audited and
//! reported; a group chat must be allow-listed; `/schedules` lists it all, escaped.

use super::{CHAT, app_with, at, outbox, runs, says, sched};
use chrono::{DateTime, Utc};
use opsguard::domain::{Actor, Chat, ChatId, UserId};
use opsguard::engine::{Input, Request};
use opsguard::scheduler::Scheduler;
use opsguard::scheduler::job::Job;
use opsguard::storage;

#[tokio::test]
async fn a_command_the_scheduler_role_lacks_is_denied_audited_and_reported() {
    let group = -1_001_234;
    let app = app_with(vec![
        sched("users", "0 0 * * * *", "/users", CHAT),
        sched("group", "0 0 * * * *", "/status", group),
    ])
    .await;
    let scheduler = Scheduler::new(app.engine.clone()).unwrap();
    let mut ran = scheduler.run_due(at(8, 0, 5)).await;
    ran.sort_by(|a, b| a.schedule.cmp(&b.schedule));
    let decisions: Vec<_> = ran
        .iter()
        .map(|r| (r.schedule.as_str(), r.decision.as_str()))
        .collect();
    assert_eq!(decisions, [("group", "denied"), ("users", "denied")]);

    // No users.read for the scheduler role: denied, audited with the reason, and the
    // report says so.
    let rows = storage::audit::for_request(app.pool(), &ran[1].request_id)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        let e = &row.entry;
        assert_eq!(
            (
                e.actor_kind.as_str(),
                e.command.as_str(),
                e.decision.as_str()
            ),
            ("scheduler", "users", "denied")
        );
        assert_eq!(e.reason.as_deref(), Some("missing permission users.read"));
    }
    let queued = outbox(&app, "schedule:users").await;
    assert_eq!(queued.len(), 1);
    says(&queued[0].1, "⛔ You may not run /users.");
    says(
        &runs(&app, "users").await[0].2.clone().unwrap(),
        "missing permission users.read",
    );

    // A group that is not allow-listed: denied and audited, nothing sent there.
    let rows = storage::audit::for_request(app.pool(), &ran[0].request_id)
        .await
        .unwrap();
    assert_eq!(
        rows[0].entry.reason.as_deref(),
        Some("chat not allow-listed")
    );
    assert!(outbox(&app, "schedule:group").await.is_empty());
    // Allow-listed, the next fire time runs and reports to the group.
    storage::chats::allow(app.pool(), ChatId(group), "ops")
        .await
        .unwrap();
    let ran = scheduler.run_due(at(9, 0, 5)).await;
    let group_run = ran.iter().find(|r| r.schedule == "group").unwrap();
    assert_eq!(group_run.decision, "allowed");
    let queued = outbox(&app, "schedule:group").await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].0, group);
}

#[tokio::test]
async fn schedules_lists_cron_command_next_run_and_escaped_last_result() {
    let mut off = sched("weekly-off", "0 30 4 * * Mon", "/audit 5", CHAT);
    off.enabled = false;
    let daily = sched("daily", "0 0 6 * * *", "/audit verify", CHAT);
    let app = app_with(vec![daily.clone(), off]).await;
    app.add_user(7, "viewer").await;
    let scheduler = Scheduler::new(app.engine.clone()).unwrap();
    assert_eq!(scheduler.run_due(at(6, 0, 30)).await.len(), 1);
    // A result with markup (as a check's output might have) is shown escaped.
    sqlx::query("INSERT INTO schedule_runs (schedule, fire_at, claimed_by, finished_at, decision, result) VALUES ('weekly-off', $1, 'test', now(), 'allowed', '<b>x</b> & y')")
        .bind(at(4, 30, 0))
        .execute(app.pool())
        .await
        .unwrap();

    let job = Job::compile(&daily).unwrap();
    let next_before = job.next_fire(Utc::now()).unwrap();
    let ask = |line: &str| {
        let (actor, chat) = (Actor::console(UserId(7)), Chat::private(UserId(7)));
        Request::new(actor, chat, Input::Text(line.into()))
    };
    let text = app.engine.handle(ask("/schedules")).await.unwrap().html;
    let next_after = job.next_fire(Utc::now()).unwrap();
    says(&text, "<b>2 schedules</b>");
    says(
        &text,
        "<b>daily</b> — enabled\n<code>0 0 6 * * *</code> → <code>/audit verify</code> in chat <code>4242</code>",
    );
    let next = |t: DateTime<Utc>| format!("Next: {}", t.format("%Y-%m-%d %H:%M:%S UTC"));
    assert!(
        text.contains(&next(next_before)) || text.contains(&next(next_after)),
        "{text}"
    );
    says(
        &text,
        "Last: 2024-03-01 06:00:00 UTC · allowed · ok: ✅ Audit chain intact",
    );
    says(
        &text,
        "<b>weekly-off</b> — disabled\n<code>0 30 4 * * Mon</code> → <code>/audit 5</code>",
    );
    says(&text, "Next: — (disabled)");
    says(
        &text,
        "Last: 2024-03-01 04:30:00 UTC · allowed · &lt;b&gt;x&lt;/b&gt; &amp; y",
    );
    assert!(!text.contains("<b>x</b>"), "{text}");

    // Wrong arguments get the usage.
    let text = app
        .engine
        .handle(ask("/schedules extra"))
        .await
        .unwrap()
        .html;
    says(&text, "Usage: <code>/schedules</code>");
}

#[tokio::test]
async fn a_schedule_without_a_chat_runs_audited_and_reports_nowhere() {
    let app = app_with(vec![sched("prune", "0 30 3 * * *", "/prune_logins", 0)]).await;
    sqlx::query(
        "INSERT INTO auth_events (at, ip, account, service, outcome, sender)
         VALUES (now() - interval '100 days', '203.0.113.7', 'a', 'sso', 'failure', 'test'),
                (now() - interval '1 day', '203.0.113.7', 'a', 'sso', 'failure', 'test')",
    )
    .execute(app.pool())
    .await
    .unwrap();
    let scheduler = Scheduler::new(app.engine.clone()).unwrap();
    let ran = scheduler.run_due(at(3, 30, 5)).await;
    assert_eq!(ran.len(), 1);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM auth_events")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(left, 1, "the 100-day-old event was pruned");
    assert!(
        outbox(&app, "schedule:prune").await.is_empty(),
        "no chat, no report"
    );
    let recorded = runs(&app, "prune").await;
    assert_eq!(recorded[0].1.as_deref(), Some("allowed"));
    assert!(
        recorded[0].2.as_deref().unwrap_or("").contains("Removed 1"),
        "{recorded:?}"
    );
    app.add_user(7, "viewer").await;
    let (actor, chat) = (Actor::console(UserId(7)), Chat::private(UserId(7)));
    let ask = Request::new(actor, chat, Input::Text("/schedules".into()));
    says(&app.engine.handle(ask).await.unwrap().html, "(no report)");
}
