//! Legacy protocol probe: does a server still accept TLS 1.0 or 1.1? rustls cannot speak
//! those versions, so we send one minimal hand-built ClientHello over plain TCP and read
//! only the first record of the answer:
//!
//! - a ServerHello (handshake record, type 2) whose version is the one we offered: accepted;
//! - a ServerHello with another version, an alert record, or the connection closed: refused;
//! - anything else (garbage, silence): inconclusive.
//!
//! Nothing after the ServerHello is parsed and no key exchange happens.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// TLS protocol versions as they appear on the wire.
pub const TLS10: u16 = 0x0301;
pub const TLS11: u16 = 0x0302;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legacy {
    Accepted,
    Refused,
    Inconclusive,
}

/// Offer only `version` to `host:port` and report what the server did.
pub async fn probe(host: &str, port: u16, version: u16, wait: Duration) -> Legacy {
    let attempt = async {
        let mut stream = TcpStream::connect((host, port)).await.ok()?;
        stream.write_all(&client_hello(host, version)).await.ok()?;
        let mut header = [0u8; 5];
        if stream.read_exact(&mut header).await.is_err() {
            // Closed without a word: the usual way to refuse an unwanted version.
            return Some(Legacy::Refused);
        }
        let length = u16::from_be_bytes([header[3], header[4]]) as usize;
        match header[0] {
            0x15 => Some(Legacy::Refused),
            0x16 if length >= 6 => {
                let mut body = [0u8; 6];
                stream.read_exact(&mut body).await.ok()?;
                // body: msg type (1), length (3), server_version (2).
                let answered = u16::from_be_bytes([body[4], body[5]]);
                if body[0] != 0x02 {
                    None
                } else if answered == version {
                    Some(Legacy::Accepted)
                } else {
                    Some(Legacy::Refused)
                }
            }
            _ => None,
        }
    };
    match tokio::time::timeout(wait, attempt).await {
        Ok(Some(result)) => result,
        _ => Legacy::Inconclusive,
    }
}

/// A ClientHello offering `version` only, with classic CBC suites every TLS 1.0/1.1
/// server supports, SNI (when `host` is a name), and the EC extensions.
fn client_hello(host: &str, version: u16) -> Vec<u8> {
    let suites: [u16; 8] = [
        0xc013, 0xc014, 0xc009, 0xc00a, 0x002f, 0x0035, 0x000a, 0x00ff,
    ];
    let mut ext = Vec::new();
    if host.parse::<std::net::IpAddr>().is_err() && host.len() < 256 {
        let name = host.as_bytes();
        ext.extend_from_slice(&0x0000u16.to_be_bytes());
        ext.extend_from_slice(&((name.len() + 5) as u16).to_be_bytes());
        ext.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
        ext.push(0);
        ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
        ext.extend_from_slice(name);
    }
    // supported_groups: x25519, secp256r1, secp384r1.
    ext.extend_from_slice(&[
        0x00, 0x0a, 0x00, 0x08, 0x00, 0x06, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18,
    ]);
    // ec_point_formats: uncompressed.
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);

    let mut hello = Vec::new();
    hello.extend_from_slice(&version.to_be_bytes());
    hello.extend_from_slice(&rand::random::<[u8; 32]>());
    hello.push(0); // no session id
    hello.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    suites
        .iter()
        .for_each(|s| hello.extend_from_slice(&s.to_be_bytes()));
    hello.extend_from_slice(&[1, 0]); // compression: null only
    hello.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    hello.extend_from_slice(&ext);

    let mut handshake = vec![0x01];
    handshake.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&hello);

    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_lengths_are_consistent() {
        let record = client_hello("example.com", TLS11);
        let outer = u16::from_be_bytes([record[3], record[4]]) as usize;
        assert_eq!(outer, record.len() - 5);
        let inner = u32::from_be_bytes([0, record[6], record[7], record[8]]) as usize;
        assert_eq!(inner, record.len() - 9);
        assert_eq!(&record[9..11], &TLS11.to_be_bytes());
    }
}
