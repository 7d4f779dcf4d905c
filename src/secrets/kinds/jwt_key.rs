//! `jwt_signing_key`: the key services sign tokens with. EdDSA (Ed25519, the default): the
//! value is base64 of the PKCS#8 v1 DER private key and `public` carries the public JWK, which
//! `/.well-known/jwks.json` publishes while the version is pending ("next"), current or
//! previous. HS256: a random shared secret, never published. The key ring is the vault
//! itself, so `set` and `revoke` touch no target: a version's state is what counts.

use crate::domain::secret::Secret;
use crate::secrets::kind::{KindError, Material, Revocation, SecretKind, Version, random_token};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    EdDsa,
    Hs256,
}

impl Alg {
    fn name(self) -> &'static str {
        match self {
            Alg::EdDsa => "EdDSA",
            Alg::Hs256 => "HS256",
        }
    }
}

pub struct JwtSigningKey {
    algorithm: Alg,
    token_ttl_secs: u64,
    cache_margin_secs: u64,
}

impl JwtSigningKey {
    pub fn new(
        algorithm: Option<&str>,
        token_ttl_secs: u64,
        cache_margin_secs: u64,
    ) -> Result<Self, String> {
        let algorithm = match algorithm.unwrap_or("EdDSA") {
            "EdDSA" => Alg::EdDsa,
            "HS256" => Alg::Hs256,
            other => return Err(format!("target.algorithm '{other}': EdDSA or HS256")),
        };
        if token_ttl_secs == 0 {
            return Err("target.token_ttl_secs must be more than 0".into());
        }
        Ok(JwtSigningKey {
            algorithm,
            token_ttl_secs,
            cache_margin_secs,
        })
    }
}

/// The key as PKCS#8 v1 DER (RFC 5208: the 32-byte seed, no public key), base64: the form
/// OpenSSL 3 (`openssl pkey`) and Python `cryptography` load. `SigningKey::to_pkcs8_der`
/// writes v2 (RFC 5958, with the public key), which both refuse. 48 bytes: its base64 is
/// exactly one 64-character PEM line.
fn pkcs8_v1(key: &ed25519_dalek::SigningKey) -> Result<Secret, KindError> {
    use ed25519_dalek::pkcs8::{EncodePrivateKey, KeypairBytes};
    let bytes = KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    };
    let der = bytes
        .to_pkcs8_der()
        .map_err(|_| KindError::Refused("could not encode the Ed25519 key".into()))?;
    Ok(Secret::new(STANDARD.encode(der.as_bytes())))
}

/// A stored EdDSA value as delivered: PKCS#8 v1 whatever form it was stored in (versions
/// made before this carried v2). A value that does not parse is delivered as stored.
fn delivered_private_key(value: &Secret) -> Secret {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    let key = STANDARD
        .decode(value.expose())
        .ok()
        .and_then(|der| ed25519_dalek::SigningKey::from_pkcs8_der(&der).ok());
    key.and_then(|k| pkcs8_v1(&k).ok())
        .unwrap_or_else(|| value.clone())
}

/// A new Ed25519 key: the PKCS#8 v1 DER (base64) and the public JWK.
fn ed25519() -> Result<Material, KindError> {
    let key = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let value = pkcs8_v1(&key)?;
    let x = URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
    // The RFC 7638 thumbprint of the public key, shortened: the same key, the same kid.
    let thumbprint = Sha256::digest(format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#));
    let kid = hex::encode(&thumbprint[..8]);
    Ok(Material {
        value,
        public: serde_json::json!({
            "kid": kid,
            "alg": "EdDSA",
            "jwk": {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"},
        }),
    })
}

fn refused(version: &Version, what: &str) -> KindError {
    KindError::Refused(format!(
        "{} version {}: {what}",
        version.secret, version.number
    ))
}

/// The keys to sign and verify with; errors name the problem, never key bytes.
fn keys(alg: Alg, version: &Version) -> Result<(EncodingKey, DecodingKey), KindError> {
    let public = &version.material.public;
    if public.get("alg").and_then(|a| a.as_str()) != Some(alg.name()) {
        return Err(refused(version, &format!("not an {} key", alg.name())));
    }
    let value = version.material.value.expose();
    match alg {
        Alg::Hs256 => Ok((
            EncodingKey::from_secret(value.as_bytes()),
            DecodingKey::from_secret(value.as_bytes()),
        )),
        Alg::EdDsa => {
            let der = STANDARD
                .decode(value)
                .map_err(|_| refused(version, "the private key is not base64"))?;
            let jwk: jsonwebtoken::jwk::Jwk = public
                .get("jwk")
                .cloned()
                .and_then(|j| serde_json::from_value(j).ok())
                .ok_or_else(|| refused(version, "no public JWK"))?;
            let decoding = DecodingKey::from_jwk(&jwk)
                .map_err(|_| refused(version, "the public JWK is not usable"))?;
            Ok((EncodingKey::from_ed_der(&der), decoding))
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Probe {
    sub: String,
    exp: u64,
}

#[async_trait::async_trait]
impl SecretKind for JwtSigningKey {
    fn kind(&self) -> &'static str {
        "jwt_signing_key"
    }

    fn generate(&self, _current: Option<&Version>) -> Result<Material, KindError> {
        match self.algorithm {
            Alg::EdDsa => ed25519(),
            Alg::Hs256 => Ok(Material {
                value: random_token(),
                public: serde_json::json!({
                    "kid": hex::encode(rand::random::<[u8; 8]>()),
                    "alg": "HS256",
                }),
            }),
        }
    }

    /// Nothing to apply: a pending version is in the key set ("next") once stored.
    async fn set(&self, _pending: &Version, _current: Option<&Version>) -> Result<(), KindError> {
        Ok(())
    }

    /// Sign a token with the private key and verify it with the published public key: the
    /// pair matches.
    async fn test(&self, pending: &Version) -> Result<(), KindError> {
        crate::jwt_crypto::install();
        let (encoding, decoding) = keys(self.algorithm, pending)?;
        let algorithm = match self.algorithm {
            Alg::EdDsa => Algorithm::EdDSA,
            Alg::Hs256 => Algorithm::HS256,
        };
        let claims = Probe {
            sub: "opsguard-key-test".into(),
            exp: jsonwebtoken::get_current_timestamp() + 60,
        };
        let token = jsonwebtoken::encode(&Header::new(algorithm), &claims, &encoding)
            .map_err(|_| refused(pending, "the private key does not sign"))?;
        let mut validation = Validation::new(algorithm);
        validation.validate_aud = false;
        let verified = jsonwebtoken::decode::<Probe>(&token, &decoding, &validation)
            .map_err(|_| refused(pending, "the public key does not verify its signature"))?;
        (verified.claims.sub == claims.sub)
            .then_some(())
            .ok_or_else(|| refused(pending, "the signed claims did not round-trip"))
    }

    /// Nothing to remove: a revoked version leaves the key set with its state.
    async fn revoke(&self, _version: &Version, _why: Revocation<'_>) -> Result<(), KindError> {
        Ok(())
    }

    fn delivery(&self, prefix: &str, version: &Version) -> Vec<(String, Secret)> {
        let kid = version.material.public["kid"].as_str().unwrap_or_default();
        let private = match self.algorithm {
            Alg::EdDsa => delivered_private_key(&version.material.value),
            Alg::Hs256 => version.material.value.clone(),
        };
        vec![
            (format!("{prefix}_KID"), Secret::new(kid)),
            (format!("{prefix}_PRIVATE_KEY"), private),
            (format!("{prefix}_ALG"), Secret::new(self.algorithm.name())),
        ]
    }

    fn default_grace_secs(&self) -> u64 {
        self.token_ttl_secs + self.cache_margin_secs
    }

    /// The new key is in the JWKS as "next" for a cache margin before it signs anything.
    fn publish_lead_secs(&self) -> u64 {
        self.cache_margin_secs
    }
}
