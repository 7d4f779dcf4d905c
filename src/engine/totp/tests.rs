//! Fast tests of what the TOTP module says and hands out without a database: the
//! refusal for an authenticator an older version exposed, and the current code.

use super::*;

#[test]
fn an_exposed_authenticator_is_refused_with_the_way_out() {
    assert_eq!(
        exposed(UserId(42)),
        "Your authenticator was enrolled by an older opsguard that left its secret in this chat, where anyone holding your Telegram account can read it, so it no longer passes step-up. Ask an admin to reset it from a shell (opsguard user reset-totp 42), then enrol again."
    );
}

#[test]
fn the_current_code_is_six_digits_accepted_now() {
    // "12345678901234567890" (RFC 6238 Appendix B) in base32.
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    let code = current_code(secret).expect("a base32 secret has codes");
    assert_eq!(code.len(), 6, "{code}");
    assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");
    let now = unix_secs(chrono::Utc::now());
    let step = matching_step(secret, &code, now).expect("accepted now");
    assert!(step.abs_diff(now / 30) <= 1);
    assert_eq!(current_code("not base32!"), None);
}
