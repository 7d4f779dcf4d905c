//! `redis_acl` (WORK IN PROGRESS: being written by a helper).

use crate::domain::secret::Secret;
use crate::secrets::kind::{KindError, Material, Revocation, SecretKind, Version};
use std::time::Duration;

pub struct RedisAcl {
    #[allow(dead_code)]
    nodes: Vec<Secret>,
    #[allow(dead_code)]
    user: String,
    #[allow(dead_code)]
    timeout: Duration,
}

impl RedisAcl {
    pub fn new(nodes: Vec<Secret>, user: &str, timeout: Duration) -> Result<Self, String> {
        Ok(RedisAcl {
            nodes,
            user: user.to_string(),
            timeout,
        })
    }
}

#[async_trait::async_trait]
impl SecretKind for RedisAcl {
    fn kind(&self) -> &'static str {
        "redis_acl"
    }
    fn generate(&self, _current: Option<&Version>) -> Result<Material, KindError> {
        Err(KindError::Refused("redis_acl is not built yet".into()))
    }
    async fn set(&self, _pending: &Version, _current: Option<&Version>) -> Result<(), KindError> {
        Err(KindError::Refused("redis_acl is not built yet".into()))
    }
    async fn test(&self, _pending: &Version) -> Result<(), KindError> {
        Err(KindError::Refused("redis_acl is not built yet".into()))
    }
    async fn revoke(&self, _version: &Version, _why: Revocation<'_>) -> Result<(), KindError> {
        Err(KindError::Refused("redis_acl is not built yet".into()))
    }
    fn delivery(&self, _prefix: &str, _version: &Version) -> Vec<(String, Secret)> {
        Vec::new()
    }
}
