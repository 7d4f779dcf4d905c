//! Benchmark of the `tls` check (issue 17): 15 loopback hosts — 10 rustls servers (TLS
//! 1.2/1.3, rcgen certificates) and 5 `openssl s_server`s with weak configurations (TLS
//! 1.0 only with DHE, NULL, anonymous, CBC only, static RSA) — checked one host at a
//! time (per-host time, 20 rounds) and all at once by the runner (10 rounds). Beside it,
//! in the same run, Debian's testssl.sh on two of the same hosts, limited to the sections
//! opsguard reports (`-p -s -f -4 -S`: protocols, cipher categories, forward secrecy,
//! RC4, certificate); `BENCH_TESTSSL=0` leaves it out.
//!
//! `cargo bench --bench tls` (needs `openssl`; `testssl` for the comparison).

use opsguard::checks::{Check, runner, tls::Tls};
use opsguard::config::TlsTargets;
use rcgen::{CertificateParams, DnType, KeyPair};
use rustls::pki_types::PrivateKeyDer;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

const TIMEOUT: Duration = Duration::from_millis(1500);

/// A rustls server with a self-signed `localhost` certificate; returns its port.
async fn rustls_site() -> u16 {
    let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, "localhost");
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.read(&mut [0u8; 16]).await;
                }
            });
        }
    });
    port
}

/// `openssl s_server` processes, killed on drop.
struct Openssl(Vec<Child>, std::path::PathBuf);

impl Drop for Openssl {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Starts one `openssl s_server` per argument list on an RSA 2048 certificate.
async fn openssl_sites(configs: &[&[&str]]) -> (Openssl, Vec<u16>) {
    let dir = std::env::temp_dir().join(format!("opsguard-bench-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
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
        .args(["-newkey", "rsa:2048", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl on PATH");
    assert!(made.success());
    let mut servers = Openssl(Vec::new(), dir.clone());
    let mut ports = Vec::new();
    for args in configs {
        let port = free_port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(dir.join("cert.pem"))
            .arg("-key")
            .arg(dir.join("key.pem"))
            .args(*args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl on PATH");
        servers.0.push(child);
        ports.push(port);
    }
    for port in &ports {
        while tokio::net::TcpStream::connect(("127.0.0.1", *port))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    (servers, ports)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

/// Wall seconds of a full testssl.sh run of opsguard's sections on `port`.
fn testssl(port: u16) -> Option<f64> {
    let started = Instant::now();
    // testssl.sh's exit status counts what it found; only a failure to start matters.
    Command::new("testssl")
        .args([
            "--quiet",
            "--warnings",
            "off",
            "--color",
            "0",
            "--ip",
            "127.0.0.1",
        ])
        .args(["-p", "-s", "-f", "-4", "-S"])
        .arg(format!("localhost:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    Some(started.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut ports = Vec::new();
    for _ in 0..10 {
        ports.push(rustls_site().await);
    }
    let weak: [&[&str]; 5] = [
        &["-tls1", "-cipher", "DHE-RSA-AES128-SHA:@SECLEVEL=0"],
        &[
            "-no_tls1_3",
            "-cipher",
            "NULL-SHA256:AES128-SHA:@SECLEVEL=0",
        ],
        &[
            "-cipher",
            "AECDH-AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
        ],
        &["-no_tls1_3", "-cipher", "ECDHE-RSA-AES128-SHA:@SECLEVEL=0"],
        &[
            "-no_tls1_3",
            "-cipher",
            "AES128-GCM-SHA256:AES256-SHA:@SECLEVEL=0",
        ],
    ];
    let (_servers, openssl_ports) = openssl_sites(&weak).await;
    ports.extend(&openssl_ports);
    let targets: Vec<String> = ports.iter().map(|p| format!("localhost:{p}")).collect();
    let check = Tls::new(&TlsTargets {
        targets: targets.clone(),
        ca_file: None,
    });

    // Warm-up, and a sanity check: every host is graded, none unreachable.
    for target in &targets {
        let found = check.check(target).await.expect("every host answers");
        assert!(found.iter().all(|f| f.title != "Target unreachable"));
    }
    let (mut per_host, mut weak_hosts) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        for (i, target) in targets.iter().enumerate() {
            let started = Instant::now();
            let _ = tokio::time::timeout(TIMEOUT, check.check(target)).await;
            per_host.push(started.elapsed().as_secs_f64());
            if i >= 10 {
                weak_hosts.push(started.elapsed().as_secs_f64());
            }
        }
    }
    let checks: Vec<Arc<dyn Check>> = vec![Arc::new(Tls::new(&TlsTargets {
        targets: targets.clone(),
        ca_file: None,
    }))];
    let mut all = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let report = runner::run(&checks, TIMEOUT).await;
        all.push(started.elapsed().as_secs_f64());
        assert!(
            report
                .findings
                .iter()
                .all(|f| f.title != "Target unreachable")
        );
    }

    println!(
        "## tls check over {} loopback hosts (timeout {} ms)\n",
        targets.len(),
        TIMEOUT.as_millis()
    );
    println!("| run | median | max | target |\n|---|---|---|---|");
    println!(
        "| one host at a time ({} checks) | {:.1} ms | {:.1} ms | ≤ 50 ms median |",
        per_host.len(),
        median(per_host.clone()) * 1e3,
        max(&per_host) * 1e3
    );
    println!(
        "| of which the 5 openssl hosts ({} checks) | {:.1} ms | {:.1} ms | — |",
        weak_hosts.len(),
        median(weak_hosts.clone()) * 1e3,
        max(&weak_hosts) * 1e3
    );
    println!(
        "| all {} hosts by the runner (10 runs) | {:.1} ms | {:.1} ms | every run ≤ 2 s |",
        targets.len(),
        median(all.clone()) * 1e3,
        max(&all) * 1e3
    );
    if std::env::var("BENCH_TESTSSL").as_deref() == Ok("0") {
        return;
    }
    for (label, port) in [
        ("rustls, TLS 1.2/1.3", ports[0]),
        ("openssl, NULL + CBC", openssl_ports[1]),
    ] {
        match testssl(port) {
            Some(secs) => println!(
                "| testssl.sh -p -s -f -4 -S on one host ({label}) | {secs:.1} s | — | ratio to opsguard's per-host median: {:.0}× |",
                secs / median(per_host.clone())
            ),
            None => {
                println!("| testssl.sh ({label}) | not run: testssl missing or failed | — | — |")
            }
        }
    }
}
