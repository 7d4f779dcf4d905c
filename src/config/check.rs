//! `opsguard config check`: the effective configuration in a few lines, every secret as a
//! fingerprint (or a key id). Loading the settings already refused whatever is invalid.

use super::Settings;
use crate::domain::secret::Secret;
use std::fmt::Write as _;

fn shown(secret: Option<&Secret>) -> String {
    secret
        .filter(|s| !s.is_empty())
        .map_or_else(|| "not set".into(), |s| s.to_string())
}

impl Settings {
    /// What `config check` prints once the settings loaded.
    pub fn summary(&self) -> String {
        let ingest = &self.logins.ingest;
        let telegram = match (self.token(), self.webhook_secret()) {
            (None, _) => "not configured (no OPSGUARD_TELEGRAM_TOKEN)".to_string(),
            (Some(t), Some(w)) => format!("webhook mode, token {t}, webhook secret {w}"),
            (Some(t), None) => format!("long polling, token {t}"),
        };
        let kid = |k: Option<&Secret>| {
            k.map_or_else(
                || "not set".into(),
                |k| format!("kid {}", crate::logins::keys::Keys::kid(k)),
            )
        };
        let stream = if self.logins.stream.enabled {
            format!("on ({}; entries must be signed)", self.logins.stream.key)
        } else {
            "off".into()
        };
        let mut out = String::from("configuration OK\n");
        let lines = [
            ("listen", self.http.listen.clone()),
            ("database", shown(Some(&self.database.url))),
            ("redis", shown(Some(&self.redis.url))),
            ("telegram", telegram),
            ("ingest key", kid(ingest.current_key())),
            ("previous ingest key", kid(ingest.previous_key())),
            ("stream ingest", stream),
            ("master key", shown(self.master_key.as_ref())),
            ("schedules", self.all_schedules().len().to_string()),
            ("managed secrets", self.secrets.len().to_string()),
            ("backup targets", self.backups.targets.len().to_string()),
        ];
        for (name, value) in lines {
            let _ = writeln!(out, "{name:<20} {value}");
        }
        out
    }
}
