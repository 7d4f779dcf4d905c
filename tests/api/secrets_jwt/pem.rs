//! The delivered Ed25519 key loads with the reference tools: OpenSSL 3 (`openssl pkey`) and
//! Python `cryptography`, as PKCS#8 v1 in a PEM; its public half is the one the JWKS
//! publishes. Keys stored as PKCS#8 v2 by earlier versions are delivered as v1 too.

use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::path::{Path, PathBuf};
use std::process::Command;

/// PKCS#8 v1 of an Ed25519 seed: this fixed header, then the 32 bytes (RFC 8410 §7).
const V1_HEADER: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A scratch file removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("opsguard-{}.pem", uuid::Uuid::new_v4()));
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The delivered `_PRIVATE_KEY` as the README says to write it: a PEM around it.
fn pem_of(delivered: &str) -> String {
    assert_eq!(
        delivered.len(),
        64,
        "one PEM line: {} chars",
        delivered.len()
    );
    format!("-----BEGIN PRIVATE KEY-----\n{delivered}\n-----END PRIVATE KEY-----\n")
}

fn openssl(args: &[&str], key: &Path) -> Vec<u8> {
    let out = Command::new("openssl")
        .arg("pkey")
        .args(["-in", key.to_str().unwrap()])
        .args(args)
        .output()
        .expect("openssl on PATH (scripts/services.sh installs it)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "openssl pkey {args:?}: {err}");
    out.stdout
}

/// The raw public key Python `cryptography` reads from the PEM, base64url.
fn python_public_x(key: &Path) -> String {
    let script = "import base64, sys
from cryptography.hazmat.primitives import serialization as s
k = s.load_pem_private_key(open(sys.argv[1], 'rb').read(), None)
raw = k.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
print(base64.urlsafe_b64encode(raw).decode().rstrip('='))";
    let out = Command::new("python3")
        .args(["-c", script, key.to_str().unwrap()])
        .output()
        .expect("python3 on PATH");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python cryptography: {err}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Load `material`'s delivered key with both tools; check it is PKCS#8 v1 and that its
/// public half is the JWKS `x`.
fn check_delivered(material: Material) {
    let x = material.public["jwk"]["x"].as_str().unwrap().to_string();
    let v = version("api-jwt", 1, material);
    let delivered = eddsa().delivery("API_JWT", &v);
    let (name, value) = &delivered[1];
    assert_eq!(name, "API_JWT_PRIVATE_KEY");
    let der = STANDARD.decode(value.expose()).unwrap();
    assert_eq!(der.len(), 48, "PKCS#8 v1: no public key inside");
    assert_eq!(der[..16], V1_HEADER);
    let key = TempFile::new(&pem_of(value.expose()));
    openssl(&["-noout"], &key.0);
    let text = String::from_utf8(openssl(&["-noout", "-text"], &key.0)).unwrap();
    assert!(text.contains("ED25519 Private-Key"), "{text}");
    // The public key OpenSSL derives (SubjectPublicKeyInfo DER: 12-byte header + 32 bytes)
    // is the one published.
    let spki = openssl(&["-pubout", "-outform", "DER"], &key.0);
    assert_eq!(spki.len(), 44);
    assert_eq!(URL_SAFE_NO_PAD.encode(&spki[12..]), x);
    assert_eq!(python_public_x(&key.0), x);
}

#[test]
fn a_delivered_ed25519_key_loads_with_openssl_and_python_cryptography() {
    check_delivered(eddsa().generate(None).unwrap());
}

#[test]
fn a_key_stored_as_pkcs8_v2_is_delivered_as_v1() {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let fresh = eddsa().generate(None).unwrap();
    let der = STANDARD.decode(fresh.value.expose()).unwrap();
    let key: ed25519_dalek::SigningKey =
        ed25519_dalek::pkcs8::DecodePrivateKey::from_pkcs8_der(&der).unwrap();
    // What earlier versions stored: PKCS#8 v2 (`SigningKey::to_pkcs8_der`).
    let v2 = key.to_pkcs8_der().unwrap();
    assert!(v2.as_bytes().len() > 48, "v2 carries the public key");
    let stored = Material {
        value: Secret::new(STANDARD.encode(v2.as_bytes())),
        public: fresh.public.clone(),
    };
    check_delivered(stored);
}
