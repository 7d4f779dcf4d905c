//! The backup stream: `pg_dump --format=custom -Z0` → zstd → age → SHA-256 → storage, in
//! bounded memory. pg_dump reads the snapshot the row counts were taken in; its password
//! travels in its environment. Nothing is kept whole: chunks flow through a small channel
//! into a multipart upload, and a failure anywhere aborts the upload (no partial object).

use super::keys::BackupKeys;
use super::pgenv::PgEnv;
use super::reaper::Reaper;
use super::storage::{CONCURRENCY, Storage, StorageError};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// Bytes read from pg_dump per step, and per chunk handed to the uploader.
const READ_BYTES: usize = 256 * 1024;
const CHUNK_BYTES: usize = 1024 * 1024;
/// Chunks in flight between the compressing thread and the uploader.
const CHANNEL_CHUNKS: usize = 4;
/// Input per zstd worker job: memory grows with it (and with the workers), speed hardly.
const ZSTD_JOB_BYTES: u32 = 2 * 1024 * 1024;
/// How much of pg_dump's stderr is kept for the error text.
const STDERR_TAIL: usize = 1500;

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("pg_dump could not be started ({0}): is postgresql-client installed and on PATH?")]
    Spawn(String),
    #[error("pg_dump failed ({status}): {stderr}")]
    PgDump { status: String, stderr: String },
    #[error("{0}")]
    TooOld(String),
    #[error("compression or encryption failed: {0}")]
    Stream(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("storage write failed: {0}")]
    Upload(String),
}

/// Live figures a progress message reads.
#[derive(Debug, Default)]
pub struct Progress {
    pub dump_bytes: AtomicU64,
    pub stored_bytes: AtomicU64,
}

/// What a finished dump stored.
#[derive(Debug, Clone)]
pub struct Dumped {
    pub dump_bytes: u64,
    pub stored_bytes: u64,
    pub sha256: String,
}

pub struct DumpJob {
    pub env: PgEnv,
    pub snapshot: Option<String>,
    pub keys: BackupKeys,
    pub level: i32,
    pub workers: u32,
    pub pg_dump: String,
}

/// Run the whole stream into `storage` under `key`. On error the upload is aborted.
pub async fn dump(
    job: DumpJob,
    storage: &Storage,
    key: &str,
    progress: Arc<Progress>,
) -> Result<Dumped, DumpError> {
    let mut upload = storage.upload(key).await?;
    let (tx, mut rx) = mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
    let counters = progress.clone();
    // Dropping this future (a stall, the deadline, shutdown) kills pg_dump, which would
    // otherwise keep the producing thread blocked on its output.
    let reaper = Reaper::default();
    let _kill_on_drop = reaper.guard();
    let producer = tokio::task::spawn_blocking(move || produce(job, tx, &counters, reaper));
    let mut hasher = Sha256::new();
    let mut stored = 0u64;
    let mut upload_error = None;
    while let Some(chunk) = rx.recv().await {
        if let Err(e) = upload.wait_for_capacity(CONCURRENCY).await {
            upload_error = Some(e.to_string());
            break;
        }
        hasher.update(&chunk);
        stored += chunk.len() as u64;
        progress.stored_bytes.store(stored, Ordering::Relaxed);
        upload.write(&chunk);
    }
    // Closing the channel stops the producer (and pg_dump) if the upload gave up.
    drop(rx);
    let produced = producer
        .await
        .map_err(|e| DumpError::Stream(format!("the compressing thread panicked: {e}")));
    let failure = match (upload_error, produced) {
        (Some(e), _) => Some(DumpError::Upload(e)),
        (None, Err(e)) | (None, Ok(Err(e))) => Some(e),
        (None, Ok(Ok(_))) => None,
    };
    if let Some(e) = failure {
        let _ = upload.abort().await;
        return Err(e);
    }
    upload
        .finish()
        .await
        .map_err(|e| DumpError::Upload(e.to_string()))?;
    storage
        .restrict(key)
        .map_err(|e| DumpError::Upload(format!("cannot restrict the object's mode: {e}")))?;
    Ok(Dumped {
        dump_bytes: progress.dump_bytes.load(Ordering::Relaxed),
        stored_bytes: stored,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// The blocking half: pg_dump's stdout through zstd and age into the channel.
fn produce(
    job: DumpJob,
    tx: mpsc::Sender<Bytes>,
    progress: &Progress,
    reaper: Reaper,
) -> Result<(), DumpError> {
    let mut cmd = Command::new(&job.pg_dump);
    // Waiting for a lock (an ALTER TABLE in progress) fails the backup instead of hanging it.
    cmd.args([
        "--format=custom",
        "--compress=0",
        "--no-password",
        "--lock-wait-timeout=120s",
    ]);
    if let Some(snapshot) = &job.snapshot {
        cmd.arg(format!("--snapshot={snapshot}"));
    }
    job.env.apply(&mut cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| DumpError::Spawn(e.to_string()))?;
    let mut stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let stderr_tail = std::thread::spawn(move || tail_of(stderr));
    reaper.hold(child);

    let streamed = (|| -> std::io::Result<()> {
        let sink = ChannelWriter::new(tx);
        let sealed = job.keys.encryptor().wrap_output(sink)?;
        let mut zstd = zstd::stream::write::Encoder::new(sealed, job.level)?;
        if job.workers > 0 {
            zstd.multithread(job.workers)?;
            // Small jobs keep each worker's buffers small (the default is 4 windows).
            zstd.set_parameter(zstd::zstd_safe::CParameter::JobSize(ZSTD_JOB_BYTES))?;
        }
        let mut buf = vec![0u8; READ_BYTES];
        loop {
            // Given up (shutdown, a stall, the deadline): stop compressing at once; nothing
            // is finished or flushed, the upload is aborted by the async side.
            if reaper.given_up() {
                return Err(std::io::Error::other("the backup was given up"));
            }
            let n = stdout.read(&mut buf)?;
            if n == 0 {
                break;
            }
            progress.dump_bytes.fetch_add(n as u64, Ordering::Relaxed);
            zstd.write_all(&buf[..n])?;
        }
        let sealed = zstd.finish()?;
        let mut sink = sealed.finish()?;
        sink.flush()
    })();
    if streamed.is_err() {
        reaper.kill();
    }
    let status = reaper.wait().map_err(|e| DumpError::Spawn(e.to_string()))?;
    let stderr = stderr_tail.join().unwrap_or_default();
    // Compression or encryption failing first killed pg_dump: that is the cause.
    if let Err(e) = &streamed
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(DumpError::Stream(e.to_string()));
    }
    if !status.success() {
        if let Some(plain) = super::pgversion::explain_mismatch(&stderr) {
            return Err(DumpError::TooOld(plain));
        }
        return Err(DumpError::PgDump {
            status: status.to_string(),
            stderr: if stderr.is_empty() {
                "no error output".into()
            } else {
                stderr
            },
        });
    }
    streamed.map_err(|e| DumpError::Stream(e.to_string()))
}

/// The last `STDERR_TAIL` bytes of a stream, as text.
pub(super) fn tail_of(mut stream: impl Read) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > 2 * STDERR_TAIL {
            kept.drain(..kept.len() - STDERR_TAIL);
        }
    }
    let start = kept.len().saturating_sub(STDERR_TAIL);
    String::from_utf8_lossy(&kept[start..]).trim().to_string()
}

/// A `Write` that hands 1 MiB chunks to the uploader; a closed channel is a broken pipe.
struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn new(tx: mpsc::Sender<Bytes>) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK_BYTES),
        }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHUNK_BYTES),
        ));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the upload stopped"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = CHUNK_BYTES - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK_BYTES {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}
