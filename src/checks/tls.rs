//! `tls`: certificate expiry, chain and host name, TLS 1.3 offered, TLS 1.0/1.1 refused,
//! for each configured `host:port`. One handshake with a verifier that accepts anything
//! reads the chain and the negotiated version; the chain is then verified offline against
//! the web roots plus the configured CA, so a broken chain still yields its expiry date.

use super::Check;
use super::tls_probe::{self, Legacy};
use crate::config::TlsTargets;
use crate::domain::finding::{Finding, Severity};
use async_trait::async_trait;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, ProtocolVersion, RootCertStore, SignatureScheme};
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::TlsConnector;

const REFERENCE: &str =
    "Mozilla Server Side TLS guidelines; OWASP Transport Layer Security Cheat Sheet";

pub struct Tls {
    targets: Vec<String>,
    ca_file: Option<String>,
}

impl Tls {
    pub fn new(settings: &TlsTargets) -> Self {
        Tls {
            targets: settings.targets.clone(),
            ca_file: settings.ca_file.clone(),
        }
    }

    fn roots(&self) -> Result<RootCertStore, String> {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = &self.ca_file {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|_| "the configured ca_file cannot be read".to_string())?;
            for cert in certs {
                let cert =
                    cert.map_err(|_| "the configured ca_file is not valid PEM".to_string())?;
                roots.add(cert).map_err(|_| {
                    "the configured ca_file holds an invalid certificate".to_string()
                })?;
            }
        }
        Ok(roots)
    }
}

#[async_trait]
impl Check for Tls {
    fn name(&self) -> &'static str {
        "tls"
    }

    fn targets(&self) -> Vec<String> {
        self.targets
            .iter()
            .map(|t| t.chars().take(200).collect())
            .collect()
    }

    async fn check(&self, target: &str) -> Result<Vec<Finding>, String> {
        let (host, port) = split_target(target)?;
        let roots = self.roots()?;
        // Under the default 1.5 s target timeout: a server that ignores a legacy hello
        // makes that probe inconclusive instead of the whole target unreachable.
        let wait = Duration::from_millis(1000);
        let (handshake, tls10, tls11) = tokio::join!(
            handshake(&host, port),
            tls_probe::probe(&host, port, tls_probe::TLS10, wait),
            tls_probe::probe(&host, port, tls_probe::TLS11, wait),
        );
        let finding = |severity, title: &str, evidence: String, remediation: &str| {
            Finding::new(
                "tls",
                target,
                severity,
                title,
                evidence,
                remediation,
                REFERENCE,
            )
        };
        let mut found = legacy_findings(tls10, tls11, |s, t, e, r| finding(s, t, e, r));
        let (chain, version) = match handshake {
            Ok(answer) => answer,
            // A server that speaks only TLS 1.0/1.1 is reachable and badly configured,
            // not down: report that instead of "unreachable".
            Err(e) if [tls10, tls11].contains(&Legacy::Accepted) => {
                found.push(finding(
                    Severity::High,
                    "TLS 1.2 and 1.3 not offered",
                    format!("a TLS 1.2/1.3 handshake failed: {e}"),
                    "Enable TLS 1.2 and 1.3; disable TLS 1.0 and 1.1.",
                ));
                return Ok(found);
            }
            Err(e) => return Err(e),
        };
        let leaf = chain.first().ok_or("the server sent no certificate")?;
        let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
            .map_err(|_| "the server certificate cannot be parsed")?;
        let not_after = cert.validity().not_after.timestamp();
        let days = (not_after - chrono::Utc::now().timestamp()).div_euclid(86_400);
        let subject: String = cert.subject().to_string().chars().take(120).collect();
        let expiry = match days {
            // testssl.sh's thresholds: expired critical, under 30 days high, under 60 medium.
            d if d < 0 => Some((Severity::Critical, "Certificate expired")),
            d if d < 7 => Some((Severity::High, "Certificate expires within 7 days")),
            d if d < 14 => Some((Severity::High, "Certificate expires within 14 days")),
            d if d < 30 => Some((Severity::High, "Certificate expires within 30 days")),
            d if d < 60 => Some((Severity::Medium, "Certificate expires within 60 days")),
            _ => None,
        };
        if let Some((severity, title)) = expiry {
            let evidence = format!(
                "{subject}: not after {} ({days} days)",
                cert.validity().not_after
            );
            found.push(finding(
                severity,
                title,
                evidence,
                "Renew the certificate (automate renewal, e.g. ACME) and reload the server.",
            ));
        }
        for (severity, title, evidence, fix) in super::tls_cert::weaknesses(&cert, &subject) {
            found.push(finding(severity, title, evidence, fix));
        }
        let parsed = ParsedCertificate::try_from(leaf)
            .map_err(|_| "the server certificate cannot be parsed")?;
        // Verify the chain at a moment inside the leaf's validity: expiry is reported above.
        let at = UnixTime::since_unix_epoch(Duration::from_secs(
            (not_after - 1).clamp(0, chrono::Utc::now().timestamp()) as u64,
        ));
        let algs = ring::default_provider()
            .signature_verification_algorithms
            .all;
        if let Err(e) =
            verify_server_cert_signed_by_trust_anchor(&parsed, &roots, &chain[1..], at, algs)
        {
            let evidence = format!("{subject}: {e}");
            found.push(finding(Severity::Critical, "Certificate chain not trusted", evidence, "Serve the full chain issued by a trusted CA (or add the internal CA to [checks.tls] ca_file)."));
        }
        let name = ServerName::try_from(host.clone())
            .map_err(|_| "the host is not a valid server name")?;
        if verify_server_name(&parsed, &name).is_err() {
            let evidence = format!(
                "valid for {}; not for {}",
                valid_names(&cert, &subject),
                host.chars().take(100).collect::<String>()
            );
            found.push(finding(
                Severity::High,
                "Certificate does not match the host name",
                evidence,
                "Issue a certificate whose subjectAltName covers this host name.",
            ));
        }
        if version != Some(ProtocolVersion::TLSv1_3) {
            found.push(finding(
                Severity::Low,
                "TLS 1.3 not offered",
                format!("the server chose {}", version_name(version)),
                "Enable TLS 1.3 on the server.",
            ));
        }
        Ok(found)
    }
}

/// A negotiated protocol version as people write it (never a debug dump).
fn version_name(version: Option<ProtocolVersion>) -> String {
    match version {
        Some(ProtocolVersion::TLSv1_3) => "TLS 1.3".into(),
        Some(ProtocolVersion::TLSv1_2) => "TLS 1.2".into(),
        Some(ProtocolVersion::TLSv1_1) => "TLS 1.1".into(),
        Some(ProtocolVersion::TLSv1_0) => "TLS 1.0".into(),
        Some(other) => format!("protocol 0x{:04x}", u16::from(other)),
        None => "no protocol version".into(),
    }
}

/// The names a certificate is valid for: its subjectAltName entries (DNS names and IP
/// addresses), else its subject (a certificate with no SAN is valid for no name today).
fn valid_names(cert: &x509_parser::certificate::X509Certificate<'_>, subject: &str) -> String {
    use x509_parser::extensions::GeneralName;
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

fn split_target(target: &str) -> Result<(String, u16), String> {
    let (host, port) = target
        .rsplit_once(':')
        .ok_or("the target is not host:port")?;
    let port = port
        .parse()
        .map_err(|_| "the target's port is not a number")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("the target has no host".into());
    }
    Ok((host.to_string(), port))
}

/// Handshake offering TLS 1.2 and 1.3, accepting any certificate: returns the chain as
/// sent and the negotiated version. Only used to read, never to send data.
/// What the legacy probes found, as findings built by `finding`.
fn legacy_findings(
    tls10: Legacy,
    tls11: Legacy,
    finding: impl Fn(Severity, &str, String, &str) -> Finding,
) -> Vec<Finding> {
    let mut found = Vec::new();
    for (label, result) in [("TLS 1.0", tls10), ("TLS 1.1", tls11)] {
        match result {
            Legacy::Accepted => found.push(finding(
                Severity::Medium,
                &format!("{label} accepted"),
                format!("the server answered a {label} ServerHello"),
                "Disable TLS 1.0 and 1.1; allow TLS 1.2 and 1.3 only.",
            )),
            Legacy::Inconclusive => found.push(finding(
                Severity::Info,
                &format!("{label} support unknown"),
                "the probe got no recognisable answer".into(),
                "Check the server's protocol settings by hand.",
            )),
            Legacy::Refused => {}
        }
    }
    found
}

async fn handshake(
    host: &str,
    port: u16,
) -> Result<(Vec<CertificateDer<'static>>, Option<ProtocolVersion>), String> {
    let provider = Arc::new(ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ReadOnly(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| "the host is not a valid server name")?;
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connection failed: {}", e.kind()))?;
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| {
            format!(
                "TLS handshake failed: {}",
                e.to_string().chars().take(150).collect::<String>()
            )
        })?;
    let (_, conn) = tls.get_ref();
    let chain = conn
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .map(|c| c.clone().into_owned())
        .collect();
    Ok((chain, conn.protocol_version()))
}

/// Accepts any certificate (the chain is verified offline afterwards) but still checks
/// the handshake signatures.
#[derive(Debug)]
struct ReadOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for ReadOnly {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // This handshake only reads the chain and never carries data: a key too weak for
        // ring to verify (RSA under 2048 bits) must not make the server "unreachable".
        let _ = (message, cert, dss, &self.0);
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // This handshake only reads the chain and never carries data: a key too weak for
        // ring to verify (RSA under 2048 bits) must not make the server "unreachable".
        let _ = (message, cert, dss, &self.0);
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
