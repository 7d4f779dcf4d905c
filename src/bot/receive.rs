//! One update taken in, from the webhook or a poll alike: past the flood limits, an
//! unreadable update is de-duplicated, logged once with its kind and reason and counted
//! (`opsguard_webhook_unparsed_total{kind}`); one with nothing to run gets only its de-dup
//! row; one that will run is stored in the inbox and dispatched, or stored waiting when
//! this replica has as many updates in work as it may (`work`); one the store refuses
//! (reachable, not known down) is not run, and not acknowledged. A panic anywhere in here
//! is caught, logged and counted the same way, and the update is still answered.

use super::inbound::{self, Body, NotAnUpdate, Update};
use super::inbox::{self, Taken};
use super::{Telegram, dedup, flood};
use futures::FutureExt;
use serde_json::Value;
use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;

/// What taking an update in came to (the webhook answers and counts by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Past a flood limit: dropped before anything was written.
    Dropped,
    /// Seen before (a retry or a replay).
    Duplicate,
    /// Read, and nothing to run.
    Ignored,
    /// Could not be read (or panicked): logged and counted.
    Unparsed,
    /// Stored (or, with the store down, unstored) and dispatched.
    Accepted,
    /// Stored waiting for room to run it (the inbox taker runs it).
    Waiting,
    /// Not stored (the store is down) and no room to run it: not acknowledged, so
    /// Telegram sends it again.
    Busy,
    /// The store answered but refused to store it: not run, not acknowledged, so Telegram
    /// sends it again (an update runs only once stored, unless the store is known down).
    Refused,
}

/// Read an update; a panic while reading makes it unreadable, never a lost update.
pub fn read(value: &Value) -> Result<Update, NotAnUpdate> {
    read_with(value, inbound::read)
}

fn read_with(
    value: &Value,
    reader: impl FnOnce(&Value) -> Result<Update, NotAnUpdate>,
) -> Result<Update, NotAnUpdate> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| reader(value))) {
        Ok(read) => read,
        Err(panic) => {
            let id = value
                .get("update_id")
                .and_then(Value::as_i64)
                .filter(|id| *id >= 0)
                .ok_or(NotAnUpdate)?;
            Ok(Update {
                id,
                kind: inbound::UNKNOWN_KIND,
                kind_sent: String::new(),
                origin: inbound::Origin::default(),
                body: Body::Unreadable(format!("panic while reading: {}", said(&*panic))),
            })
        }
    }
}

/// Take an update in; a panic is caught, logged and counted, and the update answered.
pub async fn take_in(tg: &Telegram, update: Update) -> Received {
    let (id, kind) = (update.id, update.kind);
    guarded(id, kind, take_in_unguarded(tg, update)).await
}

async fn guarded(id: i64, kind: &'static str, work: impl Future<Output = Received>) -> Received {
    match AssertUnwindSafe(work).catch_unwind().await {
        Ok(received) => received,
        Err(panic) => {
            unparsed(id, kind, kind, &format!("panic: {}", said(&*panic)));
            Received::Unparsed
        }
    }
}

async fn take_in_unguarded(tg: &Telegram, update: Update) -> Received {
    // Before anything is written for it: past a flood limit it is acknowledged and dropped.
    if !flood::admit(&tg.engine, &update.origin).await {
        return Received::Dropped;
    }
    if let Body::Unreadable(reason) = &update.body {
        // Its de-dup row first, so Telegram's retries are logged and counted once.
        if !dedup::first_sight(&tg.engine, update.id).await {
            return Received::Duplicate;
        }
        unparsed(update.id, update.kind, &update.kind_sent, reason);
        return Received::Unparsed;
    }
    let Some(incoming) = tg.translate(&update).await else {
        // Nothing to run: only its de-dup row, so a retry is told apart as before.
        if !dedup::first_sight(&tg.engine, update.id).await {
            return Received::Duplicate;
        }
        return Received::Ignored;
    };
    // Stored with its de-dup row before the 200: from here on it is run or reported. With
    // no room to run it now, it is stored waiting for the inbox taker.
    let slot = tg.work().try_take();
    match (
        inbox::take(tg, update.id, &incoming, slot.is_none()).await,
        slot,
    ) {
        (Taken::Stored(lease), Some(slot)) => tg.dispatch(incoming, Some(lease), slot),
        (Taken::Unstored, Some(slot)) => tg.dispatch(incoming, None, slot),
        (Taken::Waiting | Taken::Stored(_), _) => {
            tg.work().stored_waiting();
            return Received::Waiting;
        }
        // Neither stored nor room to run it: Telegram is asked to send it again.
        (Taken::Unstored, None) => return Received::Busy,
        // The store answered and refused: run it only once it is stored.
        (Taken::Refused, _) => return Received::Refused,
        (Taken::Duplicate, _) => return Received::Duplicate,
    }
    Received::Accepted
}

/// Log (once per update) and count an update that could not be read.
fn unparsed(id: i64, kind: &'static str, sent: &str, reason: &str) {
    metrics::counter!("opsguard_webhook_unparsed_total", "kind" => kind).increment(1);
    tracing::warn!(
        update.id = id,
        update.kind = kind,
        update.kind_sent = sent,
        update.reason = reason,
        "update.unparsed"
    );
}

/// What a panic said, cut short.
fn said(panic: &(dyn Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_panic_while_reading_makes_the_update_unreadable_not_lost() {
        let value = json!({ "update_id": 9, "message": {} });
        let read = read_with(&value, |_| panic!("a reader bug")).unwrap();
        assert_eq!((read.id, read.kind), (9, "unknown"));
        let Body::Unreadable(reason) = read.body else {
            panic!("{:?}", read.body)
        };
        assert_eq!(reason, "panic while reading: a reader bug");
        let no_id = json!({ "message": {} });
        assert_eq!(read_with(&no_id, |_| panic!("x")).unwrap_err(), NotAnUpdate);
    }

    async fn explode(message: String) -> Received {
        panic!("{message}")
    }

    #[tokio::test]
    async fn a_panic_while_taking_in_is_caught_and_answered_as_unparsed() {
        let boom = explode("inside the pipeline".into());
        assert_eq!(guarded(3, "message", boom).await, Received::Unparsed);
        let fine = async { Received::Ignored };
        assert_eq!(guarded(4, "message", fine).await, Received::Ignored);
    }
}
