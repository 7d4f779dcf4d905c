//! The `tls` check's certificate findings against local servers (rustls serving rcgen
//! certificates; `openssl s_server` where rcgen cannot make the key). Expected severities
//! are testssl.sh 3.0.8's: a failed chain of trust ("chain incomplete", "self signed",
//! "not yet valid") and a self-signed issuer are CRITICAL, expired CRITICAL, under 30
//! days HIGH, under 60 days MEDIUM, a host name mismatch HIGH, EC keys of 164–224 bits
//! INFO (`cert_keySize`).

use super::openssl_server::OpensslServer;
use super::{ca, ca_file, check_tls, leaf, leaf_for, serve, serve_chain, titled};
use opsguard::domain::finding::Severity;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::PrivateKeyDer;

#[tokio::test]
async fn a_valid_chain_from_the_configured_ca_has_no_findings() {
    let ca = ca();
    let port = serve(leaf(Some(&ca), "localhost", 365), false).await;
    let file = ca_file(&ca);
    let found = check_tls(port, Some(file.0.clone())).await;
    assert_eq!(found, vec![], "a valid certificate on TLS 1.3 is clean");
    // Without the CA configured, the leaf's issuer is neither sent nor trusted.
    let found = check_tls(port, None).await;
    let chain = titled(&found, "chain incomplete").expect("unknown issuer reported");
    assert_eq!(chain.severity, Severity::Critical);
    assert_eq!(found.len(), 1, "{found:?}");
}

#[tokio::test]
async fn a_missing_intermediate_and_an_untrusted_root_are_told_apart() {
    let root = ca();
    let file = ca_file(&root);
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(DnType::CommonName, "opsguard test intermediate");
    let intermediate = CertifiedIssuer::signed_by(p, KeyPair::generate().unwrap(), &root).unwrap();
    let (cert, key) = leaf(Some(&intermediate), "localhost", 365);

    // Leaf alone: the intermediate is missing.
    let port = serve_chain(vec![cert.clone()], key.clone_key(), false).await;
    let found = check_tls(port, Some(file.0.clone())).await;
    let missing =
        titled(&found, "Certificate chain incomplete").unwrap_or_else(|| panic!("{found:?}"));
    assert_eq!(missing.severity, Severity::Critical);
    assert!(
        missing.evidence.contains("sent 1 certificate(s)")
            && missing.evidence.contains("opsguard test intermediate"),
        "{}",
        missing.evidence
    );
    assert_eq!(found.len(), 1, "{found:?}");

    // With the intermediate: clean.
    let chain = vec![cert.clone(), intermediate.der().clone()];
    let port = serve_chain(chain, key.clone_key(), false).await;
    assert_eq!(check_tls(port, Some(file.0.clone())).await, vec![]);

    // The whole chain up to a root nobody configured: complete, but not trusted.
    let chain = vec![cert, intermediate.der().clone(), root.der().clone()];
    let port = serve_chain(chain, key, false).await;
    let found = check_tls(port, None).await;
    let untrusted = titled(&found, "chain not trusted").unwrap_or_else(|| panic!("{found:?}"));
    assert_eq!(untrusted.severity, Severity::Critical);
    assert!(
        untrusted.evidence.contains("opsguard test CA"),
        "{}",
        untrusted.evidence
    );
    assert_eq!(found.len(), 1, "{found:?}");
}

#[tokio::test]
async fn self_signed_and_not_yet_valid_certificates_are_separate_findings() {
    let ca = ca();
    let file = ca_file(&ca);
    let port = serve(leaf(None, "localhost", 365), false).await;
    let found = check_tls(port, Some(file.0.clone())).await;
    let own = titled(&found, "Certificate is self-signed").unwrap_or_else(|| panic!("{found:?}"));
    assert_eq!(own.severity, Severity::Critical);
    assert_eq!(found.len(), 1, "only the self-signature: {found:?}");

    let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, "localhost");
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now + time::Duration::days(10) - time::Duration::hours(1);
    p.not_after = now + time::Duration::days(400);
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &ca).unwrap();
    let key = PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let port = serve_chain(vec![cert.der().clone()], key, false).await;
    let found = check_tls(port, Some(file.0.clone())).await;
    let early = titled(&found, "Certificate not yet valid").unwrap_or_else(|| panic!("{found:?}"));
    assert_eq!(early.severity, Severity::Critical);
    assert!(
        early.evidence.contains("(in 10 days)"),
        "{}",
        early.evidence
    );
    assert_eq!(
        found.len(),
        1,
        "the chain verifies inside the validity: {found:?}"
    );
}

#[tokio::test]
async fn expired_and_expiring_certificates_are_graded_by_days_left() {
    let ca = ca();
    let file = ca_file(&ca);
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
        assert_eq!(found.len(), 1, "only the expiry ({days} days): {found:?}");
    }
}

#[tokio::test]
async fn wrong_host_names_its_sans_and_tls12_only_lacks_tls13() {
    let ca = ca();
    let file = ca_file(&ca);
    let port = serve(leaf(Some(&ca), "other.example", 365), false).await;
    let found = check_tls(port, Some(file.0.clone())).await;
    let wrong = titled(&found, "does not match the host name").expect("wrong host reported");
    assert_eq!(
        (wrong.severity, found.len()),
        (Severity::High, 1),
        "{found:?}"
    );

    // The finding names what the certificate is valid for: its SANs, not the subject CN.
    let sans = ["api.other.example", "10.0.0.7"];
    let port = serve(leaf_for(Some(&ca), "legacy-cn.example", &sans, 365), false).await;
    let found = check_tls(port, Some(file.0.clone())).await;
    let wrong = titled(&found, "does not match the host name").expect("wrong host reported");
    assert_eq!(
        wrong.evidence,
        "valid for 2 names: api.other.example, 10.0.0.7; not for localhost"
    );

    let port = serve(leaf(Some(&ca), "localhost", 365), true).await;
    let found = check_tls(port, Some(file.0.clone())).await;
    let f = titled(&found, "TLS 1.3 not offered").expect("TLS 1.2-only server reported");
    assert_eq!(
        f.evidence,
        "a TLS 1.3 hello was refused with alert protocol_version"
    );
    // testssl.sh: TLS1_3 "not offered + downgraded to weaker protocol" is INFO.
    assert_eq!((f.severity, found.len()), (Severity::Info, 1), "{found:?}");
}

#[tokio::test]
async fn a_p192_key_is_a_finding_not_an_unreachable_server() {
    let server = OpensslServer::with_openssl_cert_serving(
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-192"],
        &["-cipher", "ALL:@SECLEVEL=0"],
    )
    .await;
    let found = check_tls(server.port, None).await;
    let key = titled(&found, "Weak EC key").unwrap_or_else(|| panic!("{found:?}"));
    assert_eq!(
        key.severity,
        Severity::Info,
        "testssl.sh: 164–224 bits INFO"
    );
    assert!(key.evidence.ends_with("EC 192 bits"), "{}", key.evidence);
    assert!(titled(&found, "self-signed").is_some(), "{found:?}");
    assert!(titled(&found, "unreachable").is_none(), "{found:?}");
}
