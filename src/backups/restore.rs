//! Reading a backup back: verify its checksum against the catalogue, then stream it from
//! storage through age decryption and zstd into `pg_restore` (never whole in memory or on
//! disk). A restore test does this into a scratch database and compares row counts.

use super::dump::tail_of;
use super::keys::BackupKeys;
use super::pgenv::PgEnv;
use super::reaper::Reaper;
use super::storage::{Storage, StorageError};
use bytes::{Buf, Bytes};
use futures::StreamExt;
use std::io::{BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(
        "checksum mismatch: the stored object's SHA-256 is {found}, the catalogue recorded {expected}"
    )]
    Checksum { expected: String, found: String },
    #[error("the backup has no checksum recorded (it never completed)")]
    NotGood,
    #[error("decryption failed: {0}")]
    Decrypt(String),
    #[error("decompression failed: {0}")]
    Decompress(String),
    #[error("pg_restore could not be started ({0}): is postgresql-client installed and on PATH?")]
    Spawn(String),
    #[error("pg_restore failed ({status}): {stderr}")]
    PgRestore { status: String, stderr: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("reading the backup from storage failed: {0}")]
    Read(String),
}

/// Read the whole object back and compare its SHA-256 with the catalogue's.
pub async fn verify(
    storage: &Storage,
    key: &str,
    expected: Option<&str>,
    read: &AtomicU64,
) -> Result<u64, RestoreError> {
    let expected = expected.ok_or(RestoreError::NotGood)?;
    let (found, size) = storage.checksum(key, read).await?;
    if found != expected {
        return Err(RestoreError::Checksum {
            expected: expected.to_string(),
            found,
        });
    }
    Ok(size)
}

/// Stream `key` into `pg_restore --dbname` of `env`'s database. `read_bytes` counts progress.
pub async fn restore_into(
    storage: &Storage,
    key: &str,
    keys: &BackupKeys,
    env: &PgEnv,
    pg_restore: &str,
    read_bytes: Arc<AtomicU64>,
) -> Result<(), RestoreError> {
    let mut stream = storage.read(key).await?;
    let (tx, rx) = mpsc::channel::<Result<Bytes, String>>(4);
    let identity = keys.identity().clone();
    let env = env.clone();
    let program = pg_restore.to_string();
    // Dropping this future (a stall, the deadline, shutdown) kills pg_restore, which would
    // otherwise keep the feeding thread blocked on its input.
    let reaper = Reaper::default();
    let _kill_on_drop = reaper.guard();
    let consumer = tokio::task::spawn_blocking(move || feed(rx, identity, &env, &program, reaper));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.to_string());
        if let Ok(c) = &chunk {
            read_bytes.fetch_add(c.len() as u64, Ordering::Relaxed);
        }
        let failed = chunk.is_err();
        if tx.send(chunk).await.is_err() || failed {
            break;
        }
    }
    drop(tx);
    consumer
        .await
        .map_err(|e| RestoreError::Read(format!("the restoring thread panicked: {e}")))?
}

/// The blocking half: decrypt, decompress, write into pg_restore's stdin.
fn feed(
    rx: mpsc::Receiver<Result<Bytes, String>>,
    identity: age::x25519::Identity,
    env: &PgEnv,
    program: &str,
    reaper: Reaper,
) -> Result<(), RestoreError> {
    let mut cmd = Command::new(program);
    cmd.args([
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--no-password",
    ]);
    cmd.arg(format!("--dbname={}", env.database().unwrap_or("postgres")));
    env.apply(&mut cmd);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| RestoreError::Spawn(e.to_string()))?;
    let mut stdin = child.stdin.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let stderr_tail = std::thread::spawn(move || tail_of(stderr));
    reaper.hold(child);

    let decrypt_failed = Arc::new(AtomicBool::new(false));
    let read_failed = Arc::new(AtomicBool::new(false));
    let streamed = (|| -> Result<(), RestoreError> {
        let source = BufReader::new(ChannelReader {
            rx,
            current: Bytes::new(),
            failed: read_failed.clone(),
        });
        let decryptor = age::Decryptor::new_buffered(source)
            .map_err(|e| RestoreError::Decrypt(e.to_string()))?;
        let plain = decryptor
            .decrypt(std::iter::once(&identity as &dyn age::Identity))
            .map_err(|e| RestoreError::Decrypt(e.to_string()))?;
        let tagged = Tagged {
            inner: plain,
            failed: decrypt_failed.clone(),
        };
        let mut zstd = zstd::stream::read::Decoder::new(tagged)
            .map_err(|e| RestoreError::Decompress(e.to_string()))?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match zstd.read(&mut buf) {
                Ok(n) => n,
                Err(e) if read_failed.load(Ordering::Relaxed) => {
                    return Err(RestoreError::Read(e.to_string()));
                }
                Err(e) if decrypt_failed.load(Ordering::Relaxed) => {
                    return Err(RestoreError::Decrypt(e.to_string()));
                }
                Err(e) => return Err(RestoreError::Decompress(e.to_string())),
            };
            if n == 0 {
                return Ok(());
            }
            if stdin.write_all(&buf[..n]).is_err() {
                // pg_restore stopped reading: its exit status and stderr say why.
                return Ok(());
            }
        }
    })();
    drop(stdin);
    if streamed.is_err() {
        reaper.kill();
    }
    let status = reaper
        .wait()
        .map_err(|e| RestoreError::Spawn(e.to_string()))?;
    let stderr = stderr_tail.join().unwrap_or_default();
    streamed?;
    if !status.success() {
        return Err(RestoreError::PgRestore {
            status: status.to_string(),
            stderr: if stderr.is_empty() {
                "no error output".into()
            } else {
                stderr
            },
        });
    }
    Ok(())
}

/// Bytes from the storage stream as a `Read`.
struct ChannelReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
    /// Set when storage failed: not the backup's fault.
    failed: Arc<AtomicBool>,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => {
                    self.failed.store(true, Ordering::Relaxed);
                    return Err(std::io::Error::other(e));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

/// Marks errors of the decrypting layer, so they are told apart from zstd's.
struct Tagged<R> {
    inner: R,
    failed: Arc<AtomicBool>,
}

impl<R: Read> Read for Tagged<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|_| {
            self.failed.store(true, Ordering::Relaxed);
        })
    }
}
