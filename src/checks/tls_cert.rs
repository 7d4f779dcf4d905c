//! What the `tls` check reads from the leaf certificate itself, graded as testssl.sh grades
//! it (its `cert_keySize`, `cert_signatureAlgorithm` and `cert_expirationStatus` tables):
//! the public key's type and size, the hash its issuer signed it with, and its validity
//! period (expired, expiring soon, not yet valid).

use crate::domain::finding::Severity;
use x509_parser::certificate::X509Certificate;
use x509_parser::public_key::PublicKey;

/// A certificate weakness: severity, title, evidence, fix.
pub type Weakness = (Severity, &'static str, String, &'static str);

const KEY_FIX: &str =
    "Reissue the certificate with an RSA key of 2048 bits or more, or an EC key on P-256 or P-384.";
const SIG_FIX: &str = "Reissue the certificate signed with SHA-256 (or stronger).";

const RENEW_FIX: &str =
    "Renew the certificate (automate renewal, e.g. ACME) and reload the server.";

/// The validity period's findings at `now` (Unix seconds). testssl.sh: expired CRITICAL,
/// under 30 days HIGH, under 60 days MEDIUM; not yet valid fails its chain of trust
/// ("not yet valid"), CRITICAL.
pub fn validity(cert: &X509Certificate<'_>, subject: &str, now: i64) -> Vec<Weakness> {
    let validity = cert.validity();
    let mut found = Vec::new();
    let not_before = validity.not_before.timestamp();
    if not_before > now {
        let days = (not_before - now + 86_399).div_euclid(86_400); // started days count
        found.push((
            Severity::Critical,
            "Certificate not yet valid",
            format!(
                "{subject}: not before {} (in {days} days)",
                validity.not_before
            ),
            "Serve a certificate that is valid now (check the issuing system's clock).",
        ));
    }
    let days = (validity.not_after.timestamp() - now).div_euclid(86_400);
    let expiry = match days {
        d if d < 0 => Some((Severity::Critical, "Certificate expired")),
        d if d < 7 => Some((Severity::High, "Certificate expires within 7 days")),
        d if d < 14 => Some((Severity::High, "Certificate expires within 14 days")),
        d if d < 30 => Some((Severity::High, "Certificate expires within 30 days")),
        d if d < 60 => Some((Severity::Medium, "Certificate expires within 60 days")),
        _ => None,
    };
    if let Some((severity, title)) = expiry {
        let evidence = format!("{subject}: not after {} ({days} days)", validity.not_after);
        found.push((severity, title, evidence, RENEW_FIX));
    }
    found
}

/// testssl.sh's severity of an RSA/DSA key size (≤512 critical, ≤768 high, ≤1024 medium,
/// below 2048 info); None from 2048 bits.
fn rsa_severity(bits: usize) -> Option<Severity> {
    match bits {
        0..=512 => Some(Severity::Critical),
        513..=768 => Some(Severity::High),
        769..=1024 => Some(Severity::Medium),
        1025..=2047 => Some(Severity::Info),
        _ => None,
    }
}

/// testssl.sh's severity of an EC key size (≤110 critical, ≤123 high, ≤163 medium, ≤224
/// info); None from 256 bits.
fn ec_severity(bits: usize) -> Option<Severity> {
    match bits {
        0..=110 => Some(Severity::Critical),
        111..=123 => Some(Severity::High),
        124..=163 => Some(Severity::Medium),
        164..=255 => Some(Severity::Info),
        _ => None,
    }
}

/// testssl.sh's severity of a signature algorithm, by OID: MD2/MD4/MD5 critical, SHA-1
/// (RSA, ECDSA, DSA) medium.
fn signature(oid: &str) -> Option<(Severity, &'static str)> {
    match oid {
        "1.2.840.113549.1.1.2" => Some((Severity::Critical, "MD2 with RSA")),
        "1.2.840.113549.1.1.3" => Some((Severity::Critical, "MD4 with RSA")),
        "1.2.840.113549.1.1.4" => Some((Severity::Critical, "MD5 with RSA")),
        "1.2.840.113549.1.1.5" => Some((Severity::Medium, "SHA1 with RSA")),
        "1.2.840.10045.4.1" => Some((Severity::Medium, "ECDSA with SHA1")),
        "1.2.840.10040.4.3" => Some((Severity::Medium, "DSA with SHA1")),
        _ => None,
    }
}

/// The key and signature weaknesses of a certificate.
pub fn weaknesses(cert: &X509Certificate<'_>, subject: &str) -> Vec<Weakness> {
    let mut found = Vec::new();
    match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            let bits = rsa.key_size();
            if let Some(sev) = rsa_severity(bits) {
                found.push((
                    sev,
                    "Weak RSA key",
                    format!("{subject}: RSA {bits} bits"),
                    KEY_FIX,
                ));
            }
        }
        Ok(PublicKey::DSA(_)) => {}
        Ok(PublicKey::EC(ec)) => {
            let bits = ec.key_size();
            if let Some(sev) = ec_severity(bits) {
                found.push((
                    sev,
                    "Weak EC key",
                    format!("{subject}: EC {bits} bits"),
                    KEY_FIX,
                ));
            }
        }
        _ => {}
    }
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    if let Some((sev, name)) = signature(&oid) {
        let title = if name.starts_with("MD") {
            "Certificate signed with MD5 or older"
        } else {
            "Certificate signed with SHA-1"
        };
        found.push((
            sev,
            title,
            format!("{subject}: signature algorithm {name}"),
            SIG_FIX,
        ));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Boundaries from testssl.sh 3.2's `cert_keySize` table.
    #[test]
    fn key_sizes_follow_testssl() {
        assert_eq!(rsa_severity(512), Some(Severity::Critical));
        assert_eq!(rsa_severity(768), Some(Severity::High));
        assert_eq!(rsa_severity(1024), Some(Severity::Medium));
        assert_eq!(rsa_severity(2047), Some(Severity::Info));
        assert_eq!(rsa_severity(2048), None);
        assert_eq!(ec_severity(163), Some(Severity::Medium));
        assert_eq!(ec_severity(192), Some(Severity::Info));
        assert_eq!(ec_severity(256), None);
        assert_eq!(signature("1.2.840.113549.1.1.11"), None);
    }
}
