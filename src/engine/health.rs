//! What the transports and start-up report, for `/status` and `/readyz`: start time,
//! Telegram reachability, whether pushes reach any chat, what weakens the audit log here,
//! and how many updates are in flight. The engine never probes Telegram.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// Failed pushes in a row (across every chat, none delivered in between) from which no chat
/// is taken to work: `/readyz` says "degraded".
pub const FAILED_IN_A_ROW: u32 = 3;

/// Whether the outbox's pushes reach any chat, as this replica's worker saw them.
#[derive(Debug, Default)]
pub struct Deliveries {
    state: Mutex<(u32, Option<String>)>,
}

impl Deliveries {
    /// One push's result (`error`: why it failed; `None`: delivered).
    pub fn record(&self, error: Option<&str>) {
        let mut state = self.state.lock().expect("deliveries lock");
        match error {
            None => *state = (0, None),
            Some(error) => *state = (state.0.saturating_add(1), Some(error.to_string())),
        }
    }

    /// Why no chat is taken to work (the last `FAILED_IN_A_ROW` pushes or more all failed),
    /// or `None`.
    pub fn degraded(&self) -> Option<String> {
        let state = self.state.lock().expect("deliveries lock");
        (state.0 >= FAILED_IN_A_ROW).then(|| {
            format!(
                "the last {} pushes all failed (last error: {})",
                state.0,
                state.1.as_deref().unwrap_or("none recorded")
            )
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TelegramState {
    /// No token: console and HTTP only.
    NotConfigured,
    Reachable {
        mode: &'static str,
    },
    Unreachable {
        error: String,
    },
}

pub struct Health {
    started: Instant,
    telegram: RwLock<TelegramState>,
    /// What weakens the audit log's tamper evidence here (found at start-up).
    audit_warnings: RwLock<Vec<String>>,
    deliveries: Arc<Deliveries>,
    /// Updates dispatched and not finished yet (reply delivered, menu pushed).
    in_flight: Arc<AtomicUsize>,
}

/// One update in flight, from its dispatch until it is dropped.
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Health {
    pub fn new() -> Self {
        Health {
            started: Instant::now(),
            telegram: RwLock::new(TelegramState::NotConfigured),
            audit_warnings: RwLock::new(Vec::new()),
            in_flight: Arc::new(AtomicUsize::new(0)),
            deliveries: Arc::default(),
        }
    }
    /// Count an update in flight until the returned guard is dropped (taken when it is
    /// dispatched, before the webhook's 200, so a test that saw the 200 and then sees zero
    /// knows the update ran to its end or never started).
    pub fn update_started(&self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.in_flight.clone())
    }
    /// Updates dispatched and not finished yet.
    pub fn updates_in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }
    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }
    pub fn telegram(&self) -> TelegramState {
        self.telegram.read().expect("health lock").clone()
    }
    pub fn set_telegram(&self, state: TelegramState) {
        *self.telegram.write().expect("health lock") = state;
    }
    pub fn audit_warnings(&self) -> Vec<String> {
        self.audit_warnings.read().expect("health lock").clone()
    }
    /// What the outbox worker reports of its pushes.
    pub fn deliveries(&self) -> &Arc<Deliveries> {
        &self.deliveries
    }
    pub fn set_audit_warnings(&self, warnings: Vec<String>) {
        *self.audit_warnings.write().expect("health lock") = warnings;
    }
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degraded_after_failures_in_a_row_and_well_after_one_delivery() {
        let d = Deliveries::default();
        d.record(Some("502"));
        d.record(Some("502"));
        assert_eq!(d.degraded(), None);
        d.record(Some("429"));
        assert!(
            d.degraded()
                .unwrap()
                .contains("the last 3 pushes all failed (last error: 429)")
        );
        d.record(None);
        assert_eq!(d.degraded(), None);
    }
}
