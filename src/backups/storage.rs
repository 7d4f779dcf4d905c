//! Where backups are stored: a local directory or S3-compatible object storage, both through
//! `object_store`, written as multipart uploads (a local upload is a staging file renamed into
//! place on completion, so a partial object is never visible under its key).

use crate::config::{BackupSettings, S3Settings};
use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;

/// Parts of this size are uploaded, at most `CONCURRENCY` at a time, so an upload holds at
/// most (CONCURRENCY + 1) parts: S3's minimum part for object storage, 1 MiB for a directory.
pub const S3_PART_BYTES: usize = 5 * 1024 * 1024;
pub const LOCAL_PART_BYTES: usize = 1024 * 1024;
pub const CONCURRENCY: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage {location}: {message}")]
    Open { location: String, message: String },
    #[error("storage: {0}")]
    Store(#[from] object_store::Error),
}

/// One configured storage location.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// As configured: a directory, or `s3://bucket/prefix`.
    location: String,
    /// The directory, for local storage (to clear a killed upload's staging files).
    local_root: Option<PathBuf>,
    prefix: String,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({})", self.location)
    }
}

impl Storage {
    pub fn open(location: &str, settings: &BackupSettings) -> Result<Storage, StorageError> {
        let fail = |message: String| StorageError::Open {
            location: location.to_string(),
            message,
        };
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let store = s3(bucket, &settings.s3).map_err(|e| fail(e.to_string()))?;
            return Ok(Storage {
                store: Arc::new(store),
                location: location.to_string(),
                local_root: None,
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        let dir = PathBuf::from(location.strip_prefix("file://").unwrap_or(location));
        std::fs::create_dir_all(&dir)
            .map_err(|e| fail(format!("cannot create the directory: {e}")))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| fail(e.to_string()))?;
        Ok(Storage {
            store: Arc::new(store),
            location: location.to_string(),
            local_root: Some(dir),
            prefix: String::new(),
        })
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    fn path(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    /// Where an object is, as an operator would look for it.
    pub fn describe(&self, key: &str) -> String {
        match &self.local_root {
            Some(dir) => dir.join(key).display().to_string(),
            None => format!("{}/{key}", self.location.trim_end_matches('/')),
        }
    }

    /// Start a multipart upload of `key`.
    pub async fn upload(&self, key: &str) -> Result<WriteMultipart, StorageError> {
        let upload = self.store.put_multipart(&self.path(key)).await?;
        let part = if self.local_root.is_some() {
            LOCAL_PART_BYTES
        } else {
            S3_PART_BYTES
        };
        Ok(WriteMultipart::new_with_chunk_size(upload, part))
    }

    /// The stored bytes of `key`, as a stream of chunks.
    pub async fn read(
        &self,
        key: &str,
    ) -> Result<futures::stream::BoxStream<'static, Result<Bytes, object_store::Error>>, StorageError>
    {
        Ok(self.store.get(&self.path(key)).await?.into_stream())
    }

    /// Read `key` back whole: its SHA-256 (hex) and size; `read` counts the bytes as they come.
    pub async fn checksum(
        &self,
        key: &str,
        read: &std::sync::atomic::AtomicU64,
    ) -> Result<(String, u64), StorageError> {
        let mut stream = self.read(key).await?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            read.store(size, std::sync::atomic::Ordering::Relaxed);
            hasher.update(&chunk);
        }
        Ok((hex::encode(hasher.finalize()), size))
    }

    /// A local object readable by its owner only (mode 0600); object stores keep their own
    /// access rules.
    pub fn restrict(&self, key: &str) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        match &self.local_root {
            Some(root) => {
                std::fs::set_permissions(root.join(key), std::fs::Permissions::from_mode(0o600))
            }
            None => Ok(()),
        }
    }

    /// Write a small object that must not exist yet (never overwrites: an append-only
    /// record). Stores that cannot refuse an overwrite write it plainly.
    pub async fn put_new(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        let create = object_store::PutOptions::from(object_store::PutMode::Create);
        let path = self.path(key);
        match self
            .store
            .put_opts(&path, bytes.clone().into(), create)
            .await
        {
            Err(object_store::Error::NotImplemented { .. }) => {
                self.store.put(&path, bytes.into()).await?;
                Ok(())
            }
            result => result.map(|_| ()).map_err(Into::into),
        }
    }

    /// The keys under `dir` (relative to the storage, like the keys other methods take), with
    /// their sizes.
    pub async fn list(&self, dir: &str) -> Result<Vec<(String, u64)>, StorageError> {
        let base = self.path("");
        let mut keys = Vec::new();
        let mut listing = self.store.list(Some(&self.path(dir)));
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            let location = meta.location;
            let key = location
                .prefix_match(&base)
                .map(|parts| {
                    parts
                        .map(|p| p.as_ref().to_string())
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .unwrap_or_else(|| location.to_string());
            keys.push((key, meta.size));
        }
        keys.sort();
        Ok(keys)
    }

    /// A small object, whole.
    pub async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        Ok(self.store.get(&self.path(key)).await?.bytes().await?)
    }

    /// Delete `key`; an object already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Remove whatever a cut-off upload of `key` left: the object, and for local storage the
    /// staging files (`<key>#<n>`) a killed process could not clean up.
    pub async fn discard_partial(&self, key: &str) -> Result<(), StorageError> {
        self.delete(key).await?;
        if let Some(root) = &self.local_root {
            let target = root.join(key);
            if let (Some(dir), Some(name)) = (target.parent(), target.file_name()) {
                let stem = format!("{}#", name.to_string_lossy());
                if let Ok(entries) = std::fs::read_dir(dir) {
                    for entry in entries.flatten() {
                        if entry.file_name().to_string_lossy().starts_with(&stem) {
                            let _ = std::fs::remove_file(entry.path());
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn s3(bucket: &str, s3: &S3Settings) -> Result<object_store::aws::AmazonS3, object_store::Error> {
    // object_store's HTTP client (reqwest 0.13, built without a crypto provider of its own)
    // takes TLS from the process default: ring, the one rustls is built with here. Fails only
    // when a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_allow_http(s3.allow_http);
    if let Some(endpoint) = &s3.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(region) = &s3.region {
        builder = builder.with_region(region);
    }
    if let Some(id) = &s3.access_key_id {
        builder = builder.with_access_key_id(id);
    }
    if let Some(secret) = &s3.secret_access_key {
        builder = builder.with_secret_access_key(secret.expose());
    }
    builder.build()
}
