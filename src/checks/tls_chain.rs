//! Whom the `tls` check's certificate chain is trusted by, and for which names: the chain
//! as the server sent it is verified offline (webpki, through rustls) against the web
//! roots plus the configured CA, at a moment inside the leaf's validity (expiry is its own
//! finding). A failure is named for its cause as testssl.sh names it: self-signed, chain
//! incomplete (an intermediate missing), chain not trusted; then the host name by SAN.

use super::tls_cert::Weakness;
use crate::domain::finding::Severity;
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::ring;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, Error, RootCertStore};
use std::time::Duration;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

const CA_FIX: &str = "Serve a certificate issued by a trusted CA, with its intermediates \
(or add the internal CA to [checks.tls] ca_file).";

/// Trust and host-name findings for `chain` (leaf first, as sent) served for `host`.
pub fn findings(
    chain: &[CertificateDer<'static>],
    leaf: &X509Certificate<'_>,
    subject: &str,
    host: &str,
    roots: &RootCertStore,
    now: i64,
) -> Vec<Weakness> {
    let mut found = Vec::new();
    let Ok(parsed) = ParsedCertificate::try_from(&chain[0]) else {
        found.push((
            Severity::Critical,
            "Certificate chain not trusted",
            format!("{subject}: the certificate cannot be read by a TLS client"),
            CA_FIX,
        ));
        return found;
    };
    let validity = leaf.validity();
    let inside = now.clamp(
        validity.not_before.timestamp() + 1,
        (validity.not_after.timestamp() - 1).max(validity.not_before.timestamp() + 1),
    );
    let at = UnixTime::since_unix_epoch(Duration::from_secs(inside.max(0) as u64));
    let algs = ring::default_provider()
        .signature_verification_algorithms
        .all;
    if let Err(e) = verify_server_cert_signed_by_trust_anchor(&parsed, roots, &chain[1..], at, algs)
    {
        found.push(untrusted(&e, chain, leaf, subject));
    }
    let name = ServerName::try_from(host.to_string());
    if name.is_ok_and(|name| verify_server_name(&parsed, &name).is_err()) {
        found.push((
            Severity::High,
            "Certificate does not match the host name",
            format!(
                "valid for {}; not for {}",
                valid_names(leaf, subject),
                host.chars().take(100).collect::<String>()
            ),
            "Issue a certificate whose subjectAltName covers this host name.",
        ));
    }
    found
}

/// The finding for a chain that does not verify, named for its cause.
fn untrusted(
    error: &Error,
    chain: &[CertificateDer<'static>],
    leaf: &X509Certificate<'_>,
    subject: &str,
) -> Weakness {
    let self_issued = |c: &X509Certificate<'_>| c.issuer().as_raw() == c.subject().as_raw();
    let unknown_issuer = matches!(
        error,
        Error::InvalidCertificate(CertificateError::UnknownIssuer)
    );
    if self_issued(leaf) {
        return (
            Severity::Critical,
            "Certificate is self-signed",
            format!(
                "{subject} is its own issuer and no trusted CA vouches for it ({})",
                cause(error)
            ),
            CA_FIX,
        );
    }
    let last = chain
        .last()
        .and_then(|der| x509_parser::parse_x509_certificate(der.as_ref()).ok())
        .map(|(_, cert)| cert);
    match last {
        Some(last) if unknown_issuer && !self_issued(&last) => (
            Severity::Critical,
            "Certificate chain incomplete",
            format!(
                "the server sent {} certificate(s); the issuer of {}, {}, was neither sent \
                 nor a trusted root: an intermediate certificate is missing (or its CA is \
                 not trusted)",
                chain.len(),
                short(&last.subject().to_string()),
                short(&last.issuer().to_string()),
            ),
            CA_FIX,
        ),
        Some(last) if unknown_issuer => (
            Severity::Critical,
            "Certificate chain not trusted",
            format!(
                "{subject}: the chain ends at {}, which is not a trusted root",
                short(&last.subject().to_string())
            ),
            CA_FIX,
        ),
        _ => (
            Severity::Critical,
            "Certificate chain not trusted",
            format!("{subject}: {}", cause(error)),
            CA_FIX,
        ),
    }
}

/// A verification error as people read it (rustls prints some as debug dumps).
#[allow(deprecated)] // rustls still returns the context-free variants in places
fn cause(error: &Error) -> &'static str {
    match error {
        Error::InvalidCertificate(e) => match e {
            CertificateError::UnknownIssuer => "its issuer is not a trusted root",
            CertificateError::BadSignature => "a signature in the chain does not verify",
            CertificateError::UnsupportedSignatureAlgorithm
            | CertificateError::UnsupportedSignatureAlgorithmContext { .. } => {
                "the chain is signed with an algorithm no current client accepts"
            }
            CertificateError::BadEncoding => "a certificate in the chain is malformed",
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                "the certificate is not allowed for TLS servers (extended key usage)"
            }
            CertificateError::Revoked => "a certificate in the chain is revoked",
            CertificateError::UnhandledCriticalExtension => {
                "a certificate carries a critical extension clients do not understand"
            }
            _ => "the chain does not verify",
        },
        _ => "the chain does not verify",
    }
}

fn short(name: &str) -> String {
    name.chars().take(120).collect()
}

/// The names a certificate is valid for: its subjectAltName entries (DNS names and IP
/// addresses), else its subject (a certificate with no SAN is valid for no name today).
pub fn valid_names(cert: &X509Certificate<'_>, subject: &str) -> String {
    let names: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_string()),
                    GeneralName::IPAddress(ip) => match ip.len() {
                        4 => <[u8; 4]>::try_from(*ip)
                            .ok()
                            .map(|b| std::net::IpAddr::from(b).to_string()),
                        16 => <[u8; 16]>::try_from(*ip)
                            .ok()
                            .map(|b| std::net::IpAddr::from(b).to_string()),
                        _ => None,
                    },
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        return format!("no subjectAltName (subject {subject})");
    }
    let mut shown: String = names.join(", ").chars().take(200).collect();
    if names.len() > 1 {
        shown = format!("{} names: {shown}", names.len());
    }
    shown
}
