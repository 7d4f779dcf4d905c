//! `jwt_signing_key` (WORK IN PROGRESS: being written by a helper).

use crate::domain::secret::Secret;
use crate::secrets::kind::{KindError, Material, Revocation, SecretKind, Version};

pub struct JwtSigningKey {
    #[allow(dead_code)]
    algorithm: String,
    token_ttl_secs: u64,
    cache_margin_secs: u64,
}

impl JwtSigningKey {
    pub fn new(
        algorithm: Option<&str>,
        token_ttl_secs: u64,
        cache_margin_secs: u64,
    ) -> Result<Self, String> {
        Ok(JwtSigningKey {
            algorithm: algorithm.unwrap_or("EdDSA").to_string(),
            token_ttl_secs,
            cache_margin_secs,
        })
    }
}

#[async_trait::async_trait]
impl SecretKind for JwtSigningKey {
    fn kind(&self) -> &'static str {
        "jwt_signing_key"
    }
    fn generate(&self, _current: Option<&Version>) -> Result<Material, KindError> {
        Err(KindError::Refused(
            "jwt_signing_key is not built yet".into(),
        ))
    }
    async fn set(&self, _pending: &Version, _current: Option<&Version>) -> Result<(), KindError> {
        Err(KindError::Refused(
            "jwt_signing_key is not built yet".into(),
        ))
    }
    async fn test(&self, _pending: &Version) -> Result<(), KindError> {
        Err(KindError::Refused(
            "jwt_signing_key is not built yet".into(),
        ))
    }
    async fn revoke(&self, _version: &Version, _why: Revocation<'_>) -> Result<(), KindError> {
        Err(KindError::Refused(
            "jwt_signing_key is not built yet".into(),
        ))
    }
    fn delivery(&self, _prefix: &str, _version: &Version) -> Vec<(String, Secret)> {
        Vec::new()
    }
    fn default_grace_secs(&self) -> u64 {
        self.token_ttl_secs + self.cache_margin_secs
    }
}
