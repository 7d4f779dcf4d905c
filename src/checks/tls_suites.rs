//! TLS cipher suites by family, as testssl.sh groups them (its "cipher categories"): the
//! IANA code points a probe offers to learn whether a server accepts a family, and the
//! IANA name shown as evidence. The table lives in `tls_suites.txt` (code, family, `fs`
//! flag, name); TLS 1.3's five suites are listed here.

use std::sync::LazyLock;

/// A family of cipher suites the `tls` check probes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// No encryption (`NULL`, `eNULL`).
    Null,
    /// No authentication (`aNULL`, `ADH`, `AECDH`).
    Anonymous,
    /// Export-grade (40/56-bit) suites.
    Export,
    /// RC4 stream cipher.
    Rc4,
    /// Single DES and RC2: 56-bit keys, 64-bit blocks.
    Des,
    /// Triple DES and IDEA: 64-bit blocks (Sweet32).
    TripleDes,
    /// AES, Camellia, ARIA, SEED in CBC mode (no AEAD).
    Cbc,
    /// Authenticated encryption: GCM, CCM, ChaCha20-Poly1305.
    Aead,
}

impl Family {
    /// Every family, in the order findings are reported.
    pub const ALL: [Family; 8] = [
        Family::Null,
        Family::Anonymous,
        Family::Export,
        Family::Rc4,
        Family::Des,
        Family::TripleDes,
        Family::Cbc,
        Family::Aead,
    ];

    fn parse(word: &str) -> Option<Family> {
        Some(match word {
            "null" => Family::Null,
            "anon" => Family::Anonymous,
            "export" => Family::Export,
            "rc4" => Family::Rc4,
            "des" => Family::Des,
            "3des" => Family::TripleDes,
            "cbc" => Family::Cbc,
            "aead" => Family::Aead,
            _ => return None,
        })
    }
}

/// One TLS 1.2-or-older cipher suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suite {
    pub code: u16,
    pub family: Family,
    /// Ephemeral (EC)DHE key exchange with authentication: forward secret.
    pub forward_secret: bool,
    pub name: &'static str,
}

/// TLS 1.3's suites (RFC 8446 §B.4): AES-GCM, ChaCha20-Poly1305, AES-CCM.
pub const TLS13: [u16; 5] = [0x1301, 0x1302, 0x1303, 0x1304, 0x1305];

/// The renegotiation SCSV (RFC 5746), sent in every hello as browsers do.
pub const RENEGOTIATION_SCSV: u16 = 0x00ff;

static TABLE: LazyLock<Vec<Suite>> = LazyLock::new(|| {
    include_str!("tls_suites.txt")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let code = u16::from_str_radix(words.next()?, 16).ok()?;
            let family = Family::parse(words.next()?)?;
            let forward_secret = words.next()? == "fs";
            let name = words.next()?;
            Some(Suite {
                code,
                family,
                forward_secret,
                name,
            })
        })
        .collect()
});

/// Every suite of the table.
pub fn all() -> &'static [Suite] {
    &TABLE
}

/// The code points of one family.
pub fn of(family: Family) -> Vec<u16> {
    all()
        .iter()
        .filter(|s| s.family == family)
        .map(|s| s.code)
        .collect()
}

/// The code points of every forward-secret suite that authenticates the server.
pub fn forward_secret() -> Vec<u16> {
    all()
        .iter()
        .filter(|s| s.forward_secret)
        .map(|s| s.code)
        .collect()
}

/// Whether a suite both encrypts and authenticates the server: what a protocol probe
/// offers, as testssl.sh's protocol tests do (a version usable only with NULL or
/// anonymous suites is reported through those families, not as offered).
fn usable(suite: &Suite) -> bool {
    !matches!(suite.family, Family::Null | Family::Anonymous)
}

/// The code points TLS 1.0 and 1.1 can negotiate: every usable suite but AEAD ones.
pub fn legacy() -> Vec<u16> {
    all()
        .iter()
        .filter(|s| usable(s) && s.family != Family::Aead)
        .map(|s| s.code)
        .collect()
}

/// The code points of every usable TLS 1.2-or-older suite in the table.
pub fn every() -> Vec<u16> {
    all().iter().filter(|s| usable(s)).map(|s| s.code).collect()
}

/// A suite's IANA name, or its code point in hex when it is not in the table.
pub fn name(code: u16) -> String {
    match all().iter().find(|s| s.code == code) {
        Some(suite) => suite.name.to_string(),
        None => match code {
            0x1301 => "TLS_AES_128_GCM_SHA256".into(),
            0x1302 => "TLS_AES_256_GCM_SHA384".into(),
            0x1303 => "TLS_CHACHA20_POLY1305_SHA256".into(),
            _ => format!("cipher suite 0x{code:04X}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spot checks against the IANA TLS Cipher Suites registry.
    #[test]
    fn the_table_matches_the_iana_registry() {
        let get = |code| all().iter().find(|s| s.code == code).copied().unwrap();
        assert_eq!(get(0x003B).name, "TLS_RSA_WITH_NULL_SHA256");
        assert_eq!(get(0x003B).family, Family::Null);
        assert_eq!(get(0x0018).family, Family::Anonymous); // DH_anon RC4_128_MD5
        assert_eq!(get(0x0003).family, Family::Export);
        assert_eq!(get(0x0005).family, Family::Rc4);
        assert_eq!(get(0x000A).family, Family::TripleDes);
        assert_eq!(get(0x002F).family, Family::Cbc);
        assert!(!get(0x002F).forward_secret, "static RSA key exchange");
        assert!(get(0xC013).forward_secret && get(0x0033).forward_secret);
        assert_eq!(get(0xC02F).family, Family::Aead);
        assert!(Family::ALL.iter().all(|f| !of(*f).is_empty()));
        let unusable = of(Family::Null).len() + of(Family::Anonymous).len();
        assert_eq!(legacy().len() + of(Family::Aead).len(), every().len());
        assert_eq!(every().len() + unusable, all().len());
        assert_eq!(name(0x1301), "TLS_AES_128_GCM_SHA256");
        assert_eq!(name(0xFAFA), "cipher suite 0xFAFA");
    }
}
