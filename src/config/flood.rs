//! Flood limits (`[flood]`): what anyone can make opsguard write or send, per sender, per
//! chat and for all strangers together, checked before anything is written.

use serde::Deserialize;

/// `[flood]` in the TOML file. Every Telegram update is counted against these before its
/// de-dup row, audit rows or reply; past a limit it is dropped and only counted.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct FloodSettings {
    /// The sliding window of every limit below, and how often one aggregate audit row per
    /// sender (or chat) records what was dropped.
    pub window_secs: u64,
    /// Updates per window from one sender without a role (a stranger, or a group member).
    pub stranger: u32,
    /// Updates per window in one group chat from senders without a role, together.
    pub chat: u32,
    /// Updates per window from every sender without a role, together.
    pub strangers_total: u32,
    /// Updates per window from one user with a role (typed, clicked or anything else).
    pub user: u32,
    /// Refusals per window for one user with a role (unknown commands, wrong arguments,
    /// denials, spent or forged buttons, rate-limit notices), each audited and answered.
    pub refused: u32,
    /// A stranger gets the neutral line at most once per this many seconds.
    pub neutral_line_every_secs: u64,
}

impl Default for FloodSettings {
    fn default() -> Self {
        FloodSettings {
            window_secs: 60,
            stranger: 3,
            chat: 20,
            strangers_total: 60,
            user: 120,
            refused: 20,
            neutral_line_every_secs: 3600,
        }
    }
}

impl FloodSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.window_secs == 0 || self.window_secs > 86_400 {
            return Err("window_secs must be between 1 and 86400".into());
        }
        if self.neutral_line_every_secs == 0 {
            return Err("neutral_line_every_secs must be positive".into());
        }
        let limits = [
            self.stranger,
            self.chat,
            self.strangers_total,
            self.user,
            self.refused,
        ];
        if limits.contains(&0) {
            return Err(
                "stranger, chat, strangers_total, user and refused must be at least 1".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_a_zero_limit_is_refused() {
        assert_eq!(FloodSettings::default().validate(), Ok(()));
        for zero in 0..5 {
            let mut s = FloodSettings::default();
            match zero {
                0 => s.stranger = 0,
                1 => s.chat = 0,
                2 => s.strangers_total = 0,
                3 => s.user = 0,
                _ => s.refused = 0,
            }
            assert!(s.validate().is_err(), "case {zero}");
        }
        for window_secs in [0, 86_401] {
            let s = FloodSettings {
                window_secs,
                ..FloodSettings::default()
            };
            assert!(s.validate().is_err(), "window {window_secs}");
        }
        let s = FloodSettings {
            window_secs: 86_400,
            ..FloodSettings::default()
        };
        assert_eq!(s.validate(), Ok(()));
        let s = FloodSettings {
            neutral_line_every_secs: 0,
            ..FloodSettings::default()
        };
        assert!(s.validate().is_err());
    }
}
