//! The built-in checks and their lookup by name. Each check is built from the settings
//! (its configured targets); a check with no targets is skipped by `/check all`.

use super::Check;
use super::backups::BackupsCheck;
use super::secrets::SecretsCheck;
use super::{http_headers::HttpHeaders, postgres::Postgres, redis::Redis, tls::Tls};
use crate::config::Settings;
use sqlx::PgPool;
use std::sync::Arc;

/// Every built-in check, configured or not, in the order reports list them.
/// A new check adds one line here.
fn built_in(settings: &Settings, pool: &PgPool) -> Vec<Arc<dyn Check>> {
    vec![
        Arc::new(HttpHeaders::new(&settings.checks)),
        Arc::new(Tls::new(&settings.checks.tls)),
        Arc::new(Postgres::new(&settings.checks.postgres)),
        Arc::new(Redis::new(&settings.checks.redis)),
        Arc::new(SecretsCheck::new(pool, &settings.secrets)),
        Arc::new(BackupsCheck::new(pool, settings.backups.target_names())),
    ]
}

/// The checks `/check all` runs: every built-in check that has at least one target
/// (`secrets` and `backups` always have one: the opsguard database).
pub fn configured(settings: &Settings, pool: &PgPool) -> Vec<Arc<dyn Check>> {
    built_in(settings, pool)
        .into_iter()
        .filter(|c| !c.targets().is_empty())
        .collect()
}

/// Why a name cannot be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// No check has this name; the valid names are listed.
    Unknown { valid: Vec<&'static str> },
    /// The check exists but `[checks.<name>]` lists no targets.
    NoTargets(&'static str),
}

impl Lookup {
    /// Plain text for the operator (escaped by the caller when shown).
    pub fn message(&self, name: &str) -> String {
        match self {
            Lookup::Unknown { valid } => format!(
                "There is no check named '{name}'. Valid names: all, {}.",
                valid.join(", ")
            ),
            Lookup::NoTargets(check) => format!(
                "The {check} check has no targets: list them under [checks.{check}] in the settings."
            ),
        }
    }
}

/// The check named `name`, if it exists and has targets.
pub fn by_name(settings: &Settings, pool: &PgPool, name: &str) -> Result<Arc<dyn Check>, Lookup> {
    let all = built_in(settings, pool);
    let valid: Vec<&'static str> = all.iter().map(|c| c.name()).collect();
    match all.into_iter().find(|c| c.name() == name) {
        None => Err(Lookup::Unknown { valid }),
        Some(c) if c.targets().is_empty() => Err(Lookup::NoTargets(c.name())),
        Some(c) => Ok(c),
    }
}
