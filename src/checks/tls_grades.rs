//! The `tls` check's protocol and cipher-suite findings, from one scan of a host, with
//! testssl.sh's severities (3.0.8, Debian's: `run_protocols`, `run_cipherlists`,
//! `run_rc4`, `run_pfs`):
//!
//! | finding | testssl.sh | severity |
//! |---|---|---|
//! | TLS 1.0 / TLS 1.1 offered | `TLS1`, `TLS1_1` "offered (deprecated)" | LOW |
//! | TLS 1.2 not offered (and no TLS 1.3) | `TLS1_2` "not offered" | MEDIUM |
//! | TLS 1.3 not offered, TLS 1.2 is | `TLS1_3` "not offered + downgraded" | INFO |
//! | TLS 1.3 not offered, nor TLS 1.2 | `TLS1_3` "not offered" | LOW |
//! | NULL / anonymous / EXPORT suites | `cipherlist_NULL`, `_aNULL`, `_EXPORT` | CRITICAL |
//! | RC4, DES/RC2 suites | `RC4`, `cipherlist_LOW` | HIGH |
//! | 3DES/IDEA suites | `cipherlist_3DES_IDEA` | MEDIUM |
//! | obsolete CBC suites | `cipherlist_AVERAGE` | LOW |
//! | no AEAD suite | `cipherlist_STRONG` "not offered" | MEDIUM |
//! | no forward secrecy | `PFS` "No ciphers supporting (P)FS offered" | MEDIUM |

use super::tls_hello::Version;
use super::tls_probe::{Outcome, Scan, chose};
use super::tls_suites::{self, Family};
use crate::domain::finding::Severity;

/// A protocol or suite weakness: severity, title, evidence, fix.
pub type Grade = (Severity, String, String, &'static str);

const PROTOCOL_FIX: &str = "Disable TLS 1.0 and 1.1; allow TLS 1.2 and 1.3 only.";
const SUITE_FIX: &str = "Offer only ECDHE suites with AES-GCM or ChaCha20-Poly1305 \
(Mozilla's intermediate configuration) and TLS 1.3.";

/// A family's finding title and testssl.sh severity when the server accepts it.
fn family_grade(family: Family) -> (Severity, &'static str) {
    match family {
        Family::Null => (
            Severity::Critical,
            "NULL cipher suites offered (no encryption)",
        ),
        Family::Anonymous => (
            Severity::Critical,
            "Anonymous cipher suites offered (no authentication)",
        ),
        Family::Export => (Severity::Critical, "EXPORT cipher suites offered"),
        Family::Rc4 => (Severity::High, "RC4 cipher suites offered"),
        Family::Des => (Severity::High, "DES or RC2 cipher suites offered"),
        Family::TripleDes => (Severity::Medium, "3DES or IDEA cipher suites offered"),
        Family::Cbc => (Severity::Low, "Obsolete CBC cipher suites offered"),
        Family::Aead => (Severity::Info, "AEAD cipher suites offered"),
    }
}

/// Every protocol and suite finding of `scan`.
pub fn grades(scan: &Scan) -> Vec<Grade> {
    let mut found = Vec::new();
    let tls13 = scan.offers(Version::Tls13);
    for version in [Version::Tls10, Version::Tls11] {
        let label = version.label();
        match scan.protocol(version) {
            outcome if scan.offers(version) => found.push((
                Severity::Low,
                format!("{label} offered"),
                format!("the server accepted a {label} hello{}", suite_of(outcome)),
                PROTOCOL_FIX,
            )),
            Outcome::Silent => found.push((
                Severity::Info,
                format!("{label} support unknown"),
                format!("the {label} probe got no answer in time"),
                "Check the server's protocol settings by hand.",
            )),
            _ => {}
        }
    }
    if !scan.offers(Version::Tls12) && !tls13 {
        found.push((
            Severity::Medium,
            "TLS 1.2 not offered".into(),
            format!(
                "a TLS 1.2 hello was {}",
                refusal(scan.protocol(Version::Tls12))
            ),
            "Enable TLS 1.2 and 1.3.",
        ));
    }
    if !tls13 {
        let severity = if scan.offers(Version::Tls12) {
            Severity::Info
        } else {
            Severity::Low
        };
        found.push((
            severity,
            "TLS 1.3 not offered".into(),
            format!(
                "a TLS 1.3 hello was {}",
                refusal(scan.protocol(Version::Tls13))
            ),
            "Enable TLS 1.3 on the server.",
        ));
    }
    let mut any_suite = false;
    for (family, offered, outcome) in &scan.families {
        let Some(suite) = chose(outcome, offered) else {
            continue;
        };
        any_suite = true;
        let (severity, title) = family_grade(*family);
        if *family != Family::Aead {
            found.push((severity, title.into(), chosen(outcome, suite), SUITE_FIX));
        }
    }
    let fs = chose(&scan.forward_secret.1, &scan.forward_secret.0).is_some();
    let aead = scan.family(Family::Aead).is_some();
    if any_suite && !tls13 && !aead {
        found.push((
            Severity::Medium,
            "No AEAD cipher suite offered (CBC only)".into(),
            "the server refused every GCM, CCM and ChaCha20-Poly1305 suite and TLS 1.3".into(),
            SUITE_FIX,
        ));
    }
    if any_suite && !tls13 && !fs {
        found.push((
            Severity::Medium,
            "No forward secrecy".into(),
            "the server refused every ECDHE and DHE suite and TLS 1.3: only static key \
             exchange (RSA or DH) is offered"
                .into(),
            SUITE_FIX,
        ));
    }
    found
}

/// " with SUITE" when the outcome carries a ServerHello.
fn suite_of(outcome: &Outcome) -> String {
    outcome
        .hello()
        .map(|h| format!(" and chose {}", tls_suites::name(h.suite)))
        .unwrap_or_default()
}

/// The evidence of a family accepted: the suite chosen and the version it came with.
fn chosen(outcome: &Outcome, suite: u16) -> String {
    let version = outcome
        .hello()
        .and_then(|h| h.version)
        .map_or("an unknown version", Version::label);
    format!("the server chose {} ({version})", tls_suites::name(suite))
}

/// How a probe was turned down, as people read it.
fn refusal(outcome: &Outcome) -> String {
    use super::tls_answer::Answer;
    match outcome {
        Outcome::Answered(Answer::Hello(h)) => match h.version {
            Some(v) => format!("answered with {}", v.label()),
            None => "answered with an unknown version".into(),
        },
        Outcome::Answered(Answer::Alert { description }) => {
            format!("refused with alert {}", alert_name(*description))
        }
        Outcome::Answered(Answer::Closed) => "refused (connection closed)".into(),
        Outcome::Answered(Answer::NotTls) => "answered with something that is not TLS".into(),
        Outcome::Silent => "not answered in time".into(),
        Outcome::NoConnection(why) => format!("not sent ({why})"),
    }
}

/// An alert description's name (RFC 8446 §6), else its number.
pub fn alert_name(code: u8) -> String {
    match code {
        10 => "unexpected_message".into(),
        40 => "handshake_failure".into(),
        47 => "illegal_parameter".into(),
        50 => "decode_error".into(),
        70 => "protocol_version".into(),
        71 => "insufficient_security".into(),
        80 => "internal_error".into(),
        86 => "inappropriate_fallback".into(),
        112 => "unrecognized_name".into(),
        other => format!("number {other}"),
    }
}
