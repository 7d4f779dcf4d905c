//! Group commit for the update inbox. Concurrent webhook requests queue their updates to
//! one writer task, which takes whatever is waiting (up to 256), stores them with their
//! de-dup rows in one synchronously committed statement (`inbox::take_batch`: one WAL
//! flush for the batch) and only then answers each caller; a caller acknowledges its
//! update only after that. The done marks of finished updates go the same way, in batches
//! committed without their own flush (`inbox::finish_batch`). Both queues are bounded:
//! when the database falls behind, callers wait instead of piling up in memory.

use super::inbox::{self, NewUpdate};
use sqlx::PgPool;
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

const MAX_BATCH: usize = 256;
const QUEUE: usize = 1024;

#[derive(Debug, Clone, thiserror::Error)]
#[error("inbox write failed: {message}")]
pub struct InboxWriteError {
    message: String,
    /// The database could not be reached (`latch::unreachable`), rather than refused it.
    pub unreachable: bool,
}

type Answer = oneshot::Sender<Result<bool, InboxWriteError>>;
type TakeJob = (NewUpdate, Answer);
type FinishJob = ((i64, i32), Answer);

#[derive(Clone)]
pub struct InboxWriter {
    takes: mpsc::Sender<TakeJob>,
    finishes: mpsc::Sender<FinishJob>,
}

impl InboxWriter {
    /// Start the two writer tasks (stored updates hold `lease`); they end when the last
    /// `InboxWriter` clone is dropped.
    pub fn spawn(pool: PgPool, lease: Duration) -> Self {
        let (takes, take_jobs) = mpsc::channel::<TakeJob>(QUEUE);
        let (finishes, finish_jobs) = mpsc::channel::<FinishJob>(QUEUE);
        tokio::spawn(write_takes(pool.clone(), lease, take_jobs));
        tokio::spawn(write_finishes(pool, finish_jobs));
        InboxWriter { takes, finishes }
    }

    /// Store one update; `true` once it is committed and this was its first sight.
    pub async fn take(&self, update: NewUpdate) -> Result<bool, InboxWriteError> {
        let (done, answer) = oneshot::channel();
        self.takes.send((update, done)).await.map_err(stopped)?;
        answer.await.map_err(stopped)?
    }

    /// Mark a stored update done; `true` when this lease generation still held it.
    pub async fn finish(&self, update_id: i64, takes: i32) -> Result<bool, InboxWriteError> {
        let (done, answer) = oneshot::channel();
        let job = ((update_id, takes), done);
        self.finishes.send(job).await.map_err(stopped)?;
        answer.await.map_err(stopped)?
    }
}

fn stopped<E>(_: E) -> InboxWriteError {
    InboxWriteError {
        message: "writer stopped".into(),
        unreachable: false,
    }
}

/// Batches written at once: an update that arrives while one batch waits for its WAL
/// flush goes out in the next at once instead of waiting for that flush first. (The same
/// id in two batches at once is still stored once: the second insert of its de-dup row
/// waits for the first's commit and then finds it.)
const TAKES_IN_FLIGHT: usize = 2;

async fn write_takes(pool: PgPool, lease: Duration, mut jobs: mpsc::Receiver<TakeJob>) {
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(TAKES_IN_FLIGHT));
    let mut batch: Vec<TakeJob> = Vec::with_capacity(MAX_BATCH);
    loop {
        // The permit first: a batch is formed when it can be written, so it takes all that
        // arrived while the others were in flight.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        if jobs.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        // An id twice in one batch (Telegram's retry racing the first try): the first is
        // written, the others are answered as seen.
        let mut ids = HashSet::with_capacity(batch.len());
        let (unique, repeated): (Vec<TakeJob>, Vec<TakeJob>) =
            batch.drain(..).partition(|(u, _)| ids.insert(u.update_id));
        for (_, answer) in repeated {
            let _ = answer.send(Ok(false));
        }
        // One order for every writer (and replica), so two batches holding the same
        // retried ids wait for each other instead of deadlocking.
        let mut unique = unique;
        unique.sort_unstable_by_key(|(u, _)| u.update_id);
        let pool = pool.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let updates: Vec<NewUpdate> = unique.iter().map(|(u, _)| u.clone()).collect();
            let result = inbox::take_batch(&pool, &updates, lease).await;
            answer_all(unique.into_iter().map(|(u, a)| (u.update_id, a)), result);
        });
    }
}

async fn write_finishes(pool: PgPool, mut jobs: mpsc::Receiver<FinishJob>) {
    let mut batch: Vec<FinishJob> = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let done: Vec<(i64, i32)> = batch.iter().map(|(d, _)| *d).collect();
        let result = inbox::finish_batch(&pool, &done).await;
        answer_all(batch.drain(..).map(|((id, _), a)| (id, a)), result);
    }
}

/// Answer each caller: `true` when the statement returned its id.
fn answer_all(callers: impl Iterator<Item = (i64, Answer)>, result: Result<Vec<i64>, sqlx::Error>) {
    match result {
        Ok(ids) => {
            let ids: HashSet<i64> = ids.into_iter().collect();
            for (id, answer) in callers {
                let _ = answer.send(Ok(ids.contains(&id)));
            }
        }
        Err(e) => {
            let error = InboxWriteError {
                message: e.to_string(),
                unreachable: super::latch::unreachable(&e),
            };
            for (_, answer) in callers {
                let _ = answer.send(Err(error.clone()));
            }
        }
    }
}
