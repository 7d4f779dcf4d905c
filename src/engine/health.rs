//! What the transports and start-up report, for `/status`: start time, Telegram
//! reachability, what weakens the audit log here, and how many updates are in flight. The
//! engine never probes Telegram.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

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
    pub fn set_audit_warnings(&self, warnings: Vec<String>) {
        *self.audit_warnings.write().expect("health lock") = warnings;
    }
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}
