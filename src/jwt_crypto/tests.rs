//! The provider against the RFCs' own examples (RFC 7515 A.1 for HS256, RFC 8037 A.4 for
//! Ed25519): the signatures are the RFCs' literal values, not ones this code produced.

use super::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::crypto::{sign, verify};

/// RFC 7515 A.1: the JWK `k`, the signing input (with its CR LF) and the signature.
const RFC7515_K: &str =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
const RFC7515_INPUT: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
const RFC7515_SIG: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// RFC 8037 A.1 (the key pair) and A.4 (the JWS of "Example of Ed25519 signing").
const RFC8037_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const RFC8037_INPUT: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
const RFC8037_SIG: &str =
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

fn hs256_keys() -> (EncodingKey, DecodingKey) {
    let k = URL_SAFE_NO_PAD.decode(RFC7515_K).unwrap();
    (EncodingKey::from_secret(&k), DecodingKey::from_secret(&k))
}

fn ed25519_keys() -> (EncodingKey, DecodingKey) {
    use ed25519_dalek::pkcs8::{EncodePrivateKey, KeypairBytes};
    let d: [u8; 32] = URL_SAFE_NO_PAD
        .decode(RFC8037_D)
        .unwrap()
        .try_into()
        .unwrap();
    let der = KeypairBytes {
        secret_key: d,
        public_key: None,
    }
    .to_pkcs8_der()
    .unwrap();
    let public = DecodingKey::from_ed_components(RFC8037_X).unwrap();
    (EncodingKey::from_ed_der(der.as_bytes()), public)
}

fn flipped(sig: &str) -> String {
    let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
    bytes[0] ^= 1;
    URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn hs256_signs_and_verifies_the_rfc_7515_example() {
    install();
    let (enc, dec) = hs256_keys();
    let input = RFC7515_INPUT.as_bytes();
    assert_eq!(sign(input, &enc, Algorithm::HS256).unwrap(), RFC7515_SIG);
    assert!(verify(RFC7515_SIG, input, &dec, Algorithm::HS256).unwrap());
    assert!(!verify(&flipped(RFC7515_SIG), input, &dec, Algorithm::HS256).unwrap());
    assert!(!verify(RFC7515_SIG, b"other input", &dec, Algorithm::HS256).unwrap());
}

#[test]
fn eddsa_signs_and_verifies_the_rfc_8037_example() {
    install();
    let (enc, dec) = ed25519_keys();
    let input = RFC8037_INPUT.as_bytes();
    assert_eq!(sign(input, &enc, Algorithm::EdDSA).unwrap(), RFC8037_SIG);
    assert!(verify(RFC8037_SIG, input, &dec, Algorithm::EdDSA).unwrap());
    assert!(!verify(&flipped(RFC8037_SIG), input, &dec, Algorithm::EdDSA).unwrap());
    // The public key the provider derives from the private one is the RFC's `x`.
    let x = ed25519_public_key(enc.as_bytes(), &EllipticCurve::Ed25519).unwrap();
    assert_eq!(URL_SAFE_NO_PAD.encode(x), RFC8037_X);
}

#[test]
fn every_other_algorithm_is_refused_not_panicked_on() {
    install();
    let (hmac_enc, hmac_dec) = hs256_keys();
    let (ed_enc, ed_dec) = ed25519_keys();
    let others = [
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ];
    for alg in others {
        for (enc, dec) in [(&hmac_enc, &hmac_dec), (&ed_enc, &ed_dec)] {
            let signed = sign(b"x.y", enc, alg).unwrap_err();
            assert_eq!(signed.kind(), &ErrorKind::InvalidAlgorithm, "{alg:?}");
            let verified = verify(RFC7515_SIG, b"x.y", dec, alg).unwrap_err();
            assert_eq!(verified.kind(), &ErrorKind::InvalidAlgorithm, "{alg:?}");
        }
    }
    // A key of the other family for a supported algorithm: refused as the wrong key.
    let wrong = sign(b"x.y", &ed_enc, Algorithm::HS256).unwrap_err();
    assert_eq!(wrong.kind(), &ErrorKind::InvalidKeyFormat);
    let wrong = verify(RFC8037_SIG, b"x.y", &hmac_dec, Algorithm::EdDSA).unwrap_err();
    assert_eq!(wrong.kind(), &ErrorKind::InvalidKeyFormat);
    // An Ed25519 public key of the wrong length.
    let short = DecodingKey::from_ed_components("AAAA").unwrap();
    let short = verify(RFC8037_SIG, b"x.y", &short, Algorithm::EdDSA).unwrap_err();
    assert_eq!(short.kind(), &ErrorKind::InvalidEddsaKey);
}

#[test]
fn jwk_helpers_that_need_rsa_or_ecdsa_answer_with_an_error() {
    let utils = &PROVIDER.key_utils;
    assert!((utils.rsa_pub_components_from_private_key)(b"der").is_err());
    assert!((utils.rsa_pub_components_from_public_key)(b"der").is_err());
    assert!((utils.ec_pub_components_from_private_key)(b"der", Algorithm::ES256).is_err());
    // RFC 7638 3.1's thumbprint input hashes to its published SHA-256 (base64url).
    let input = r#"{"e":"AQAB","kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}"#;
    let hash = (utils.compute_digest)(input.as_bytes(), ThumbprintHash::SHA256).unwrap();
    assert_eq!(
        URL_SAFE_NO_PAD.encode(hash),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}
