//! Hand-built ClientHellos for the `tls` check's probes: one protocol version and a list
//! of cipher suites, with the extensions a server needs to answer (SNI, groups, point
//! formats, signature algorithms; for TLS 1.3 `supported_versions` and an X25519 key
//! share). rustls cannot offer TLS 1.0/1.1 or the weak suite families, so the probes
//! speak the first flight themselves, as testssl.sh's socket mode does; no key exchange
//! ever completes.

use super::tls_suites::RENEGOTIATION_SCSV;

/// A protocol version a probe offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl Version {
    /// The version's number on the wire.
    pub fn wire(self) -> u16 {
        match self {
            Version::Tls10 => 0x0301,
            Version::Tls11 => 0x0302,
            Version::Tls12 => 0x0303,
            Version::Tls13 => 0x0304,
        }
    }

    /// The version a wire number names, if it is one of ours.
    pub fn from_wire(wire: u16) -> Option<Version> {
        [
            Version::Tls10,
            Version::Tls11,
            Version::Tls12,
            Version::Tls13,
        ]
        .into_iter()
        .find(|v| v.wire() == wire)
    }

    /// The version as people write it.
    pub fn label(self) -> &'static str {
        match self {
            Version::Tls10 => "TLS 1.0",
            Version::Tls11 => "TLS 1.1",
            Version::Tls12 => "TLS 1.2",
            Version::Tls13 => "TLS 1.3",
        }
    }
}

/// Named groups offered: strong ones first, then the weak curves an old certificate may
/// sit on (a server only signs with an ECDSA key whose curve the client lists).
const GROUPS: [u16; 8] = [
    0x001d, // x25519
    0x0017, // secp256r1
    0x0018, // secp384r1
    0x0019, // secp521r1
    0x001e, // x448
    0x0016, // secp256k1
    0x0015, // secp224r1
    0x0013, // secp192r1
];

/// Signature schemes offered, down to SHA-1 and DSA, so that an old server can answer.
const SIGNATURES: [u16; 14] = [
    0x0403, 0x0503, 0x0603, 0x0807, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0203, 0x0201,
    0x0402, 0x0202,
];

/// The whole record (type 22, handshake) carrying a ClientHello that offers `version`
/// and `suites` (plus the renegotiation SCSV), with SNI when `host` is a name.
pub fn client_hello(host: &str, version: Version, suites: &[u16]) -> Vec<u8> {
    let mut ext = Vec::new();
    if host.parse::<std::net::IpAddr>().is_err() && !host.is_empty() && host.len() < 256 {
        let name = host.as_bytes();
        let mut list = vec![0u8]; // host_name
        put_u16_vec(&mut list, name);
        let mut server_name = Vec::new();
        put_u16_vec(&mut server_name, &list);
        extension(&mut ext, 0x0000, &server_name);
    }
    extension(&mut ext, 0x000a, &u16_list(&GROUPS));
    extension(&mut ext, 0x000b, &[1, 0]); // ec_point_formats: uncompressed
    extension(&mut ext, 0x000d, &u16_list(&SIGNATURES));
    extension(&mut ext, 0x0017, &[]); // extended_master_secret
    let legacy_version = if version == Version::Tls13 {
        // supported_versions: TLS 1.3 only; key_share: one X25519 share (any 32 bytes
        // are a valid X25519 public value for the server to answer).
        extension(&mut ext, 0x002b, &[2, 0x03, 0x04]);
        let mut share = 0x001du16.to_be_bytes().to_vec();
        put_u16_vec(&mut share, &rand::random::<[u8; 32]>());
        let mut shares = Vec::new();
        put_u16_vec(&mut shares, &share);
        extension(&mut ext, 0x0033, &shares);
        Version::Tls12.wire()
    } else {
        version.wire()
    };

    let mut hello = legacy_version.to_be_bytes().to_vec();
    hello.extend_from_slice(&rand::random::<[u8; 32]>());
    hello.push(32); // a session id, as TLS 1.3 middlebox compatibility mode sends
    hello.extend_from_slice(&rand::random::<[u8; 32]>());
    let mut offered = suites.to_vec();
    offered.push(RENEGOTIATION_SCSV);
    hello.extend_from_slice(&u16_list(&offered));
    hello.extend_from_slice(&[1, 0]); // compression: null only
    put_u16_vec(&mut hello, &ext);

    let mut handshake = vec![0x01]; // client_hello
    handshake.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&hello);
    let mut record = vec![0x16, 0x03, 0x01];
    put_u16_vec(&mut record, &handshake);
    record
}

fn u16_list(values: &[u16]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(values.len() * 2 + 2);
    let inner: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    put_u16_vec(&mut bytes, &inner);
    bytes
}

/// Appends `body` prefixed by its length as two bytes.
fn put_u16_vec(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
}

fn extension(out: &mut Vec<u8>, kind: u16, body: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    put_u16_vec(out, body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_lengths_and_offer_are_consistent() {
        let record = client_hello("example.com", Version::Tls11, &[0x002f, 0x000a]);
        let outer = u16::from_be_bytes([record[3], record[4]]) as usize;
        assert_eq!(outer, record.len() - 5);
        let inner = u32::from_be_bytes([0, record[6], record[7], record[8]]) as usize;
        assert_eq!(inner, record.len() - 9);
        assert_eq!(&record[9..11], &[0x03, 0x02]);
        // version (2) + random (32) + session id (1 + 32), then the suites: ours + SCSV.
        let suites = &record[9 + 2 + 32 + 33..];
        assert_eq!(&suites[..8], &[0, 6, 0x00, 0x2f, 0x00, 0x0a, 0x00, 0xff]);
        assert!(record.windows(11).any(|w| w == b"example.com"));
        // TLS 1.3 is offered through supported_versions; the hello itself says TLS 1.2.
        let record = client_hello("127.0.0.1", Version::Tls13, &[0x1301]);
        assert_eq!(&record[9..11], &[0x03, 0x03]);
        assert!(record.windows(7).any(|w| w == [0x00, 0x2b, 0, 3, 2, 3, 4]));
        assert!(!record.windows(9).any(|w| w == b"127.0.0.1"));
    }
}
