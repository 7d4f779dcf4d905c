//! The scheduler: due schedules run once through the pipeline (as the `scheduler` actor,
//! permission-checked and audited), exactly once per fire time across replicas, missed runs
//! made up once within grace, reports queued in the outbox. Config checks are in `config`;
//! permission denials, allow-listing and `/schedules` in `reports`.

mod check_diffs;
mod config;
mod reports;

use super::helpers::*;
use chrono::{DateTime, TimeZone, Utc};
use opsguard::config::{ScheduleSettings, Settings};
use opsguard::scheduler::Scheduler;
use opsguard::storage;
use std::time::Duration;

const CHAT: i64 = 4242;

fn sched(name: &str, cron: &str, command: &str, chat: i64) -> ScheduleSettings {
    ScheduleSettings {
        name: name.into(),
        cron: cron.into(),
        command: command.into(),
        chat,
        enabled: true,
    }
}

/// An app whose own loop is off (the test drives `run_due`), with these schedules.
async fn app_with(schedules: Vec<ScheduleSettings>) -> TestApp {
    spawn_app_with(move |s| {
        s.scheduler.enabled = false;
        s.schedules = schedules;
    })
    .await
}

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, h, m, s).unwrap()
}

/// (chat_id, html) of every outbox row from `source`, oldest first.
async fn outbox(app: &TestApp, source: &str) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT chat_id, html FROM outbox WHERE source = $1 ORDER BY id")
        .bind(source)
        .fetch_all(app.pool())
        .await
        .unwrap()
}

/// (fire_at, decision, result) of every run of `schedule`, oldest first.
async fn runs(
    app: &TestApp,
    schedule: &str,
) -> Vec<(DateTime<Utc>, Option<String>, Option<String>)> {
    sqlx::query_as(
        "SELECT fire_at, decision, result FROM schedule_runs WHERE schedule = $1 ORDER BY fire_at",
    )
    .bind(schedule)
    .fetch_all(app.pool())
    .await
    .unwrap()
}

#[track_caller]
fn says(text: &str, needle: &str) {
    assert!(text.contains(needle), "expected {needle:?} in {text:?}");
}

#[tokio::test]
async fn a_due_schedule_runs_once_audited_as_the_scheduler_with_its_report_in_the_outbox() {
    let app = app_with(vec![sched(
        "verify",
        "0 */5 * * * *",
        "/audit verify",
        CHAT,
    )])
    .await;
    let scheduler = Scheduler::new(app.engine.clone()).unwrap();
    let ran = scheduler.run_due(at(10, 5, 30)).await;
    assert_eq!(ran.len(), 1, "{ran:?}");
    assert_eq!(
        (ran[0].fire_at, ran[0].decision.as_str()),
        (at(10, 5, 0), "allowed")
    );
    // Again at the same time, and later within the same fire time: nothing more runs.
    assert!(scheduler.run_due(at(10, 5, 30)).await.is_empty());
    assert!(scheduler.run_due(at(10, 9, 59)).await.is_empty());

    let queued = outbox(&app, "schedule:verify").await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].0, CHAT);
    says(
        &queued[0].1,
        "🕒 Scheduled <b>verify</b> · <code>/audit verify</code>",
    );
    says(&queued[0].1, "✅ Audit chain intact");
    assert!(ran[0].outbox_id.is_some());

    let linked: String = sqlx::query_scalar("SELECT request_id FROM schedule_runs")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(linked, ran[0].request_id, "a run names its audited request");
    let recorded = runs(&app, "verify").await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].1.as_deref(), Some("allowed"));
    says(
        recorded[0].2.as_deref().unwrap(),
        "ok: ✅ Audit chain intact",
    );

    // Audited like any other command: both rows, actor_kind "scheduler", no user, its chat.
    let rows = storage::audit::for_request(app.pool(), &ran[0].request_id)
        .await
        .unwrap();
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            let e = &r.entry;
            (
                e.phase.as_str(),
                e.actor_kind.as_str(),
                e.actor_id,
                e.chat_id,
                e.command.as_str(),
                e.args.as_str(),
                e.decision.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "attempt",
                "scheduler",
                None,
                Some(CHAT),
                "audit",
                "verify",
                "allowed"
            ),
            (
                "outcome",
                "scheduler",
                None,
                Some(CHAT),
                "audit",
                "verify",
                "allowed"
            ),
        ]
    );
    assert_eq!(rows[1].entry.outcome.as_deref(), Some("ok"));
    assert!(
        storage::audit::verify(app.pool(), app.chain_key())
            .await
            .unwrap()
            .broken
            .is_none()
    );
}

#[tokio::test]
async fn two_replicas_run_each_fire_time_once() {
    let schedule = sched("both", "0 * * * * *", "/status", CHAT);
    let app = app_with(vec![schedule.clone()]).await;
    let replica = app
        .spawn_replica_with(|s| s.scheduler.enabled = false)
        .await;
    let config = app.engine.settings().scheduler.clone();
    let one =
        Scheduler::with_schedules(app.engine.clone(), &config, std::slice::from_ref(&schedule))
            .unwrap();
    let two = Scheduler::with_schedules(replica.engine.clone(), &config, &[schedule]).unwrap();
    for minute in 0..5 {
        let now = at(9, minute, 20);
        let (a, b) = tokio::join!(one.run_due(now), two.run_due(now));
        assert_eq!(a.len() + b.len(), 1, "minute {minute}: {a:?} {b:?}");
    }
    assert_eq!(runs(&app, "both").await.len(), 5);
    assert_eq!(outbox(&app, "schedule:both").await.len(), 5);
    let attempts = app.audit_rows().await.into_iter().filter(|r| {
        r.entry.actor_kind == "scheduler"
            && r.entry.phase == "attempt"
            && r.entry.command == "status"
    });
    assert_eq!(attempts.count(), 5, "one audited run per fire time");
}

#[tokio::test]
async fn the_serve_loop_runs_schedules_once_per_fire_time_across_replicas_and_stops() {
    let every_second = sched("tick", "* * * * * *", "/help", CHAT);
    let loop_on = move |s: &mut Settings| {
        s.scheduler.tick_secs = 1;
        s.schedules = vec![every_second];
    };
    let app = spawn_app_with(loop_on.clone()).await;
    let replica = app.spawn_replica_with(loop_on).await;
    let mut count = 0;
    for _ in 0..100 {
        count = runs(&app, "tick").await.len();
        if count >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(count >= 3, "the loops ran {count} times");
    app.shutdown.cancel();
    replica.shutdown.cancel();
    // Both stopped: every scheduler loop and every run it started has ended.
    app.stopped().await;
    replica.stopped().await;
    let recorded = runs(&app, "tick").await;
    // Every claimed fire time ran exactly once: one report and one audited attempt each.
    let queued = outbox(&app, "schedule:tick").await;
    assert_eq!(queued.len(), recorded.len());
    assert!(
        recorded.iter().all(|r| r.1.as_deref() == Some("allowed")),
        "{recorded:?}"
    );
    let attempts = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.entry.actor_kind == "scheduler" && r.entry.phase == "attempt");
    assert_eq!(attempts.count(), recorded.len());
    // Stopped (both apps' tasks have ended, above): nothing was claimed since.
    assert_eq!(runs(&app, "tick").await.len(), recorded.len());
}

#[tokio::test]
async fn a_missed_run_is_made_up_once_within_grace_never_as_a_burst() {
    // Default grace: 600 s.
    let app = app_with(vec![
        sched("hourly", "0 0 * * * *", "/status", CHAT),
        sched("minutely", "0 * * * * *", "/help", CHAT),
    ])
    .await;
    assert_eq!(app.engine.settings().scheduler.grace_secs, 600);
    let scheduler = Scheduler::new(app.engine.clone()).unwrap();
    let hourly = |ran: &[opsguard::scheduler::Ran]| {
        ran.iter()
            .filter(|r| r.schedule == "hourly")
            .map(|r| r.fire_at)
            .collect::<Vec<_>>()
    };
    // 11:00 was missed; at 11:09:59 it is still within grace: made up, once.
    assert_eq!(
        hourly(&scheduler.run_due(at(11, 9, 59)).await),
        [at(11, 0, 0)]
    );
    assert!(hourly(&scheduler.run_due(at(11, 10, 0)).await).is_empty());
    // 12:00 is found only at 12:10:01, outside grace: skipped, never run later.
    assert!(hourly(&scheduler.run_due(at(12, 10, 1)).await).is_empty());
    assert!(hourly(&scheduler.run_due(at(12, 30, 0)).await).is_empty());
    let fired: Vec<_> = runs(&app, "hourly")
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(fired, [at(11, 0, 0)]);

    // Hours of downtime for a per-minute schedule: one run (the latest fire time), no burst.
    let before = runs(&app, "minutely").await.len();
    let ran = scheduler.run_due(at(15, 7, 30)).await;
    let minutely: Vec<_> = ran.iter().filter(|r| r.schedule == "minutely").collect();
    assert_eq!(minutely.len(), 1);
    assert_eq!(minutely[0].fire_at, at(15, 7, 0));
    assert_eq!(runs(&app, "minutely").await.len(), before + 1);
}
