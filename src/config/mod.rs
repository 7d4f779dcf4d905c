//! The settings' types. Loading (`load.rs`): the defaults built in from `config/default.toml`,
//! then `/etc/opsguard/opsguard.toml`, `OPSGUARD_CONFIG`, `OPSGUARD__SECTION__KEY` variables and
//! the contract's named variables (`DATABASE_URL`, …, or `<NAME>_FILE`); `validate.rs` checks.

mod audit;
mod backups;
mod check;
mod checks;
mod effective;
mod flood;
mod gates;
mod layers;
mod load;
mod logins;
mod outbox;
mod schedules;
mod secrets;
mod targets;
mod unknown;
mod validate;

use crate::domain::secret::Secret;
use serde::Deserialize;

pub use audit::AuditSettings;
pub use backups::{BackupSettings, BackupTarget, S3Settings};
pub use check::{ConfigCmd, MIN_SECRET_LEN};
pub use checks::{CheckSettings, HttpHeadersTargets, PostgresTargets, RedisTargets, TlsTargets};
pub use flood::FloodSettings;
pub use gates::{GatePolicy, GateSettings};
pub use load::{DEFAULTS, SYSTEM_CONFIG};
pub use logins::{IngestSettings, LoginSettings, RuleKind, RuleSettings, StreamSettings};
pub use outbox::OutboxSettings;
pub use schedules::{ScheduleSettings, SchedulerSettings, validate as validate_schedules};
pub use secrets::{PolicySettings, RotationSettings, SecretSettings, SinkSettings, TargetSettings};
pub use unknown::UnknownKey;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub telegram: TelegramSettings,
    pub http: HttpSettings,
    pub authz: AuthzSettings,
    pub rate_limits: RateLimitSettings,
    /// `[flood]`: limits checked before anything is written (see `config/flood.rs`).
    #[serde(default)]
    pub flood: FloodSettings,
    pub gates: GateSettings,
    pub shutdown: ShutdownSettings,
    /// `[outbox]`: the worker that delivers queued pushes (see `config/outbox.rs`).
    #[serde(default)]
    pub outbox: OutboxSettings,
    #[serde(default)]
    pub checks: CheckSettings,
    /// `[logins]`: failed-login ingest, detection and alerts (see `config/logins.rs`).
    #[serde(default)]
    pub logins: LoginSettings,
    /// `[[secrets]]`: managed secrets and how they rotate (see `config/secrets.rs`).
    #[serde(default)]
    pub secrets: Vec<SecretSettings>,
    /// `[rotation]`: the rotation worker.
    #[serde(default)]
    pub rotation: RotationSettings,
    /// `OPSGUARD_MASTER_KEY`: base64 of 32 bytes; seals the vault.
    #[serde(default)]
    pub master_key: Option<Secret>,
    /// `[backups]` and `[[backups.targets]]` (see `config/backups.rs`).
    #[serde(default)]
    pub backups: BackupSettings,
    pub scheduler: SchedulerSettings,
    /// `[audit]`: checkpoints of the audit chain outside the database.
    #[serde(default)]
    pub audit: AuditSettings,
    /// `[[schedules]]`: commands run on cron expressions (see `config/schedules.rs`).
    #[serde(default)]
    pub schedules: Vec<ScheduleSettings>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: Secret,
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
    /// The role `serve`, `console` and the shell commands connect as, when it is not the role
    /// that owns the schema: `opsguard migrate` (run as the owner) grants it what it needs and
    /// only SELECT on the audit log. Empty: a single-role set-up (warned about).
    #[serde(default)]
    pub runtime_role: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    pub url: Secret,
    /// Every key opsguard writes starts with this (lets replicas share, tests isolate).
    pub key_prefix: String,
    pub timeout_ms: u64,
    /// How long a call moving a whole failed-login batch's windows (thousands of keys) may
    /// take before it is given up; at least `timeout_ms`.
    #[serde(default = "default_bulk_timeout_ms")]
    pub bulk_timeout_ms: u64,
    /// Unused since update de-duplication is PostgreSQL's alone; still read, so old
    /// configuration files load.
    #[serde(default)]
    pub dedup_ttl_secs: u64,
}

fn default_bulk_timeout_ms() -> u64 {
    2_000
}

#[derive(Debug, Clone, Deserialize)]
pub struct TelegramSettings {
    pub token: Option<Secret>,
    pub api_url: String,
    pub webhook_secret: Option<Secret>,
    pub public_url: Option<String>,
    pub poll_timeout_secs: u32,
    /// Timeout of every Bot API call but `getUpdates` (whose client waits the poll's hold
    /// plus a margin).
    #[serde(default = "crate::bot::clients::default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// How long a replica holds a stored update it runs (renewed while it runs); past it,
    /// another replica takes the update up (`bot::retake`).
    #[serde(default = "default_inbox_lease_secs")]
    pub inbox_lease_secs: u64,
    /// Updates this replica runs at once; beyond it an update waits in the inbox
    /// (`bot::work`).
    #[serde(default = "default_max_updates_in_work")]
    pub max_updates_in_work: usize,
}

fn default_inbox_lease_secs() -> u64 {
    30
}

fn default_max_updates_in_work() -> usize {
    256
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    pub listen: String,
    pub max_body_bytes: usize,
    /// Wrong webhook secrets one address may send a minute; past it, 429 without a
    /// comparison (0: no limit).
    #[serde(default = "webhook_failures_per_minute")]
    pub webhook_failures_per_minute: u32,
    /// Reverse proxies whose `X-Forwarded-For` names the client (for the limit above).
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// How long `/metrics` serves the gauges it read from the database before reading again.
    #[serde(default = "crate::http::state_metrics::default_cache_secs")]
    pub metrics_cache_secs: u64,
}

fn webhook_failures_per_minute() -> u32 {
    20
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthzSettings {
    /// How long a user's permissions may be cached (at most 300 s).
    pub cache_ttl_secs: u64,
    /// How many users' permissions are cached at most (the oldest go first).
    #[serde(default = "default_cache_max_users")]
    pub cache_max_users: usize,
}

fn default_cache_max_users() -> usize {
    crate::engine::authorize::DEFAULT_CACHE_MAX
}

#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitSettings {
    pub window_secs: u64,
    pub read: u32,
    pub operate: u32,
    pub sensitive: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ShutdownSettings {
    pub grace_secs: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file or variable that cannot be read or parsed (`origin` names it).
    #[error("{origin}: {problem}")]
    Source { origin: String, problem: String },
    /// Keys no setting has, each with where it was set and the closest valid key.
    #[error("{}", unknown::describe(.0))]
    Unknown(Vec<unknown::UnknownKey>),
    /// A value of the wrong type or range.
    #[error("{origin}: setting {key}: {problem}")]
    Value {
        key: String,
        origin: String,
        problem: String,
    },
    #[error("invalid setting {key}: {problem}")]
    Invalid { key: &'static str, problem: String },
    #[error("invalid schedule '{name}': {problem}")]
    Schedule { name: String, problem: String },
}

impl Settings {
    /// Check the scheduler settings and schedules again (settings built in code skip
    /// `load_with`; the scheduler calls this before it starts).
    pub fn validate_schedules(&self) -> Result<(), ConfigError> {
        schedules::validate(&self.scheduler, &self.all_schedules())
    }

    /// The declared `[[schedules]]` and those backup targets and audit checkpoints imply (a declared schedule of
    /// the same name wins, so a deployment can move or disable one).
    pub fn all_schedules(&self) -> Vec<ScheduleSettings> {
        let mut all = self.schedules.clone();
        let signing = self.master_key.as_ref().is_some_and(|k| !k.is_empty());
        let audit = self.audit.schedule(signing);
        for implied in self.backups.schedules().into_iter().chain(audit) {
            if !all.iter().any(|s| s.name == implied.name) {
                all.push(implied);
            }
        }
        all
    }

    pub fn token(&self) -> Option<&Secret> {
        self.telegram.token.as_ref().filter(|t| !t.is_empty())
    }

    pub fn webhook_secret(&self) -> Option<&Secret> {
        self.telegram
            .webhook_secret
            .as_ref()
            .filter(|t| !t.is_empty())
    }

    /// The gates a sensitive command needs (read and operate commands need none).
    pub fn gate_policy(&self, command: &str) -> GatePolicy {
        self.gates
            .commands
            .get(command)
            .cloned()
            .unwrap_or(GatePolicy {
                confirm: true,
                ..GatePolicy::default()
            })
    }
}

#[cfg(test)]
mod tests;
