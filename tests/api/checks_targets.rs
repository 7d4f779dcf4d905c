//! Checks against real targets: a local TLS server with rcgen certificates (here), the
//! real local PostgreSQL (`postgres`) and Redis (`redis`), unreachable and hanging targets.

mod https_site;
mod legacy_tls;
mod openssl_server;
mod postgres;
mod redis;
mod testssl_agreement;
mod tls_certs;
mod tls_suites;

use opsguard::checks::tls::Tls;
use opsguard::checks::{Check, runner};
use opsguard::config::TlsTargets;
use opsguard::domain::finding::{Finding, Severity};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

pub const TIMEOUT: Duration = Duration::from_secs(3);

/// Runs one check over all its targets with the real runner.
pub async fn run(check: impl Check + 'static) -> Vec<Finding> {
    runner::run(&[Arc::new(check)], TIMEOUT).await.findings
}

pub fn titled<'a>(found: &'a [Finding], title: &str) -> Option<&'a Finding> {
    found.iter().find(|f| f.title.contains(title))
}

pub fn ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(DnType::CommonName, "opsguard test CA");
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

/// A leaf for `name`, valid from 30 days ago for `days` days from now (negative: expired),
/// signed by `ca` or self-signed.
pub fn leaf(
    ca: Option<&CertifiedIssuer<'static, KeyPair>>,
    name: &str,
    days: i64,
) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    leaf_for(ca, name, &[name], days)
}

/// A leaf whose subject CN is `cn` and whose subjectAltNames are `sans`.
pub fn leaf_for(
    ca: Option<&CertifiedIssuer<'static, KeyPair>>,
    cn: &str,
    sans: &[&str],
    days: i64,
) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let mut p =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(30);
    p.not_after = now + time::Duration::days(days) + time::Duration::hours(1);
    let key = KeyPair::generate().unwrap();
    let cert = match ca {
        Some(ca) => p.signed_by(&key, ca).unwrap(),
        None => p.self_signed(&key).unwrap(),
    };
    (
        cert.der().clone(),
        PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
}

/// A TLS server on 127.0.0.1:0 serving `cert`; returns its port.
pub async fn serve(
    cert: (CertificateDer<'static>, PrivateKeyDer<'static>),
    tls12_only: bool,
) -> u16 {
    serve_chain(vec![cert.0], cert.1, tls12_only).await
}

/// A TLS server on 127.0.0.1:0 sending `chain` (leaf first); returns its port.
pub async fn serve_chain(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    tls12_only: bool,
) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.read(&mut [0u8; 16]).await;
                }
            });
        }
    });
    port
}

/// The CA as a PEM file, removed on drop (even when the test fails).
pub struct CaFile(pub String);

impl Drop for CaFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub fn ca_file(ca: &CertifiedIssuer<'static, KeyPair>) -> CaFile {
    let path = std::env::temp_dir().join(format!(
        "opsguard-test-ca-{}.pem",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, ca.pem()).unwrap();
    CaFile(path.to_string_lossy().into_owned())
}

pub async fn check_tls(port: u16, ca: Option<String>) -> Vec<Finding> {
    let settings = TlsTargets {
        targets: vec![format!("localhost:{port}")],
        ca_file: ca,
    };
    run(Tls::new(&settings)).await
}

/// A port nobody listens on, and a listener that accepts and never answers.
pub async fn dead_ports() -> (u16, u16) {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let hanging = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hanging_port = hanging.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = hanging.accept().await {
            held.push(tcp);
        }
    });
    (closed_port, hanging_port)
}

/// Every target is reported unreachable, within the timeout plus a margin.
pub async fn assert_unreachable(check: impl Check + 'static, targets: usize) -> Vec<Finding> {
    let started = Instant::now();
    let found = run(check).await;
    assert!(
        started.elapsed() < TIMEOUT + Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(found.len(), targets, "{found:?}");
    assert!(
        found
            .iter()
            .all(|f| f.title == "Target unreachable" && f.severity == Severity::High),
        "{found:?}"
    );
    found
}

#[tokio::test]
async fn unreachable_and_hanging_tls_targets_are_reported_within_the_timeout() {
    let (closed, hanging) = dead_ports().await;
    let settings = TlsTargets {
        targets: vec![
            format!("127.0.0.1:{closed}"),
            format!("127.0.0.1:{hanging}"),
        ],
        ca_file: None,
    };
    assert_unreachable(Tls::new(&settings), 2).await;
}
