//! Backups to S3-compatible object storage through `object_store`: a local S3 server (moto,
//! installed by scripts/test.sh) takes a multipart upload, the restore test reads it back,
//! an unreachable endpoint fails the backup with the cause, and one that stops answering
//! mid-transfer fails it on the stall timeout.

use super::super::gates::add;
use super::super::helpers::*;
use super::super::secrets::Scratch;
use super::*;
use std::process::{Child, Command, Stdio};

/// A moto S3 server on a free port, killed on drop.
struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    async fn start() -> S3Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server (pip install 'moto[server]'; scripts/test.sh installs it)");
        let server = S3Server { child, port };
        for _ in 0..200 {
            if reqwest::get(server.url()).await.is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("moto_server did not start");
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn create_bucket(&self, name: &str) {
        let r = reqwest::Client::new()
            .put(format!("{}/{name}", self.url()))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    /// (key, size, etag) of every object in `bucket`.
    async fn objects(&self, bucket: &str) -> Vec<(String, u64, String)> {
        let xml = reqwest::get(format!("{}/{bucket}?list-type=2", self.url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        xml.split("<Contents>")
            .skip(1)
            .map(|c| {
                let field = |tag: &str| {
                    c.split(&format!("<{tag}>"))
                        .nth(1)
                        .unwrap()
                        .split(&format!("</{tag}>"))
                        .next()
                        .unwrap()
                        .to_string()
                };
                (
                    field("Key"),
                    field("Size").parse().unwrap(),
                    field("ETag").replace("&#34;", "\"").replace("&quot;", "\""),
                )
            })
            .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn with_s3(s: &mut opsguard::config::Settings, endpoint: &str, location: &str) {
    s.backups.storage = location.into();
    s.backups.s3.endpoint = Some(endpoint.into());
    s.backups.s3.allow_http = true;
    s.backups.s3.region = Some("us-east-1".into());
    s.backups.s3.access_key_id = Some("test".into());
    s.backups.s3.secret_access_key = Some(Secret::new("test-secret"));
}

#[tokio::test]
async fn a_backup_goes_to_s3_as_a_multipart_upload_and_restore_tests_from_there() {
    let s3 = S3Server::start().await;
    s3.create_bucket("opsguard-backups").await;
    // Enough data for more than one 5 MiB part once compressed and encrypted.
    let src = SourceDb::create(400_000).await;
    let store = Scratch::new();
    let app = spawn_app_with(|s| {
        with_backups(s, &store.file("unused"), vec![target("main", &src.dsn)]);
        with_s3(s, &s3.url(), "s3://opsguard-backups/nightly");
    })
    .await;
    add(&app, ADMIN, "admin").await;
    let (job, (status, error)) = backup_now(&app, "main").await;
    assert_eq!((status.as_str(), error), ("succeeded", None));
    let id = backup_of(&app, job).await;
    let (_, sha, key, _) = catalogued(&app, id).await;
    let objects = s3.objects("opsguard-backups").await;
    assert_eq!(objects.len(), 1, "{objects:?}");
    let (stored_key, size, etag) = &objects[0];
    assert_eq!(stored_key, &format!("nightly/{key}"));
    assert!(*size > 5 * 1024 * 1024, "{size}");
    assert!(
        etag.trim_matches('"').ends_with("-2") || etag.trim_matches('"').ends_with("-3"),
        "a multipart upload's ETag: {etag}"
    );
    let body = reqwest::get(format!("{}/opsguard-backups/{stored_key}", s3.url()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(Some(hex::encode(Sha256::digest(&body))), sha);

    let reply = app.say(ADMIN, &format!("/restore_test {id}")).await.text();
    assert_eq!(
        wait_job(&app, job_id(&reply)).await,
        ("succeeded".into(), None)
    );
}

#[tokio::test]
async fn an_unreachable_object_store_fails_the_backup_with_the_cause() {
    let src = SourceDb::create(100).await;
    let store = Scratch::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_app_with(|s| {
        with_backups(s, &store.file("unused"), vec![target("main", &src.dsn)]);
        with_s3(s, &format!("http://127.0.0.1:{closed}"), "s3://nowhere/x");
        s.backups.s3.secret_access_key = Some(Secret::new("Canary-S3-Secret"));
    })
    .await;
    add(&app, ADMIN, "admin").await;
    let (_, (status, error)) = backup_now(&app, "main").await;
    assert_eq!(status, "failed");
    let error = error.unwrap();
    assert!(error.contains("storage"), "{error}");
    assert!(!error.contains("Canary-S3-Secret"));
    let (good,): (i64,) = sqlx::query_as("SELECT count(*) FROM backups WHERE status = 'good'")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(good, 0);
}

/// An S3 endpoint that accepts connections, reads what it is sent and never answers: a
/// store that stops accepting mid-transfer. Counts the connections it took.
async fn black_hole() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = taken.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while matches!(conn.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    (url, taken)
}

#[tokio::test]
async fn a_store_that_stops_answering_fails_the_backup_naming_the_stall_timeout() {
    let src = SourceDb::create(100).await;
    let store = Scratch::new();
    let (endpoint, connections) = black_hole().await;
    let app = spawn_app_with(|s| {
        with_backups(s, &store.file("unused"), vec![target("main", &src.dsn)]);
        with_s3(s, &endpoint, "s3://stalled/backups");
        s.backups.stall_secs = 2;
    })
    .await;
    add(&app, ADMIN, "admin").await;
    let (job, (status, error)) = backup_now(&app, "main").await;
    assert_eq!(status, "failed");
    let error = error.unwrap();
    assert!(
        error.starts_with("stalled: no bytes moved for 2s")
            && error.contains("stall timeout stall_secs = 2"),
        "{error}"
    );
    assert!(
        connections.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "the store was reached, and it is what stalled"
    );
    let rows: Vec<(String,)> = sqlx::query_as("SELECT status FROM backups WHERE job_id = $1")
        .bind(job)
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert!(rows.iter().all(|(s,)| s == "failed"), "{rows:?}");
    let telegram = app.telegram.clone();
    app.telegram
        .wait_until("the stall alert", |_| {
            telegram
                .sent_to(ALERTS)
                .iter()
                .any(|c| c.text().contains("stalled") && c.text().contains("stall_secs"))
        })
        .await;
}
