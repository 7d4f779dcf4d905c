//! Service tokens for the ingest API: HS256 JWTs with `exp`, `iss`, `aud = "opsguard"`,
//! `sub` (the sending service) and a `scope` holding `events:write`; `nbf`, when present,
//! is checked too. Verification pins the algorithm before anything else (so `alg: none` is
//! refused by name), picks the key by the header's `kid` (the current or the previous
//! ingest key, see `keys.rs`) and maps every failure to a short reason safe to return to
//! the caller; the key is never shown. Tokens are issued under the current key with its
//! `kid`. `TokenCmd` is the `opsguard token issue` shell command.

use super::keys::Keys;
use crate::config::Settings;
use crate::domain::secret::Secret;
use crate::engine::shell::audited;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::time::Duration;

pub const AUDIENCE: &str = "opsguard";
pub const WRITE_SCOPE: &str = "events:write";

/// Why a presented token is refused. `MissingScope` is 403 (the token is genuine but may
/// not write events); every other variant is 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("missing bearer token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("algorithm not allowed: only HS256 is accepted")]
    Algorithm,
    #[error("bad signature")]
    BadSignature,
    #[error("unknown key id (kid)")]
    UnknownKey,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet")]
    NotYetValid,
    #[error("wrong audience")]
    WrongAudience,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("missing claim: {0}")]
    MissingClaim(String),
    #[error("invalid claim: {0}")]
    InvalidClaim(String),
    #[error("token lacks the scope events:write")]
    MissingScope,
}

impl TokenError {
    /// A stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            TokenError::Missing => "missing",
            TokenError::Malformed => "malformed",
            TokenError::Algorithm => "algorithm",
            TokenError::BadSignature => "bad_signature",
            TokenError::UnknownKey => "unknown_kid",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::WrongIssuer => "wrong_issuer",
            TokenError::MissingClaim(_) => "missing_claim",
            TokenError::InvalidClaim(_) => "invalid_claim",
            TokenError::MissingScope => "missing_scope",
        }
    }
}

/// The claims `issue` signs.
#[derive(Debug, Serialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    /// Space-separated scopes (OAuth style).
    pub scope: String,
}

/// What verification reads; `exp`, `iss` and `aud` are checked by the library, and a
/// missing one must reach its check rather than fail deserialization.
#[derive(Deserialize)]
struct Presented {
    #[serde(default)]
    sub: String,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct JoseHeader<'a> {
    #[serde(borrow)]
    alg: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    kid: Option<std::borrow::Cow<'a, str>>,
}

/// Verify a token under the ring's keys and return the sending service (`sub`).
pub fn verify(token: &str, keys: &Keys<'_>, issuer: &str) -> Result<String, TokenError> {
    crate::jwt_crypto::install();
    // Pin the algorithm first: the library would refuse `none` only as a parse error.
    let header = token.split('.').next().ok_or(TokenError::Malformed)?;
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed)?;
    let header: JoseHeader = serde_json::from_slice(&header).map_err(|_| TokenError::Malformed)?;
    if header.alg.as_deref() != Some("HS256") {
        return Err(TokenError::Algorithm);
    }
    let candidates = keys
        .candidates(header.kid.as_deref())
        .ok_or(TokenError::UnknownKey)?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    // The signature is checked before the claims: any other error means the key was right.
    let mut verdict = Err(TokenError::BadSignature);
    for secret in candidates {
        let key = DecodingKey::from_secret(secret.expose().as_bytes());
        verdict = jsonwebtoken::decode::<Presented>(token, &key, &validation)
            .map_err(|e| reason(e.kind()));
        if !matches!(verdict, Err(TokenError::BadSignature)) {
            break;
        }
    }
    let claims = verdict?.claims;
    let sub = claims.sub.as_str();
    if sub.is_empty() || sub.len() > 256 || sub.chars().any(char::is_control) {
        return Err(TokenError::InvalidClaim("sub".into()));
    }
    let scoped = claims
        .scope
        .as_deref()
        .is_some_and(|s| s.split_ascii_whitespace().any(|s| s == WRITE_SCOPE));
    if !scoped {
        return Err(TokenError::MissingScope);
    }
    Ok(claims.sub)
}

fn reason(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => TokenError::Algorithm,
        ErrorKind::MissingRequiredClaim(c) => TokenError::MissingClaim(c.clone()),
        ErrorKind::InvalidClaimFormat(c) => TokenError::InvalidClaim(c.clone()),
        // The claims are not the expected shape (e.g. `sub` is a number).
        ErrorKind::Json(_) => TokenError::InvalidClaim("claims".into()),
        _ => TokenError::Malformed,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("the service name must be 1-256 characters without control characters")]
    BadService,
    #[error("cannot sign the token")]
    Signing,
}

/// A token for `service`, valid for `ttl` from `now_unix` (seconds since the epoch),
/// signed under `secret` and naming it by its `kid`.
pub fn issue(
    service: &str,
    ttl: Duration,
    secret: &Secret,
    issuer: &str,
    now_unix: u64,
) -> Result<String, IssueError> {
    if service.is_empty() || service.len() > 256 || service.chars().any(char::is_control) {
        return Err(IssueError::BadService);
    }
    let claims = Claims {
        sub: service.to_string(),
        iss: issuer.to_string(),
        aud: AUDIENCE.to_string(),
        exp: now_unix.saturating_add(ttl.as_secs()),
        iat: now_unix,
        scope: WRITE_SCOPE.to_string(),
    };
    crate::jwt_crypto::install();
    let key = EncodingKey::from_secret(secret.expose().as_bytes());
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(Keys::kid(secret));
    jsonwebtoken::encode(&header, &claims, &key).map_err(|_| IssueError::Signing)
}

/// `30d`, `12h`, `15m`, `90s`: a positive number followed by one unit.
pub fn parse_ttl(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let bad = || format!("'{raw}' is not a duration like 90s, 15m, 12h or 30d");
    let (split, _) = raw.char_indices().last().ok_or_else(bad)?;
    let (number, unit) = raw.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    match n.checked_mul(unit) {
        Some(secs) if secs > 0 && secs <= 10 * 365 * 86_400 => Ok(Duration::from_secs(secs)),
        _ => Err(format!(
            "'{raw}': the time to live must be between 1s and 3650d"
        )),
    }
}

/// `opsguard token issue`: refuses without a key, is audited like every shell action,
/// prints the token on stdout and its expiry on stderr; the key is shown as a fingerprint.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCmd {
    /// Print a JWT a service posts auth events with (scope events:write, aud opsguard).
    Issue {
        /// The sending service: the token's `sub`, recorded with every event it posts.
        #[arg(long)]
        service: String,
        /// How long the token is valid: a number and one of s, m, h, d.
        #[arg(long, default_value = "30d")]
        ttl: String,
    },
}

impl TokenCmd {
    /// Run it; `pool` is awaited only once the request is known to be valid.
    pub async fn run(
        self,
        settings: &Settings,
        pool: impl Future<Output = anyhow::Result<PgPool>>,
    ) -> anyhow::Result<()> {
        let TokenCmd::Issue { service, ttl } = self;
        let ingest = &settings.logins.ingest;
        let Some(secret) = ingest.current_key() else {
            anyhow::bail!(
                "no ingest JWT secret: set OPSGUARD_INGEST_JWT_SECRET, then issue tokens"
            );
        };
        let lifetime = parse_ttl(&ttl).map_err(anyhow::Error::msg)?;
        let now = jsonwebtoken::get_current_timestamp();
        let args = format!("--service {service} --ttl {ttl} kid {}", Keys::kid(secret));
        let pool = pool.await?;
        let token = audited(settings, &pool, "token issue", &args, async {
            Ok(issue(&service, lifetime, secret, &ingest.issuer, now)?)
        })
        .await?;
        println!("{token}");
        let expires = now.saturating_add(lifetime.as_secs());
        let expires =
            chrono::DateTime::from_timestamp(i64::try_from(expires).unwrap_or(i64::MAX), 0)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default();
        eprintln!("token for service {service} (scope events:write), expires {expires}");
        Ok(())
    }
}

#[cfg(test)]
mod tests;
