//! Layered settings: `config/default.toml` (or `OPSGUARD_CONFIG`), then `OPSGUARD__SECTION__KEY`
//! overrides, then the contract's named variables (`DATABASE_URL`, `OPSGUARD_TELEGRAM_TOKEN`, …).

mod audit;
mod backups;
mod check;
mod checks;
mod flood;
mod gates;
mod logins;
mod outbox;
mod schedules;
mod secrets;

use crate::domain::secret::Secret;
use serde::Deserialize;
use std::collections::HashMap;

pub use audit::AuditSettings;
pub use backups::{BackupSettings, BackupTarget, S3Settings};
pub use check::{ConfigCmd, MIN_SECRET_LEN};
pub use checks::{CheckSettings, HttpHeadersTargets, PostgresTargets, RedisTargets, TlsTargets};
pub use flood::FloodSettings;
pub use gates::{GatePolicy, GateSettings};
pub use logins::{IngestSettings, LoginSettings, RuleKind, RuleSettings, StreamSettings};
pub use outbox::OutboxSettings;
pub use schedules::{ScheduleSettings, SchedulerSettings, validate as validate_schedules};
pub use secrets::{PolicySettings, RotationSettings, SecretSettings, SinkSettings, TargetSettings};

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
    /// Unused since update de-duplication is PostgreSQL's alone; still read, so old
    /// configuration files load.
    #[serde(default)]
    pub dedup_ttl_secs: u64,
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

/// The contract's environment variables and the settings they set.
const NAMED_VARS: &[(&str, &str)] = &[
    ("DATABASE_URL", "database.url"),
    ("REDIS_URL", "redis.url"),
    ("OPSGUARD_TELEGRAM_TOKEN", "telegram.token"),
    ("OPSGUARD_TELEGRAM_API_URL", "telegram.api_url"),
    ("OPSGUARD_WEBHOOK_SECRET", "telegram.webhook_secret"),
    ("OPSGUARD_PUBLIC_URL", "telegram.public_url"),
    ("OPSGUARD_LISTEN", "http.listen"),
    ("OPSGUARD_INGEST_JWT_SECRET", "logins.ingest.jwt_secret"),
    (
        "OPSGUARD_INGEST_JWT_PREVIOUS_SECRET",
        "logins.ingest.jwt_previous_secret",
    ),
    ("OPSGUARD_MASTER_KEY", "master_key"),
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot load settings from {path}: {source}")]
    Load {
        path: String,
        source: config::ConfigError,
    },
    #[error("invalid setting {key}: {problem}")]
    Invalid { key: &'static str, problem: String },
    #[error("invalid schedule '{name}': {problem}")]
    Schedule { name: String, problem: String },
}

impl Settings {
    /// Load from the process environment.
    pub fn load() -> Result<Settings, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Settings::load_with(&env)
    }

    /// Load with an explicit environment (tests pass their own).
    pub fn load_with(env: &HashMap<String, String>) -> Result<Settings, ConfigError> {
        let path = env.get("OPSGUARD_CONFIG").cloned().unwrap_or_else(|| {
            let local = "config/default.toml";
            if std::path::Path::new(local).exists() {
                local.to_string()
            } else {
                concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml").to_string()
            }
        });
        let overrides: HashMap<String, String> = env
            .iter()
            .filter(|(k, _)| k.starts_with("OPSGUARD__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut builder = config::Config::builder()
            .add_source(config::File::with_name(&path).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("OPSGUARD")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .source(Some(overrides)),
            );
        for (var, key) in NAMED_VARS {
            if let Some(value) = env.get(*var).filter(|v| !v.is_empty()) {
                builder = builder
                    .set_override(*key, value.as_str())
                    .map_err(|source| ConfigError::Load {
                        path: path.clone(),
                        source,
                    })?;
            }
        }
        let settings: Settings =
            builder
                .build()
                .and_then(|c| c.try_deserialize())
                .map_err(|source| ConfigError::Load {
                    path: path.clone(),
                    source,
                })?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.authz.cache_ttl_secs > 300 {
            return Err(ConfigError::Invalid {
                key: "authz.cache_ttl_secs",
                problem: "at most 300".into(),
            });
        }
        if self.rate_limits.window_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "rate_limits.window_secs",
                problem: "must be positive".into(),
            });
        }
        self.flood
            .validate()
            .map_err(|problem| ConfigError::Invalid {
                key: "flood",
                problem,
            })?;
        if self.outbox.batch_size == 0 || self.outbox.max_attempts < 1 {
            return Err(ConfigError::Invalid {
                key: "outbox",
                problem: "batch_size and max_attempts must be at least 1".into(),
            });
        }
        if self.http.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::Invalid {
                key: "http.listen",
                problem: "expected host:port".into(),
            });
        }
        let g = &self.gates;
        if g.totp_enrol_ttl_secs < 1
            || g.totp_enrol_ttl_secs * 1000 + g.sweep_interval_ms as i64 > 600_000
            || g.sweep_interval_ms == 0
        {
            return Err(ConfigError::Invalid {
                key: "gates.totp_enrol_ttl_secs",
                problem: "an enrolment URI must be deleted within 10 minutes: totp_enrol_ttl_secs (at least 1) plus sweep_interval_ms (at least 1) must stay within 600 s".into(),
            });
        }
        if g.totp_lockout_secs < 1 || g.totp_lockout_max_secs < g.totp_lockout_secs {
            return Err(ConfigError::Invalid {
                key: "gates.totp_lockout_max_secs",
                problem:
                    "totp_lockout_secs must be positive and totp_lockout_max_secs at least as long"
                        .into(),
            });
        }
        for name in self.gates.commands.keys() {
            if crate::domain::command::spec_by_name(name).is_none() {
                return Err(ConfigError::Invalid {
                    key: "gates.commands",
                    problem: format!("unknown command '{name}'"),
                });
            }
        }
        self.validate_secrets()?;
        audit::check_runtime_role(&self.database.runtime_role)?;
        schedules::validate(&self.scheduler, &self.all_schedules())?;
        self.backups
            .validate()
            .map_err(|problem| ConfigError::Invalid {
                key: "backups",
                problem,
            })?;
        self.logins
            .validate()
            .map_err(|problem| ConfigError::Invalid {
                key: "logins",
                problem,
            })?;
        Ok(())
    }

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
