//! What the transports report about themselves, for `/status`: start time and Telegram
//! reachability. The engine reads it; it never probes Telegram itself.

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
}

impl Health {
    pub fn new() -> Self {
        Health {
            started: Instant::now(),
            telegram: RwLock::new(TelegramState::NotConfigured),
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
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}
