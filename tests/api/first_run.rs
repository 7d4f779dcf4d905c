//! The binary as a first deployment meets it: `opsguard healthcheck` (the image's
//! HEALTHCHECK) against a running and a closed port, `--version` naming the commit, and
//! `audit export` into a pipe whose reader has gone (`| head`).

use super::helpers::*;
use std::ffi::OsStr;
use std::process::Stdio;
use tokio::io::AsyncReadExt;

async fn healthcheck(listen: &str) -> (Option<i32>, String, String) {
    // A database that does not exist and no Redis or token: the probe needs none of them.
    let nowhere = format!("{}/opsguard_healthcheck_needs_no_database", base());
    run_opsguard(
        &nowhere,
        &[
            ("OPSGUARD_LISTEN", OsStr::new(listen)),
            ("REDIS_URL", OsStr::new("redis://127.0.0.1:1")),
        ],
        &["healthcheck"],
    )
    .await
}

#[tokio::test]
async fn healthcheck_exits_0_when_the_server_answers_healthz() {
    let app = spawn_app().await;
    let (code, out, err) = healthcheck(&app.addr.to_string()).await;
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert_eq!((out.as_str(), err.as_str()), ("", ""));
}

#[tokio::test]
async fn healthcheck_on_a_wildcard_listen_address_probes_the_loopback() {
    let app = spawn_app().await;
    let listen = format!("0.0.0.0:{}", app.addr.port());
    let (code, _, err) = healthcheck(&listen).await;
    assert_eq!(code, Some(0), "{err}");
}

#[tokio::test]
async fn healthcheck_on_a_closed_port_fails_with_a_one_line_reason() {
    // A port that was just free: bound by us, then released, so nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, out, err) = healthcheck(&format!("127.0.0.1:{port}")).await;
    assert_eq!(code, Some(1), "stderr: {err}");
    assert_eq!(out, "");
    assert_eq!(
        err,
        format!("unhealthy: GET http://127.0.0.1:{port}/healthz: connection refused\n")
    );
}

#[tokio::test]
async fn healthcheck_fails_on_a_server_that_is_not_healthy() {
    // A listener that answers every request 503, like a proxy in front of a dead backend.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            use tokio::io::AsyncWriteExt;
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf).await;
            let answer = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n";
            let _ = conn.write_all(answer).await;
        }
    });
    let (code, _, err) = healthcheck(&addr.to_string()).await;
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        err,
        format!("unhealthy: GET http://{addr}/healthz: answered 503\n")
    );
}

#[tokio::test]
async fn version_names_the_package_version_and_the_commit() {
    let expected = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let (code, out, err) = run_opsguard("postgres://unused", &[], &["--version"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        format!(
            "opsguard {} (commit {expected})\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[tokio::test]
async fn audit_export_into_a_closed_pipe_ends_quietly_with_0() {
    let db = TestDb::create().await;
    // The export's own audit row is there before it writes: at least one line goes out.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_opsguard"))
        .args(["audit", "export"])
        .env_clear()
        .env("DATABASE_URL", &db.url)
        .env(
            "OPSGUARD_CONFIG",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Like `| head -0`: the reader is gone before anything is written, so every write fails.
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    let status = child.wait().await.unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(stderr, "");
    // It ran, and says so in the log: the export is audited as done, not failed.
    let outcome: String = sqlx::query_scalar(
        "SELECT outcome FROM audit_log WHERE command = 'audit export' AND outcome IS NOT NULL \
         ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(outcome, "ok");
}
