//! The Observatory's `strict-transport-security` and `redirection` tests: HSTS read from the
//! HTTPS answer only (sent over plain HTTP a browser ignores it), and the chain that starts
//! at http:// judged from its first hop to its last.

use super::exchange::{Exchange, Preload, is_preloaded};

/// 180 days, the Observatory's minimum HSTS max-age.
pub const SIX_MONTHS: i64 = 15_552_000;

/// `parseInt(text, 10)`: leading blanks, a sign and digits; None when no digit starts it.
fn parse_int(text: &str) -> Option<i64> {
    let t = text.trim_start();
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'-') => (-1, &t[1..]),
        Some(b'+') => (1, &t[1..]),
        _ => (1, t),
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    Some(sign * digits.parse::<i64>().unwrap_or(i64::MAX))
}

/// The HSTS result, and whether the test passed (the cookie test reads it).
pub fn hsts(ex: &Exchange, preload: Preload<'_>) -> (&'static str, bool) {
    let result = match &ex.https {
        None => "hsts-not-implemented-no-https",
        Some(r) if !r.verified => "hsts-invalid-cert",
        Some(r) => match r.first("strict-transport-security") {
            None => "hsts-not-implemented",
            Some(value) => {
                let value: String = value.chars().take(1024).collect();
                hsts_value(&value)
            }
        },
    };
    let result = if ex.https.is_some() && is_preloaded(preload, &ex.site).is_some() {
        "hsts-preloaded"
    } else {
        result
    };
    let pass = [
        "hsts-implemented-max-age-at-least-six-months",
        "hsts-preloaded",
    ]
    .contains(&result);
    (result, pass)
}

/// One header value: a comma means it was sent twice (invalid); max-age is required.
fn hsts_value(value: &str) -> &'static str {
    if value.contains(',') {
        return "hsts-header-invalid";
    }
    // The last max-age counts.
    let max_age = value
        .split(';')
        .filter_map(|p| {
            let p = p.trim().to_lowercase();
            p.strip_prefix("max-age=")
                .map(|n| parse_int(&n.chars().take(120).collect::<String>()))
        })
        .next_back();
    match max_age {
        None => "hsts-header-invalid",
        // Not a number: the Observatory's comparison is false, so it counts as long enough.
        Some(None) => "hsts-implemented-max-age-at-least-six-months",
        Some(Some(age)) if age < SIX_MONTHS => "hsts-implemented-max-age-less-than-six-months",
        Some(Some(_)) => "hsts-implemented-max-age-at-least-six-months",
    }
}

/// The redirection result.
pub fn redirection(ex: &Exchange, preload: Preload<'_>) -> &'static str {
    let Some(http) = &ex.http else {
        return "redirection-not-needed-no-http";
    };
    if !http.verified {
        return "redirection-invalid-cert";
    }
    let route = &ex.http_redirects;
    let preloaded = route
        .iter()
        .all(|(url, _)| is_preloaded(preload, url.host_str().unwrap_or("")).is_some());
    let scheme = |i: usize| route.get(i).map(|(u, _)| u.scheme());
    let host = |i: usize| route.get(i).and_then(|(u, _)| u.host_str());
    if preloaded {
        "redirection-all-redirects-preloaded"
    } else if route.len() == 1 {
        "redirection-missing"
    } else if route.last().map(|(u, _)| u.scheme()) != Some("https") {
        "redirection-not-to-https"
    } else if scheme(1) == Some("http") {
        "redirection-not-to-https-on-initial-redirection"
    } else if scheme(0) == Some("http") && scheme(1) == Some("https") && host(0) != host(1) {
        "redirection-off-host-from-http"
    } else {
        "redirection-to-https"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsts_values_are_read_as_the_observatory_reads_them() {
        assert_eq!(
            hsts_value("max-age=15552000"),
            "hsts-implemented-max-age-at-least-six-months"
        );
        assert_eq!(
            hsts_value("max-age=15551999; preload"),
            "hsts-implemented-max-age-less-than-six-months"
        );
        assert_eq!(
            hsts_value("max-age=1, max-age=63072000"),
            "hsts-header-invalid"
        );
        assert_eq!(hsts_value("includeSubDomains"), "hsts-header-invalid");
        assert_eq!(parse_int(" 12abc"), Some(12));
        assert_eq!(parse_int("\"12\""), None);
    }
}
