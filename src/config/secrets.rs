//! Managed secrets (`[[secrets]]`) and the rotation worker (`[rotation]`), as written in the
//! TOML file. `secrets::catalog` turns these into typed, checked secrets at start-up.

use crate::domain::secret::Secret;
use serde::Deserialize;

/// One `[[secrets]]` entry. Which `target` keys apply depends on `kind`.
#[derive(Debug, Clone, Deserialize)]
pub struct SecretSettings {
    /// `[a-z0-9][a-z0-9_-]{0,47}`: what `/rotate` and `/secrets` call it.
    pub name: String,
    /// `postgres_role`, `redis_acl`, `jwt_signing_key` or `api_key`.
    pub kind: String,
    #[serde(default)]
    pub target: TargetSettings,
    #[serde(default)]
    pub policy: PolicySettings,
    /// Where each new value is delivered before it becomes current.
    #[serde(default)]
    pub sinks: Vec<SinkSettings>,
}

impl SecretSettings {
    /// Whether `/rotate` waits for a second admin: the policy's word, else yes for the
    /// kinds whose rotation touches every service at once.
    /// Days between scheduled rotations; `None` when the scheduler may not rotate it
    /// (`scheduled = false` or `rotate_every_days = 0`). 90 by default.
    pub fn scheduled_every_days(&self) -> Option<u32> {
        let days = self.policy.rotate_every_days.unwrap_or(90);
        (self.policy.scheduled.unwrap_or(true) && days > 0).then_some(days)
    }

    pub fn needs_approval(&self) -> bool {
        self.policy.approval.unwrap_or(matches!(
            self.kind.as_str(),
            "postgres_role" | "jwt_signing_key"
        ))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TargetSettings {
    /// postgres_role: an admin DSN (a role with CREATEROLE) of the server holding the role.
    pub dsn: Option<Secret>,
    /// postgres_role: the role; alternating users are `<role>_a` and `<role>_b`.
    /// redis_acl: the ACL user.
    pub role: Option<String>,
    pub user: Option<String>,
    /// postgres_role: `alternating` (default) or `single`.
    pub strategy: Option<String>,
    /// redis_acl: an admin URL of every node (ACL changes do not replicate).
    #[serde(default)]
    pub nodes: Vec<Secret>,
    /// jwt_signing_key: `EdDSA` (default) or `HS256`.
    pub algorithm: Option<String>,
    /// jwt_signing_key: the lifetime of tokens it signs; the previous key verifies for
    /// this plus `cache_margin_secs` after a rotation.
    pub token_ttl_secs: Option<u64>,
    pub cache_margin_secs: Option<u64>,
}

/// What a rotation needs, per secret. Unset fields take the kind's default.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PolicySettings {
    /// A second admin approves `/rotate` (default: yes for postgres_role and
    /// jwt_signing_key).
    pub approval: Option<bool>,
    /// `/rotate` asks for a TOTP code.
    #[serde(default)]
    pub totp: bool,
    /// Scheduled rotation once the current version is this old; 0 = never (default 90).
    pub rotate_every_days: Option<u32>,
    /// Whether the scheduler may rotate it without a person (default: yes).
    pub scheduled: Option<bool>,
    /// How long the previous credential keeps working after a rotation before it is
    /// revoked and its sessions ended (default 3600; jwt: token lifetime + cache margin).
    pub grace_secs: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkSettings {
    /// `NAME=value` lines written atomically (temporary file, fsync, rename), mode 0600.
    EnvFile { path: String },
    /// An HTTPS POST of the new values, its body signed with HMAC-SHA256 in
    /// `X-Opsguard-Signature: sha256=<hex>`.
    Webhook {
        url: String,
        hmac_key: Secret,
        /// Extra trusted roots (PEM) for an internal CA.
        #[serde(default)]
        ca_file: Option<String>,
    },
}

/// `[rotation]`: the worker that resumes, retries and retires.
#[derive(Debug, Clone, Deserialize)]
pub struct RotationSettings {
    /// How often a replica looks for rotations to resume or retry and versions to retire.
    #[serde(default = "interval_ms")]
    pub worker_interval_ms: u64,
    /// A replica holds a rotation this long per step; a crashed one's lease runs out.
    #[serde(default = "lease_secs")]
    pub lease_secs: u64,
    /// Failed attempts of a step before the rotation is rolled back and alerted.
    #[serde(default = "max_attempts")]
    pub max_attempts: i32,
    /// Backoff after the n-th failure: base * 2^(n-1), at most cap.
    #[serde(default = "backoff_base_secs")]
    pub backoff_base_secs: u64,
    #[serde(default = "backoff_cap_secs")]
    pub backoff_cap_secs: u64,
    /// Each call to a target gives up after this long.
    #[serde(default = "target_timeout_ms")]
    pub target_timeout_ms: u64,
    /// Chats a failed rotation is reported to through the outbox.
    #[serde(default)]
    pub alert_chats: Vec<i64>,
    /// Testing only: abort the process at this point (`<step>:before` or `<step>:after`).
    #[serde(default)]
    pub crash_at: Option<String>,
}

impl Default for RotationSettings {
    fn default() -> Self {
        RotationSettings {
            worker_interval_ms: interval_ms(),
            lease_secs: lease_secs(),
            max_attempts: max_attempts(),
            backoff_base_secs: backoff_base_secs(),
            backoff_cap_secs: backoff_cap_secs(),
            target_timeout_ms: target_timeout_ms(),
            alert_chats: Vec::new(),
            crash_at: None,
        }
    }
}

fn interval_ms() -> u64 {
    5000
}
fn lease_secs() -> u64 {
    60
}
fn max_attempts() -> i32 {
    5
}
fn backoff_base_secs() -> u64 {
    30
}
fn backoff_cap_secs() -> u64 {
    1800
}
fn target_timeout_ms() -> u64 {
    5000
}
