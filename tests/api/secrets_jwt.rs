//! The `jwt_signing_key` kind and `/.well-known/jwks.json` on the real application: keys
//! are generated and proven, a token signed with a delivered private key verifies against
//! the published key set, revoked versions leave it, and nothing private is published.

mod pem;

use super::helpers::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use opsguard::domain::rotation::{SecretName, VersionState};
use opsguard::domain::secret::Secret;
use opsguard::secrets::kind::{KindError, Material, SecretKind, Version};
use opsguard::secrets::kinds::jwt_key::JwtSigningKey;
use opsguard::secrets::store::{self, NewVersion};
use opsguard::secrets::vault::MasterKey;
use serde_json::Value;

fn version(secret: &str, number: i32, material: Material) -> Version {
    Version {
        secret: SecretName::parse(secret).unwrap(),
        number,
        material,
        promoted_at: None,
    }
}

fn eddsa() -> JwtSigningKey {
    JwtSigningKey::new(None, 3600, 300).unwrap()
}

#[tokio::test]
async fn eddsa_keys_are_pkcs8_with_a_public_jwk_and_prove_themselves() {
    let k = eddsa();
    assert_eq!(k.default_grace_secs(), 3900);
    let m = k.generate(None).unwrap();
    let der = STANDARD
        .decode(m.value.expose())
        .expect("base64 of the DER");
    assert!(
        ed25519_dalek::pkcs8::DecodePrivateKey::from_pkcs8_der(&der)
            .map(|_: ed25519_dalek::SigningKey| ())
            .is_ok()
    );
    let public = &m.public.clone();
    let kid = public["kid"].as_str().unwrap();
    assert_eq!(kid.len(), 16);
    assert_eq!(public["alg"], "EdDSA");
    let jwk = public["jwk"].as_object().unwrap();
    assert_eq!(
        (jwk["kty"].as_str(), jwk["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    assert_eq!(
        (jwk["kid"].as_str(), jwk["use"].as_str()),
        (Some(kid), Some("sig"))
    );
    assert!(!jwk.contains_key("d"), "no private member");
    assert!(!public.to_string().contains(m.value.expose()));
    let v = version("api-jwt", 1, m);
    k.test(&v).await.expect("the pair matches");
    let delivered = k.delivery("API_JWT", &v);
    let names: Vec<&str> = delivered.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["API_JWT_KID", "API_JWT_PRIVATE_KEY", "API_JWT_ALG"]);
    assert_eq!(delivered[0].1.expose(), kid);
    assert_eq!(delivered[2].1.expose(), "EdDSA");
    assert_ne!(
        k.generate(None).unwrap().public["kid"],
        kid,
        "a new key, a new kid"
    );
}

#[tokio::test]
async fn hs256_keys_are_random_secrets_with_no_jwk() {
    let k = JwtSigningKey::new(Some("HS256"), 600, 60).unwrap();
    assert_eq!(k.default_grace_secs(), 660);
    let m = k.generate(None).unwrap();
    assert_eq!(m.value.expose().len(), 43);
    assert_eq!(m.public["alg"], "HS256");
    assert!(m.public.get("jwk").is_none());
    k.test(&version("svc-hmac", 1, m)).await.unwrap();
    assert!(JwtSigningKey::new(Some("RS256"), 600, 60).is_err());
}

#[tokio::test]
async fn a_mismatched_pair_or_the_wrong_algorithm_fails_the_test_without_showing_the_key() {
    let k = eddsa();
    let (a, b) = (k.generate(None).unwrap(), k.generate(None).unwrap());
    let mixed = version(
        "api-jwt",
        2,
        Material {
            value: a.value.clone(),
            public: b.public,
        },
    );
    let err = k
        .test(&mixed)
        .await
        .expect_err("a's private key with b's public key");
    assert!(matches!(err, KindError::Refused(_)), "{err}");
    assert!(err.to_string().contains("api-jwt version 2"), "{err}");
    assert!(!err.to_string().contains(a.value.expose()));
    let garbage = Material {
        value: Secret::new("not base64!"),
        public: a.public.clone(),
    };
    assert!(k.test(&version("api-jwt", 3, garbage)).await.is_err());
    let hs = JwtSigningKey::new(Some("HS256"), 600, 60).unwrap();
    let hs_key = hs.generate(None).unwrap();
    assert!(
        k.test(&version("api-jwt", 4, hs_key)).await.is_err(),
        "an HS256 value as EdDSA"
    );
    assert!(
        hs.test(&version("api-jwt", 5, a)).await.is_err(),
        "an EdDSA value as HS256"
    );
}

/// Store `material` as a version in `state`, as the vault does.
async fn store_version(app: &TestApp, v: &Version, state: VersionState) {
    let key = MasterKey::parse(Some(&Secret::new(STANDARD.encode([7u8; 32])))).unwrap();
    let sealed = key.seal(&v.secret, v.number, &v.material.value);
    let fingerprint = v.material.value.fingerprint();
    let row = NewVersion {
        secret: v.secret.as_str(),
        version: v.number,
        state,
        nonce: &sealed.nonce,
        sealed: &sealed.sealed,
        public: &v.material.public,
        fingerprint: &fingerprint,
    };
    store::insert_version(app.pool(), row).await.unwrap();
}

async fn fetch_jwks(app: &TestApp) -> (Value, String) {
    let response = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "max-age=300");
    let text = response.text().await.unwrap();
    (serde_json::from_str(&text).unwrap(), text)
}

fn kids(doc: &Value) -> Vec<String> {
    doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

fn kid(v: &Version) -> String {
    v.material.public["kid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn jwks_publishes_current_next_and_previous_public_keys_only() {
    let app = spawn_app().await;
    let (empty, _) = fetch_jwks(&app).await;
    assert_eq!(empty, serde_json::json!({"keys": []}));
    let k = eddsa();
    let [v1, v2, v3, v4] = [1, 2, 3, 4].map(|n| version("api-jwt", n, k.generate(None).unwrap()));
    store_version(&app, &v1, VersionState::Revoked).await;
    store_version(&app, &v2, VersionState::Previous).await;
    store_version(&app, &v3, VersionState::Current).await;
    store_version(&app, &v4, VersionState::Pending).await;
    let hs = JwtSigningKey::new(Some("HS256"), 600, 60).unwrap();
    let hmac = version("svc-hmac", 1, hs.generate(None).unwrap());
    store_version(&app, &hmac, VersionState::Current).await;

    let (doc, text) = fetch_jwks(&app).await;
    assert_eq!(
        kids(&doc),
        [kid(&v3), kid(&v4), kid(&v2)],
        "current, next, previous"
    );
    for key in doc["keys"].as_array().unwrap() {
        assert!(key.get("d").is_none(), "no private member: {key}");
    }
    for v in [&v1, &v2, &v3, &v4, &hmac] {
        let private = v.material.value.expose();
        assert!(!text.contains(private), "a private key was published");
        // Nor the raw 32-byte seed, in any usual encoding.
        if v.material.public["alg"] == "EdDSA" {
            let der = STANDARD.decode(private).unwrap();
            let key: ed25519_dalek::SigningKey =
                ed25519_dalek::pkcs8::DecodePrivateKey::from_pkcs8_der(&der).unwrap();
            let seed = key.to_bytes();
            assert!(!text.contains(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(seed)));
            assert!(!text.contains(&hex::encode(seed)));
        }
    }

    // A token signed with the delivered private key verifies against the fetched key set.
    let delivered = k.delivery("API_JWT", &v3);
    let der = STANDARD.decode(delivered[1].1.expose()).unwrap();
    opsguard::jwt_crypto::install();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(delivered[0].1.expose().to_string());
    let claims =
        serde_json::json!({"sub": "user-1", "exp": jsonwebtoken::get_current_timestamp() + 600});
    let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&der)).unwrap();
    let verify = |doc: &Value| -> bool {
        let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
        let Some(jwk) = doc["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid.as_str())
        else {
            return false;
        };
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
        let key = DecodingKey::from_jwk(&jwk).unwrap();
        jsonwebtoken::decode::<Value>(&token, &key, &Validation::new(Algorithm::EdDSA)).is_ok()
    };
    assert!(verify(&doc), "the token verifies against the published key");

    // Revoked versions leave the key set.
    store::revoke_version(app.pool(), "api-jwt", 3)
        .await
        .unwrap();
    store::revoke_version(app.pool(), "api-jwt", 2)
        .await
        .unwrap();
    let (doc, _) = fetch_jwks(&app).await;
    assert_eq!(kids(&doc), [kid(&v4)]);
    assert!(!verify(&doc), "a revoked key no longer verifies");
}
