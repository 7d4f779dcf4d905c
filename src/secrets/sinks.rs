//! Delivery of a new version to the services that use it, before it becomes current: an
//! env file written atomically with mode 0600, and/or an HTTPS webhook whose body is signed
//! with HMAC-SHA256 (`X-Opsguard-Signature: sha256=<hex>`), so a service can reload.

use crate::config::SinkSettings;
use crate::domain::rotation::SecretName;
use crate::domain::secret::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub enum Sink {
    EnvFile {
        path: PathBuf,
    },
    Webhook {
        url: String,
        hmac_key: Secret,
        client: reqwest::Client,
    },
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// What one delivery carries. Values are secrets: only names and the fingerprint show.
pub struct Delivery<'a> {
    pub secret: &'a SecretName,
    pub version: i32,
    pub fingerprint: &'a str,
    pub values: &'a [(String, Secret)],
}

impl Sink {
    pub fn from_settings(settings: &SinkSettings) -> Result<Sink, String> {
        Ok(match settings {
            SinkSettings::EnvFile { path } => {
                let path = PathBuf::from(path);
                if path.file_name().is_none() || !path.is_absolute() {
                    return Err(format!(
                        "env_file path '{}' must be an absolute file path",
                        path.display()
                    ));
                }
                Sink::EnvFile { path }
            }
            SinkSettings::Webhook {
                url,
                hmac_key,
                ca_file,
            } => {
                if !url.starts_with("https://") {
                    return Err("a webhook sink must use https://".into());
                }
                if hmac_key.expose().len() < 16 {
                    return Err("a webhook sink's hmac_key must be at least 16 characters".into());
                }
                let mut builder = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .redirect(reqwest::redirect::Policy::none());
                if let Some(ca) = ca_file {
                    let pem = std::fs::read(ca).map_err(|e| format!("ca_file {ca}: {e}"))?;
                    for cert in reqwest::Certificate::from_pem_bundle(&pem)
                        .map_err(|e| format!("ca_file {ca}: {e}"))?
                    {
                        builder = builder.add_root_certificate(cert);
                    }
                }
                Sink::Webhook {
                    url: url.clone(),
                    hmac_key: hmac_key.clone(),
                    client: builder.build().map_err(|e| e.to_string())?,
                }
            }
        })
    }

    /// Where it delivers, for replies and errors.
    pub fn describe(&self) -> String {
        match self {
            Sink::EnvFile { path } => format!("env file {}", path.display()),
            Sink::Webhook { url, .. } => format!("webhook {}", shown_url(url)),
        }
    }

    /// Deliver; an error text names the sink and never a value.
    pub async fn deliver(&self, delivery: &Delivery<'_>) -> Result<(), String> {
        let result = match self {
            Sink::EnvFile { path } => {
                let path = path.clone();
                let text = env_file(delivery);
                tokio::task::spawn_blocking(move || write_atomically(&path, text.expose()))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.kind().to_string()))
            }
            Sink::Webhook {
                url,
                hmac_key,
                client,
            } => post(client, url, hmac_key, delivery).await,
        };
        result.map_err(|e| format!("{}: {e}", self.describe()))
    }
}

/// A webhook URL as it may be shown: scheme, host, port and path — never user info or a
/// query string, which may carry a token.
fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}{}",
            u.scheme(),
            u.host_str().unwrap_or("?"),
            u.port().map(|p| format!(":{p}")).unwrap_or_default(),
            u.path()
        ),
        Err(_) => "(invalid URL)".into(),
    }
}

fn env_file(delivery: &Delivery<'_>) -> Secret {
    let mut text = format!(
        "# Written by opsguard: {} version {} (sha256:{}). Do not edit.\n",
        delivery.secret, delivery.version, delivery.fingerprint
    );
    for (name, value) in delivery.values {
        text.push_str(name);
        text.push('=');
        text.push_str(value.expose());
        text.push('\n');
    }
    Secret::new(text)
}

/// Write beside the target, fsync, set 0600, rename over it, fsync the directory.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    key: &Secret,
    delivery: &Delivery<'_>,
) -> Result<(), String> {
    let values: serde_json::Map<String, serde_json::Value> = delivery
        .values
        .iter()
        .map(|(k, v)| (k.clone(), v.expose().into()))
        .collect();
    let body = serde_json::json!({
        "secret": delivery.secret.as_str(),
        "version": delivery.version,
        "fingerprint": delivery.fingerprint,
        "values": values,
    })
    .to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(key.expose().as_bytes())
        .map_err(|_| "bad hmac key".to_string())?;
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-opsguard-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("unreachable ({})", e.without_url()))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("answered {}", response.status()))
    }
}
