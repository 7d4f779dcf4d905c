//! Token verification against literal vectors (signed outside opsguard, HS256 under
//! `KEY`), so a change in the library or our use of it cannot pass unnoticed.

use super::*;

const KEY: &str = "opsguard-test-vector-key-0123456789abcdef";
/// `Keys::kid` of `KEY`: the first 8 hex digits of its SHA-256.
const KID: &str = "3373157a";
const ISS: &str = "opsguard-ingest";
/// sub auth-api, iss opsguard-ingest, aud opsguard, exp 2100-01-01, scope events:write.
const GOOD: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IjMzNzMxNTdhIn0.eyJzdWIiOiJhdXRoLWFwaSIsImlzcyI6Im9wc2d1YXJkLWluZ2VzdCIsImF1ZCI6Im9wc2d1YXJkIiwiZXhwIjo0MTAyNDQ0ODAwLCJzY29wZSI6ImV2ZW50czp3cml0ZSJ9.YGBaMfrcCr1P5tprIrVs4TE9h_2AySWCGeRUh7J7n3A";
/// The same claims, no `kid` in the header (a token issued before keys had one).
const NO_KID: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhdXRoLWFwaSIsImlzcyI6Im9wc2d1YXJkLWluZ2VzdCIsImF1ZCI6Im9wc2d1YXJkIiwiZXhwIjo0MTAyNDQ0ODAwLCJzY29wZSI6ImV2ZW50czp3cml0ZSJ9.84SnskvXFQXxSqy3Hqbk9z8SSWCpd4f_WLF5qO0YDmc";
/// `nbf` in 2099: not valid yet.
const NOT_YET: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IjMzNzMxNTdhIn0.eyJzdWIiOiJhdXRoLWFwaSIsImlzcyI6Im9wc2d1YXJkLWluZ2VzdCIsImF1ZCI6Im9wc2d1YXJkIiwiZXhwIjo0MTAyNDQ0ODAwLCJzY29wZSI6ImV2ZW50czp3cml0ZSIsIm5iZiI6NDEwMjQ0NDAwMH0.GunqTMYmNJX0L7MT6tcuGoS1XByk7J3laA_1wxtZtv8";
/// `exp` 2000-01-01.
const EXPIRED: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IjMzNzMxNTdhIn0.eyJzdWIiOiJhdXRoLWFwaSIsImlzcyI6Im9wc2d1YXJkLWluZ2VzdCIsImF1ZCI6Im9wc2d1YXJkIiwiZXhwIjo5NDY2ODQ4MDAsInNjb3BlIjoiZXZlbnRzOndyaXRlIn0.qd3P21lyjHNp_gMHUOisLTScohZnT59zm1S_UScD7GY";
/// `aud` other.
const WRONG_AUD: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IjMzNzMxNTdhIn0.eyJzdWIiOiJhdXRoLWFwaSIsImlzcyI6Im9wc2d1YXJkLWluZ2VzdCIsImF1ZCI6Im90aGVyIiwiZXhwIjo0MTAyNDQ0ODAwLCJzY29wZSI6ImV2ZW50czp3cml0ZSJ9.51wiY2qDy8vW2t3WsBYOt9AWSmdeLhajy9US1wDRu3I";
/// Header `alg: HS512`.
const HS512: &str = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCIsImtpZCI6IjMzNzMxNTdhIn0.eyJzdWIiOiJhdXRoLWFwaSIsImlzcyI6Im9wc2d1YXJkLWluZ2VzdCIsImF1ZCI6Im9wc2d1YXJkIiwiZXhwIjo0MTAyNDQ0ODAwLCJzY29wZSI6ImV2ZW50czp3cml0ZSJ9.vXXD0kLPpv6Vv-U6YF_YRT-DkU1Scdik9K3pmLP62K8";
/// `kid` 00000000: no such key.
const UNKNOWN_KID: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IjAwMDAwMDAwIn0.eyJzdWIiOiJhdXRoLWFwaSIsImlzcyI6Im9wc2d1YXJkLWluZ2VzdCIsImF1ZCI6Im9wc2d1YXJkIiwiZXhwIjo0MTAyNDQ0ODAwLCJzY29wZSI6ImV2ZW50czp3cml0ZSJ9.WtrxPTG62fs_FmqmCxlINraNf6YTZ5icLaBmzmGY7NU";

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn key() -> Secret {
    Secret::new(KEY)
}

#[test]
fn literal_vectors_verify_or_are_refused_by_name() {
    let (key, other) = (key(), Secret::new("x".repeat(32)));
    let keys = Keys::new(&key, None);
    assert_eq!(Keys::kid(&key), KID);
    assert_eq!(verify(GOOD, &keys, ISS), Ok("auth-api".into()));
    assert_eq!(verify(NO_KID, &keys, ISS), Ok("auth-api".into()));
    assert_eq!(verify(NOT_YET, &keys, ISS), Err(TokenError::NotYetValid));
    assert_eq!(verify(EXPIRED, &keys, ISS), Err(TokenError::Expired));
    assert_eq!(
        verify(WRONG_AUD, &keys, ISS),
        Err(TokenError::WrongAudience)
    );
    assert_eq!(verify(GOOD, &keys, "else"), Err(TokenError::WrongIssuer));
    assert_eq!(verify(HS512, &keys, ISS), Err(TokenError::Algorithm));
    assert_eq!(verify(UNKNOWN_KID, &keys, ISS), Err(TokenError::UnknownKey));
    // Under another key: the kid names no key; without a kid the signature is wrong.
    let wrong = Keys::new(&other, None);
    assert_eq!(verify(GOOD, &wrong, ISS), Err(TokenError::UnknownKey));
    assert_eq!(verify(NO_KID, &wrong, ISS), Err(TokenError::BadSignature));
    // A flipped signature byte.
    let mut forged = GOOD.to_string();
    forged.replace_range(forged.len() - 2.., "AA");
    assert_eq!(verify(&forged, &keys, ISS), Err(TokenError::BadSignature));
}

#[test]
fn the_previous_key_still_verifies_after_a_rotation() {
    let (old, new) = (key(), Secret::new("n".repeat(40)));
    let rotated = Keys::new(&new, Some(&old));
    // Tokens signed under the old key, with and without its kid, keep working.
    assert_eq!(verify(GOOD, &rotated, ISS), Ok("auth-api".into()));
    assert_eq!(verify(NO_KID, &rotated, ISS), Ok("auth-api".into()));
    // A claim error under the previous key is reported as such, not as a bad signature.
    assert_eq!(verify(NOT_YET, &rotated, ISS), Err(TokenError::NotYetValid));
    let fresh = issue("sso", Duration::from_secs(60), &new, ISS, now()).unwrap();
    assert_eq!(verify(&fresh, &rotated, ISS), Ok("sso".into()));
    // Once the previous key is dropped, what it signed is refused.
    let after = Keys::new(&new, None);
    assert_eq!(verify(GOOD, &after, ISS), Err(TokenError::UnknownKey));
    assert_eq!(verify(NO_KID, &after, ISS), Err(TokenError::BadSignature));
    assert_eq!(verify(&fresh, &after, ISS), Ok("sso".into()));
}

#[test]
fn an_issued_token_names_its_key_and_verifies() {
    let secret = Secret::new("k".repeat(32));
    let keys = Keys::new(&secret, None);
    let token = issue("auth-api", Duration::from_secs(60), &secret, "iss", now()).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::HS256);
    assert_eq!(header.kid, Some(Keys::kid(&secret)));
    assert_eq!(verify(&token, &keys, "iss"), Ok("auth-api".into()));
    assert_eq!(verify(&token, &keys, "else"), Err(TokenError::WrongIssuer));
    let old = issue("a", Duration::from_secs(1), &secret, "iss", now() - 7200).unwrap();
    assert_eq!(verify(&old, &keys, "iss"), Err(TokenError::Expired));
}

#[test]
fn alg_none_and_garbage_are_refused_by_name() {
    let secret = key();
    let keys = Keys::new(&secret, None);
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{KID}"}}"#));
    let body = URL_SAFE_NO_PAD.encode(r#"{"sub":"x"}"#);
    let none = format!("{header}.{body}.");
    assert_eq!(verify(&none, &keys, "iss"), Err(TokenError::Algorithm));
    let lower = URL_SAFE_NO_PAD.encode(r#"{"alg":"hs256"}"#);
    assert_eq!(
        verify(&format!("{lower}.{body}.x"), &keys, "iss"),
        Err(TokenError::Algorithm)
    );
    assert_eq!(verify("abc", &keys, "iss"), Err(TokenError::Malformed));
    assert_eq!(verify("", &keys, "iss"), Err(TokenError::Malformed));
}

#[test]
fn ttls_take_one_unit() {
    assert_eq!(parse_ttl("30d"), Ok(Duration::from_secs(30 * 86_400)));
    assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
    assert_eq!(parse_ttl("2h"), Ok(Duration::from_secs(7200)));
    for bad in [
        "",
        "d",
        "0s",
        "-1d",
        "10w",
        "1.5h",
        "5é",
        "99999999999999999d",
    ] {
        assert!(parse_ttl(bad).is_err(), "{bad}");
    }
}
