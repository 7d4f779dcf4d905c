//! `api_key`: a random value (32 bytes, base64url). Nothing to set or test on a target: the
//! sinks deliver it, and the consuming service accepts current and previous until the
//! previous one's grace period ends.

use crate::domain::secret::Secret;
use crate::secrets::kind::{KindError, Material, Revocation, SecretKind, Version, random_token};

pub struct ApiKey;

#[async_trait::async_trait]
impl SecretKind for ApiKey {
    fn kind(&self) -> &'static str {
        "api_key"
    }

    fn generate(&self, _current: Option<&Version>) -> Result<Material, KindError> {
        Ok(Material {
            value: random_token(),
            public: serde_json::json!({}),
        })
    }

    async fn set(&self, _pending: &Version, _current: Option<&Version>) -> Result<(), KindError> {
        Ok(())
    }

    async fn test(&self, pending: &Version) -> Result<(), KindError> {
        let ok = pending.material.value.expose().len() == 43;
        ok.then_some(())
            .ok_or_else(|| KindError::Refused("the stored key is not 32 bytes".into()))
    }

    async fn revoke(&self, _version: &Version, _why: Revocation<'_>) -> Result<(), KindError> {
        Ok(())
    }

    fn delivery(&self, prefix: &str, version: &Version) -> Vec<(String, Secret)> {
        vec![(format!("{prefix}_API_KEY"), version.material.value.clone())]
    }
}
