//! `openssl s_server` from Debian on a free loopback port, for what rustls cannot serve:
//! TLS 1.0/1.1, NULL, anonymous, CBC-only, static-RSA and DHE-only suites, weak keys
//! (OpenSSL 3 needs `@SECLEVEL=0` for most of them).

use crate::helpers::wait_for;
use std::process::{Child, Command, Stdio};

/// An `openssl s_server` on a free loopback port with a self-signed `localhost`
/// certificate; killed and its files removed on drop.
pub struct OpensslServer {
    child: Child,
    pub port: u16,
    dir: std::path::PathBuf,
}

impl OpensslServer {
    pub async fn start(protocol_args: &[&str]) -> OpensslServer {
        let dir = Self::dir();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
        Self::serve(dir, protocol_args).await
    }

    pub fn dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "opsguard-openssl-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A self-signed `localhost` certificate made by `openssl req` with `key_args`
    /// (e.g. `-newkey rsa:1024 -sha1`): keys and hashes rustls and rcgen refuse to make.
    pub async fn with_openssl_cert(key_args: &[&str]) -> OpensslServer {
        Self::with_openssl_cert_serving(key_args, &[]).await
    }

    /// As `with_openssl_cert`, served with `args`.
    pub async fn with_openssl_cert_serving(key_args: &[&str], args: &[&str]) -> OpensslServer {
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
        Self::serve(dir, args).await
    }

    pub async fn serve(dir: std::path::PathBuf, protocol_args: &[&str]) -> OpensslServer {
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
            .args(if protocol_args.contains(&"-cipher") {
                &[][..]
            } else {
                &["-cipher", "DEFAULT:@SECLEVEL=0"][..]
            })
            .args(protocol_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl on PATH");
        let server = OpensslServer { child, port, dir };
        wait_for("openssl s_server to listen", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        server
    }
}

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
