//! The `tls` check's probes: one TCP connection per question ("does the server accept TLS
//! 1.0?", "does it accept a NULL suite?"), each sending one hand-built ClientHello
//! (`tls_hello`) and reading the answer (`tls_answer`) under its own timeout. A scan asks
//! every question about one host at once, so it costs about one round trip.

use super::tls_answer::{self, Answer, ServerHello};
use super::tls_hello::{self, Version};
use super::tls_suites::{self, Family, TLS13};
use futures::future::join_all;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered (accepted, refused, or spoke something else).
    Answered(Answer),
    /// Connected, then no decisive answer within the probe's timeout.
    Silent,
    /// The TCP connection failed (its error kind as people read it).
    NoConnection(String),
}

impl Outcome {
    /// The ServerHello, when the server accepted.
    pub fn hello(&self) -> Option<&ServerHello> {
        match self {
            Outcome::Answered(Answer::Hello(hello)) => Some(hello),
            _ => None,
        }
    }
}

/// Offer `version` and `suites` to `host:port` and report what the server did.
pub async fn probe(
    host: &str,
    port: u16,
    version: Version,
    suites: &[u16],
    wait: Duration,
) -> Outcome {
    let hello = tls_hello::client_hello(host, version, suites);
    let deadline = tokio::time::Instant::now() + wait;
    let mut stream = match tokio::time::timeout_at(deadline, TcpStream::connect((host, port))).await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Outcome::NoConnection(e.kind().to_string()),
        Err(_) => return Outcome::NoConnection("connection timed out".into()),
    };
    if stream.write_all(&hello).await.is_err() {
        return Outcome::Answered(Answer::Closed);
    }
    let mut received = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let read = match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(read) => read.unwrap_or(0),
            // Out of time: a ServerHello already read still counts (its chain may be cut).
            Err(_) => {
                return match tls_answer::parse(&received, true) {
                    Some(Answer::Hello(hello)) => Outcome::Answered(Answer::Hello(hello)),
                    _ => Outcome::Silent,
                };
            }
        };
        received.extend_from_slice(&buf[..read]);
        if let Some(answer) = tls_answer::parse(&received, read == 0) {
            return Outcome::Answered(answer);
        }
    }
}

/// Whether a protocol probe's answer accepts the version it offered.
pub fn accepts(outcome: &Outcome, version: Version) -> bool {
    outcome.hello().is_some_and(|h| h.version == Some(version))
}

/// Whether a family probe's answer chose one of the suites it offered.
pub fn chose(outcome: &Outcome, offered: &[u16]) -> Option<u16> {
    let hello = outcome.hello()?;
    let legacy = hello.version.is_some_and(|v| v < Version::Tls13);
    (legacy && offered.contains(&hello.suite)).then_some(hello.suite)
}

/// Everything a scan asked one host, probe by probe.
#[derive(Debug, Clone)]
pub struct Scan {
    /// TLS 1.0 and 1.1 offered with every suite they can use, TLS 1.2 with every suite,
    /// TLS 1.3 with its own.
    pub protocols: Vec<(Version, Outcome)>,
    /// Each family offered alone (up to TLS 1.2), with the suites it offered.
    pub families: Vec<(Family, Vec<u16>, Outcome)>,
    /// Every forward-secret suite offered alone (up to TLS 1.2).
    pub forward_secret: (Vec<u16>, Outcome),
}

impl Scan {
    /// The outcome of the protocol probe for `version`.
    pub fn protocol(&self, version: Version) -> &Outcome {
        self.protocols
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, o)| o)
            .unwrap_or(&Outcome::Silent)
    }

    /// Whether the server accepts `version`.
    pub fn offers(&self, version: Version) -> bool {
        accepts(self.protocol(version), version)
    }

    /// The suite the server chose from `family`'s suites, if it accepted any.
    pub fn family(&self, family: Family) -> Option<u16> {
        self.families
            .iter()
            .find(|(f, _, _)| *f == family)
            .and_then(|(_, offered, outcome)| chose(outcome, offered))
    }

    /// Every outcome, for telling "unreachable" from "answered badly".
    pub fn outcomes(&self) -> impl Iterator<Item = &Outcome> {
        self.protocols
            .iter()
            .map(|(_, o)| o)
            .chain(self.families.iter().map(|(_, _, o)| o))
            .chain(std::iter::once(&self.forward_secret.1))
    }

    /// The certificates the server sent in clear, from the first probe that got them.
    pub fn chain(&self) -> Option<Vec<Vec<u8>>> {
        self.outcomes()
            .filter_map(Outcome::hello)
            .find(|h| !h.chain.is_empty())
            .map(|h| h.chain.clone())
    }
}

/// Runs every probe against `host:port` concurrently, each under `wait`.
pub async fn scan(host: &str, port: u16, wait: Duration) -> Scan {
    let versions = [
        (Version::Tls10, tls_suites::legacy()),
        (Version::Tls11, tls_suites::legacy()),
        (Version::Tls12, tls_suites::every()),
        (Version::Tls13, TLS13.to_vec()),
    ];
    let families: Vec<(Family, Vec<u16>)> = Family::ALL
        .iter()
        .map(|f| (*f, tls_suites::of(*f)))
        .collect();
    let fs = tls_suites::forward_secret();
    let protocol_probes = join_all(
        versions
            .iter()
            .map(|(v, suites)| probe(host, port, *v, suites, wait)),
    );
    let family_probes = join_all(
        families
            .iter()
            .map(|(_, suites)| probe(host, port, Version::Tls12, suites, wait)),
    );
    let fs_probe = probe(host, port, Version::Tls12, &fs, wait);
    let (protocols, found, fs_outcome) = tokio::join!(protocol_probes, family_probes, fs_probe);
    Scan {
        protocols: versions.iter().map(|(v, _)| *v).zip(protocols).collect(),
        families: families
            .into_iter()
            .zip(found)
            .map(|((family, suites), outcome)| (family, suites, outcome))
            .collect(),
        forward_secret: (fs, fs_outcome),
    }
}
