//! The `tls` check's cipher-suite findings. Families Debian's OpenSSL still serves (NULL,
//! anonymous, CBC-only, static RSA) come from `openssl s_server`; RC4, 3DES, single DES
//! and EXPORT are compiled out of it, so a scripted server answers those probes with a
//! ServerHello choosing the suite, as an old server would. Expected severities are
//! testssl.sh 3.0.8's, written out here (`run_cipherlists`, `run_rc4`, `run_pfs`).

use super::openssl_server::OpensslServer;
use super::{check_tls, titled};
use opsguard::domain::finding::Severity;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// testssl.sh 3.0.8's ratings: `cipherlist_NULL`/`_aNULL`/`_EXPORT` offered CRITICAL,
/// `cipherlist_LOW` (DES, RC2, RC4) and `RC4` HIGH, `cipherlist_3DES_IDEA` MEDIUM,
/// `cipherlist_AVERAGE` (obsolete CBC) LOW, `cipherlist_STRONG` not offered MEDIUM,
/// `PFS` "No ciphers supporting (P)FS offered" MEDIUM.
const TESTSSL: [(&str, Severity); 9] = [
    ("NULL cipher suites offered", Severity::Critical),
    ("Anonymous cipher suites offered", Severity::Critical),
    ("EXPORT cipher suites offered", Severity::Critical),
    ("RC4 cipher suites offered", Severity::High),
    ("DES or RC2 cipher suites offered", Severity::High),
    ("3DES or IDEA cipher suites offered", Severity::Medium),
    ("Obsolete CBC cipher suites offered", Severity::Low),
    ("No AEAD cipher suite offered", Severity::Medium),
    ("No forward secrecy", Severity::Medium),
];

fn severity(title: &str) -> Severity {
    TESTSSL.iter().find(|(t, _)| *t == title).unwrap().1
}

/// Asserts that exactly the suite findings in `expected` are present, with testssl's
/// severities, and that the server is never called unreachable.
fn assert_suites(found: &[opsguard::domain::finding::Finding], expected: &[&str], what: &str) {
    for (title, _) in TESTSSL {
        let f = titled(found, title);
        if expected.contains(&title) {
            let f = f.unwrap_or_else(|| panic!("{what}: {title} missing from {found:#?}"));
            assert_eq!(f.severity, severity(title), "{what}: {title}");
            assert!(
                !f.evidence.contains("{ ") && !f.evidence.contains("Some("),
                "{f:?}"
            );
        } else {
            assert!(f.is_none(), "{what}: unexpected {title} in {found:#?}");
        }
    }
    assert!(titled(found, "unreachable").is_none(), "{what}: {found:#?}");
}

#[tokio::test]
async fn weak_suite_families_served_by_openssl_are_named_with_testssl_severities() {
    let rsa = ["-newkey", "rsa:2048"];
    for (cipher, expected) in [
        (
            "NULL-SHA256:ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
            &["NULL cipher suites offered"][..],
        ),
        (
            "AECDH-AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
            &["Anonymous cipher suites offered"],
        ),
        (
            "ECDHE-RSA-AES128-SHA:DHE-RSA-AES256-SHA:@SECLEVEL=0",
            &[
                "Obsolete CBC cipher suites offered",
                "No AEAD cipher suite offered",
            ],
        ),
        (
            "AES128-GCM-SHA256:AES256-SHA:@SECLEVEL=0",
            &["Obsolete CBC cipher suites offered", "No forward secrecy"],
        ),
    ] {
        let args = ["-no_tls1_3", "-no_tls1", "-no_tls1_1", "-cipher", cipher];
        let server = OpensslServer::with_openssl_cert_serving(&rsa, &args).await;
        let found = check_tls(server.port, None).await;
        assert_suites(&found, expected, cipher);
        if cipher.starts_with("NULL") {
            let null = titled(&found, "NULL cipher").unwrap();
            assert_eq!(
                null.evidence,
                "the server chose TLS_RSA_WITH_NULL_SHA256 (TLS 1.2)"
            );
        }
    }
}

/// A server that reads one ClientHello and answers a ServerHello choosing the first
/// suite of `suites` the client offered (at the client's version, at most TLS 1.2),
/// then its certificate and ServerHelloDone; else a handshake_failure alert.
async fn scripted(suites: &'static [u16], cert: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let cert = cert.clone();
            tokio::spawn(async move {
                let mut hello = vec![0u8; 5];
                if tcp.read_exact(&mut hello).await.is_err() {
                    return;
                }
                let length = u16::from_be_bytes([hello[3], hello[4]]) as usize;
                let mut body = vec![0u8; length];
                if tcp.read_exact(&mut body).await.is_err() {
                    return;
                }
                // handshake header (4), version (2), random (32), session id.
                let version = [body[4], body[5].min(3)];
                let at = 4 + 2 + 32;
                let suites_at = at + 1 + body[at] as usize;
                let count = u16::from_be_bytes([body[suites_at], body[suites_at + 1]]) as usize;
                let offered: Vec<u16> = body[suites_at + 2..suites_at + 2 + count]
                    .chunks(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                let answer = match suites.iter().find(|s| offered.contains(s)) {
                    Some(suite) => server_flight(version, *suite, &cert),
                    None => vec![21, 3, 3, 0, 2, 2, 40],
                };
                let _ = tcp.write_all(&answer).await;
                let _ = tcp.read(&mut [0u8; 64]).await;
            });
        }
    });
    port
}

/// ServerHello, Certificate and ServerHelloDone in one handshake record.
fn server_flight(version: [u8; 2], suite: u16, cert: &[u8]) -> Vec<u8> {
    let message = |kind: u8, body: &[u8]| {
        let mut m = vec![kind];
        m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        m.extend_from_slice(body);
        m
    };
    let mut hello = version.to_vec();
    hello.extend_from_slice(&[0x42; 32]);
    hello.push(0);
    hello.extend_from_slice(&suite.to_be_bytes());
    hello.push(0);
    let mut list = (cert.len() as u32).to_be_bytes()[1..].to_vec();
    list.extend_from_slice(cert);
    let mut certificates = (list.len() as u32).to_be_bytes()[1..].to_vec();
    certificates.extend_from_slice(&list);
    let mut flight = message(2, &hello);
    flight.extend(message(11, &certificates));
    flight.extend(message(14, &[]));
    let mut record = vec![22, version[0], version[1]];
    record.extend_from_slice(&(flight.len() as u16).to_be_bytes());
    record.extend(flight);
    record
}

#[tokio::test]
async fn families_openssl_cannot_serve_are_found_on_a_scripted_server() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let der = cert.cert.der().to_vec();
    // IANA code points: TLS_RSA_WITH_RC4_128_SHA, TLS_RSA_WITH_3DES_EDE_CBC_SHA,
    // TLS_RSA_EXPORT_WITH_RC4_40_MD5, TLS_RSA_WITH_DES_CBC_SHA.
    for (suite, name, title) in [
        (
            &[0x0005u16][..],
            "TLS_RSA_WITH_RC4_128_SHA",
            "RC4 cipher suites offered",
        ),
        (
            &[0x000a][..],
            "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
            "3DES or IDEA cipher suites offered",
        ),
        (
            &[0x0003][..],
            "TLS_RSA_EXPORT_WITH_RC4_40_MD5",
            "EXPORT cipher suites offered",
        ),
        (
            &[0x0009][..],
            "TLS_RSA_WITH_DES_CBC_SHA",
            "DES or RC2 cipher suites offered",
        ),
    ] {
        let port = scripted(suite, der.clone()).await;
        let found = check_tls(port, None).await;
        assert_suites(
            &found,
            &[title, "No AEAD cipher suite offered", "No forward secrecy"],
            name,
        );
        let f = titled(&found, title).unwrap();
        assert!(f.evidence.contains(name), "{}", f.evidence);
        // The scripted server answers any version up to TLS 1.2 with that suite.
        assert!(titled(&found, "TLS 1.0 offered").is_some(), "{found:#?}");
        assert!(
            titled(&found, "self-signed").is_some(),
            "the chain was read: {found:#?}"
        );
    }
}

#[tokio::test]
async fn a_port_answering_something_else_than_tls_is_graded_not_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = tcp.read(&mut [0u8; 1024]).await;
                let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            });
        }
    });
    let found = check_tls(port, None).await;
    let f = titled(&found, "No certificate could be read").unwrap_or_else(|| panic!("{found:?}"));
    assert_eq!(f.severity, Severity::High);
    assert_eq!(
        f.evidence,
        "the port answered a TLS ClientHello with something that is not TLS"
    );
    assert!(titled(&found, "unreachable").is_none(), "{found:?}");
}
