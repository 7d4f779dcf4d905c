//! Checks against real targets: a local TLS server with rcgen certificates (here), the
//! real local PostgreSQL (`postgres`) and Redis (`redis`), unreachable and hanging targets.

mod https_site;
mod legacy_tls;
mod postgres;
mod redis;

use opsguard::checks::tls::Tls;
use opsguard::checks::tls_probe::{self, Legacy};
use opsguard::checks::{Check, runner};
use opsguard::config::TlsTargets;
use opsguard::domain::finding::{Finding, Severity};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
fn leaf(
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
async fn serve(cert: (CertificateDer<'static>, PrivateKeyDer<'static>), tls12_only: bool) -> u16 {
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
        .with_single_cert(vec![cert.0], cert.1)
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

async fn check_tls(port: u16, ca: Option<String>) -> Vec<Finding> {
    let settings = TlsTargets {
        targets: vec![format!("localhost:{port}")],
        ca_file: ca,
    };
    run(Tls::new(&settings)).await
}

#[tokio::test]
async fn a_valid_chain_from_the_configured_ca_has_no_findings() {
    let ca = ca();
    let port = serve(leaf(Some(&ca), "localhost", 365), false).await;
    let file = ca_file(&ca);
    let found = check_tls(port, Some(file.0.clone())).await;
    assert_eq!(found, vec![], "a valid certificate on TLS 1.3 is clean");
    // Without the CA configured, the same chain is not trusted.
    let found = check_tls(port, None).await;
    let chain = titled(&found, "chain not trusted").expect("untrusted chain reported");
    // testssl.sh rates a failed chain of trust CRITICAL.
    assert_eq!(chain.severity, Severity::Critical);
}

#[tokio::test]
async fn expired_and_expiring_certificates_are_graded_by_days_left() {
    let ca = ca();
    let file = ca_file(&ca);
    // Severities are testssl.sh's (expired CRITICAL, < 30 days HIGH, < 60 days MEDIUM);
    // the former Critical/Medium/Info for 3/20/45 days disagreed with it.
    for (days, title, severity) in [
        (-2, "Certificate expired", Severity::Critical),
        (3, "within 7 days", Severity::High),
        (10, "within 14 days", Severity::High),
        (20, "within 30 days", Severity::High),
        (45, "within 60 days", Severity::Medium),
    ] {
        let port = serve(leaf(Some(&ca), "localhost", days), false).await;
        let found = check_tls(port, Some(file.0.clone())).await;
        let f = titled(&found, title).unwrap_or_else(|| panic!("{days} days: {found:?}"));
        assert_eq!(f.severity, severity, "{days} days");
        assert_eq!(
            found.len(),
            1,
            "only the expiry is wrong ({days} days): {found:?}"
        );
    }
}

#[tokio::test]
async fn wrong_host_self_signed_and_tls12_only_are_reported() {
    let ca = ca();
    let file = ca_file(&ca);
    let port = serve(leaf(Some(&ca), "other.example", 365), false).await;
    let found = check_tls(port, Some(file.0.clone())).await;
    assert_eq!(
        titled(&found, "does not match the host name").map(|f| f.severity),
        Some(Severity::High),
        "{found:?}"
    );
    assert!(titled(&found, "chain not trusted").is_none());

    // The finding names what the certificate is valid for: its SANs, not the subject CN.
    let port = serve(
        leaf_for(
            Some(&ca),
            "legacy-cn.example",
            &["api.other.example", "10.0.0.7"],
            365,
        ),
        false,
    )
    .await;
    let found = check_tls(port, Some(file.0.clone())).await;
    let wrong = titled(&found, "does not match the host name").expect("wrong host reported");
    assert_eq!(
        wrong.evidence,
        "valid for 2 names: api.other.example, 10.0.0.7; not for localhost"
    );

    let port = serve(leaf(None, "localhost", 365), false).await;
    let found = check_tls(port, Some(file.0.clone())).await;
    assert_eq!(
        titled(&found, "chain not trusted").map(|f| f.severity),
        Some(Severity::Critical),
        "{found:?}"
    );
    assert!(titled(&found, "does not match").is_none());

    let port = serve(leaf(Some(&ca), "localhost", 365), true).await;
    let found = check_tls(port, Some(file.0.clone())).await;
    let f = titled(&found, "TLS 1.3 not offered").expect("TLS 1.2-only server reported");
    assert_eq!(f.evidence, "the server chose TLS 1.2");
    assert_eq!((f.severity, found.len()), (Severity::Low, 1), "{found:?}");
}

/// A fake server that answers any ClientHello with a canned first record.
async fn canned(answer: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = tcp.read(&mut [0u8; 512]).await;
                let _ = tcp.write_all(answer).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn the_legacy_probe_tells_accepted_refused_and_garbage_apart() {
    let wait = Duration::from_secs(2);
    let old = canned(&[
        0x16, 0x03, 0x01, 0x00, 0x06, 0x02, 0x00, 0x00, 0x46, 0x03, 0x01,
    ])
    .await;
    assert_eq!(
        tls_probe::probe("127.0.0.1", old, tls_probe::TLS10, wait).await,
        Legacy::Accepted
    );
    assert_eq!(
        tls_probe::probe("127.0.0.1", old, tls_probe::TLS11, wait).await,
        Legacy::Refused
    );
    let ca = ca();
    let modern = serve(leaf(Some(&ca), "localhost", 365), false).await;
    assert_eq!(
        tls_probe::probe("localhost", modern, tls_probe::TLS10, wait).await,
        Legacy::Refused
    );
    assert_eq!(
        tls_probe::probe("localhost", modern, tls_probe::TLS11, wait).await,
        Legacy::Refused
    );
    let garbage = canned(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    assert_eq!(
        tls_probe::probe("127.0.0.1", garbage, tls_probe::TLS10, wait).await,
        Legacy::Inconclusive
    );
    // The whole check on a garbage answerer: unreachable, not a crash.
    let found = check_tls(garbage, None).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].title, "Target unreachable");
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
