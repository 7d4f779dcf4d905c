//! What every kind of secret implements: make a value, apply it to the target beside the
//! current one, prove the target accepts it, and revoke a version that is retired or rolled
//! back. Every method is idempotent: the runner repeats a step after a crash or a failure.

use crate::domain::rotation::SecretName;
use crate::domain::secret::Secret;

/// A version's value and what may be shown of it.
#[derive(Debug, Clone)]
pub struct Material {
    /// The secret itself: a password, an API key, a private key (base64 of PKCS#8 DER).
    pub value: Secret,
    /// What may be shown, logged or published: the role a password is for, a key id, a
    /// public key. Never the value.
    pub public: serde_json::Value,
}

/// One stored version, decrypted.
#[derive(Debug, Clone)]
pub struct Version {
    pub secret: SecretName,
    pub number: i32,
    pub material: Material,
    /// When it became current (`None` while pending).
    pub promoted_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Why a version is being revoked.
#[derive(Debug, Clone, Copy)]
pub enum Revocation<'a> {
    /// Its grace period as `previous` is over: remove it from the target and end the
    /// sessions that logged in with it.
    Retired { current: Option<&'a Version> },
    /// A rotation gave up after `set`: undo it, so `current` is again the only credential.
    RolledBack { current: Option<&'a Version> },
}

#[derive(Debug, thiserror::Error)]
pub enum KindError {
    /// The target could not be reached or timed out: worth retrying later.
    #[error("{0}")]
    Unreachable(String),
    /// The target refused (permissions, a missing role, a bad setting): retrying will not help.
    #[error("{0}")]
    Refused(String),
    /// A retirement took the credential off the target, but the sessions opened with it
    /// (those that started before `before`) could not be ended: `end_sessions` is retried.
    #[error("{error}")]
    SessionsLive {
        error: String,
        before: chrono::DateTime<chrono::Utc>,
    },
}

impl KindError {
    pub fn is_transient(&self) -> bool {
        matches!(self, KindError::Unreachable(_))
    }
}

/// Texts in a `KindError` must never contain a secret value (a test plants canaries).
#[async_trait::async_trait]
pub trait SecretKind: Send + Sync {
    /// `postgres_role`, `redis_acl`, `jwt_signing_key`, `api_key`.
    fn kind(&self) -> &'static str;

    /// A new value. `current` is the current version, if any (alternating users pick the
    /// other role).
    fn generate(&self, current: Option<&Version>) -> Result<Material, KindError>;

    /// Apply `pending` to the target beside `current`, which keeps working.
    async fn set(&self, pending: &Version, current: Option<&Version>) -> Result<(), KindError>;

    /// Prove the target accepts `pending` (log in with it, AUTH on every node, sign and
    /// verify).
    async fn test(&self, pending: &Version) -> Result<(), KindError>;

    /// Take `version` away from the target. Idempotent; a no-op where nothing was applied.
    async fn revoke(&self, version: &Version, why: Revocation<'_>) -> Result<(), KindError>;

    /// End the sessions opened with a retired `version` that started before `before` (the
    /// retry of a retirement whose credential is already off the target). Idempotent.
    async fn end_sessions(
        &self,
        _version: &Version,
        _before: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), KindError> {
        Ok(())
    }

    /// Whether the target has sessions a retirement ends (what `/secrets` says of it).
    fn ends_sessions(&self) -> bool {
        false
    }

    /// Verify, without changing anything, that the admin credentials hold every privilege
    /// each step needs. `Ok`: the grants that are missing, each named as the statement that
    /// gives it (empty: all there). `Err`: the target could not be asked.
    async fn preflight(&self) -> Result<Vec<String>, KindError> {
        Ok(Vec::new())
    }

    /// What sinks deliver for `version`: `(NAME, value)` pairs, names in upper case.
    /// `prefix` is the secret's name in upper case with `-` as `_` (e.g. `APP_DB`).
    fn delivery(&self, prefix: &str, version: &Version) -> Vec<(String, Secret)>;

    /// Whether a new value goes where the previous version's lives (alternating users): the
    /// previous version is then retired when a rotation starts, ending its grace early.
    fn reuses_previous_slot(&self) -> bool {
        false
    }

    /// Whether a new rotation waits until the previous version's grace is over (refused,
    /// with the time, until then): where a new value would cut that grace short.
    fn waits_for_grace(&self) -> bool {
        self.reuses_previous_slot()
    }

    /// How long a set and tested version waits before it may become current (a signing key
    /// stays "next" in the JWKS while verifiers' caches refresh). Seconds; 0 = no wait.
    fn publish_lead_secs(&self) -> u64 {
        0
    }

    /// Default grace period for the previous version (seconds).
    fn default_grace_secs(&self) -> u64 {
        3600
    }
}

/// The prefix of delivered variable names: `app-db` → `APP_DB`.
pub fn env_prefix(name: &SecretName) -> String {
    name.as_str().to_ascii_uppercase().replace('-', "_")
}

/// 32 random bytes, base64url without padding: an API key or a password.
pub fn random_token() -> Secret {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Percent-encode every byte but RFC 3986's unreserved ones (user info in delivered URLs).
pub fn percent_encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
