//! The managed secrets, parsed from `[[secrets]]` at start-up: a checked name, the kind that
//! rotates it, its policy and its sinks. A bad entry stops start-up with the reason.

use super::kind::SecretKind;
use super::kinds::{api_key::ApiKey, jwt_key, postgres_role, redis_acl};
use super::sinks::Sink;
use crate::config::{SecretSettings, Settings};
use crate::domain::rotation::SecretName;
use std::sync::Arc;
use std::time::Duration;

/// What a rotation of one secret needs and may do.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `/rotate` waits for a second admin.
    pub approval: bool,
    /// `/rotate` asks for a TOTP code.
    pub totp: bool,
    /// Rotated by `/rotate_due` once the current version is this old (`None`: never).
    pub rotate_every: Option<chrono::Duration>,
    /// How long `previous` keeps working after a rotation.
    pub grace: chrono::Duration,
}

pub struct ManagedSecret {
    pub name: SecretName,
    pub kind: Arc<dyn SecretKind>,
    pub policy: Policy,
    pub sinks: Vec<Sink>,
}

#[derive(Default)]
pub struct Catalog {
    secrets: Vec<ManagedSecret>,
}

#[derive(Debug, thiserror::Error)]
#[error("[[secrets]] '{name}': {problem}")]
pub struct CatalogError {
    pub name: String,
    pub problem: String,
}

impl Catalog {
    pub fn build(settings: &Settings) -> Result<Catalog, CatalogError> {
        let timeout = Duration::from_millis(settings.rotation.target_timeout_ms);
        let mut secrets: Vec<ManagedSecret> = Vec::new();
        for entry in &settings.secrets {
            let fail = |problem: String| CatalogError {
                name: entry.name.clone(),
                problem,
            };
            let name = SecretName::parse(&entry.name).map_err(fail)?;
            if secrets.iter().any(|s| s.name == name) {
                return Err(fail("declared twice".into()));
            }
            let kind = kind(entry, timeout).map_err(fail)?;
            let sinks = entry
                .sinks
                .iter()
                .map(Sink::from_settings)
                .collect::<Result<_, _>>()
                .map_err(fail)?;
            secrets.push(ManagedSecret {
                policy: policy(entry, kind.as_ref()),
                name,
                kind,
                sinks,
            });
        }
        Ok(Catalog { secrets })
    }

    pub fn get(&self, name: &str) -> Option<&ManagedSecret> {
        self.secrets.iter().find(|s| s.name.as_str() == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ManagedSecret> {
        self.secrets.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// The known names, for "unknown secret" replies.
    pub fn names(&self) -> Vec<&str> {
        self.secrets.iter().map(|s| s.name.as_str()).collect()
    }
}

fn kind(entry: &SecretSettings, timeout: Duration) -> Result<Arc<dyn SecretKind>, String> {
    let t = &entry.target;
    Ok(match entry.kind.as_str() {
        "api_key" => Arc::new(ApiKey),
        "postgres_role" => {
            let dsn = t
                .dsn
                .clone()
                .ok_or("target.dsn (an admin DSN) is required")?;
            let role = t.role.clone().ok_or("target.role is required")?;
            let strategy = postgres_role::Strategy::parse(t.strategy.as_deref())?;
            Arc::new(postgres_role::PostgresRole::new(
                dsn, &role, strategy, timeout,
            )?)
        }
        "redis_acl" => {
            let user = t.user.clone().ok_or("target.user is required")?;
            if t.nodes.is_empty() {
                return Err("target.nodes (an admin URL of every node) is required".into());
            }
            Arc::new(redis_acl::RedisAcl::new(t.nodes.clone(), &user, timeout)?)
        }
        "jwt_signing_key" => Arc::new(jwt_key::JwtSigningKey::new(
            t.algorithm.as_deref(),
            t.token_ttl_secs.unwrap_or(3600),
            t.cache_margin_secs.unwrap_or(300),
        )?),
        other => {
            return Err(format!(
                "unknown kind '{other}' (postgres_role, redis_acl, jwt_signing_key or api_key)"
            ));
        }
    })
}

fn policy(entry: &SecretSettings, kind: &dyn SecretKind) -> Policy {
    let p = &entry.policy;
    Policy {
        approval: entry.needs_approval(),
        totp: p.totp,
        rotate_every: entry
            .scheduled_every_days()
            .map(|days| chrono::Duration::days(i64::from(days))),
        grace: chrono::Duration::seconds(
            p.grace_secs.unwrap_or_else(|| kind.default_grace_secs()) as i64
        ),
    }
}
