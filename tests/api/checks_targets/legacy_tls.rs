//! TLS 1.0 and 1.1 against a real server: rustls cannot serve them, so these tests start
//! `openssl s_server` (OpenSSL 3 needs `@SECLEVEL=0` to speak them at all).

use super::openssl_server::OpensslServer;
use super::{check_tls, titled};
use opsguard::domain::finding::Severity;

/// testssl.sh 3.0.8 (`run_protocols`): TLS1 and TLS1_1 "offered (deprecated)" LOW;
/// TLS1_2 "not offered" without TLS 1.3 MEDIUM; TLS1_3 "not offered" LOW, or INFO when
/// the server downgrades to a TLS 1.2 it offers.
#[tokio::test]
async fn a_server_still_accepting_tls10_and_tls11_is_reported() {
    let server = OpensslServer::start(&["-no_tls1_3"]).await;
    let found = check_tls(server.port, None).await;
    for label in ["TLS 1.0 offered", "TLS 1.1 offered"] {
        let legacy = titled(&found, label).unwrap_or_else(|| panic!("{label}: {found:?}"));
        assert_eq!(legacy.severity, Severity::Low);
    }
    let no13 = titled(&found, "TLS 1.3 not offered").expect("no TLS 1.3 reported");
    assert_eq!(
        no13.severity,
        Severity::Info,
        "TLS 1.2 is offered: {found:?}"
    );
    assert!(titled(&found, "unreachable").is_none(), "{found:?}");
}

#[tokio::test]
async fn tls10_only_servers_are_misconfigured_not_unreachable_whatever_their_suites() {
    // RSA key exchange with AES-CBC, then DHE only (no ECDHE, no static RSA).
    for cipher in ["AES128-SHA:@SECLEVEL=0", "DHE-RSA-AES128-SHA:@SECLEVEL=0"] {
        let args = ["-tls1", "-cipher", cipher];
        let server =
            OpensslServer::with_openssl_cert_serving(&["-newkey", "rsa:2048"], &args).await;
        let found = check_tls(server.port, None).await;
        let legacy = titled(&found, "TLS 1.0 offered").unwrap_or_else(|| panic!("{found:?}"));
        assert_eq!(legacy.severity, Severity::Low, "{cipher}");
        assert!(legacy.evidence.contains("TLS_"), "{}", legacy.evidence);
        let no12 = titled(&found, "TLS 1.2 not offered").expect("no TLS 1.2 reported");
        assert_eq!(no12.severity, Severity::Medium, "{cipher}");
        let no13 = titled(&found, "TLS 1.3 not offered").expect("no TLS 1.3 reported");
        assert_eq!(
            no13.severity,
            Severity::Low,
            "{cipher}: nothing to downgrade to"
        );
        assert!(titled(&found, "TLS 1.1 offered").is_none(), "{found:?}");
        // The certificate was read from the TLS 1.0 handshake: it is graded.
        assert!(
            titled(&found, "self-signed").is_some(),
            "{cipher}: {found:?}"
        );
        assert!(titled(&found, "unreachable").is_none(), "{found:?}");
        assert!(
            found.iter().all(|f| !f.evidence.contains("{ ")),
            "{found:?}"
        );
    }
}

#[tokio::test]
async fn a_weak_key_and_a_sha1_signature_are_named_as_testssl_names_them() {
    // Severities are testssl.sh's: RSA 1024 bits MEDIUM, "SHA1 with RSA" MEDIUM.
    let server = OpensslServer::with_openssl_cert(&["-newkey", "rsa:1024", "-sha1"]).await;
    let found = check_tls(server.port, None).await;
    let key = titled(&found, "Weak RSA key").unwrap_or_else(|| panic!("{found:?}"));
    assert_eq!(key.severity, Severity::Medium);
    assert!(key.evidence.ends_with("RSA 1024 bits"), "{}", key.evidence);
    let sig =
        titled(&found, "Certificate signed with SHA-1").unwrap_or_else(|| panic!("{found:?}"));
    assert_eq!(sig.severity, Severity::Medium);
    assert!(sig.evidence.ends_with("SHA1 with RSA"), "{}", sig.evidence);
    assert!(titled(&found, "unreachable").is_none(), "{found:?}");

    // P-256 signed with SHA-256 (openssl's default hash): no key or signature finding.
    let server =
        OpensslServer::with_openssl_cert(&["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
            .await;
    let found = check_tls(server.port, None).await;
    assert!(
        titled(&found, "Weak").is_none() && titled(&found, "SHA-1").is_none(),
        "{found:?}"
    );
}
