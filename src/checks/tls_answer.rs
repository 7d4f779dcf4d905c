//! Reading a server's answer to a probe's ClientHello: the plaintext first flight
//! (ServerHello, and up to TLS 1.2 the Certificate message), an alert, a close, or bytes
//! that are not TLS at all. Parsing is done on the bytes received so far, so the reader
//! stops as soon as it knows enough; nothing is decrypted.

use super::tls_hello::Version;

/// What a server answered to one ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A ServerHello: the server accepted the offer.
    Hello(ServerHello),
    /// A TLS alert before any ServerHello: the server refused the offer.
    Alert { description: u8 },
    /// The connection was closed before any answer: refused without a word.
    Closed,
    /// Bytes that are not TLS records (e.g. an HTTP error page).
    NotTls,
}

/// The parts of a ServerHello (and the certificates after it) the check reports on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello {
    /// The negotiated version (TLS 1.3 from `supported_versions`); None if unknown.
    pub version: Option<Version>,
    /// The chosen cipher suite.
    pub suite: u16,
    /// The certificates sent in clear (TLS 1.2 and older), leaf first, as DER.
    pub chain: Vec<Vec<u8>>,
}

/// The random of a HelloRetryRequest (RFC 8446 §4.1.3): SHA-256 of "HelloRetryRequest".
const RETRY_RANDOM: [u8; 32] = [
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
];

/// Handshake bytes kept at most (a chain larger than this is cut, the hello is kept).
const MAX_FLIGHT: usize = 64 * 1024;

/// Reads `received` (everything the server sent so far); `closed` when the server has
/// closed its side. None: more bytes are needed to decide.
pub fn parse(received: &[u8], closed: bool) -> Option<Answer> {
    let mut handshake = Vec::new();
    let mut rest = received;
    let mut hello: Option<ServerHello> = None;
    let mut ended = false; // a record after the plaintext flight, or the flight's end
    while rest.len() >= 5 {
        let (kind, major, length) = (rest[0], rest[1], u16::from_be_bytes([rest[3], rest[4]]));
        if !(20..=23).contains(&kind) || major != 3 || length as usize > 18_432 {
            return Some(hello.map_or(Answer::NotTls, Answer::Hello));
        }
        let Some(body) = rest.get(5..5 + length as usize) else {
            break;
        };
        match kind {
            22 if !ended => handshake.extend_from_slice(body),
            21 if hello.is_none() && body.len() == 2 => {
                return Some(Answer::Alert {
                    description: body[1],
                });
            }
            _ if hello.is_some() => ended = true,
            _ => return Some(Answer::NotTls),
        }
        rest = &rest[5 + length as usize..];
        let (found, done) = messages(&handshake);
        hello = found;
        if done || handshake.len() > MAX_FLIGHT {
            ended = true;
        }
        if ended && hello.is_some() {
            break;
        }
    }
    match hello {
        Some(hello) if ended || closed => Some(Answer::Hello(hello)),
        Some(_) => None,
        None if closed => Some(if received.is_empty() || received.len() < 5 {
            Answer::Closed
        } else {
            Answer::NotTls
        }),
        None if received.len() >= 5 && received[0] != 22 && received[0] != 21 => {
            Some(Answer::NotTls)
        }
        None => None,
    }
}

/// The ServerHello (with the chain when the Certificate message is complete) from the
/// handshake bytes, and whether the plaintext flight is over.
fn messages(mut bytes: &[u8]) -> (Option<ServerHello>, bool) {
    let mut hello: Option<ServerHello> = None;
    while bytes.len() >= 4 {
        let length = u32::from_be_bytes([0, bytes[1], bytes[2], bytes[3]]) as usize;
        let Some(body) = bytes.get(4..4 + length) else {
            break;
        };
        match (bytes[0], hello.as_mut()) {
            (2, None) => {
                let Some(parsed) = server_hello(body) else {
                    return (None, true);
                };
                // TLS 1.3 encrypts everything after the ServerHello.
                let tls13 = parsed.version == Some(Version::Tls13);
                hello = Some(parsed);
                if tls13 {
                    return (hello, true);
                }
            }
            (11, Some(h)) => h.chain = certificates(body),
            (14, Some(_)) => return (hello, true), // ServerHelloDone
            _ => {}
        }
        bytes = &bytes[4 + length..];
    }
    (hello, false)
}

fn server_hello(body: &[u8]) -> Option<ServerHello> {
    let mut reader = Reader(body);
    let wire = reader.u16()?;
    let random = reader.take(32)?;
    let session = reader.u8()? as usize;
    reader.take(session)?;
    let suite = reader.u16()?;
    reader.u8()?; // compression
    let mut version = Version::from_wire(wire);
    if let Some(length) = reader.u16() {
        let mut ext = Reader(reader.take(length as usize)?);
        while let (Some(kind), Some(length)) = (ext.u16(), ext.u16()) {
            let data = ext.take(length as usize)?;
            if kind == 0x002b && data.len() == 2 {
                version = Version::from_wire(u16::from_be_bytes([data[0], data[1]]));
            }
        }
    }
    if random == RETRY_RANDOM {
        // A HelloRetryRequest: the server speaks TLS 1.3 but wants another key share.
        version = Some(Version::Tls13);
    }
    Some(ServerHello {
        version,
        suite,
        chain: Vec::new(),
    })
}

/// The DER certificates of a TLS 1.2-or-older Certificate message.
fn certificates(body: &[u8]) -> Vec<Vec<u8>> {
    let mut reader = Reader(body);
    let mut chain = Vec::new();
    if reader.u24().is_none() {
        return chain;
    }
    while let Some(length) = reader.u24() {
        match reader.take(length) {
            Some(der) => chain.push(der.to_vec()),
            None => break,
        }
    }
    chain
}

/// A cursor over bytes that never panics: each read is None past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| u32::from_be_bytes([0, b[0], b[1], b[2]]) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ServerHello record for `version` choosing `suite`, with `extensions`.
    fn hello(version: u16, suite: u16, extensions: &[u8]) -> Vec<u8> {
        let mut body = version.to_be_bytes().to_vec();
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        body.extend_from_slice(&suite.to_be_bytes());
        body.push(0);
        body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
        body.extend_from_slice(extensions);
        let mut msg = vec![2, 0, 0, body.len() as u8];
        msg.extend_from_slice(&body);
        let mut record = vec![22, 3, 3, 0, msg.len() as u8];
        record.extend_from_slice(&msg);
        record
    }

    #[test]
    fn answers_are_told_apart() {
        let tls10 = hello(0x0301, 0x000a, &[]);
        assert_eq!(parse(&tls10[..20], false), None, "a partial record waits");
        let Some(Answer::Hello(h)) = parse(&tls10, true) else {
            panic!("hello")
        };
        assert_eq!((h.version, h.suite), (Some(Version::Tls10), 0x000a));
        // Still waiting for the certificate while the connection is open.
        assert_eq!(parse(&tls10, false), None);
        let tls13 = hello(0x0303, 0x1301, &[0x00, 0x2b, 0, 2, 3, 4]);
        let Some(Answer::Hello(h)) = parse(&tls13, false) else {
            panic!("tls 1.3")
        };
        assert_eq!(h.version, Some(Version::Tls13));
        assert_eq!(
            parse(&[21, 3, 3, 0, 2, 2, 70], false),
            Some(Answer::Alert { description: 70 })
        );
        assert_eq!(parse(&[], true), Some(Answer::Closed));
        assert_eq!(
            parse(b"HTTP/1.1 400 Bad Request\r\n", false),
            Some(Answer::NotTls)
        );
    }
}
