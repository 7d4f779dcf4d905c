//! How many updates this replica runs at once (`[telegram] max_updates_in_work`). An
//! update runs only holding a `Slot`; one that finds no slot free is stored *waiting* in
//! the inbox (it is durable there, never held in memory) and the inbox taker (`retake`)
//! runs it when a slot frees up, here or on another replica. So memory stays bounded under
//! any load. The gauges `opsguard_updates_in_work` and `opsguard_updates_in_work_peak`
//! show the count now and the most since start.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

pub struct WorkSlots {
    free: Arc<Semaphore>,
    bound: usize,
    in_work: AtomicUsize,
    peak: AtomicUsize,
    /// Woken when an update was stored waiting.
    waiting: Notify,
}

/// The right to run one update; freed when dropped.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    slots: Arc<WorkSlots>,
}

impl WorkSlots {
    pub fn new(bound: usize) -> Arc<Self> {
        let bound = bound.max(1);
        Arc::new(WorkSlots {
            free: Arc::new(Semaphore::new(bound)),
            bound,
            in_work: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            waiting: Notify::new(),
        })
    }

    /// The configured bound.
    pub fn bound(&self) -> usize {
        self.bound
    }

    /// Updates in work now.
    pub fn in_work(&self) -> usize {
        self.in_work.load(Ordering::SeqCst)
    }

    /// The most updates in work at once since start.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// A slot if one is free now (a waiting taker is served first).
    pub fn try_take(self: &Arc<Self>) -> Option<Slot> {
        let permit = self.free.clone().try_acquire_owned().ok()?;
        Some(self.slot(permit))
    }

    /// Wait for one slot, then take up to `most` in all of those free now.
    pub async fn take_some(self: &Arc<Self>, most: usize) -> Vec<Slot> {
        let Ok(first) = self.free.clone().acquire_owned().await else {
            return Vec::new();
        };
        let mut slots = vec![self.slot(first)];
        while slots.len() < most {
            match self.try_take() {
                Some(slot) => slots.push(slot),
                None => break,
            }
        }
        slots
    }

    /// An update was stored waiting: wake the inbox taker.
    pub fn stored_waiting(&self) {
        metrics::counter!("opsguard_inbox_waiting_total").increment(1);
        self.waiting.notify_one();
    }

    /// Resolves once an update was stored waiting (since the last call).
    pub async fn waiting(&self) {
        self.waiting.notified().await;
    }

    fn slot(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Slot {
        let now = self.in_work.fetch_add(1, Ordering::SeqCst) + 1;
        let peak = self.peak.fetch_max(now, Ordering::SeqCst).max(now);
        metrics::gauge!("opsguard_updates_in_work").set(now as f64);
        metrics::gauge!("opsguard_updates_in_work_peak").set(peak as f64);
        Slot {
            _permit: permit,
            slots: self.clone(),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let now = self.slots.in_work.fetch_sub(1, Ordering::SeqCst) - 1;
        metrics::gauge!("opsguard_updates_in_work").set(now as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_more_slots_than_the_bound_and_a_freed_slot_is_taken_again() {
        let slots = WorkSlots::new(2);
        let a = slots.try_take().expect("first");
        let b = slots.try_take().expect("second");
        assert!(slots.try_take().is_none());
        assert_eq!((slots.in_work(), slots.peak()), (2, 2));
        drop(a);
        assert_eq!(slots.in_work(), 1);
        let more = slots.take_some(5).await;
        assert_eq!(more.len(), 1, "only one was free");
        assert!(slots.try_take().is_none());
        drop((b, more));
        assert_eq!((slots.in_work(), slots.peak()), (0, 2));
        assert_eq!(slots.take_some(5).await.len(), 2);
    }
}
