//! `tls`: for each configured `host:port`, what testssl.sh would report. Two kinds of
//! question are asked at once: a rustls handshake reads the chain a modern client sees,
//! and a scan of hand-built hellos (`tls_probe`) asks which protocol versions and cipher
//! suite families the server accepts, and reads the chain in clear when rustls cannot
//! connect. The certificate is graded by `tls_cert` and `tls_chain`, protocols and suites
//! by `tls_grades`. A server that answers TLS badly is graded, never "unreachable".

use super::Check;
use super::tls_probe::{self, Outcome};
use crate::config::TlsTargets;
use crate::domain::finding::{Finding, Severity};
use async_trait::async_trait;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::TlsConnector;

const REFERENCE: &str = "testssl.sh 3.0 ratings; Mozilla Server Side TLS guidelines; \
OWASP Transport Layer Security Cheat Sheet";

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
        // Under the default 1.5 s target timeout: a probe the server ignores is
        // inconclusive instead of making the whole target unreachable.
        let wait = Duration::from_millis(1000);
        let (handshake, scan) = tokio::join!(
            tokio::time::timeout(wait, handshake(&host, port)),
            tls_probe::scan(&host, port, wait),
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
        let mut found: Vec<Finding> = super::tls_grades::grades(&scan)
            .into_iter()
            .map(|(s, t, e, r)| finding(s, &t, e, r))
            .collect();
        let chain = match handshake {
            Ok(Some(chain)) => chain,
            _ => match scan.chain() {
                Some(chain) => chain.into_iter().map(CertificateDer::from).collect(),
                None => {
                    let answered = scan.outcomes().any(|o| matches!(o, Outcome::Answered(_)));
                    if !answered {
                        // Nothing but failed connections and silence: the target is down.
                        return Err(unreachable_reason(&scan));
                    }
                    found.push(finding(
                        Severity::High,
                        "No certificate could be read",
                        no_certificate(&scan),
                        "Check that this port serves TLS 1.2 or 1.3 with a certificate.",
                    ));
                    return Ok(found);
                }
            },
        };
        let Ok((_, leaf)) = x509_parser::parse_x509_certificate(chain[0].as_ref()) else {
            found.push(finding(
                Severity::Critical,
                "Certificate unreadable",
                "the server's certificate is not valid DER X.509".into(),
                "Serve a well-formed certificate.",
            ));
            return Ok(found);
        };
        let subject: String = leaf.subject().to_string().chars().take(120).collect();
        let now = chrono::Utc::now().timestamp();
        let cert = super::tls_cert::validity(&leaf, &subject, now)
            .into_iter()
            .chain(super::tls_cert::weaknesses(&leaf, &subject))
            .chain(super::tls_chain::findings(
                &chain, &leaf, &subject, &host, &roots, now,
            ));
        for (severity, title, evidence, fix) in cert {
            found.push(finding(severity, title, evidence, fix));
        }
        Ok(found)
    }
}

/// Why no probe reached the server (the first connection error, else silence).
fn unreachable_reason(scan: &tls_probe::Scan) -> String {
    scan.outcomes()
        .find_map(|o| match o {
            Outcome::NoConnection(why) => Some(format!("connection failed: {why}")),
            _ => None,
        })
        .unwrap_or_else(|| "no answer to a TLS ClientHello".into())
}

/// The evidence when the server answered but sent no certificate to any probe.
fn no_certificate(scan: &tls_probe::Scan) -> String {
    let not_tls = scan
        .outcomes()
        .any(|o| matches!(o, Outcome::Answered(super::tls_answer::Answer::NotTls)));
    if not_tls {
        "the port answered a TLS ClientHello with something that is not TLS".into()
    } else {
        "the server refused every TLS hello offered (TLS 1.0 to 1.3, every suite family)".into()
    }
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

/// Handshake offering TLS 1.2 and 1.3 with rustls, accepting any certificate: the chain
/// as sent, or None when rustls cannot complete a handshake with this server.
async fn handshake(host: &str, port: u16) -> Option<Vec<CertificateDer<'static>>> {
    let provider = Arc::new(ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ReadOnly(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string()).ok()?;
    let tcp = tokio::net::TcpStream::connect((host, port)).await.ok()?;
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .ok()?;
    let (_, conn) = tls.get_ref();
    let chain: Vec<_> = conn
        .peer_certificates()?
        .iter()
        .map(|c| c.clone().into_owned())
        .collect();
    (!chain.is_empty()).then_some(chain)
}

/// Accepts any certificate (the chain is verified offline afterwards) and any handshake
/// signature: this connection only reads the chain and never carries data.
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
