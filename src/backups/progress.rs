//! A job's clock and its progress loop: while a stage streams, the lease is renewed and the
//! progress message edited; the stage is cut when no byte moved for the stall timeout, when
//! the job's overall deadline passes, or at shutdown (the job is then handed back to the
//! queue, not failed). Whatever is cut is dropped, and with it the programs it ran.

use super::Backups;
use super::jobs::{self, Job};
use super::messages;
use super::run::tell;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long one run of a job may take, how long its stream may stall, and the shutdown
/// that hands it back.
pub struct Clock {
    started: Instant,
    deadline: Duration,
    stall: Duration,
    shutdown: CancellationToken,
    handed_back: AtomicBool,
}

impl Clock {
    /// The limits of `target`'s jobs (`[backups]` or the target's own), from now.
    pub fn start(backups: &Backups, target: &str, shutdown: CancellationToken) -> Clock {
        let (deadline, stall) = backups.settings().limits_of(target);
        Clock {
            started: Instant::now(),
            deadline: Duration::from_secs(deadline),
            stall: Duration::from_secs(stall),
            shutdown,
            handed_back: AtomicBool::new(false),
        }
    }

    /// True once a stage was cut by shutdown: the job goes back to the queue.
    pub fn handed_back(&self) -> bool {
        self.handed_back.load(Ordering::Relaxed)
    }
}

/// Why a stage was cut, as the job's error says it.
fn stalled(stage: &str, stall: Duration, read: u64, stored: u64) -> String {
    format!(
        "stalled: no bytes moved for {}s while {stage} (stall timeout stall_secs = {}; {} read, {} stored so far)",
        stall.as_secs(),
        stall.as_secs(),
        messages::bytes(read),
        messages::bytes(stored),
    )
}

fn overdue(stage: &str, deadline: Duration) -> String {
    format!(
        "deadline exceeded: the job ran longer than its deadline of {}s (deadline_secs) while {stage}",
        deadline.as_secs()
    )
}

const HANDED_BACK: &str = "handed back to the queue: this replica is shutting down";

/// Drive `work` while renewing the lease and editing the progress message; `Err` with the
/// reason when it stalls, overruns the deadline or meets shutdown.
pub(super) async fn with_progress<T>(
    backups: &Backups,
    job: &Job,
    clock: &Clock,
    stage: &str,
    read: &AtomicU64,
    stored: &AtomicU64,
    work: impl Future<Output = T>,
) -> Result<T, String> {
    let settings = backups.settings();
    let lease = Duration::from_secs(settings.lease_secs.max(3));
    let every = Duration::from_secs(settings.progress_every_secs.max(1));
    let started = Instant::now();
    let (mut renewed, mut edited) = (Instant::now(), Instant::now());
    let deadline = tokio::time::Instant::from_std(clock.started + clock.deadline);
    let moved = || read.load(Ordering::Relaxed) + stored.load(Ordering::Relaxed);
    let (mut last, mut moved_at) = (moved(), Instant::now());
    tokio::pin!(work);
    // Wake for whichever comes first: a lease renewal, an edit, a look at the stall.
    let step = every
        .min(lease / 3)
        .min((clock.stall / 4).max(Duration::from_millis(100)));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + step, step);
    loop {
        tokio::select! {
            biased;
            _ = clock.shutdown.cancelled() => {
                clock.handed_back.store(true, Ordering::Relaxed);
                return Err(HANDED_BACK.to_string());
            }
            out = &mut work => return Ok(out),
            _ = tokio::time::sleep_until(deadline) => return Err(overdue(stage, clock.deadline)),
            _ = tick.tick() => {
                let now = moved();
                if now != last {
                    (last, moved_at) = (now, Instant::now());
                } else if moved_at.elapsed() >= clock.stall {
                    return Err(stalled(stage, clock.stall, read.load(Ordering::Relaxed),
                        stored.load(Ordering::Relaxed)));
                }
                if renewed.elapsed() >= lease / 3 {
                    renewed = Instant::now();
                    match jobs::renew(backups.pool(), job.id, lease).await {
                        Ok(true) => {}
                        // Another replica failed it as abandoned: the catalogue will refuse
                        // to call this backup good (see `mark_good`).
                        Ok(false) => tracing::warn!(job.id = job.id, "backups.lease_lost"),
                        Err(e) => tracing::warn!(job.id = job.id, error = %e, "backups.lease_renew_failed"),
                    }
                }
                if edited.elapsed() >= every {
                    edited = Instant::now();
                    let text = messages::progress(job, stage, read.load(Ordering::Relaxed),
                        stored.load(Ordering::Relaxed), started.elapsed().as_secs_f64());
                    tell(backups, job, &text).await;
                }
            }
        }
    }
}
