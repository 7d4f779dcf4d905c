//! Benchmark of `/check all` (issue 3): the runner over PostgreSQL, Redis, 5 HTTP and 3 TLS
//! targets on loopback, beside a baseline in the same run — the same checks, one target at
//! a time — and with a hanging target added (it must cost no more than the timeout).
//!
//! `cargo bench --bench checks` (needs PostgreSQL and Redis on 127.0.0.1).

use opsguard::checks::{
    Check, http_headers::HttpHeaders, postgres::Postgres, redis::Redis, runner, tls::Tls,
};
use opsguard::config::{
    CheckSettings, HttpHeadersTargets, PostgresTargets, RedisTargets, TlsTargets,
};
use opsguard::domain::secret::Secret;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::PrivateKeyDer;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

const TIMEOUT: Duration = Duration::from_millis(1500);

async fn http_site(i: usize) -> String {
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || async move {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert("x-content-type-options", "nosniff".parse().unwrap());
            if i.is_multiple_of(2) {
                headers.insert(
                    "strict-transport-security",
                    "max-age=63072000".parse().unwrap(),
                );
            }
            (headers, "ok")
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

async fn tls_site(ca: &CertifiedIssuer<'static, KeyPair>) -> u16 {
    let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, "localhost");
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, ca).unwrap();
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

/// A listener that accepts and never answers.
async fn hanging() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    port
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Wall time of the runner over `checks`, and of the same targets one at a time.
async fn timed(checks: &[Arc<dyn Check>]) -> (f64, f64, usize) {
    let started = Instant::now();
    let report = runner::run(checks, TIMEOUT).await;
    let concurrent = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for check in checks {
        for target in check.targets() {
            let _ = tokio::time::timeout(TIMEOUT, check.check(&target)).await;
        }
    }
    (
        concurrent,
        started.elapsed().as_secs_f64(),
        report.checked.len(),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "opsguard bench CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let ca_path =
        std::env::temp_dir().join(format!("opsguard-bench-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_path, ca.pem()).unwrap();

    let mut urls = Vec::new();
    for i in 0..5 {
        urls.push(http_site(i).await);
    }
    let mut tls = Vec::new();
    for _ in 0..3 {
        tls.push(format!("localhost:{}", tls_site(&ca).await));
    }
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "root".into());
    let build = |extra_tls: Option<String>| -> Vec<Arc<dyn Check>> {
        let mut tls_targets = tls.clone();
        tls_targets.extend(extra_tls);
        vec![
            Arc::new(HttpHeaders::new(&CheckSettings {
                http_headers: HttpHeadersTargets { urls: urls.clone() },
                ..CheckSettings::default()
            })),
            Arc::new(Tls::new(&TlsTargets {
                targets: tls_targets,
                ca_file: Some(ca_path.to_string_lossy().into_owned()),
            })),
            Arc::new(Postgres::new(&PostgresTargets {
                dsns: vec![Secret::new(format!(
                    "postgres://{user}@127.0.0.1:5432/postgres"
                ))],
                expected_superusers: vec![user.clone()],
            })),
            Arc::new(Redis::new(&RedisTargets {
                urls: vec![Secret::new("redis://127.0.0.1:6379")],
            })),
        ]
    };
    let all = build(None);
    timed(&all).await; // warm-up
    let (mut conc, mut seq) = (Vec::new(), Vec::new());
    let mut targets = 0;
    for _ in 0..5 {
        let (c, s, n) = timed(&all).await;
        conc.push(c);
        seq.push(s);
        targets = n;
    }
    let with_hang = build(Some(format!("127.0.0.1:{}", hanging().await)));
    let mut hang = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        runner::run(&with_hang, TIMEOUT).await;
        hang.push(started.elapsed().as_secs_f64());
    }
    let _ = std::fs::remove_file(&ca_path);

    println!(
        "## /check all over {targets} loopback targets (median of 5; timeout {} ms)\n",
        TIMEOUT.as_millis()
    );
    println!("| run | wall s | target |\n|---|---|---|");
    println!(
        "| opsguard runner (all targets concurrently) | {:.3} | ≤ 2 s |",
        median(conc.clone())
    );
    println!(
        "| baseline: same checks, one target at a time | {:.3} | — |",
        median(seq.clone())
    );
    println!(
        "| runner with a hanging TLS target added (median of 3) | {:.3} | ≤ timeout + ε |",
        median(hang)
    );
    println!(
        "\nratio concurrent / one-at-a-time: {:.2}",
        median(conc) / median(seq)
    );
}
