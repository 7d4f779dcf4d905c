//! What the transports and start-up report, for `/status`: start time, Telegram
//! reachability, and what weakens the audit log here. The engine never probes Telegram.

use std::sync::RwLock;
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
}

impl Health {
    pub fn new() -> Self {
        Health {
            started: Instant::now(),
            telegram: RwLock::new(TelegramState::NotConfigured),
            audit_warnings: RwLock::new(Vec::new()),
        }
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
