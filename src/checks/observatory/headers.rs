//! The Observatory's single-header tests: `x-content-type-options`, `x-frame-options` (a
//! bonus, or covered by CSP `frame-ancestors`), `referrer-policy` (header and `<meta
//! name=referrer>`, the last value a browser understands wins), COOP, COEP and CORP, and
//! CORS (credentials with a reflected origin is universal access).

use super::exchange::{Exchange, Response};

pub fn x_content_type_options(r: &Response) -> &'static str {
    match r.first("x-content-type-options") {
        None | Some("") => "x-content-type-options-not-implemented",
        Some(v) if v.trim().eq_ignore_ascii_case("nosniff") => "x-content-type-options-nosniff",
        Some(_) => "x-content-type-options-header-invalid",
    }
}

/// `frame_ancestors`: the effective CSP has a frame-ancestors directive.
pub fn x_frame_options(r: &Response, frame_ancestors: bool) -> &'static str {
    if frame_ancestors {
        return "x-frame-options-implemented-via-csp";
    }
    match r.first("x-frame-options") {
        None | Some("") => "x-frame-options-not-implemented",
        Some(v) => {
            let v: String = v
                .chars()
                .take(1024)
                .collect::<String>()
                .trim()
                .to_lowercase();
            if v == "deny" || v == "sameorigin" {
                "x-frame-options-sameorigin-or-deny"
            } else if v.starts_with("allow-from") {
                "x-frame-options-allow-from-origin"
            } else {
                "x-frame-options-header-invalid"
            }
        }
    }
}

/// `meta`: the content of the page's last `<meta name="referrer">`, if any.
pub fn referrer_policy(r: &Response, meta: Option<&str>) -> &'static str {
    const PRIVATE: [&str; 4] = [
        "no-referrer",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
    ];
    const UNSAFE: [&str; 4] = [
        "origin",
        "origin-when-cross-origin",
        "unsafe-url",
        "no-referrer-when-downgrade",
    ];
    let mut values = r.all("referrer-policy");
    values.extend(meta);
    if values.is_empty() {
        return "referrer-policy-not-implemented";
    }
    let joined = values.join(", ");
    let policy = joined
        .split(',')
        .map(|p| p.trim().to_lowercase())
        .rfind(|p| PRIVATE.contains(&p.as_str()) || UNSAFE.contains(&p.as_str()));
    match policy.as_deref() {
        Some(p) if PRIVATE.contains(&p) => "referrer-policy-private",
        Some(_) => "referrer-policy-unsafe",
        None => "referrer-policy-header-invalid",
    }
}

/// A structured-field item (RFC 8941) whose bare item is a token: the token, else None.
fn sf_token(value: &str) -> Option<String> {
    let item: sfv::Item = sfv::Parser::new(value).parse().ok()?;
    match item.bare_item {
        sfv::BareItem::Token(t) => Some(t.as_str().to_string()),
        _ => None,
    }
}

/// Cross-Origin-Opener-Policy (`opener`) or -Embedder-Policy: sent twice is invalid.
fn cross_origin(r: &Response, header: &str, prefix: &str, known: &[&str]) -> String {
    let values = r.all(header);
    match values.as_slice() {
        [] | [""] => format!("{prefix}-not-implemented"),
        [one] => {
            let v: String = one.chars().take(1024).collect();
            match sf_token(v.trim()) {
                Some(t) if known.contains(&t.as_str()) => format!("{prefix}-implemented-with-{t}"),
                _ => format!("{prefix}-header-invalid"),
            }
        }
        _ => format!("{prefix}-header-invalid"),
    }
}

pub fn coop(r: &Response) -> String {
    let known = [
        "same-origin",
        "same-origin-allow-popups",
        "noopener-allow-popups",
        "unsafe-none",
    ];
    cross_origin(r, "cross-origin-opener-policy", "coop", &known)
}

pub fn coep(r: &Response) -> String {
    let known = ["require-corp", "credentialless", "unsafe-none"];
    cross_origin(r, "cross-origin-embedder-policy", "coep", &known)
}

/// Cross-Origin-Resource-Policy: values joined, so two headers are invalid.
pub fn corp(r: &Response) -> &'static str {
    let joined = r.all("cross-origin-resource-policy").join(", ");
    if joined.is_empty() {
        return "corp-not-implemented";
    }
    let v: String = joined
        .chars()
        .take(256)
        .collect::<String>()
        .trim()
        .to_lowercase();
    match v.as_str() {
        "same-site" => "corp-implemented-with-same-site",
        "same-origin" => "corp-implemented-with-same-origin",
        "cross-origin" => "corp-implemented-with-cross-origin",
        _ => "corp-header-invalid",
    }
}

/// CORS, from the preflight answer: `*` is public; the Origin sent reflected back with
/// credentials allowed is universal access (any site can read as the user).
pub fn cors(ex: &Exchange) -> &'static str {
    let Some(answer) = &ex.cors else {
        return "cross-origin-resource-sharing-not-implemented";
    };
    let Some(allow) = answer
        .first("access-control-allow-origin")
        .filter(|v| !v.is_empty())
    else {
        return "cross-origin-resource-sharing-not-implemented";
    };
    let data: String = allow
        .chars()
        .take(256)
        .collect::<String>()
        .trim()
        .to_lowercase();
    let credentials = answer
        .first("access-control-allow-credentials")
        .is_some_and(|c| c.trim().eq_ignore_ascii_case("true"));
    if data == "*" {
        "cross-origin-resource-sharing-implemented-with-public-access"
    } else if ex.cors_origin.as_deref() == Some(allow) && credentials {
        "cross-origin-resource-sharing-implemented-with-universal-access"
    } else {
        "cross-origin-resource-sharing-implemented-with-restricted-access"
    }
}
