//! TOTP codes computed in the test, independently of the product's `engine::totp` (RFC 6238
//! over HMAC-SHA-1, 30 s steps, 6 digits as authenticators show them), checked against the
//! RFC's Appendix B vectors.

use hmac013::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// RFC 4226's HOTP: `digits` decimal digits of the dynamically truncated HMAC-SHA-1.
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = (hash[hash.len() - 1] & 0x0f) as usize;
    let word = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    format!(
        "{:0width$}",
        word % 10u32.pow(digits),
        width = digits as usize
    )
}

/// RFC 6238's TOTP at Unix time `at`, `steps` 30 s steps away (negative: earlier).
pub fn totp_at(key: &[u8], at: u64, steps: i64, digits: u32) -> String {
    let counter = (at / 30) as i64 + steps;
    hotp(key, counter as u64, digits)
}

/// The 6-digit code a user's authenticator shows now, `steps` steps away, for a base32
/// secret (as `/totp` hands it out).
pub fn code(secret_b32: &str, steps: i64) -> String {
    let key = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, secret_b32)
        .expect("a base32 secret");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp_at(&key, now, steps, 6)
}

/// The code a user's authenticator shows now.
pub fn code_now(secret_b32: &str) -> String {
    code(secret_b32, 0)
}

#[test]
fn rfc_6238_appendix_b_sha1_vectors() {
    let key = b"12345678901234567890";
    for (time, expected) in [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ] {
        assert_eq!(totp_at(key, time, 0, 8), expected, "T = {time}");
    }
    // The same key in base32, as `/totp` would hand it out, gives the 6-digit tail.
    let b32 = base32::encode(base32::Alphabet::Rfc4648 { padding: false }, key);
    assert_eq!(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
}
