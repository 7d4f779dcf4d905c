//! `opsguard healthcheck`: the client side of `/healthz`, for a container's `HEALTHCHECK` or
//! any supervisor — exit 0 when the local server answers 200 in time, else a one-line reason.

use crate::config::Settings;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the whole probe (connect, request, status line) may take.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// Probe `/healthz` on `http.listen`; prints nothing when healthy, one line on stderr when not.
pub async fn run(settings: &Settings) -> ExitCode {
    let target = match probe_address(&settings.http.listen) {
        Ok(target) => target,
        Err(reason) => {
            eprintln!("unhealthy: {reason}");
            return ExitCode::FAILURE;
        }
    };
    match tokio::time::timeout(TIMEOUT, probe(target)).await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(reason)) => {
            eprintln!("unhealthy: GET http://{target}/healthz: {reason}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!(
                "unhealthy: GET http://{target}/healthz: no answer within {}s",
                TIMEOUT.as_secs()
            );
            ExitCode::FAILURE
        }
    }
}

/// The address to call for a listen address: a wildcard (`0.0.0.0`, `[::]`) is reached on the
/// loopback of its family.
pub fn probe_address(listen: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = listen
        .parse()
        .map_err(|_| format!("http.listen '{listen}' is not host:port"))?;
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Ok(SocketAddr::new(ip, addr.port()))
}

async fn probe(target: SocketAddr) -> Result<(), String> {
    let mut stream = TcpStream::connect(target).await.map_err(io_reason)?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(io_reason)?;
    let mut head = Vec::with_capacity(128);
    let mut buf = [0u8; 128];
    while !head.contains(&b'\n') && head.len() < 1024 {
        let n = stream.read(&mut buf).await.map_err(io_reason)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    match status_code(&head) {
        Some(200) => Ok(()),
        Some(code) => Err(format!("answered {code}")),
        None => Err("no HTTP status line in the answer".into()),
    }
}

/// The status code of an HTTP/1.x status line (`HTTP/1.1 200 OK`).
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    parts.next()?.parse().ok()
}

/// An I/O error as operators read it: "connection refused", not the OS error number.
fn io_reason(e: std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::ConnectionReset => "connection reset".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listen_address_is_probed_on_the_loopback_of_its_family() {
        let probe = |l| probe_address(l).unwrap().to_string();
        assert_eq!(probe("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(probe("[::]:9000"), "[::1]:9000");
        assert_eq!(probe("10.1.2.3:8080"), "10.1.2.3:8080");
        assert!(
            probe_address("localhost")
                .unwrap_err()
                .contains("host:port")
        );
    }

    #[test]
    fn only_a_200_status_line_is_healthy() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            status_code(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(status_code(b"SSH-2.0-OpenSSH_9.2\r\n"), None);
        assert_eq!(status_code(b""), None);
    }
}
