//! TLS 1.0 and 1.1 against a real server: rustls cannot serve them, so these tests start
//! `openssl s_server` (OpenSSL 3 needs `@SECLEVEL=0` to speak them at all).

use super::{check_tls, titled};
use opsguard::domain::finding::Severity;
use std::process::{Child, Command, Stdio};

/// An `openssl s_server` on a free loopback port with a self-signed `localhost`
/// certificate; killed and its files removed on drop.
struct OpensslServer {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl OpensslServer {
    async fn start(protocol_args: &[&str]) -> OpensslServer {
        let dir = Self::dir();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
        Self::serve(dir, protocol_args).await
    }

    fn dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "opsguard-openssl-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A self-signed `localhost` certificate made by `openssl req` with `key_args`
    /// (e.g. `-newkey rsa:1024 -sha1`): keys and hashes rustls and rcgen refuse to make.
    async fn with_openssl_cert(key_args: &[&str]) -> OpensslServer {
        let dir = Self::dir();
        let made = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-nodes",
                "-days",
                "30",
                "-subj",
                "/CN=localhost",
            ])
            .args(["-addext", "subjectAltName=DNS:localhost"])
            .args(key_args)
            .arg("-keyout")
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl on PATH");
        assert!(made.success(), "openssl req {key_args:?}");
        Self::serve(dir, &[]).await
    }

    async fn serve(dir: std::path::PathBuf, protocol_args: &[&str]) -> OpensslServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(dir.join("cert.pem"))
            .arg("-key")
            .arg(dir.join("key.pem"))
            .args(["-cipher", "DEFAULT:@SECLEVEL=0"])
            .args(protocol_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl on PATH");
        let server = OpensslServer { child, port, dir };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("openssl s_server did not start on port {port}");
    }
}

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_server_still_accepting_tls10_and_tls11_is_reported() {
    let server = OpensslServer::start(&["-no_tls1_3"]).await;
    let found = check_tls(server.port, None).await;
    for label in ["TLS 1.0 accepted", "TLS 1.1 accepted"] {
        let legacy = titled(&found, label).unwrap_or_else(|| panic!("{label}: {found:?}"));
        assert_eq!(legacy.severity, Severity::Medium);
    }
    assert!(titled(&found, "TLS 1.3 not offered").is_some(), "{found:?}");
    assert!(titled(&found, "unreachable").is_none(), "{found:?}");
}

#[tokio::test]
async fn a_tls10_only_server_is_reported_as_misconfigured_not_unreachable() {
    let server = OpensslServer::start(&["-tls1"]).await;
    let found = check_tls(server.port, None).await;
    let legacy = titled(&found, "TLS 1.0 accepted").unwrap_or_else(|| panic!("{found:?}"));
    assert_eq!(legacy.severity, Severity::Medium);
    let modern = titled(&found, "TLS 1.2 and 1.3 not offered").expect("no modern TLS");
    assert_eq!(modern.severity, Severity::High);
    assert!(titled(&found, "TLS 1.1 accepted").is_none(), "{found:?}");
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
