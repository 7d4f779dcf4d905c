//! The Observatory's score table (mdn/mdn-http-observatory `src/grader/charts.js`): each
//! result's modifier, and for a result worth a finding, its severity, title and fix.

use crate::domain::finding::Severity::{self, High, Info, Low, Medium};

/// (result, modifier, finding: (severity, title, remediation) when the result is a problem).
type Row = (
    &'static str,
    i32,
    Option<(Severity, &'static str, &'static str)>,
);

const CSP_FIX: &str = "Send a Content-Security-Policy without 'unsafe-inline', broad sources or http: — start from `default-src 'self'; object-src 'none'; frame-ancestors 'none'` and use nonces or hashes for inline scripts.";
const HSTS_FIX: &str = "Send `Strict-Transport-Security: max-age=63072000; includeSubDomains` (once) on every HTTPS response.";
const REDIRECT_FIX: &str =
    "Answer every plain-HTTP request with a 301 redirect to the same host over https://.";
const COOKIE_FIX: &str =
    "Set Secure on every cookie, HttpOnly on session cookies, and SameSite=Lax or Strict.";
const SRI_FIX: &str =
    "Load third-party scripts over https:// with an `integrity` attribute (Subresource Integrity).";
const XFO_FIX: &str = "Send `frame-ancestors 'none'` in the CSP (or `X-Frame-Options: DENY`).";
const REFERRER_FIX: &str =
    "Send `Referrer-Policy: strict-origin-when-cross-origin` (or no-referrer).";

#[rustfmt::skip]
pub const ROWS: &[Row] = &[
    ("csp-implemented-with-no-unsafe-default-src-none", 10, None),
    ("csp-implemented-with-no-unsafe", 5, None),
    ("csp-implemented-with-unsafe-inline-in-style-src-only", 0, None),
    ("csp-implemented-with-insecure-scheme-in-passive-content-only", -10, Some((Medium, "Content-Security-Policy allows http: images or media", CSP_FIX))),
    ("csp-implemented-with-unsafe-eval", -10, Some((Medium, "Content-Security-Policy allows 'unsafe-eval'", CSP_FIX))),
    ("csp-implemented-with-unsafe-inline", -20, Some((Medium, "Content-Security-Policy does not restrict scripts", CSP_FIX))),
    ("csp-implemented-with-insecure-scheme", -20, Some((Medium, "Content-Security-Policy allows http: sources", CSP_FIX))),
    ("csp-header-invalid", -25, Some((High, "Content-Security-Policy invalid", CSP_FIX))),
    ("csp-not-implemented", -25, Some((High, "Content-Security-Policy missing", CSP_FIX))),
    ("csp-not-implemented-but-reporting-enabled", -25, Some((High, "Content-Security-Policy only reported, not enforced", CSP_FIX))),
    ("csp-implemented-but-duplicate-directives", 0, Some((Low, "Content-Security-Policy repeats report directives", CSP_FIX))),
    ("cookies-secure-with-httponly-sessions-and-samesite", 5, None),
    ("cookies-secure-with-httponly-sessions", 0, None),
    ("cookies-not-found", 0, None),
    ("cookies-without-secure-flag-but-protected-by-hsts", -5, Some((Low, "Cookies without Secure (HSTS protects them)", COOKIE_FIX))),
    ("cookies-session-without-secure-flag-but-protected-by-hsts", -10, Some((Medium, "Session cookies without Secure (HSTS protects them)", COOKIE_FIX))),
    ("cookies-without-secure-flag", -20, Some((Medium, "Cookies without Secure", COOKIE_FIX))),
    ("cookies-samesite-flag-invalid", -20, Some((Medium, "Cookies with an invalid SameSite", COOKIE_FIX))),
    ("cookies-anticsrf-without-samesite-flag", -20, Some((Medium, "Anti-CSRF cookie without SameSite", COOKIE_FIX))),
    ("cookies-session-without-httponly-flag", -30, Some((High, "Session cookies without HttpOnly", COOKIE_FIX))),
    ("cookies-session-without-secure-flag", -40, Some((High, "Session cookies without Secure", COOKIE_FIX))),
    ("cross-origin-resource-sharing-not-implemented", 0, None),
    ("cross-origin-resource-sharing-implemented-with-public-access", 0, None),
    ("cross-origin-resource-sharing-implemented-with-restricted-access", 0, None),
    ("cross-origin-resource-sharing-implemented-with-universal-access", -50, Some((High, "CORS lets any site read responses with the user's credentials", "Allow only listed origins; never reflect the request's Origin with Access-Control-Allow-Credentials: true."))),
    ("redirection-all-redirects-preloaded", 0, None),
    ("redirection-to-https", 0, None),
    ("redirection-not-needed-no-http", 0, None),
    ("redirection-off-host-from-http", -5, Some((Low, "HTTP redirects to another host first", REDIRECT_FIX))),
    ("redirection-not-to-https-on-initial-redirection", -10, Some((Medium, "HTTP does not redirect to HTTPS on the first redirect", REDIRECT_FIX))),
    ("redirection-not-to-https", -20, Some((High, "HTTP does not redirect to HTTPS", REDIRECT_FIX))),
    ("redirection-missing", -20, Some((High, "No redirect from HTTP to HTTPS", REDIRECT_FIX))),
    ("redirection-invalid-cert", -20, Some((High, "HTTPS redirect target has an invalid certificate", "Serve a certificate that verifies for the host."))),
    ("referrer-policy-private", 5, None),
    ("referrer-policy-not-implemented", 0, Some((Low, "Referrer-Policy missing", REFERRER_FIX))),
    ("referrer-policy-unsafe", -5, Some((Low, "Referrer-Policy leaks full URLs", REFERRER_FIX))),
    ("referrer-policy-header-invalid", -5, Some((Low, "Referrer-Policy invalid", REFERRER_FIX))),
    ("hsts-preloaded", 5, None),
    ("hsts-implemented-max-age-at-least-six-months", 0, None),
    ("hsts-implemented-max-age-less-than-six-months", -10, Some((Medium, "Strict-Transport-Security max-age under six months", HSTS_FIX))),
    ("hsts-not-implemented", -20, Some((High, "Strict-Transport-Security missing", HSTS_FIX))),
    ("hsts-header-invalid", -20, Some((High, "Strict-Transport-Security invalid", HSTS_FIX))),
    ("hsts-not-implemented-no-https", -20, Some((High, "No HTTPS", "Serve the site over HTTPS, redirect HTTP to it and send Strict-Transport-Security."))),
    ("hsts-invalid-cert", -20, Some((High, "HTTPS certificate does not verify", "Serve a certificate that verifies for the host; HSTS is void without one."))),
    ("sri-implemented-and-all-scripts-loaded-securely", 5, None),
    ("sri-implemented-and-external-scripts-loaded-securely", 5, None),
    ("sri-not-implemented-response-not-html", 0, None),
    ("sri-not-implemented-but-no-scripts-loaded", 0, None),
    ("sri-not-implemented-but-all-scripts-loaded-from-secure-origin", 0, None),
    ("sri-not-implemented-but-external-scripts-loaded-securely", -5, Some((Low, "External scripts without Subresource Integrity", SRI_FIX))),
    ("sri-implemented-but-external-scripts-not-loaded-securely", -20, Some((Medium, "External scripts loaded over plain HTTP", SRI_FIX))),
    ("sri-not-implemented-and-external-scripts-not-loaded-securely", -50, Some((High, "External scripts over plain HTTP without integrity", SRI_FIX))),
    ("x-content-type-options-nosniff", 0, None),
    ("x-content-type-options-not-implemented", -5, Some((Low, "X-Content-Type-Options missing", "Send `X-Content-Type-Options: nosniff`."))),
    ("x-content-type-options-header-invalid", -5, Some((Low, "X-Content-Type-Options invalid", "Send `X-Content-Type-Options: nosniff`."))),
    ("x-frame-options-implemented-via-csp", 5, None),
    ("x-frame-options-sameorigin-or-deny", 5, None),
    ("x-frame-options-allow-from-origin", 0, None),
    ("x-frame-options-not-implemented", -20, Some((Medium, "Clickjacking protection missing", XFO_FIX))),
    ("x-frame-options-header-invalid", -20, Some((Medium, "X-Frame-Options invalid", XFO_FIX))),
    ("corp-header-invalid", -5, Some((Low, "Cross-Origin-Resource-Policy invalid", "Send `Cross-Origin-Resource-Policy: same-site` (or same-origin)."))),
    ("corp-implemented-with-cross-origin", 0, None),
    ("corp-implemented-with-same-origin", 10, None),
    ("corp-implemented-with-same-site", 10, None),
    ("corp-not-implemented", 0, None),
    ("coep-implemented-with-require-corp", 10, None),
    ("coep-implemented-with-credentialless", 10, None),
    ("coep-implemented-with-unsafe-none", 0, None),
    ("coep-not-implemented", 0, None),
    ("coep-header-invalid", -5, Some((Low, "Cross-Origin-Embedder-Policy invalid", "Send one `Cross-Origin-Embedder-Policy: require-corp` (or credentialless)."))),
    ("coop-implemented-with-same-origin", 10, None),
    ("coop-implemented-with-same-origin-allow-popups", 10, None),
    ("coop-implemented-with-noopener-allow-popups", 10, None),
    ("coop-implemented-with-unsafe-none", 0, None),
    ("coop-not-implemented", 0, None),
    ("coop-header-invalid", -5, Some((Low, "Cross-Origin-Opener-Policy invalid", "Send one `Cross-Origin-Opener-Policy: same-origin`."))),
    ("html-not-parseable", -20, Some((Medium, "Page HTML not parseable", "Serve well-formed HTML."))),
];

/// The row of a result (every result a test returns has one: a unit test proves it).
pub fn row(result: &str) -> Option<&'static Row> {
    ROWS.iter().find(|(r, _, _)| *r == result)
}

/// The score modifier of a result.
pub fn modifier(result: &str) -> i32 {
    row(result).map_or(0, |(_, m, _)| *m)
}

/// Used by the score finding.
pub const SCORE_SEVERITY: Severity = Info;
