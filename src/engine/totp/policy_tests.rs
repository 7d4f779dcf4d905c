//! Fast tests of the TOTP decisions against values from outside the code: the RFC 6238
//! Appendix B vectors (SHA-1, secret "12345678901234567890", truncated to six digits), a
//! code two steps away refused, and the lockout's doubling written out.

use super::*;
use chrono::TimeZone;

/// "12345678901234567890" (RFC 6238 Appendix B, SHA-1) in base32.
const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// (time, the RFC's eight-digit code): opsguard's six digits are its last six.
const RFC_VECTORS: [(u64, &str); 6] = [
    (59, "94287082"),
    (1_111_111_109, "07081804"),
    (1_111_111_111, "14050471"),
    (1_234_567_890, "89005924"),
    (2_000_000_000, "69279037"),
    (20_000_000_000, "65353130"),
];

#[test]
fn the_codes_are_those_of_rfc_6238_appendix_b() {
    for (time, eight) in RFC_VECTORS {
        assert_eq!(
            code_at(RFC_SECRET, time).as_deref(),
            Some(&eight[2..]),
            "t = {time}"
        );
        assert_eq!(
            matching_step(RFC_SECRET, &eight[2..], time),
            Some(time / 30),
            "t = {time}"
        );
    }
}

#[test]
fn a_code_one_step_either_side_is_accepted_for_its_own_step() {
    // 1111111109 is in step 37037036, 1111111111 in step 37037037.
    assert_eq!(
        matching_step(RFC_SECRET, "050471", 1_111_111_109),
        Some(37_037_037)
    );
    assert_eq!(
        matching_step(RFC_SECRET, "081804", 1_111_111_111),
        Some(37_037_036)
    );
    assert_eq!(
        matching_step(RFC_SECRET, "050471", 1_111_111_141),
        Some(37_037_037)
    );
}

#[test]
fn a_code_two_steps_away_is_refused() {
    // Step 37037036's code two steps later, and step 37037037's two steps earlier.
    assert_eq!(matching_step(RFC_SECRET, "081804", 1_111_111_169), None);
    assert_eq!(matching_step(RFC_SECRET, "050471", 1_111_111_171), None);
    assert_eq!(matching_step(RFC_SECRET, "081804", 1_111_111_049), None);
    assert_eq!(matching_step(RFC_SECRET, "000000", 59), None);
}

#[test]
fn a_step_is_accepted_once_and_never_after_a_later_one() {
    let t = 1_111_111_111;
    assert_eq!(accepted_step(RFC_SECRET, "050471", t, 0), Some(37_037_037));
    assert_eq!(
        accepted_step(RFC_SECRET, "050471", t, 37_037_036),
        Some(37_037_037)
    );
    assert_eq!(
        accepted_step(RFC_SECRET, "050471", t, 37_037_037),
        None,
        "used"
    );
    assert_eq!(
        accepted_step(RFC_SECRET, "081804", t, 37_037_037),
        None,
        "older"
    );
    assert_eq!(accepted_step(RFC_SECRET, "999999", t, 0), None, "wrong");
}

#[test]
fn a_secret_that_is_not_base32_has_no_codes() {
    assert_eq!(code_at("not base32!", 59), None);
    assert_eq!(matching_step("not base32!", "287082", 59), None);
    assert!(authenticator("not base32!", "x").is_none());
}

#[test]
fn the_authenticator_is_sha1_six_digits_thirty_seconds_named_for_opsguard() {
    let totp = authenticator(RFC_SECRET, "telegram:42").unwrap();
    let url = totp.to_url().unwrap();
    assert!(
        url.starts_with("otpauth://totp/opsguard:telegram42?"),
        "{url}"
    );
    assert!(url.contains(&format!("secret={RFC_SECRET}")), "{url}");
    assert!(url.contains("issuer=opsguard"), "{url}");
    // The Key URI format's defaults (SHA1, 6 digits, 30 s) are left out: any other
    // algorithm, length or period would be named.
    for part in ["digits=", "period=", "algorithm="] {
        assert!(!url.contains(part), "{part} in {url}");
    }
    assert_eq!((STEP_SECS, SKEW_STEPS), (30, 1));
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

#[test]
fn times_and_minutes_round_up() {
    assert_eq!(unix_secs(at(1_111_111_109)), 1_111_111_109);
    assert_eq!(unix_secs(at(-5)), 0);
    assert_eq!(minutes(-5), 0);
    assert_eq!(minutes(0), 0);
    assert_eq!(minutes(1), 1);
    assert_eq!(minutes(60), 1);
    assert_eq!(minutes(61), 2);
    assert_eq!(minutes_until(at(1000 + 900), at(1000)), 15);
    assert_eq!(minutes_until(at(1000 + 901), at(1000)), 16);
    assert_eq!(minutes_until(at(1000), at(2000)), 0);
}

#[test]
fn a_lockout_holds_until_its_end_and_not_at_it() {
    let now = at(10_000);
    assert_eq!(locked_at(None, now), None);
    assert_eq!(locked_at(Some(at(10_001)), now), Some(at(10_001)));
    assert_eq!(locked_at(Some(at(10_000)), now), None);
    assert_eq!(locked_at(Some(at(9_000)), now), None);
}

const POLICY: Lockout = Lockout {
    max_failures: 3,
    base_secs: 60,
    max_secs: 900,
};

#[test]
fn the_third_wrong_code_locks_and_resets_the_count() {
    let none = |failures, lockouts| AfterWrong {
        failures,
        lockouts,
        lock_secs: None,
    };
    assert_eq!(POLICY.after_wrong(0, 0), none(1, 0));
    assert_eq!(POLICY.after_wrong(1, 0), none(2, 0));
    assert_eq!(
        POLICY.after_wrong(2, 0),
        AfterWrong {
            failures: 0,
            lockouts: 1,
            lock_secs: Some(60)
        }
    );
    assert_eq!(POLICY.remaining(0), 3);
    assert_eq!(POLICY.remaining(1), 2);
    assert_eq!(POLICY.remaining(2), 1);
}

#[test]
fn each_lockout_in_a_row_doubles_up_to_the_maximum() {
    let lock_secs = |lockouts| POLICY.after_wrong(2, lockouts).lock_secs;
    assert_eq!(lock_secs(1), Some(120));
    assert_eq!(lock_secs(2), Some(240));
    assert_eq!(lock_secs(3), Some(480));
    assert_eq!(lock_secs(4), Some(900));
    assert_eq!(lock_secs(40), Some(900));
    assert_eq!(POLICY.after_wrong(2, 3).lockouts, 4);
    let long = Lockout {
        max_failures: 1,
        base_secs: i64::MAX / 2,
        max_secs: i64::MAX,
    };
    assert_eq!(
        long.duration_secs(30),
        i64::MAX,
        "saturates, never overflows"
    );
    assert_eq!(long.duration_secs(-1), i64::MAX / 2);
}
