//! `postgres_role` (WORK IN PROGRESS: being written by a helper).

use crate::domain::secret::Secret;
use crate::secrets::kind::{KindError, Material, Revocation, SecretKind, Version};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Alternating,
    Single,
}

impl Strategy {
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        match raw.unwrap_or("alternating") {
            "alternating" => Ok(Strategy::Alternating),
            "single" => Ok(Strategy::Single),
            other => Err(format!("target.strategy '{other}': alternating or single")),
        }
    }
}

pub struct PostgresRole {
    #[allow(dead_code)]
    dsn: Secret,
    #[allow(dead_code)]
    role: String,
    #[allow(dead_code)]
    strategy: Strategy,
    #[allow(dead_code)]
    timeout: Duration,
}

impl PostgresRole {
    pub fn new(
        dsn: Secret,
        role: &str,
        strategy: Strategy,
        timeout: Duration,
    ) -> Result<Self, String> {
        Ok(PostgresRole {
            dsn,
            role: role.to_string(),
            strategy,
            timeout,
        })
    }
}

#[async_trait::async_trait]
impl SecretKind for PostgresRole {
    fn kind(&self) -> &'static str {
        "postgres_role"
    }
    fn generate(&self, _current: Option<&Version>) -> Result<Material, KindError> {
        Err(KindError::Refused("postgres_role is not built yet".into()))
    }
    async fn set(&self, _pending: &Version, _current: Option<&Version>) -> Result<(), KindError> {
        Err(KindError::Refused("postgres_role is not built yet".into()))
    }
    async fn test(&self, _pending: &Version) -> Result<(), KindError> {
        Err(KindError::Refused("postgres_role is not built yet".into()))
    }
    async fn revoke(&self, _version: &Version, _why: Revocation<'_>) -> Result<(), KindError> {
        Err(KindError::Refused("postgres_role is not built yet".into()))
    }
    fn delivery(&self, _prefix: &str, _version: &Version) -> Vec<(String, Secret)> {
        Vec::new()
    }
}
