//! `http_headers` against local HTTPS sites whose certificates come from a test CA: trusted
//! through `[checks.tls] ca_file` as the `tls` check trusts it, graded (not "unreachable")
//! when the certificate fails, and not slowed into losing its HTTPS findings by a port 80
//! that accepts and never answers. Expected scores are worked out by hand from the
//! Observatory's score table.

use super::{TIMEOUT, ca, ca_file, leaf_for, run, titled};
use opsguard::checks::http_headers::HttpHeaders;
use opsguard::config::{CheckSettings, HttpHeadersTargets, TlsTargets};
use opsguard::domain::finding::Severity;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Every header the Observatory rewards: default-src 'none' (+10), frame-ancestors (+5),
/// a private Referrer-Policy (+5), HSTS of two years, nosniff.
const GOOD: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\n\
strict-transport-security: max-age=63072000; includeSubDomains\r\n\
content-security-policy: default-src 'none'; frame-ancestors 'none'\r\n\
x-content-type-options: nosniff\r\nreferrer-policy: no-referrer\r\n\
content-length: 13\r\nconnection: close\r\n\r\n<html></html>";

/// `/` answers a redirect to `/home` on the same host (a chain to follow).
const TO_HOME: &str = "HTTP/1.1 301 Moved Permanently\r\nlocation: /home\r\n\
content-length: 0\r\nconnection: close\r\n\r\n";

/// An HTTPS server on `ip`:0 answering every request with `GOOD`; returns its port.
async fn https_site(ip: &str, cert: (CertificateDer<'static>, PrivateKeyDer<'static>)) -> u16 {
    https_site_with(ip, cert, false).await
}

/// As `https_site`; with `redirect_root`, `GET /` is redirected to `/home` first.
async fn https_site_with(
    ip: &str,
    cert: (CertificateDer<'static>, PrivateKeyDer<'static>),
    redirect_root: bool,
) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.0], cert.1)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = if redirect_root && head.starts_with(b"GET / ") {
                    TO_HOME
                } else {
                    GOOD
                };
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

fn check(url: String, ca_file: Option<String>) -> HttpHeaders {
    HttpHeaders::new(&CheckSettings {
        timeout_ms: TIMEOUT.as_millis() as u64,
        http_headers: HttpHeadersTargets { urls: vec![url] },
        tls: TlsTargets {
            targets: vec![],
            ca_file,
        },
        ..CheckSettings::default()
    })
}

#[tokio::test]
async fn an_internal_ca_site_is_trusted_through_ca_file_and_graded() {
    let ca = ca();
    let file = ca_file(&ca);
    let port = https_site(
        "127.0.0.1",
        leaf_for(Some(&ca), "localhost", &["localhost"], 365),
    )
    .await;
    let url = format!("https://localhost:{port}/");

    let found = run(check(url.clone(), Some(file.0.clone()))).await;
    let titles: Vec<&str> = found.iter().map(|f| f.title.as_str()).collect();
    assert_eq!(titles, ["HTTP Observatory score"], "{found:#?}");
    // 100 + 10 (default-src 'none') + 5 (frame-ancestors) + 5 (Referrer-Policy private).
    assert!(
        found[0].evidence.starts_with("score 120, grade A+"),
        "{}",
        found[0].evidence
    );

    // Without the CA the site is still graded; the certificate is the finding (-20).
    let found = run(check(url, None)).await;
    let cert = titled(&found, "HTTPS certificate does not verify")
        .expect("the certificate problem is a finding");
    assert_eq!(cert.severity, Severity::High);
    assert!(cert.evidence.contains("certificate"), "{}", cert.evidence);
    assert!(titled(&found, "unreachable").is_none(), "{found:#?}");
    let score = titled(&found, "HTTP Observatory score").unwrap();
    assert!(
        score.evidence.starts_with("score 80, grade B+"),
        "{}",
        score.evidence
    );
}

#[tokio::test]
async fn a_silent_port_80_costs_no_https_finding() {
    // 127.0.0.2 is loopback too: its port 80 is this test's alone.
    let Ok(silent) = TcpListener::bind("127.0.0.2:80").await else {
        panic!("this test needs to listen on 127.0.0.2:80 (run as root, as CI does)");
    };
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let ca = ca();
    let file = ca_file(&ca);
    let port = https_site(
        "127.0.0.2",
        leaf_for(Some(&ca), "127.0.0.2", &["127.0.0.2"], 365),
    )
    .await;

    let found = run(check(
        format!("https://127.0.0.2:{port}/"),
        Some(file.0.clone()),
    ))
    .await;
    let silent = titled(&found, "Plain HTTP does not answer").expect("the silent port is reported");
    assert_eq!(silent.severity, Severity::Low);
    let score = titled(&found, "HTTP Observatory score").expect("the HTTPS page is graded");
    assert!(
        score.evidence.starts_with("score 120, grade A+"),
        "{}",
        score.evidence
    );
    assert!(titled(&found, "unreachable").is_none(), "{found:#?}");
}

#[tokio::test]
async fn the_chain_is_followed_on_the_configured_host_and_its_end_graded() {
    let ca = ca();
    let file = ca_file(&ca);
    let cert = leaf_for(Some(&ca), "localhost", &["localhost"], 365);
    let port = https_site_with("127.0.0.1", cert, true).await;
    let found = run(check(
        format!("https://localhost:{port}/"),
        Some(file.0.clone()),
    ))
    .await;
    let titles: Vec<&str> = found.iter().map(|f| f.title.as_str()).collect();
    // `/` only redirects; `/home` carries every header: the end of the chain is graded.
    assert_eq!(titles, ["HTTP Observatory score"], "{found:#?}");
    assert!(
        found[0].evidence.starts_with("score 120, grade A+"),
        "{}",
        found[0].evidence
    );
}
