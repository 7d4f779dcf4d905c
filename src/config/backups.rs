//! Backup settings (`[backups]`, `[[backups.targets]]`): what is backed up, where to, who
//! can decrypt it, how long it is kept, and the schedules they imply.

use super::ScheduleSettings;
use crate::domain::secret::Secret;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSettings {
    /// Where backups go unless a target says otherwise: a local directory, or
    /// `s3://bucket/prefix` (credentials from `[backups.s3]` or the `AWS_*` variables).
    #[serde(default = "default_storage")]
    pub storage: String,
    /// age recipients (`age1…`) every backup is also encrypted to, besides opsguard's own
    /// key (derived from OPSGUARD_MASTER_KEY): keep one offline to restore without opsguard.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// zstd level (1–19) and worker threads (0: single-threaded).
    #[serde(default = "default_level")]
    pub zstd_level: i32,
    #[serde(default = "default_workers")]
    pub zstd_workers: u32,
    /// How often the progress message is edited.
    #[serde(default = "default_progress")]
    pub progress_every_secs: u64,
    /// How often an idle worker looks for queued jobs.
    #[serde(default = "default_interval")]
    pub worker_interval_ms: u64,
    /// A running job renews its lease this often (a third of it); a job whose lease ran out
    /// was cut off (the process died) and is marked failed.
    #[serde(default = "default_lease")]
    pub lease_secs: u64,
    /// A job (backup or restore test) running longer than this fails, naming the deadline;
    /// a target may set its own.
    #[serde(default = "default_deadline")]
    pub deadline_secs: u64,
    /// A stream that moves no byte for this long (pg_dump silent, storage not accepting,
    /// pg_restore not reading) fails the job, naming the stall; a target may set its own.
    #[serde(default = "default_stall")]
    pub stall_secs: u64,
    /// Chats told (through the outbox) when a backup or restore test fails.
    #[serde(default)]
    pub alert_chats: Vec<i64>,
    /// Retention unless a target says otherwise: keep the newest `keep_last` good backups
    /// and every one younger than `keep_days`.
    #[serde(default = "default_keep_last")]
    pub keep_last: u32,
    #[serde(default = "default_keep_days")]
    pub keep_days: u32,
    /// Where restore tests create their scratch database: a DSN whose role may CREATE
    /// DATABASE (default: the target's own server, database `postgres`).
    #[serde(default)]
    pub scratch_dsn: Option<Secret>,
    /// When the weekly restore test of each target's newest backup runs ("" = never).
    #[serde(default = "default_restore_cron")]
    pub restore_test_cron: String,
    /// When backups past retention are pruned ("" = never).
    #[serde(default = "default_prune_cron")]
    pub prune_cron: String,
    /// Chat the scheduled runs report to (0: none; failures still go to `alert_chats`).
    #[serde(default)]
    pub report_chat: i64,
    /// The programs run (from PATH unless a path is given).
    #[serde(default = "default_pg_dump")]
    pub pg_dump: String,
    #[serde(default = "default_pg_restore")]
    pub pg_restore: String,
    #[serde(default)]
    pub s3: S3Settings,
    #[serde(default)]
    pub targets: Vec<BackupTarget>,
}

/// `[backups.s3]`: for `s3://` storage; unset values come from `AWS_*` variables.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// e.g. `http://127.0.0.1:9000` for MinIO.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    /// Allow `http://` endpoints (a local MinIO).
    #[serde(default)]
    pub allow_http: bool,
}

/// One `[[backups.targets]]` entry: a PostgreSQL database to back up.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupTarget {
    /// a-z, 0-9, `_` and `-`.
    pub name: String,
    /// `postgres://user:password@host:port/db`; the password reaches pg_dump through its
    /// environment, never its command line.
    pub dsn: Secret,
    /// Six-field cron (UTC) of its scheduled backup; none: on demand only.
    #[serde(default)]
    pub schedule: Option<String>,
    pub keep_last: Option<u32>,
    pub keep_days: Option<u32>,
    /// Overrides `[backups] storage`.
    pub storage: Option<String>,
    /// Override `[backups] deadline_secs` and `stall_secs` for this target's jobs.
    pub deadline_secs: Option<u64>,
    pub stall_secs: Option<u64>,
}

impl BackupSettings {
    pub fn target(&self, name: &str) -> Option<&BackupTarget> {
        self.targets.iter().find(|t| t.name == name)
    }

    pub fn target_names(&self) -> Vec<String> {
        self.targets.iter().map(|t| t.name.clone()).collect()
    }

    pub fn storage_of<'a>(&'a self, target: &'a BackupTarget) -> &'a str {
        target.storage.as_deref().unwrap_or(&self.storage)
    }

    /// (keep_last, keep_days) of a target.
    pub fn retention_of(&self, target: &str) -> (u32, u32) {
        let t = self.target(target);
        (
            t.and_then(|t| t.keep_last).unwrap_or(self.keep_last),
            t.and_then(|t| t.keep_days).unwrap_or(self.keep_days),
        )
    }

    /// (deadline, stall timeout) of a target's jobs, at least a second each.
    pub fn limits_of(&self, target: &str) -> (u64, u64) {
        let t = self.target(target);
        (
            t.and_then(|t| t.deadline_secs)
                .unwrap_or(self.deadline_secs)
                .max(1),
            t.and_then(|t| t.stall_secs)
                .unwrap_or(self.stall_secs)
                .max(1),
        )
    }

    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for t in &self.targets {
            if !crate::domain::rotation::is_slug(&t.name) {
                return Err(format!(
                    "target name '{}': use a-z, 0-9, _ and - (at most 48), starting with a letter or digit",
                    t.name
                ));
            }
            if t.keep_last == Some(0) {
                return Err(format!("target '{}': keep_last must be at least 1", t.name));
            }
            if !seen.insert(&t.name) {
                return Err(format!("target '{}' is declared twice", t.name));
            }
            if !t.dsn.expose().starts_with("postgres://")
                && !t.dsn.expose().starts_with("postgresql://")
            {
                return Err(format!(
                    "target '{}': dsn must be a postgres:// URL",
                    t.name
                ));
            }
        }
        if !(1..=19).contains(&self.zstd_level) {
            return Err("zstd_level must be 1 to 19".into());
        }
        if self.keep_last == 0 {
            return Err("keep_last must be at least 1".into());
        }
        for r in &self.recipients {
            r.parse::<age::x25519::Recipient>()
                .map_err(|e| format!("recipient '{r}' is not an age X25519 recipient: {e}"))?;
        }
        Ok(())
    }

    /// The schedules backups imply: each target's own, the weekly restore test and the
    /// pruning, as scheduler runs of `/backup`, `/restore_test latest` and `/prune_backups`.
    pub fn schedules(&self) -> Vec<ScheduleSettings> {
        let mut out: Vec<ScheduleSettings> = self
            .targets
            .iter()
            .filter_map(|t| {
                let cron = t.schedule.as_ref().filter(|c| !c.trim().is_empty())?;
                Some(self.schedule(
                    &format!("backup-{}", t.name),
                    cron,
                    format!("/backup {}", t.name),
                ))
            })
            .collect();
        if !self.targets.is_empty() {
            if !self.restore_test_cron.trim().is_empty() {
                out.push(self.schedule(
                    "restore-test-backups",
                    &self.restore_test_cron,
                    "/restore_test latest".into(),
                ));
            }
            if !self.prune_cron.trim().is_empty() {
                out.push(self.schedule("prune-backups", &self.prune_cron, "/prune_backups".into()));
            }
        }
        out
    }

    fn schedule(&self, name: &str, cron: &str, command: String) -> ScheduleSettings {
        ScheduleSettings {
            name: name.into(),
            cron: cron.into(),
            command,
            chat: self.report_chat,
            enabled: true,
        }
    }
}

impl Default for BackupSettings {
    fn default() -> Self {
        serde_json::from_value(serde_json::json!({})).expect("every field has a default")
    }
}

fn default_storage() -> String {
    "/var/lib/opsguard/backups".into()
}
fn default_level() -> i32 {
    3
}
fn default_workers() -> u32 {
    2
}
fn default_progress() -> u64 {
    3
}
fn default_interval() -> u64 {
    1000
}
fn default_lease() -> u64 {
    30
}
fn default_deadline() -> u64 {
    6 * 3600
}
fn default_stall() -> u64 {
    300
}
fn default_keep_last() -> u32 {
    7
}
fn default_keep_days() -> u32 {
    14
}
fn default_restore_cron() -> String {
    "0 0 5 * * Sun".into()
}
fn default_prune_cron() -> String {
    "0 30 5 * * *".into()
}
fn default_pg_dump() -> String {
    "pg_dump".into()
}
fn default_pg_restore() -> String {
    "pg_restore".into()
}
