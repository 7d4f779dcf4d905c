//! Check targets (`[checks]`): checks reach only what is configured here, never an
//! address typed in chat.

use crate::domain::secret::Secret;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct CheckSettings {
    /// Each target must answer within this long, or it is reported unreachable.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default)]
    pub http_headers: HttpHeadersTargets,
    #[serde(default)]
    pub tls: TlsTargets,
    #[serde(default)]
    pub postgres: PostgresTargets,
    #[serde(default)]
    pub redis: RedisTargets,
}

impl Default for CheckSettings {
    fn default() -> Self {
        CheckSettings {
            timeout_ms: default_timeout_ms(),
            http_headers: HttpHeadersTargets::default(),
            tls: TlsTargets::default(),
            postgres: PostgresTargets::default(),
            redis: RedisTargets::default(),
        }
    }
}

fn default_timeout_ms() -> u64 {
    1500
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HttpHeadersTargets {
    /// Site URLs (https://…); an http:// URL is also checked for its redirect to HTTPS.
    #[serde(default)]
    pub urls: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TlsTargets {
    /// `host:port` pairs.
    #[serde(default)]
    pub targets: Vec<String>,
    /// A PEM file of extra trusted roots (for an internal CA); system roots otherwise.
    #[serde(default)]
    pub ca_file: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PostgresTargets {
    /// DSNs of the platform's databases (secrets: shown by host only).
    #[serde(default)]
    pub dsns: Vec<Secret>,
    /// Superusers that are expected (others are findings).
    #[serde(default)]
    pub expected_superusers: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RedisTargets {
    /// redis:// URLs (secrets: shown by host only).
    #[serde(default)]
    pub urls: Vec<Secret>,
}
