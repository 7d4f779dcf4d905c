//! The reference itself: Debian's testssl.sh run against the same two `openssl s_server`s
//! as the `tls` check, its JSON findings compared with opsguard's. Every protocol and
//! cipher-suite finding testssl.sh rates LOW or worse must be reported by opsguard with
//! the same severity, and nothing testssl.sh rates OK may be reported above INFO. Slow
//! (about 20 s per server, both run at once); skipped, saying why, when testssl.sh is
//! not installed (`scripts/services.sh` installs it).

use super::openssl_server::OpensslServer;
use super::{check_tls, titled};
use opsguard::domain::finding::{Finding, Severity};

/// testssl.sh's JSON ids and the opsguard finding each corresponds to.
const SAME_FINDING: [(&str, &str); 13] = [
    ("TLS1", "TLS 1.0 offered"),
    ("TLS1_1", "TLS 1.1 offered"),
    ("TLS1_2", "TLS 1.2 not offered"),
    ("TLS1_3", "TLS 1.3 not offered"),
    ("cipherlist_NULL", "NULL cipher suites offered"),
    ("cipherlist_aNULL", "Anonymous cipher suites offered"),
    ("cipherlist_EXPORT", "EXPORT cipher suites offered"),
    ("cipherlist_LOW", "DES or RC2 cipher suites offered"),
    ("cipherlist_3DES_IDEA", "3DES or IDEA cipher suites offered"),
    ("cipherlist_AVERAGE", "Obsolete CBC cipher suites offered"),
    ("cipherlist_STRONG", "No AEAD cipher suite offered"),
    ("PFS", "No forward secrecy"),
    ("RC4", "RC4 cipher suites offered"),
];

fn severity(testssl: &str) -> Option<Severity> {
    match testssl {
        "CRITICAL" => Some(Severity::Critical),
        "HIGH" => Some(Severity::High),
        "MEDIUM" => Some(Severity::Medium),
        "LOW" => Some(Severity::Low),
        _ => None, // OK, INFO: nothing to report (or INFO at most)
    }
}

/// testssl.sh's protocol, cipher-category, forward-secrecy and RC4 sections on `port`:
/// (id, severity) pairs from its JSON output.
async fn testssl(port: u16) -> Vec<(String, String)> {
    let json = OpensslServer::dir().join("testssl.json");
    let output = tokio::process::Command::new("testssl")
        .args([
            "--quiet",
            "--warnings",
            "off",
            "--color",
            "0",
            "--ip",
            "127.0.0.1",
        ])
        .args(["-p", "-s", "-f", "-4", "--jsonfile"])
        .arg(&json)
        .arg(format!("localhost:{port}"))
        .output()
        .await
        .expect("testssl runs");
    let text = std::fs::read_to_string(&json)
        .unwrap_or_else(|_| panic!("testssl wrote no JSON: {output:?}"));
    let _ = std::fs::remove_dir_all(json.parent().unwrap());
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    rows.iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn compare(what: &str, theirs: &[(String, String)], ours: &[Finding]) -> usize {
    let mut compared = 0;
    for (id, title) in SAME_FINDING {
        let Some((_, rating)) = theirs.iter().find(|(i, _)| i == id) else {
            continue;
        };
        compared += 1;
        let mine = titled(ours, title).map(|f| f.severity);
        match severity(rating) {
            Some(expected) => {
                assert_eq!(mine, Some(expected), "{what}: {id} {rating} vs {ours:#?}")
            }
            None => assert!(
                mine.is_none() || mine == Some(Severity::Info),
                "{what}: testssl rates {id} {rating}; opsguard says {mine:?}"
            ),
        }
    }
    compared
}

#[tokio::test]
async fn findings_agree_with_testssl_on_the_same_servers() {
    if std::process::Command::new("testssl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "SKIPPED: testssl (Debian package testssl.sh) is not installed; run scripts/services.sh's ensure_test_tools"
        );
        return;
    }
    let rsa = ["-newkey", "rsa:2048"];
    let servers = [
        // NULL and CBC with static RSA, TLS 1.0 to 1.2: no AEAD, no forward secrecy.
        [
            "-no_tls1_3",
            "-cipher",
            "NULL-SHA256:AES128-SHA:@SECLEVEL=0",
        ],
        // Anonymous ECDH beside an AEAD ECDHE suite, TLS 1.0 to 1.3.
        [
            "-cipher",
            "AECDH-AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
            "-no_ssl3",
        ],
    ];
    let a = OpensslServer::with_openssl_cert_serving(&rsa, &servers[0]).await;
    let b = OpensslServer::with_openssl_cert_serving(&rsa, &servers[1]).await;
    let (theirs_a, theirs_b) = tokio::join!(testssl(a.port), testssl(b.port));
    let (ours_a, ours_b) = (check_tls(a.port, None).await, check_tls(b.port, None).await);
    let compared = compare("NULL+CBC server", &theirs_a, &ours_a)
        + compare("anonymous+AEAD server", &theirs_b, &ours_b);
    assert_eq!(compared, 26, "every id was in testssl's output");
    // The weaknesses that make the comparison meaningful were there to find.
    assert!(titled(&ours_a, "NULL cipher").is_some() && titled(&ours_b, "Anonymous").is_some());
}
