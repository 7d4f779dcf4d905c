//! The scheduler: runs configured command strings on cron schedules through the one
//! pipeline (`Engine::handle`, actor `scheduler`, its own role), exactly once per fire time
//! across replicas, and queues each reply in the outbox for the schedule's chat.
//!
//! `run_due(now)` does one pass for a given time (tests call it directly); `spawn` runs a
//! loop that calls it every tick until shutdown, letting a run in progress finish.
//! For each enabled schedule a pass takes the most recent fire time ≤ now; if it is within
//! the grace window it is claimed by inserting `(schedule, fire_at)` into `schedule_runs`
//! (`ON CONFLICT DO NOTHING`): only the replica whose insert wins runs it. Older fire times
//! are never considered, so after downtime a missed run is made up once, never as a burst.

pub mod job;
pub mod store;

use crate::config::{ConfigError, ScheduleSettings, SchedulerSettings};
use crate::engine::{Engine, Input, Request};
use chrono::{DateTime, Utc};
use job::Job;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What one pass did with a schedule whose fire time it claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub schedule: String,
    pub fire_at: DateTime<Utc>,
    pub request_id: String,
    /// The pipeline's decision, as audited (allowed, denied, pending, refused, …).
    pub decision: String,
    pub result: String,
    /// The outbox row of the report, when there was a reply to send.
    pub outbox_id: Option<i64>,
}

#[derive(Clone)]
pub struct Scheduler {
    engine: Engine,
    jobs: Arc<Vec<Job>>,
    grace: chrono::Duration,
    tick: Duration,
    /// Who claims runs: this process, for `schedule_runs.claimed_by`.
    replica: String,
}

impl Scheduler {
    /// The engine's configured schedules; an invalid one is an error naming it.
    pub fn new(engine: Engine) -> Result<Scheduler, ConfigError> {
        let settings = engine.settings();
        let (config, schedules) = (settings.scheduler.clone(), settings.all_schedules());
        Scheduler::with_schedules(engine, &config, &schedules)
    }

    /// Explicit schedules (what a replica configured differently would run).
    pub fn with_schedules(
        engine: Engine,
        config: &SchedulerSettings,
        schedules: &[ScheduleSettings],
    ) -> Result<Scheduler, ConfigError> {
        crate::config::validate_schedules(config, schedules)?;
        let jobs = schedules
            .iter()
            .map(Job::compile)
            .collect::<Result<Vec<_>, _>>()?;
        let grace = chrono::Duration::seconds(config.grace_secs as i64);
        let tick = Duration::from_secs(config.tick_secs);
        let id = uuid::Uuid::new_v4().simple().to_string();
        Ok(Scheduler {
            engine,
            jobs: Arc::new(jobs),
            grace,
            tick,
            replica: format!("pid{}-{}", std::process::id(), &id[..8]),
        })
    }

    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    /// One pass at `now`: claim and run every schedule that is due. Runs of different
    /// schedules go concurrently; the pass returns when all have finished.
    pub async fn run_due(&self, now: DateTime<Utc>) -> Vec<Ran> {
        let due = self
            .jobs
            .iter()
            .filter_map(|job| job.due(now, self.grace).map(|fire| (job, fire)));
        let runs = futures::future::join_all(due.map(|(job, fire)| self.try_run(job, fire)));
        runs.await.into_iter().flatten().collect()
    }

    /// Claim the fire time; if this replica won it, run the command and record the result.
    async fn try_run(&self, job: &Job, fire_at: DateTime<Utc>) -> Option<Ran> {
        let pool = self.engine.pool();
        let req = Request::new(job.actor(), job.chat, Input::Text(job.command.clone()));
        let request_id = req.id.to_string();
        match store::claim(pool, &job.name, fire_at, &self.replica, &request_id).await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                tracing::warn!(error = %e, schedule = %job.name, "scheduler.claim_failed");
                return None;
            }
        }
        tracing::info!(schedule = %job.name, %fire_at, request.id = %request_id, "scheduler.run");
        let reply = self.engine.handle(req).await;
        let audited = store::audited(pool, &request_id).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, schedule = %job.name, "scheduler.audit_read_failed");
            None
        });
        let (decision, reason, outcome) = audited.unwrap_or(("unknown".into(), None, None));
        let mut result = job::summary(outcome.as_deref(), reason.as_deref(), reply.as_ref());
        let mut outbox_id = None;
        // Chat 0: nothing is reported; the run is audited and its result recorded.
        if let Some(reply) = reply.as_ref().filter(|_| job.chat.id.0 != 0) {
            let report = job.report(fire_at, reply);
            match crate::outbox::enqueue(pool, job.chat.id.0, &report, &job.source()).await {
                Ok(id) => outbox_id = Some(id),
                Err(e) => {
                    tracing::error!(error = %e, schedule = %job.name, "scheduler.enqueue_failed");
                    result = format!("report not queued: {e}")
                        .chars()
                        .take(200)
                        .collect();
                }
            }
        }
        let finished = store::Finished {
            decision: &decision,
            result: &result,
            outbox_id,
        };
        if let Err(e) = store::finish(pool, &job.name, fire_at, &finished).await {
            tracing::warn!(error = %e, schedule = %job.name, "scheduler.record_failed");
        }
        Some(Ran {
            schedule: job.name.clone(),
            fire_at,
            request_id,
            decision,
            result,
            outbox_id,
        })
    }

    /// Run `run_due(Utc::now())` every tick until `shutdown`; a pass in progress finishes
    /// (the task is on `tracker`, which `serve` waits for within its grace period).
    pub fn spawn(self, shutdown: CancellationToken, tracker: &TaskTracker) {
        if !self.jobs.iter().any(|j| j.enabled) {
            tracing::info!("scheduler.idle: no enabled schedules");
            return;
        }
        tracker.spawn(async move {
            let mut tick = tokio::time::interval(self.tick);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => {}
                }
                self.run_due(Utc::now()).await;
            }
            tracing::info!("scheduler.stopped");
        });
    }
}
