//! `getUpdates` as Telegram serves it: with no update queued, the call is held open for the
//! `timeout` the client asked for and answered with an empty list; an update pushed while
//! it is held is answered at once. Every poll is recorded with when it started, when it
//! was answered, and whether the client gave up on it first. As Telegram does, an update
//! stays queued until a later call's `offset` passes its id: one a client received and died
//! on before acknowledging is served again to the next poll.

use super::{Call, Inner};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// One `getUpdates` call.
#[derive(Debug, Clone)]
pub struct Poll {
    pub started: Instant,
    /// The `timeout` the client asked for.
    pub timeout: Duration,
    /// When it was answered (`None` while held, or when the client went away first).
    pub answered: Option<Instant>,
    /// How many updates the answer carried.
    pub updates: usize,
    /// The client closed the connection before the answer (its own timeout, say).
    pub abandoned: bool,
}

#[derive(Default)]
pub(super) struct Polls {
    list: Vec<Poll>,
    pushes: Vec<Instant>,
    wake: Arc<Notify>,
}

impl Polls {
    pub(super) fn pushed(&mut self) {
        self.pushes.push(Instant::now());
        self.wake.notify_waiters();
    }
    pub fn list(&self) -> Vec<Poll> {
        self.list.clone()
    }
    pub fn pushes(&self) -> Vec<Instant> {
        self.pushes.clone()
    }
}

/// Marks the poll abandoned when the handler is dropped before it answered (axum drops
/// the handler's future when the client disconnects).
struct Held<'a> {
    inner: &'a Mutex<Inner>,
    index: usize,
    answered: bool,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if !self.answered {
            let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            guard.polls.list[self.index].abandoned = true;
        }
    }
}

/// Answer one `getUpdates`: the queued updates, at once or as soon as one is pushed, or
/// an empty list once the requested timeout has passed.
pub(super) async fn hold_get_updates(inner: &Arc<Mutex<Inner>>, body: Value) -> Vec<Value> {
    let timeout = Duration::from_secs(body.get("timeout").and_then(Value::as_u64).unwrap_or(0));
    let offset = body.get("offset").and_then(Value::as_i64).unwrap_or(0);
    let started = Instant::now();
    let (index, wake) = {
        let mut guard = inner.lock().unwrap();
        guard.calls.push(Call {
            method: "getUpdates".into(),
            body,
            message_id: None,
            at: started,
        });
        guard.polls.list.push(Poll {
            started,
            timeout,
            answered: None,
            updates: 0,
            abandoned: false,
        });
        (guard.polls.list.len() - 1, guard.polls.wake.clone())
    };
    let mut held = Held {
        inner: inner.as_ref(),
        index,
        answered: false,
    };
    let deadline = tokio::time::Instant::from_std(started + timeout);
    loop {
        // Registered before the queue is looked at, so a push in between is not missed.
        let woken = wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let answer = {
            let mut guard = inner.lock().unwrap();
            let now = Instant::now();
            // Acknowledged: every update below the offset is forgotten.
            guard
                .updates
                .retain(|u| u["update_id"].as_i64().is_none_or(|id| id >= offset));
            if !guard.updates.is_empty() || now >= started + timeout {
                let pending: Vec<Value> = guard.updates.iter().cloned().collect();
                let poll = &mut guard.polls.list[index];
                poll.answered = Some(now);
                poll.updates = pending.len();
                Some(pending)
            } else {
                None
            }
        };
        if let Some(pending) = answer {
            held.answered = true;
            if pending.is_empty() && timeout.is_zero() {
                // A client that asks not to wait still must not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            return pending;
        }
        tokio::select! {
            _ = &mut woken => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}
