//! Audit settings (`[audit]`): where signed checkpoints of the chain head go, and when the
//! scheduler writes one.

use super::{ConfigError, ScheduleSettings};
use serde::Deserialize;

/// `[audit]`: signed checkpoints of the audit chain's head, kept outside the database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Where checkpoint files go: a directory or `s3://bucket/prefix` ("": `[backups] storage`).
    #[serde(default)]
    pub checkpoint_storage: String,
    /// Chats each checkpoint is also sent to (through the outbox).
    #[serde(default)]
    pub checkpoint_chats: Vec<i64>,
    /// When the scheduler writes a checkpoint (six-field UTC cron; "" = only on demand).
    #[serde(default = "default_checkpoint_cron")]
    pub checkpoint_cron: String,
}

fn default_checkpoint_cron() -> String {
    "0 0 * * * *".into()
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            checkpoint_storage: String::new(),
            checkpoint_chats: Vec::new(),
            checkpoint_cron: default_checkpoint_cron(),
        }
    }
}

impl AuditSettings {
    /// The checkpoint schedule, when there is a master key to sign with.
    pub(super) fn schedule(&self, signing: bool) -> Option<ScheduleSettings> {
        (signing && !self.checkpoint_cron.trim().is_empty()).then(|| ScheduleSettings {
            name: "audit-checkpoint".into(),
            cron: self.checkpoint_cron.clone(),
            command: "/audit checkpoint".into(),
            chat: 0,
            enabled: true,
        })
    }
}

/// `[database] runtime_role` is a plain role name (or empty: one role for everything).
pub(super) fn check_runtime_role(role: &str) -> Result<(), ConfigError> {
    let ok = role.len() <= 63
        && role
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(ConfigError::Invalid {
            key: "database.runtime_role",
            problem: "a role name of at most 63 letters, digits, _ and -".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Settings {
        let mut env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.insert("OPSGUARD_SYSTEM_CONFIG".into(), String::new());
        Settings::load_with(&env).unwrap()
    }

    fn checkpoint_schedule(s: &Settings) -> Option<ScheduleSettings> {
        s.all_schedules()
            .into_iter()
            .find(|s| s.name == "audit-checkpoint")
    }

    #[test]
    fn checkpoints_are_scheduled_hourly_only_with_a_key_to_sign_with() {
        const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let keyed = checkpoint_schedule(&load(&[("OPSGUARD_MASTER_KEY", KEY)])).unwrap();
        assert_eq!(
            (keyed.cron.as_str(), keyed.command.as_str(), keyed.chat),
            ("0 0 * * * *", "/audit checkpoint", 0)
        );
        assert_eq!(checkpoint_schedule(&load(&[])), None);
        let off = load(&[
            ("OPSGUARD_MASTER_KEY", KEY),
            ("OPSGUARD__AUDIT__CHECKPOINT_CRON", ""),
        ]);
        assert_eq!(checkpoint_schedule(&off), None);
    }

    #[test]
    fn a_runtime_role_must_be_a_plain_role_name() {
        let ok = load(&[("OPSGUARD__DATABASE__RUNTIME_ROLE", "opsguard_app")]);
        assert_eq!(ok.database.runtime_role, "opsguard_app");
        let mut env: HashMap<String, String> = HashMap::new();
        env.insert("OPSGUARD_SYSTEM_CONFIG".into(), String::new());
        env.insert(
            "OPSGUARD__DATABASE__RUNTIME_ROLE".into(),
            "app\"; DROP".into(),
        );
        let err = Settings::load_with(&env).unwrap_err().to_string();
        assert!(err.contains("database.runtime_role"), "{err}");
    }
}
