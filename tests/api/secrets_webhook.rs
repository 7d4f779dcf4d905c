//! The delivery sinks: the HTTPS webhook against a local TLS server (a private CA from
//! rcgen, given as `ca_file`) that records what it receives, and the env file (mode 0600,
//! replaced atomically). Errors name the sink and never a value.

use hmac::{Hmac, Mac};
use opsguard::config::SinkSettings;
use opsguard::domain::rotation::SecretName;
use opsguard::domain::secret::Secret;
use opsguard::secrets::sinks::{Delivery, Sink};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::Sha256;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const VALUE: &str = "canary-sink-value-0123456789";
const HMAC_KEY: &str = "webhook-hmac-key-0123456789";

/// A directory of one's own under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("opsguard-sink-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One received request: its headers (lower-case names) and body.
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTPS server on localhost answering `status`, with its CA written to `dir`.
async fn server(dir: &Path, status: u16) -> (String, String, Arc<Mutex<Vec<Received>>>) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}/hooks/reload",
        listener.local_addr().unwrap().port()
    );
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, log) = (acceptor.clone(), log.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let headers: Vec<(String, String)> = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = buf[head_end..head_end + length].to_vec();
                log.lock().unwrap().push(Received { headers, body });
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (url, ca_path.to_string_lossy().into_owned(), received)
}

fn webhook(url: &str, ca_file: Option<String>) -> Result<Sink, String> {
    Sink::from_settings(&SinkSettings::Webhook {
        url: url.to_string(),
        hmac_key: Secret::new(HMAC_KEY),
        ca_file,
    })
}

async fn deliver(sink: &Sink, value: &str) -> Result<(), String> {
    let name = SecretName::parse("app-db").unwrap();
    let values = [("APP_DB_PASSWORD".to_string(), Secret::new(value))];
    let delivery = Delivery {
        secret: &name,
        version: 7,
        fingerprint: "0a1b2c3d",
        values: &values,
    };
    sink.deliver(&delivery).await
}

fn signs(key: &str, body: &[u8], signature: &str) -> bool {
    let hex = signature.strip_prefix("sha256=").expect("sha256= prefix");
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    mac.verify_slice(&hex::decode(hex).unwrap()).is_ok()
}

#[tokio::test]
async fn a_webhook_delivery_is_a_signed_json_post() {
    let dir = TempDir::new();
    let (url, ca, received) = server(&dir.0, 204).await;
    let sink = webhook(&url, Some(ca)).unwrap();
    assert_eq!(sink.describe(), format!("webhook {url}"));
    deliver(&sink, VALUE).await.expect("delivered");
    let received = received.lock().unwrap();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"secret": "app-db", "version": 7, "fingerprint": "0a1b2c3d",
                           "values": {"APP_DB_PASSWORD": VALUE}})
    );
    let signature = r.header("x-opsguard-signature").expect("signed");
    assert!(
        signs(HMAC_KEY, &r.body, signature),
        "the signature verifies"
    );
    assert!(
        !signs("another-key-0123456789", &r.body, signature),
        "not with another key"
    );
    let mut tampered = r.body.clone();
    tampered[0] = b' ';
    assert!(
        !signs(HMAC_KEY, &tampered, signature),
        "nor over another body"
    );
}

#[tokio::test]
async fn webhook_failures_name_the_webhook_and_never_a_value() {
    let dir = TempDir::new();
    let err = webhook("http://localhost:1/hook", None).unwrap_err();
    assert!(err.contains("https://"), "{err}");
    let short = Sink::from_settings(&SinkSettings::Webhook {
        url: "https://localhost/".into(),
        hmac_key: Secret::new("short"),
        ca_file: None,
    });
    assert!(short.is_err());

    let (url, ca, received) = server(&dir.0, 500).await;
    let err = deliver(&webhook(&url, Some(ca)).unwrap(), VALUE)
        .await
        .unwrap_err();
    assert!(
        err.starts_with(&format!("webhook {url}")) && err.contains("500"),
        "{err}"
    );
    assert!(!err.contains(VALUE) && !err.contains(HMAC_KEY), "{err}");
    assert_eq!(received.lock().unwrap().len(), 1);

    // Without the CA the server's certificate is not trusted: nothing is sent.
    let (url, _, received) = server(&dir.0, 204).await;
    let err = deliver(&webhook(&url, None).unwrap(), VALUE)
        .await
        .unwrap_err();
    assert!(err.contains("unreachable") && !err.contains(VALUE), "{err}");
    assert!(received.lock().unwrap().is_empty());
    let missing = dir.0.join("missing.pem").to_string_lossy().into_owned();
    assert!(webhook(&url, Some(missing)).is_err());
}

#[tokio::test]
async fn the_env_file_is_written_0600_and_replaced_atomically() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new();
    let path = dir.0.join("app.env");
    let sink = Sink::from_settings(&SinkSettings::EnvFile {
        path: path.to_string_lossy().into(),
    })
    .unwrap();
    deliver(&sink, VALUE).await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("# Written by opsguard: app-db version 7 (sha256:0a1b2c3d)"),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("\nAPP_DB_PASSWORD={VALUE}\n")),
        "{text}"
    );

    // A reader holding the old file keeps the old content: the new one is a rename over it.
    let old = std::fs::File::open(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    deliver(&sink, "canary-second-value").await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("APP_DB_PASSWORD=canary-second-value\n") && !text.contains(VALUE));
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let mut kept = String::new();
    std::io::Read::read_to_string(&mut &old, &mut kept).unwrap();
    assert!(
        kept.contains(VALUE),
        "the old inode was not rewritten in place"
    );
    let names: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["app.env"], "no temporary file is left behind");
}

#[tokio::test]
async fn env_file_failures_name_the_file_and_never_a_value() {
    let dir = TempDir::new();
    let path = dir.0.join("no-such-dir").join("app.env");
    let sink = Sink::from_settings(&SinkSettings::EnvFile {
        path: path.to_string_lossy().into(),
    })
    .unwrap();
    let err = deliver(&sink, VALUE).await.unwrap_err();
    assert!(
        err.starts_with(&format!("env file {}", path.display())),
        "{err}"
    );
    assert!(!err.contains(VALUE), "{err}");
    for bad in ["relative/app.env", "/"] {
        let settings = SinkSettings::EnvFile { path: bad.into() };
        assert!(Sink::from_settings(&settings).is_err(), "{bad}");
    }
}
